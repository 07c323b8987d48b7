"""The incident report in a real browser: headless Chromium, JavaScript off, nothing fetched.

Chromium comes from Debian (``make browser``); like the approval-page browser test, this fails
rather than skips without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_world import runner
from fixtures.audit.scenario import build_local_bucket
from playwright.sync_api import Browser, ConsoleMessage, Request

from breakglass.cli.main import app

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = build_local_bucket(tmp_path_factory.mktemp("audit-bucket"))
    out = tmp_path_factory.mktemp("reports")
    result = runner.invoke(app, ["audit", "report", "req-0001", "--local", str(copy), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "breakglass-report-req-0001.html"


def test_the_report_renders_without_javascript_and_its_timeline_is_drawn(
    browser: Browser, report_file: Path, tmp_path: Path
) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    console: list[str] = []

    def on_request(request: Request) -> None:
        requests.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        console.append(f"{message.type}: {message.text}")

    page.on("request", on_request)
    page.on("console", on_console)
    try:
        response = page.goto(report_file.as_uri())
        assert response is not None and response.ok
        assert page.title() == "Break-glass incident req-0001"
        assert page.locator("#status").inner_text() == "revoked"
        timeline = page.locator("svg#timeline")
        assert timeline.is_visible()
        box = timeline.bounding_box()
        assert box is not None and box["width"] > 900 and box["height"] > 200
        assert page.locator("svg#timeline g.mark.call").count() == 5
        assert page.locator("svg#timeline rect.window").count() == 1
        for name in ("summary", "justification", "approvals", "findings", "reviews"):
            assert page.locator(f"section#{name}").is_visible()
        # The stylesheet applied (its CSP hash matched): the findings carry their severity colours.
        high = page.locator("ul.findings li.high").first
        assert high.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(183, 28, 28)"

        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        picture = tmp_path / "timeline.png"
        timeline.screenshot(path=str(picture))
    finally:
        context.close()
    assert shot.read_bytes().startswith(PNG_SIGNATURE) and shot.stat().st_size > 50_000
    assert picture.read_bytes().startswith(PNG_SIGNATURE) and picture.stat().st_size > 10_000
    assert requests == [report_file.as_uri()]  # nothing else fetched: fonts, images, scripts
    assert console == []  # no Content-Security-Policy violation, nothing blocked
