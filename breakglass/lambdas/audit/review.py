"""Post-event review: an auditor's verdict on a request the workflow finished.

The workflow ends by writing a ``review`` event with outcome ``opened``; the ``unreviewed_events``
query lists the request until a ``review`` event with outcome ``accepted`` or ``flagged`` exists.
The verdict is itself an audit event in the locked bucket, so it cannot be changed afterwards,
only followed by another verdict. Once it is stored, the request's record notes it too: that is
what a tier's review gate reads before it admits the requester's next request of the tier.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from breakglass.lambdas.approvals.store import same_person
from breakglass.lambdas.audit.events import AuditEvent
from breakglass.validation import REQUEST_ID, USER_ID, ConfigError, require_choice, require_str

VERDICTS: Final = ("accepted", "flagged")
NOTE_MAX: Final = 2000


class EventWriter(Protocol):
    def write(self, event: AuditEvent) -> str: ...


class RequestLookup(Protocol):
    def get_request(self, request_id: str) -> Any: ...

    def record_review(self, request_id: str, verdict: str) -> None: ...


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
    its requester cannot review their own access, and the verdict is noted on the request once
    its audit event is stored (never before: a verdict that opens the review gate is on record).
    """
    require_str("request_id", request_id, pattern=REQUEST_ID)
    require_str("auditor", auditor, pattern=USER_ID, hint="use the auditor's user id")
    require_choice("verdict", verdict, VERDICTS)
    if not isinstance(note, str):
        raise ConfigError("note", f"must be text, got {type(note).__name__}")
    if len(note) > NOTE_MAX:
        raise ConfigError("note", f"must be at most {NOTE_MAX} characters, got {len(note)}")
    if verdict == "flagged" and not note.strip():
        raise ConfigError("note", "say what is wrong when flagging a request")
    requester = tier = None
    if store is not None:
        record = store.get_request(request_id)
        if record is None:
            raise ConfigError("request_id", f"no request {request_id!r}")
        if same_person(record.requester, auditor):
            raise ConfigError("auditor", "the requester cannot review their own access")
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
