"""The drill (make demo): a whole incident on the emulator, every step asserted from --json."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Browser
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.local.drill import DrillFailed, check

STEPS = [
    "seed",
    "tripwire",
    "request",
    "approve",
    "investigate",
    "resume",
    "extend",
    "expire",
    "audit",
    "sealed",
]


def test_the_drill_plays_the_whole_incident_and_every_step_passes(tmp_path: Path, browser: Browser) -> None:
    result = CliRunner().invoke(app, ["drill", "--report", str(tmp_path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [s["name"] for s in document["steps"]] == STEPS
    assert all(s["ok"] for s in document["steps"])
    details = {s["name"]: s["detail"] for s in document["steps"]}
    assert "tripwire:chat-5xx" in details["tripwire"]
    assert "assumed-role/breakglass-emergency-admin/rita" in details["investigate"]
    assert "AccessDenied" in details["expire"] and "the extension's session worked" in details["expire"]
    assert "granted" in details["extend"]
    assert "access_outside_grants empty" in details["audit"]
    assert "breakglass-sealed assumed assumed-role/breakglass-sealed/breakglass-sealed" in details["sealed"]
    assert "review opened; check: no finding" in details["sealed"]
    summary = document["deployment"]
    assert summary["resources"] > 100 and set(summary["tiers"]) == {"halt", "operator", "admin", "drill"}
    assert summary["tiers"]["halt"]["approval"] == "auto" and summary["tiers"]["admin"]["approval"] == 2
    report = Path(document["report"])
    assert report.parent == tmp_path and report.read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "audit-copy").is_dir()
    assert_report_renders(browser, report, tmp_path / "drill-report.png")


def assert_report_renders(browser: Browser, report: Path, shot: Path) -> None:
    """The drill's incident report in Chromium: its timeline holds the responder's calls."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        response = page.goto(report.as_uri())
        assert response is not None and response.ok
        assert page.title().startswith("Break-glass incident r")
        assert page.locator("svg#timeline").is_visible()
        assert page.locator("svg#timeline g.mark.call").count() >= 1
        assert page.locator("svg#timeline rect.window").count() == 2  # the window and its extension
        # Written for the auditor to read before signing off: the review is open, not yet decided.
        assert "opened" in page.locator("section#reviews").inner_text()
        page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()
    assert shot.stat().st_size > 50_000


def test_a_failed_check_names_the_step_what_was_expected_and_what_happened() -> None:
    try:
        check(
            "resume", [] == ["breakglass-halt-chat"], "the deny-invoke policy gone", ["breakglass-halt-chat"]
        )
    except DrillFailed as failed:
        assert (failed.step, failed.expected, failed.observed) == (
            "resume",
            "the deny-invoke policy gone",
            "['breakglass-halt-chat']",
        )
    else:  # pragma: no cover - the check must raise
        raise AssertionError("check did not raise")


def test_a_program_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["drill", "--program", str(tmp_path)])
    assert result.exit_code == 2 and "no __main__.py" in result.stderr
