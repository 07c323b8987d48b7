"""`breakglass audit report ID`: one self-contained HTML page per incident, from the fixture incidents."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_world import REGION, publish, runner, upload_copy
from fixtures.audit.scenario import AUDIT_BUCKET, EVENTS, build_local_bucket, write_cloudtrail, write_events
from moto import mock_aws

from breakglass.cli.main import app
from breakglass.cli.report import build_incident
from breakglass.cli.report_html import render_report
from breakglass.contracts import iso, parse_iso
from breakglass.lambdas.audit.events import AuditEvent
from breakglass.local.athena import LocalBucket

SAMPLE = Path(__file__).parent.parent / "docs" / "sample-report.html"
SAMPLE_TIME = datetime(2025, 3, 16, 9, 0, tzinfo=UTC)
SAMPLE_SOURCE = "the fixture incidents in tests/fixtures/audit (a local copy of the audit bucket)"


@pytest.fixture(scope="module")
def local_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_local_bucket(tmp_path_factory.mktemp("audit-bucket"))


class Page(HTMLParser):
    """The parts of a report the tests look at: section ids, tags used, texts by element id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.ids: dict[str, str] = {}
        self.findings: list[str] = []
        self.marks: list[str] = []
        self._open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if tag == "section" and values.get("id"):
            self.sections.append(str(values["id"]))
        if values.get("data-kind"):
            self.findings.append(str(values["data-kind"]))
        if tag == "g" and "mark" in str(values.get("class", "")).split():
            self.marks.append(str(values["class"]))
        if values.get("id"):
            self._open.append(str(values["id"]))
            self.ids[str(values["id"])] = ""

    def handle_data(self, data: str) -> None:
        for element in self._open:
            self.ids[element] += data

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag in ("code", "dd", "blockquote", "span"):
            self._open.pop()


def report(local_copy: Path, request_id: str, out: Path, *extra: str) -> tuple[Any, str]:
    result = runner.invoke(
        app, ["audit", "report", request_id, "--local", str(local_copy), "--out", str(out), *extra]
    )
    path = out / f"breakglass-report-{request_id}.html"
    return result, path.read_text() if path.exists() else ""


def test_the_report_of_a_revoked_incident_has_every_section_and_its_findings(
    local_copy: Path, tmp_path: Path
) -> None:
    result, text = report(local_copy, "req-0001", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "breakglass-report-req-0001.html")
    assert "req-0001: revoked, 4 finding(s) (2 high)" in result.stderr
    page = Page(text)
    assert page.sections == [
        "summary",
        "justification",
        "approvals",
        "timeline-section",
        "findings",
        "calls",
        "halts",
        "reviews",
        "events",
    ]
    assert page.ids["status"] == "revoked"
    assert page.ids["reason"] == "fraud-model returns garbage scores"
    assert page.ids["ticket"] == "INC-4711"
    assert page.findings == ["self-approval", "outside-window", "failed-halt", "unreviewed"]
    # The timeline: the request, two votes, the grant, the revoke and the review opening; the
    # AssumeRole and the four calls of the session; three halt actions.
    assert sum("event" in m or "vote" in m for m in page.marks) == 6
    assert sum(m.startswith("mark call") for m in page.marks) == 5
    assert [m for m in page.marks if "outside" in m] == ["mark call outside"]
    assert sum("halt-action" in m for m in page.marks) == 3
    assert "approval (self-approval)" in text
    assert "revoke by carol at 2025-03-14 09:45:00 UTC (work done)" in text


