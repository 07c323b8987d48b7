"""Post-event review: an auditor's verdict on a request the workflow finished.

The workflow ends by writing a ``review`` event with outcome ``opened``; the ``unreviewed_events``
query lists the request until a ``review`` event with outcome ``accepted`` or ``flagged`` exists.
The verdict is itself an audit event in the locked bucket, so it cannot be changed afterwards,
only followed by another verdict. Once it is stored, the request's record notes it too: that is
what a tier's review gate reads before it admits the requester's next request of the tier.

Who may not give it (separation of duties): the requester under any name, and anyone who
approved the grant under any name (``store.one_person``). When: only once the review was opened
(the grant ended); before that there is nothing to review, and a verdict would be a blank cheque.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from breakglass.lambdas.approvals.store import Enrollment, one_person
from breakglass.lambdas.audit.events import AuditEvent, event_identity
from breakglass.validation import REQUEST_ID, USER_ID, ConfigError, require_choice, require_str

ACCEPTED: Final = "accepted"  # the one verdict that opens a review gate
VERDICTS: Final = (ACCEPTED, "flagged")
NOTE_MAX: Final = 2000


class ReviewRefused(ConfigError):
    """This auditor may not record a verdict on this request, or not yet.

    ``status`` is the HTTP answer: 403 (who: their own grant, or one they approved) or 409 (when:
    the review is not open yet).
    """

    def __init__(self, field: str, problem: str, *, status: int) -> None:
        super().__init__(field, problem)
        self.status = status


class EventWriter(Protocol):
    def write(self, event: AuditEvent) -> str: ...


class RequestLookup(Protocol):
    def get_request(self, request_id: str) -> Any: ...

    def get_enrollment(self, user: str) -> Enrollment | None: ...

    def record_review(self, request_id: str, verdict: str) -> None: ...


def opened_review_id(request_id: str) -> str:
    """The id of a request's one ``review opened`` event: the workflow's OpenReview (retried) and
    the reconciler (repairing an execution that stopped short) open the same review."""
    return event_identity(request_id, "review", "opened")


def review_refusal(store: RequestLookup, record: Any, auditor: str) -> ReviewRefused | None:
    """Why ``auditor`` may not review ``record`` now (read-only), or None. Cheap enough to run
    before the auditor's TOTP code, so a refused attempt does not spend it."""
    if one_person(store, auditor, record.requester, b_arns=[record.requester_arn]):
        return ReviewRefused(
            "auditor", "the requester cannot review their own access, under any name", status=403
        )
    if any(one_person(store, auditor, approver) for approver in record.approvals):
        return ReviewRefused(
            "auditor",
            "you approved this grant: its review is someone else's (separation of duties)",
            status=403,
        )
    if not record.review_opened:
        return ReviewRefused(
            "request_id",
            f"request {record.request_id} is {record.status} and its review is not open yet: a verdict "
            "is recorded once the grant has ended and the workflow opened its review",
            status=409,
        )
    return None


def check_verdict(request_id: str, auditor: str, verdict: str, note: str) -> None:
    """:class:`ConfigError` naming the field when the verdict itself is malformed (checked by the
    access API before the auditor's code, so a typo does not spend it)."""
    require_str("request_id", request_id, pattern=REQUEST_ID)
    require_str("auditor", auditor, pattern=USER_ID, hint="use the auditor's user id")
    require_choice("verdict", verdict, VERDICTS)
    if not isinstance(note, str):
        raise ConfigError("note", f"must be text, got {type(note).__name__}")
    if len(note) > NOTE_MAX:
        raise ConfigError("note", f"must be at most {NOTE_MAX} characters, got {len(note)}")
    if verdict == "flagged" and not note.strip():
        raise ConfigError("note", "say what is wrong when flagging a request")


def record_verdict(
    writer: EventWriter,
    request_id: str,
    auditor: str,
    verdict: str,
    note: str,
    *,
    store: RequestLookup | None = None,
) -> str:
    """Write the auditor's verdict (``accepted`` or ``flagged``); return the event's key.

    A flagged verdict needs a note saying what is wrong. With ``store``, the request must exist,
    :func:`review_refusal` must find nothing against the auditor, and the verdict is noted on the
    request once its audit event is stored (never before: a verdict that opens the review gate is
    on record).
    """
    check_verdict(request_id, auditor, verdict, note)
    requester = tier = None
    if store is not None:
        record = store.get_request(request_id)
        if record is None:
            raise ConfigError("request_id", f"no request {request_id!r}")
        refusal = review_refusal(store, record, auditor)
        if refusal is not None:
            raise refusal
        requester, tier = record.requester, record.tier
    key = writer.write(
        AuditEvent(
            event_type="review",
            actor=auditor,
            outcome=verdict,
            request_id=request_id,
            requester=requester,
            tier=tier,
            details={"note": note.strip()},
        )
    )
    if store is not None:
        store.record_review(request_id, verdict)
    return key
