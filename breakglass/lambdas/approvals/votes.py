"""Counting a vote: the rules every channel applies (the approval page and the terminal).

An approver is someone AWS verified (the terminal) or the holder of a signed link (the page); in
both cases they prove themselves with their own TOTP code. A vote counts only if the approver is
one of the request's approvers, still enrolled with an approving role, not the requester under any
name (user id in any case, the same IAM principal or the same email) and the request is pending.
A vote that decides the request (quorum reached, or any denial, which is final) hands the decision
to the waiting workflow; when the approval round has already closed, the vote is on record but
grants nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from breakglass.lambdas.approvals.mail import APPROVING_ROLES
from breakglass.lambdas.approvals.store import (
    DECIDED_BY_VOTES,
    RequestRecord,
    Store,
    VoteRefused,
    one_person,
    same_person,
)
from breakglass.lambdas.approvals.totp import TotpRejected, verify_totp
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter

DECISIONS: Final = ("approve", "deny")
# The workflow moved on (the round's deadline passed) before the vote reached it.
CLOSED_TASK_ERRORS: Final = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


@dataclass(frozen=True)
class VoteOutcome:
    record: RequestRecord
    decided: bool
    round_closed: bool = False


def identity_refusal(store: Store, record: RequestRecord, approver: str) -> str | None:
    """Why ``approver`` may not vote on ``record`` (read-only), or None."""
    if same_person(approver, record.requester):
        return "self-approval"
    if approver not in record.approvers:
        return "not-an-approver"
    enrollment = store.get_enrollment(approver)
    if enrollment is None:
        return "not-enrolled"
    if one_person(store, approver, record.requester, b_arns=[record.requester_arn]):
        return "self-approval"
    if not set(enrollment.roles) & set(APPROVING_ROLES):
        return "not-an-approver"
    if approver in record.approvals or approver in record.denials:
        return "already-voted"
    if record.status != "pending":
        return "already-decided"
    return None


def resume_workflow(sfn: Any, record: RequestRecord) -> bool:
    """Hand a decided request to the waiting workflow; False if its round already closed.

    No task waiting yet (a vote right after the request, before the workflow stored its token):
    the decision is on record and the workflow takes it when it starts waiting (``await_approval``).
    """
    if not record.task_token:
        return True
    return answer_task(sfn, record.task_token, record)


def answer_task(sfn: Any, task_token: str, record: RequestRecord) -> bool:
    """Send ``record``'s decision to the task ``task_token``; False if that task is no longer waiting."""
    try:
        sfn.send_task_success(
            taskToken=task_token,
            output=json.dumps(
                {
                    "decision": record.status,
                    "approvals": list(record.approvals),
                    "denials": list(record.denials),
                }
            ),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in CLOSED_TASK_ERRORS:
            return False
        raise
    return True


def vote_event(record: RequestRecord, approver: str, decision: str, *, channel: str) -> AuditEvent:
    return AuditEvent(
        event_type="approval" if decision == "approve" else "denial",
        actor=approver,
        outcome="succeeded",
        request_id=record.request_id,
        requester=record.requester,
        tier=record.tier,
        reason=record.reason,
        ticket=record.ticket,
        details={
            "decision": decision,
            "approvals": list(record.approvals),
            "denials": list(record.denials),
            "quorum": record.quorum,
            "status": record.status,
            "channel": channel,
        },
    )


def cast_vote(
    store: Store,
    audit: AuditWriter,
    sfn: Any,
    *,
    request_id: str,
    approver: str,
    decision: str,
    totp: str,
    now: datetime,
    channel: str,
    refused: Callable[[RequestRecord | None, str], None] = lambda record, reason: None,
) -> VoteOutcome:
    """Count ``approver``'s vote; :class:`VoteRefused` (reason as in VoteRefused) otherwise.

    ``refused(record, reason)`` is told of every refusal before it is raised (to audit it).
    """
    if decision not in DECISIONS:
        raise VoteRefused("bad-decision", f"decision must be approve or deny, got {decision!r}")
    record = store.get_request(request_id)
    if record is None:
        refused(None, "not-found")
        raise VoteRefused("not-found", f"no request {request_id!r}")
    reason = identity_refusal(store, record, approver)
    if reason is not None:
        refused(record, reason)
        raise VoteRefused(reason, _REFUSALS.get(reason, reason))
    try:
        verify_totp(store, approver, totp, now=now)
    except TotpRejected as exc:
        refused(record, f"totp-{exc.reason}")
        raise VoteRefused(f"totp-{exc.reason}", str(exc)) from exc
    try:
        updated = store.record_vote(request_id, approver, decision)
    except VoteRefused as exc:
        refused(record, exc.reason)
        raise
    try:
        audit.write(vote_event(updated, approver, decision, channel=channel))
    except Exception:
        # No vote counts unrecorded.
        store.retract_vote(updated, approver)
        raise
    decided = updated.status in DECIDED_BY_VOTES
    if decided and not resume_workflow(sfn, updated):
        refused(updated, "round-closed")
        return VoteOutcome(record=updated, decided=True, round_closed=True)
    return VoteOutcome(record=updated, decided=decided)


_REFUSALS: Final = {
    "self-approval": "you cannot decide your own request, under any name",
    "not-an-approver": "you are not an approver of this request",
    "not-enrolled": "you are not enrolled: ask security to enroll you",
    "already-voted": "you have already voted on this request; your decision stands",
    "already-decided": "the request is no longer waiting for approvals",
}