def test_the_report_of_an_expired_incident_shows_the_late_denied_call_and_the_verdict(
    local_copy: Path, tmp_path: Path
) -> None:
    result, text = report(local_copy, "req-0003", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    incident = document["incident"]
    assert document["report"] == str(tmp_path / "breakglass-report-req-0003.html")
    assert (incident["status"], incident["requester"], incident["window_end"]) == (
        "expired",
        "erin",
        "2025-03-15T15:30:00Z",
    )
    assert [(c["event_name"], c["error_code"], c["outside_window"]) for c in incident["calls"]] == [
        ("AssumeRole", None, False),
        ("UpdateEndpointWeightsAndCapacities", None, False),
        ("InvokeEndpoint", "AccessDenied", True),  # 23:59:30, filed by CloudTrail under the next day
    ]
    assert [f["kind"] for f in incident["findings"]] == ["flagged", "outside-window", "failed-call"]
    assert [(r["outcome"], r["actor"], r["notes"]) for r in incident["reviews"]] == [
        ("opened", "system", None),
        ("flagged", "bob", "retried after expiry"),
    ]
    assert Page(text).ids["status"] == "expired"


def test_a_denied_request_has_no_access_and_says_so(local_copy: Path, tmp_path: Path) -> None:
    result, text = report(local_copy, "req-0002", tmp_path)
    assert result.exit_code == 0, result.output
    page = Page(text)
    assert page.ids["status"] == "denied"
    assert page.findings == []
    assert "never granted" in text and "No CloudTrail calls of an emergency session" in text
    assert "no incident" in text  # the denial's reason


def test_calls_are_attributed_to_the_incident_by_source_identity_and_period(local_copy: Path) -> None:
    incident = build_incident(LocalBucket(local_copy), "req-0001")
    assert incident.period == ("2025-03-14T09:00:00Z", "2025-03-15T09:45:00Z")
    # The caller without a source identity at 04:00 the next day is nobody's incident.
    assert all(c.principal_arn and "alice" in c.principal_arn for c in incident.calls)
    assert incident.queries == {
        "request_events": 10,
        "approvals": 2,
        "halts": 3,
        "unreviewed_events": 1,
        "emergency_sessions": 1,
        "access_outside_grants": 1,
        "session_actions": 4,
    }


HOSTILE = (
    AuditEvent(
        "request",
        "mallory",
        outcome="pending",
        request_id="req-0666",
        requester="mallory",
        tier='ops"><svg onload=alert(3)>',
        reason="<script>alert(1)</script> & \"quoted\" 'text'",
        ticket="<img src=x onerror=alert(2)>",
        event_time="2025-03-14T08:00:00Z",
        event_id="00000000-0000-4000-8000-000000000666",
    ),
    AuditEvent(
        "denial",
        "</code><b>carol</b>",
        request_id="req-0666",
        requester="mallory",
        reason="]]><iframe src=//evil.example>",
        event_time="2025-03-14T08:01:00Z",
        event_id="00000000-0000-4000-8000-000000000667",
    ),
)


def test_every_value_from_the_trail_is_escaped(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    write_cloudtrail(copy)
    write_events(copy, (*EVENTS, *HOSTILE))
    result, text = report(copy, "req-0666", tmp_path / "out")
    assert result.exit_code == 0, result.output
    page = Page(text)
    assert not {"script", "img", "iframe", "b"} & set(page.tags)
    assert page.ids["reason"] == "<script>alert(1)</script> & \"quoted\" 'text'"  # shown as text
    assert page.ids["ticket"] == "<img src=x onerror=alert(2)>"
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#x27;text&#x27;" in text
    assert "onload=alert(3)&gt;" in text and "<svg onload" not in text


def test_the_page_is_self_contained_and_allows_nothing_but_its_own_style(
    local_copy: Path, tmp_path: Path
) -> None:
    _, text = report(local_copy, "req-0001", tmp_path)
    assert "<script" not in text.lower() and " on" + "load=" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "url(" not in text and "@import" not in text
    assert "default-src 'none'; style-src 'sha256-" in html.unescape(text)
    assert " style=" not in text  # inline style attributes would be blocked by that policy


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["req-9999"], 1, "no events for request 'req-9999'"),
        (["req 1; drop"], 2, "'req 1; drop' is not a request id"),
    ],
)
def test_an_unknown_or_malformed_id_is_refused(
    local_copy: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(
        app, ["audit", "report", *args, "--local", str(local_copy), "--out", str(tmp_path)]
    )
    assert result.exit_code == code
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_local_directory_or_an_out_that_is_a_file_is_bad_usage(
    local_copy: Path, tmp_path: Path
) -> None:
    missing = runner.invoke(app, ["audit", "report", "req-0001", "--local", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert f"--local {tmp_path / 'nope'}: no such directory" in missing.stderr
    (tmp_path / "file").write_text("x")
    out_file = runner.invoke(
        app, ["audit", "report", "req-0001", "--local", str(local_copy), "--out", str(tmp_path / "file")]
    )
    assert out_file.exit_code == 2
    assert "not a directory" in out_file.stderr


@pytest.fixture
def deployed_bucket(local_copy: Path) -> Iterator[Any]:
    with mock_aws():
        publish(boto3.client("ssm", region_name=REGION), "prod")
        s3 = boto3.client("s3", region_name=REGION)
        upload_copy(s3, AUDIT_BUCKET, local_copy)
        yield s3


def test_without_local_the_report_copies_only_what_the_incident_needs(
    deployed_bucket: Any, local_copy: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "-d",
            "prod",
            "audit",
            "report",
            "req-0001",
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    cached = {p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*.gz")}
    assert cached and all("/2025/03/1" in key for key in cached)
    assert not any("/2025/03/10/" in key for key in cached)  # days before the incident are not fetched
    text = (tmp_path / "out" / "breakglass-report-req-0001.html").read_text()
    assert f"s3://{AUDIT_BUCKET} (copied to {tmp_path / 'cache'})" in text
    local = Page(report(local_copy, "req-0001", tmp_path / "local")[1])
    assert Page(text).findings == local.findings and Page(text).marks == local.marks


def test_the_committed_sample_report_is_what_the_fixtures_produce(local_copy: Path) -> None:
    incident = build_incident(LocalBucket(local_copy), "req-0001")
    page = render_report(incident, generated_at=SAMPLE_TIME, source=SAMPLE_SOURCE)
    if os.environ.get("BREAKGLASS_WRITE_SAMPLE"):
        SAMPLE.write_text(page)
    assert SAMPLE.read_text() == page, (
        "docs/sample-report.html is stale: BREAKGLASS_WRITE_SAMPLE=1 .venv/bin/pytest tests/test_cli_report.py"
    )


def test_an_event_stored_twice_under_one_id_appears_once_in_the_report(
    local_copy: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    write_cloudtrail(copy)
    # Every event of the incidents again, as a step retried after midnight UTC would store it.
    retried = tuple(
        replace(e, event_time=iso(parse_iso(e.event_time) + timedelta(days=1, minutes=3)), outcome="noop")
        for e in EVENTS
    )
    write_events(copy, EVENTS + retried)
    twice = build_incident(LocalBucket(copy), "req-0001")
    once = build_incident(LocalBucket(local_copy), "req-0001")
    assert len(twice.events) == len(once.events)
    assert render_report(twice, generated_at=SAMPLE_TIME, source=SAMPLE_SOURCE) == render_report(
        once, generated_at=SAMPLE_TIME, source=SAMPLE_SOURCE
    )


def test_a_waiver_of_the_incident_s_review_gate_is_on_its_timeline(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    write_cloudtrail(copy)
    waiver = AuditEvent(
        "waiver",
        "alice",
        request_id="req-0003",
        requester="erin",
        tier="ops",
        reason="second incident INC-9 before the review",
        expires_at="2025-03-16T16:00:00Z",
        details={"waiver_id": "w250315160000aaaaaaaaaa"},
        event_time="2025-03-15T16:00:00Z",
        event_id="00000000-0000-4000-8000-000000000901",
    )
    write_events(copy, (*EVENTS, waiver))
    result, text = report(copy, "req-0003", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert any(m.split()[-1] == "waiver" for m in Page(text).marks)
    assert "review gate waived by alice" in text


def _extension_events() -> tuple[AuditEvent, ...]:
    """erin's req-0003 (15:00-15:30, expired) extended twice: req-0004 then req-0005, revoked early."""

    def event(n: int, kind: str, request_id: str, at: str, **fields: Any) -> AuditEvent:
        return AuditEvent(
            kind,
            fields.pop("actor", "system"),
            request_id=request_id,
            requester="erin",
            tier="ops",
            event_time=at,
            event_id=f"00000000-0000-4000-8000-{900 + n:012d}",
            **fields,
        )

    return (
        event(1, "extension", "req-0004", "2025-03-15T15:20:00Z", actor="erin", outcome="pending",
              details={"extends": "req-0003"}),
        event(2, "grant", "req-0004", "2025-03-15T15:21:00Z", window_start="2025-03-15T15:30:00Z",
              expires_at="2025-03-15T16:00:00Z", details={"extends": "req-0003"}),
        event(3, "expiry", "req-0004", "2025-03-15T16:00:00Z"),
        event(4, "grant", "req-0005", "2025-03-15T15:50:00Z", window_start="2025-03-15T16:00:00Z",
              expires_at="2025-03-15T16:15:00Z", details={"extends": "req-0004"}),
        event(5, "revoke", "req-0005", "2025-03-15T16:10:00Z", actor="erin"),
        # A grant that names another request is not part of this chain.
        event(6, "grant", "req-0006", "2025-03-15T15:52:00Z", window_start="2025-03-15T16:00:00Z",
              expires_at="2025-03-15T16:30:00Z", details={"extends": "req-0001"}),
    )  # fmt: skip


def test_an_extended_incident_shows_every_window_of_its_chain(tmp_path: Path) -> None:
    from breakglass.cli.report import Window, _after_the_window

    copy = tmp_path / "copy"
    write_cloudtrail(copy)
    write_events(copy, (*EVENTS, *_extension_events()))
    incident = build_incident(LocalBucket(copy), "req-0003")
    assert incident.extensions == [
        Window("req-0004", "2025-03-15T15:30:00Z", "2025-03-15T16:00:00Z", "2025-03-15T16:00:00Z", "expiry"),
        Window("req-0005", "2025-03-15T16:00:00Z", "2025-03-15T16:15:00Z", "2025-03-15T16:10:00Z", "revoke"),
    ]
    assert incident.windows() == [
        ("2025-03-15T15:00:00Z", "2025-03-15T15:30:00Z"),
        ("2025-03-15T15:30:00Z", "2025-03-15T16:00:00Z"),
        ("2025-03-15T16:00:00Z", "2025-03-15T16:10:00Z"),
    ]
    assert not _after_the_window(incident, "2025-03-15T15:45:00Z")
    assert _after_the_window(incident, "2025-03-15T16:12:00Z")  # after the revoke of the last one
    page = render_report(incident, generated_at=datetime(2025, 3, 16, tzinfo=UTC), source="test")
    assert page.count('<rect class="window') == 3 and "req-0005" in page
