"""Early revoke: end a granted request before its expiry, on request of the right people.

Who may: the requester, an approver of that request, or anyone enrolled with the ``security``
role. AWS verifies who is asking (the access API's IAM-authorized route) and they prove it is them
with their TOTP code (:func:`authorize`, in the access API function). The revoke itself
(:func:`revoke_now`) runs in the access function, the only one that edits emergency roles, which
only the access API function and the state machine may invoke: it is
:func:`breakglass.lambdas.access.grants.revoke` with ``early=True``: the grant's trust statements go
and its guard is rewritten to deny every session of the grant at once. The workflow's own revoke at
expiry later finds nothing left to do (it is idempotent).

A chain ends with its original: revoking a request also revokes the extensions after it that were
approved or granted (:func:`revoke_chain`, shared by this revoke, the workflow's revoke after a
failure and the reconciler's repair, never by the normal revoke at expiry). An original whose own
window already ended (``expired``) can still be revoked while a request after it is live: the
chain is ended, and the original's statements, already gone, are not edited again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import boto3

from breakglass.contracts import RequestStatus, iso, utc_now
from breakglass.lambdas.access import grants
from breakglass.lambdas.approvals.chains import FINAL, LIVE, descendants
from breakglass.lambdas.approvals.store import RequestRecord, Store, one_person, same_person
from breakglass.lambdas.approvals.totp import TotpRejected, TotpStore, verify_totp
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.runtime import audit_writer_from_env, get_logger, log_fields
from breakglass.validation import REQUEST_ID, USER_ID, reject_unknown_keys, require_mapping, require_str

log = get_logger("breakglass.early_revoke")

EVENT_FIELDS: Final = ("action", "request_id", "actor", "reason")
REVOCABLE: Final = (RequestStatus.APPROVED, RequestStatus.GRANTED, RequestStatus.REVOKED)
# What the chain revoke ends after a request: extensions that were approved or granted. Pending
# ones are withdrawn by the access API (it can answer their workflow) and refused at grant.
CASCADED: Final = (RequestStatus.APPROVED, RequestStatus.GRANTED)


class RevokeRefused(PermissionError):
    """The caller may not revoke this request (the message says why and what to do)."""


@dataclass(frozen=True)
class EarlyRevokeRequest:
    """What the access API hands the access function: a verified, authorized actor."""

    request_id: str
    actor: str
    reason: str | None = None

    @classmethod
    def parse(cls, event: Any) -> EarlyRevokeRequest:
        values = require_mapping("event", event)
        reject_unknown_keys("", values, EVENT_FIELDS)
        reason = values.get("reason")
        return cls(
            request_id=require_str("request_id", values.get("request_id"), pattern=REQUEST_ID),
            actor=require_str("actor", values.get("actor"), pattern=USER_ID),
            reason=require_str("reason", reason, max_length=1000) if reason else None,
        )


def may_revoke(store: Store, record: RequestRecord, actor: str) -> str:
    """Why ``actor`` may revoke (``requester`` / ``approver`` / ``security``); RevokeRefused if not."""
    if one_person(store, actor, record.requester, b_arns=[record.requester_arn]):
        return "requester"
    if any(same_person(actor, approver) for approver in record.approvers):
        return "approver"
    enrollment = store.get_enrollment(actor)
    if enrollment is not None and "security" in enrollment.roles:
        return "security"
    raise RevokeRefused(
        f"{actor!r} may not revoke {record.request_id}: only its requester, its approvers or security can"
    )


def authorize(
    store: Store,
    writer: AuditWriter,
    request_id: str,
    actor: str,
    totp: str,
    *,
    now: datetime,
    totp_store: TotpStore | None = None,
) -> tuple[RequestRecord, str]:
    """Check that the verified ``actor`` may revoke ``request_id`` now and that ``totp`` is theirs.

    Returns the request and why the actor may (requester, approver, security). A refusal is
    audited (the actor is a verified person) and raised as :class:`RevokeRefused`; the status is
    checked before the code, so a refusal for lack of access does not spend the code.
    """
    record = store.get_request(request_id)
    try:
        if record is None:
            raise RevokeRefused(f"request {request_id!r} not found")
        role = may_revoke(store, record, actor)
        if record.status not in REVOCABLE and not _live_after(store, record):
            raise RevokeRefused(
                f"request {record.request_id} is {record.status}: there is no access to revoke"
            )
        verify_totp(totp_store or store, actor, totp, now=now)
    except (RevokeRefused, TotpRejected) as exc:
        writer.write(
            AuditEvent(
                event_type="revoke",
                actor=actor,
                outcome="failed",
                request_id=record.request_id if record else None,
                requester=record.requester if record else None,
                tier=record.tier if record else None,
                details={"early": True, "refused": str(exc)},
            )
        )
        raise RevokeRefused(str(exc)) from exc
    return record, role


def _live_after(store: Store, record: RequestRecord) -> bool:
    """A request after ``record`` in its chain may still give access (pending, approved, granted)."""
    return any(later.status in LIVE for later in descendants(store, record))


def revoke_chain(
    store: Store,
    iam: Any,
    writer: AuditWriter,
    tiers: Mapping[str, grants.Tier],
    record: RequestRecord,
    actor: str,
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """Revoke, at once, every extension after ``record`` that was approved or granted: an
    extension never outlives the grant it extends. Called whenever ``record`` is cut short (early
    revoke, the workflow's revoke after a failure, the reconciler's repair); never at expiry."""
    return [
        _revoke_one(store, iam, writer, tiers, later, actor, now, cascade_of=record.request_id)
        for later in descendants(store, record)
        if later.status in CASCADED
    ]


def revoke_now(
    store: Store,
    iam: Any,
    writer: AuditWriter,
    tiers: Mapping[str, grants.Tier],
    request: EarlyRevokeRequest,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Revoke ``request.request_id`` now, as ``request.actor`` (already verified and authorized).

    Its extensions that were approved or granted go with it (:func:`revoke_chain`); pending ones
    are withdrawn by the access API, which can answer their workflow, and refused at grant if they
    get there first. An original that already ended (its statements are gone, its status final)
    is not edited again: only the chain after it is ended."""
    record = store.get_request(request.request_id)
    if record is None:
        raise RevokeRefused(f"request {request.request_id!r} not found")
    ended = record.status in FINAL and record.status != RequestStatus.REVOKED
    result: dict[str, Any] = (
        {"outcome": "noop", "role_locked": None}
        if ended
        else _revoke_one(store, iam, writer, tiers, record, request.actor, now, cascade_of=None)
    )
    cascaded = revoke_chain(store, iam, writer, tiers, record, request.actor, now=now)
    if ended and any(c["outcome"] == "succeeded" for c in cascaded):
        result["outcome"] = "succeeded"  # the chain it heads was ended
    log.info(
        "revoked early",
        extra=log_fields(
            request_id=record.request_id,
            actor=request.actor,
            outcome=result["outcome"],
            extensions=[c["request_id"] for c in cascaded],
        ),
    )
    return {
        "request_id": record.request_id,
        "revoked_by": request.actor,
        "outcome": result["outcome"],
        "role_locked": (cascaded[-1] if cascaded else result)["role_locked"],
        "extensions_revoked": [c["request_id"] for c in cascaded],
        # Its own window had already ended: only the chain after it was revoked.
        **({"original_status": record.status} if ended else {}),
    }


