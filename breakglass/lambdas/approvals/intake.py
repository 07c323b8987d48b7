"""The request entry: a verified caller asks for a tier; the system mints the id and starts the run.

Everything is checked here, synchronously, so the requester gets a precise answer at once: the
tier and its limits, the justification and ticket, that AWS's verified caller is an enrolled
responder allowed on the tier, the rate limits, one live request per person and tier, and last
the TOTP code (a refused request never spends it). Only then is the request stored and its
execution started under the minted id, with nothing but that id as input: the workflow reloads
everything from the table, so no execution input can name a requester, a tier or a duration.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from breakglass.contracts import RequestStatus
from breakglass.lambdas.access.grants import Tier
from breakglass.lambdas.approvals.admission import Admission, AdmissionRefused, IndexEntry, Waiver
from breakglass.lambdas.approvals.requests import (
    AccessRequest,
    RequestRejected,
    TierApproval,
    mint_request_id,
    validate_request,
)
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, Store, StoreError
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.runtime import get_logger, log_fields

log = get_logger("breakglass.intake")

_MINT_ATTEMPTS = 3


@dataclass(frozen=True)
class IntakeDeps:
    store: Store
    admission: Admission
    audit: AuditWriter
    sfn: Any
    state_machine_arn: str
    tiers: Mapping[str, Tier]
    policy: Mapping[str, TierApproval]
    clock: Callable[[], datetime]


def submit_request(deps: IntakeDeps, requester: Enrollment, body: Any) -> RequestRecord:
    """Admit, store and start ``requester``'s request; :class:`RequestRejected` names the field."""
    now = deps.clock()
    request_id = mint_request_id(now)
    waivers: list[Waiver] = []

    def admit(request: AccessRequest, approval: TierApproval) -> None:
        waiver = deps.admission.claim_live(
            request.tier,
            request.requester,
            request_id,
            lookup=deps.store.get_request,
            now=now,
            review_gate=approval.review_gate,
        )
        if waiver is not None:
            waivers.append(waiver)
        deps.admission.take_rate(
            request.tier,
            request.requester.casefold(),
            now=now,
            per_person=approval.max_requests_per_person_per_hour,
            per_tier=approval.max_requests_per_hour,
        )

    try:
        validated = validate_request(
            deps.store,
            deps.tiers,
            deps.policy,
            body,
            request_id=request_id,
            requester=requester,
            now=now,
            before_totp=admit,
        )
        # Spent only now, after the TOTP code: a typo does not cost the person security's waiver.
        for waiver in waivers:
            _consume(deps, validated.record, waiver, now)
    except RequestRejected as exc:
        _release(deps, body, requester, request_id)
        _audit_rejection(deps, requester, body, request_id, exc)
        raise
    record = validated.record
    try:
        _store(deps, record)
    except RequestRejected:
        _release(deps, body, requester, request_id)
        raise
    deps.admission.index(
        IndexEntry(
            request_id=record.request_id,
            requested_at=record.requested_at,
            requester=record.requester,
            tier=record.tier,
        ),
        now=now,
    )
    deps.audit.write(
        AuditEvent(
            event_type="request",
            actor=record.requester,
            outcome="pending",
            request_id=record.request_id,
            requester=record.requester,
            tier=record.tier,
            reason=record.reason,
            ticket=record.ticket,
            details={
                "duration_seconds": record.duration_seconds,
                "quorum": record.quorum,
                "approvers": list(record.approvers),
                "requester_arn": record.requester_arn,
                **({"review_waiver": waivers[0].details()} if waivers else {}),
            },
        )
    )
    start_workflow(deps, record)
    log.info("request admitted", extra=log_fields(request_id=record.request_id, tier=record.tier))
    return record


def start_workflow(deps: IntakeDeps, record: RequestRecord) -> None:
    """Start the stored request's execution under its id (input: the id alone)."""
    try:
        deps.sfn.start_execution(
            stateMachineArn=deps.state_machine_arn,
            name=record.request_id,
            input=json.dumps({"request_id": record.request_id}),
        )
    except Exception as exc:
        # No workflow will ever grant it: close it, so the person's live slot frees up at once.
        deps.store.set_status(record.request_id, RequestStatus.DENIED)
        deps.audit.write(
            AuditEvent(
                event_type="error",
                actor="system",
                outcome="failed",
                request_id=record.request_id,
                requester=record.requester,
                tier=record.tier,
                details={"stage": "start", "error": type(exc).__name__, "cause": str(exc)[:500]},
            )
        )
        raise


def _consume(deps: IntakeDeps, record: RequestRecord, waiver: Waiver, now: datetime) -> None:
    if not deps.admission.consume_waiver(
        record.tier, record.requester, waiver, request_id=record.request_id, now=now
    ):
        refused = AdmissionRefused(
            "tier",
            f"security's waiver of the review of request {waiver.blocks} was used by another request "
            "or has expired; ask security again",
        )
        raise RequestRejected(refused.field or "tier", refused.problem) from refused


def _release(deps: IntakeDeps, body: Any, requester: Enrollment, request_id: str) -> None:
    """Give back the tier slot a refused request may have claimed (it is held until released)."""
    tier = body.get("tier") if isinstance(body, Mapping) else None
    if isinstance(tier, str) and tier in deps.policy:
        deps.admission.release_live(tier, requester.user, request_id)


def _store(deps: IntakeDeps, record: RequestRecord) -> None:
    try:
        deps.store.put_request(record)
    except StoreError as exc:
        # 60 random bits make this next to impossible; never overwrite another request.
        raise RequestRejected("request", "could not store the request; try again") from exc


def _audit_rejection(
    deps: IntakeDeps, requester: Enrollment, body: Any, request_id: str, exc: RequestRejected
) -> None:
    """A verified person's refused request is a security signal: record it (who, which tier, why).

    The tier is recorded only when it names a configured tier: the body is the caller's text.
    """
    tier = body.get("tier") if isinstance(body, Mapping) else None
    deps.audit.write(
        AuditEvent(
            event_type="request",
            actor=requester.user,
            outcome="failed",
            request_id=request_id,
            requester=requester.user,
            tier=tier if isinstance(tier, str) and tier in deps.policy else None,
            details={"field": exc.field, "problem": exc.problem[:500], "admission": _is_admission(exc)},
        )
    )
    log.warning("request refused", extra=log_fields(requester=requester.user, field=exc.field))


def _is_admission(exc: RequestRejected) -> bool:
    return isinstance(exc.__cause__, AdmissionRefused)
