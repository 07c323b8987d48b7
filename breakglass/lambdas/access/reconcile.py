"""The reconciler: finds grants whose workflow ended without revoking them or opening the review.

Step Functions executions cannot be tagged, so an emergency session or an operator could stop a
request's execution after its grant; the workflow would then never revoke, never record the
expiry and never open the post-event review. IAM still ends the sessions at expiry (the trust's
time condition and the grant's guard), but the record and the review must not depend on the
execution surviving. Every few minutes (an EventBridge schedule invokes the access function with
``{"action": "reconcile"}``) this looks at the recent requests and, for each one whose execution
is no longer running:

- still ``approved`` or ``granted``: revoke it (recorded as ``expiry`` when its window is over,
  ``revoke`` otherwise) and mark it ``expired`` / ``revoked``; a revoke before the window is over
  also revokes the extensions approved or granted after it (an extension never outlives the
  grant it extends);
- any request that was granted and has no review yet: open the review;
- each repair is audited with actor ``system:reconciler`` and an ``error`` event saying what the
  execution's status was, so the stopped execution itself is on record (once: its id is derived
  from the request and that status, so a run that dies after it does not add a second).

It runs inside the access function (concurrency one), so its role edits never interleave with a
grant's. It is idempotent: running it twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from breakglass.contracts import RequestStatus, iso
from breakglass.lambdas.access import early_revoke, grants
from breakglass.lambdas.approvals.admission import Admission
from breakglass.lambdas.approvals.store import RequestRecord, Store
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter, event_identity
from breakglass.lambdas.audit.review import opened_review_id
from breakglass.lambdas.runtime import get_logger, log_fields

log = get_logger("breakglass.reconcile")

ACTOR: Final = "system:reconciler"
# How far back it looks: longer than any window plus the approval rounds.
LOOKBACK: Final = timedelta(days=8)
# A request younger than this may not have its execution bound yet (the access API starts it).
SETTLE: Final = timedelta(minutes=2)
LIVE: Final = (RequestStatus.APPROVED, RequestStatus.GRANTED)


@dataclass(frozen=True)
class ReconcileDeps:
    store: Store
    admission: Admission
    audit: AuditWriter
    sfn: Any
    iam: Any
    tiers: Mapping[str, grants.Tier]


def _execution_status(sfn: Any, record: RequestRecord) -> str:
    if not record.execution_arn:
        return "NOT_STARTED"
    try:
        return str(sfn.describe_execution(executionArn=record.execution_arn)["status"])
    except Exception as exc:
        if "ExecutionDoesNotExist" in type(exc).__name__ or "ExecutionDoesNotExist" in str(exc):
            return "MISSING"
        raise


def _needs_repair(record: RequestRecord) -> bool:
    return record.status in LIVE or (record.granted_once and not record.review_opened)


def reconcile(deps: ReconcileDeps, *, now: datetime) -> dict[str, Any]:
    """Repair every recent request whose execution stopped short; return what was done."""
    entries = [
        e
        for e in deps.admission.recent(since=now - LOOKBACK, limit=5000)
        if e.requested_at <= iso(now - SETTLE)
    ]
    repaired: list[dict[str, Any]] = []
    for record in deps.store.get_requests([e.request_id for e in entries]):
        if not _needs_repair(record):
            continue
        status = _execution_status(deps.sfn, record)
        if status == "RUNNING":
            continue
        repaired.append(_repair(deps, record, status, now=now))
    log.info("reconciled", extra=log_fields(checked=len(entries), repaired=len(repaired)))
    return {"checked": len(entries), "repaired": repaired}


def _repair(
    deps: ReconcileDeps, record: RequestRecord, execution_status: str, *, now: datetime
) -> dict[str, Any]:
    done: dict[str, Any] = {"request_id": record.request_id, "execution_status": execution_status}
    deps.audit.write(
        AuditEvent(
            event_type="error",
            actor=ACTOR,
            outcome="failed",
            request_id=record.request_id,
            requester=record.requester,
            tier=record.tier,
            details={
                "stage": "reconcile",
                "execution_status": execution_status,
                "status": record.status,
                "execution_arn": record.execution_arn,
            },
            # One record per stopped execution: a run that dies after it and the next run that
            # finishes the repair record the same fact.
            event_id=event_identity(record.request_id, "error", ACTOR, execution_status),
        )
    )
    if record.status in LIVE:
        starts_at = grants.parse_timestamp("starts_at", record.starts_at or record.requested_at)
        expires_at = (
            grants.parse_timestamp("expires_at", record.expires_at)
            if record.expires_at
            else max(now, starts_at) + timedelta(seconds=record.duration_seconds)
        )
        g = grants.Grant(
            request_id=record.request_id,
            tier=record.tier,
            requester_arn=record.requester_arn,
            source_identity=record.requester,
            starts_at=starts_at,
            expires_at=expires_at,
        )
        early = now < expires_at
        result = grants.revoke(deps.iam, deps.audit, deps.tiers, g, early=early, actor=ACTOR, now=now)
        deps.store.set_status(
            record.request_id,
            RequestStatus.EXPIRED if result["event_type"] == "expiry" else RequestStatus.REVOKED,
        )
        done["revoked"] = result["event_type"]
        if result["event_type"] != "expiry":
            # Cut short: the extensions granted ahead must not open later (at expiry they go on).
            cascaded = early_revoke.revoke_chain(
                deps.store, deps.iam, deps.audit, deps.tiers, record, ACTOR, now=now
            )
            if cascaded:
                done["extensions_revoked"] = [c["request_id"] for c in cascaded]
    if record.starts_at is not None and not record.review_opened:
        deps.audit.write(
            AuditEvent(
                event_type="review",
                actor=ACTOR,
                outcome="opened",
                request_id=record.request_id,
                requester=record.requester,
                tier=record.tier,
                reason=record.reason,
                ticket=record.ticket,
                details={"status": record.status, "execution_status": execution_status},
                event_id=opened_review_id(record.request_id),
            )
        )
        deps.store.mark_review_opened(record.request_id)
        done["review_opened"] = True
    return done