def _revoke_one(
    store: Store,
    iam: Any,
    writer: AuditWriter,
    tiers: Mapping[str, grants.Tier],
    record: RequestRecord,
    actor: str,
    now: datetime,
    *,
    cascade_of: str | None,
) -> dict[str, Any]:
    if record.starts_at and record.expires_at:
        starts_at, expires_at = record.starts_at, record.expires_at
    else:
        # The widest window the request could have; revoke matches statements by request id.
        opened = grants.parse_timestamp("requested_at", record.requested_at)
        planned = grants.parse_timestamp("start_at", record.start_at) if record.start_at else opened
        starts_at = record.requested_at
        expires_at = iso(max(now, planned) + timedelta(seconds=record.duration_seconds))
    g = grants.Grant.from_event(
        {
            "request_id": record.request_id,
            "tier": record.tier,
            "requester_arn": record.requester_arn,
            "source_identity": record.requester,
            "starts_at": starts_at,
            "expires_at": expires_at,
        }
    )
    result = grants.revoke(iam, writer, tiers, g, early=True, actor=actor, now=now)
    if record.status != RequestStatus.REVOKED:
        store.set_status(record.request_id, RequestStatus.REVOKED)
    return {"request_id": record.request_id, "cascade_of": cascade_of, **result}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Access function entry for ``action: early_revoke`` (invoked by the access API only)."""
    request = EarlyRevokeRequest.parse(event)
    return revoke_now(
        Store.from_env(),
        boto3.client("iam"),
        audit_writer_from_env(),
        grants.load_tiers(),
        request,
        now=utc_now(),
    )
