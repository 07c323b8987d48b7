"""The post-event review: an auditor's verdict, never the requester's own."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from breakglass.lambdas.approvals.store import Enrollment, RequestRecord
from breakglass.lambdas.audit.events import AuditEvent
from breakglass.lambdas.audit.review import ReviewRefused, record_verdict
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
    approvals=("ann",),
    review_opened=True,
)


PEOPLE = {
    user: Enrollment(user, f"arn:aws:iam::123456789012:user/{user}", f"{email}@example.com", roles)
    for user, email, roles in [
        ("rita", "rita", ("responder",)),
        ("ann", "ann", ("approver",)),
        ("sec", "sec", ("security",)),
        ("rita-sec", "rita", ("security",)),  # rita's second enrollment
        ("ann-sec", "ann", ("security",)),
    ]
}


class Requests:
    def __init__(self) -> None:
        self.verdicts: list[tuple[str, str]] = []

    def get_request(self, request_id: str) -> RequestRecord | None:
        return RECORD if request_id == RECORD.request_id else None

    def get_enrollment(self, user: str) -> Enrollment | None:
        return PEOPLE.get(user)

    def record_review(self, request_id: str, verdict: str) -> None:
        self.verdicts.append((request_id, verdict))


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


def test_a_verdict_is_written_as_a_review_event_then_noted_on_the_request() -> None:
    writer, requests = Writer(), Requests()
    record_verdict(writer, "req9", "sec", "flagged", "ticket does not match", store=requests)  # type: ignore[arg-type]
    assert requests.verdicts == [("req9", "flagged")]
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
    writer, requests = Writer(), Requests()
    with pytest.raises(ConfigError, match=f"^{field}:"):
        record_verdict(writer, *args, store=requests)  # type: ignore[arg-type]
    assert writer.events == [] and requests.verdicts == []


def test_a_verdict_whose_event_was_not_stored_is_not_noted_on_the_request() -> None:
    class Failing(Writer):
        def write(self, event: AuditEvent) -> str:
            raise RuntimeError("bucket unreachable")

    requests = Requests()
    with pytest.raises(RuntimeError):
        record_verdict(Failing(), "req9", "sec", "accepted", "", store=requests)  # type: ignore[arg-type]
    assert requests.verdicts == []


@pytest.mark.parametrize(
    ("auditor", "why"),
    [("rita-sec", "the requester cannot review"), ("ann", "you approved"), ("ann-sec", "you approved")],
)
def test_neither_the_requester_nor_an_approver_of_the_grant_reviews_it_under_any_name(
    auditor: str, why: str
) -> None:
    writer, requests = Writer(), Requests()
    with pytest.raises(ReviewRefused, match=why) as refused:
        record_verdict(writer, "req9", auditor, "accepted", "", store=requests)  # type: ignore[arg-type]
    assert refused.value.status == 403
    assert writer.events == [] and requests.verdicts == []


def test_a_verdict_before_the_review_opened_is_refused_as_too_early(monkeypatch: pytest.MonkeyPatch) -> None:
    writer, requests = Writer(), Requests()
    live = replace(RECORD, status="granted", review_opened=False)
    monkeypatch.setattr(requests, "get_request", lambda request_id: live)
    with pytest.raises(ReviewRefused, match="not open yet") as refused:
        record_verdict(writer, "req9", "sec", "accepted", "", store=requests)  # type: ignore[arg-type]
    assert refused.value.status == 409
    assert writer.events == [] and requests.verdicts == []
