"""Early revoke: end a granted request before its expiry, on request of the right people.

Who may: the requester, an approver of that request, or anyone enrolled with the ``security``
role. They prove who they are with their TOTP code (the same second factor as for approving).
The revoke itself is :func:`breakglass.lambdas.access.grants.revoke` with ``early=True``: the grant's
trust statement goes and the ``aws:TokenIssueTime`` deny ends the sessions already issued. The
workflow's own revoke at expiry later finds nothing left to do (it is idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import boto3

from breakglass.contracts import iso, utc_now
from breakglass.lambdas.access import grants
from breakglass.lambdas.approvals.store import Store, same_person
from breakglass.lambdas.approvals.totp import TotpRejected, TotpStore, verify_totp
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.runtime import audit_writer_from_env, get_logger, log_fields
from breakglass.validation import REQUEST_ID, USER_ID, reject_unknown_keys, require_mapping, require_str

log = get_logger("breakglass.early_revoke")

EVENT_FIELDS: Final = ("action", "request_id", "actor", "totp", "reason")


class RevokeRefused(PermissionError):
    """The caller may not revoke this request (the message says why and what to do)."""


@dataclass(frozen=True)
class EarlyRevokeRequest:
    request_id: str
    actor: str
    totp: str
    reason: str | None = None

    @classmethod
    def parse(cls, event: Any) -> EarlyRevokeRequest:
        values = require_mapping("event", event)
        reject_unknown_keys("", values, EVENT_FIELDS)
        reason = values.get("reason")
        return cls(
            request_id=require_str("request_id", values.get("request_id"), pattern=REQUEST_ID),
            actor=require_str("actor", values.get("actor"), pattern=USER_ID),
            totp=require_str("totp", values.get("totp"), max_length=16),
            reason=require_str("reason", reason, max_length=1000) if reason else None,
        )


def may_revoke(store: Store, request_id: str, actor: str) -> str:
    """Why ``actor`` may revoke (``requester`` / ``approver`` / ``security``); RevokeRefused if not."""
    record = store.get_request(request_id)
    if record is None:
        raise RevokeRefused(f"request {request_id!r} not found")
    if same_person(actor, record.requester):
        return "requester"
    if any(same_person(actor, approver) for approver in record.approvers):
        return "approver"
    enrollment = store.get_enrollment(actor)
    if enrollment is not None and "security" in enrollment.roles:
        return "security"
    raise RevokeRefused(
        f"{actor!r} may not revoke {request_id}: only its requester, its approvers or security can"
    )


def early_revoke(
    store: Store,
    iam: Any,
    writer: AuditWriter,
    tiers: Mapping[str, grants.Tier],
    request: EarlyRevokeRequest,
    *,
    now: datetime,
    totp_store: TotpStore | None = None,
) -> dict[str, Any]:
    """Revoke ``request.request_id`` now; refused (and audited) unless the actor may and proves it."""
    record = store.get_request(request.request_id)
    try:
        role = may_revoke(store, request.request_id, request.actor)
        if record is not None and record.status not in ("granted", "approved", "revoked"):
            # Checked before the code so a refused attempt does not spend the actor's TOTP code.
            raise RevokeRefused(
                f"request {record.request_id} is {record.status}: there is no access to revoke"
            )
        verify_totp(totp_store or store, request.actor, request.totp, now=now)
    except (RevokeRefused, TotpRejected) as exc:
        writer.write(
            AuditEvent(
                event_type="revoke",
                actor=request.actor,
                outcome="failed",
                request_id=request.request_id,
                requester=record.requester if record else None,
                tier=record.tier if record else None,
                details={"early": True, "refused": str(exc)},
            )
        )
        raise RevokeRefused(str(exc)) from exc
    if record is None:  # may_revoke refuses a missing request; this is for the type checker
        raise RevokeRefused(f"request {request.request_id!r} not found")
    starts_at = grants.parse_timestamp("requested_at", record.requested_at)
    g = grants.Grant.from_event(
        {
            "request_id": record.request_id,
            "tier": record.tier,
            "requester_arn": record.requester_arn,
            "source_identity": record.requester,
            "starts_at": record.requested_at,
            # The widest window the request could have; revoke matches statements by request id.
            "expires_at": iso(max(now, starts_at) + timedelta(seconds=record.duration_seconds)),
        }
    )
    result = grants.revoke(iam, writer, tiers, g, early=True, actor=request.actor, now=now)
    if record.status != "revoked":
        store.set_status(record.request_id, "revoked")
    log.info(
        "revoked early",
        extra=log_fields(
            request_id=record.request_id, actor=request.actor, as_role=role, outcome=result["outcome"]
        ),
    )
    return {
        "request_id": record.request_id,
        "revoked_by": request.actor,
        "as": role,
        "outcome": result["outcome"],
        "role_locked": result["role_locked"],
    }


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: ``{"request_id", "actor", "totp", "reason"?}``."""
    request = EarlyRevokeRequest.parse(event)
    return early_revoke(
        Store.from_env(),
        boto3.client("iam"),
        audit_writer_from_env(),
        grants.load_tiers(),
        request,
        now=utc_now(),
    )
