"""The post-event review: an auditor's verdict, never the requester's own."""

from __future__ import annotations

from typing import Any

import pytest

from breakglass.lambdas.approvals.store import RequestRecord
from breakglass.lambdas.audit.events import AuditEvent
from breakglass.lambdas.audit.review import record_verdict
from breakglass.validation import ConfigError

RECORD = RequestRecord(
    request_id="req9",
    requester="rita",
    requester_arn="arn:aws:iam::123456789012:user/rita",
    tier="admin",
    reason="model exfiltrating prompts",
    ticket="INC-9",
    duration_seconds=1800,
    requested_at="2026-11-22T02:13:00Z",
    status="revoked",
    quorum=2,
    approvers=("ann", "bob"),
)


class Requests:
    def get_request(self, request_id: str) -> RequestRecord | None:
        return RECORD if request_id == RECORD.request_id else None


class Writer:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def write(self, event: AuditEvent) -> str:
        self.events.append(event)
        return f"key/{event.event_id}"


@pytest.mark.parametrize("auditor", ["rita", "RITA", "Rita"])
def test_the_requester_cannot_review_their_own_access_whatever_the_case(auditor: str) -> None:
    writer = Writer()
    with pytest.raises(ConfigError, match=r"^auditor: the requester cannot review"):
        record_verdict(writer, "req9", auditor, "accepted", "", store=Requests())  # type: ignore[arg-type]
    assert writer.events == []


def test_a_verdict_is_written_as_a_review_event() -> None:
    writer = Writer()
    record_verdict(writer, "req9", "sec", "flagged", "ticket does not match", store=Requests())  # type: ignore[arg-type]
    [event] = writer.events
    assert (event.event_type, event.outcome, event.actor, event.requester) == (
        "review",
        "flagged",
        "sec",
        "rita",
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("req404", "sec", "accepted", ""), "request_id"),
        (("req9", "sec", "fine", ""), "verdict"),
        (("req9", "sec", "flagged", "  "), "note"),
    ],
)
def test_bad_verdicts_are_refused_naming_the_field(args: tuple[Any, ...], field: str) -> None:
    writer = Writer()
    with pytest.raises(ConfigError, match=f"^{field}:"):
        record_verdict(writer, *args, store=Requests())  # type: ignore[arg-type]
    assert writer.events == []
