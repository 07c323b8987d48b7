"""The approval workflow's Task Lambdas: one thin handler per state, one service function each.

Each handler parses its event into a frozen dataclass, builds :class:`WorkflowDeps` from the
function's environment and calls a service function that takes those dependencies explicitly
(tests and the emulator pass their own). Every service writes its audit event before it returns
(an :class:`~breakglass.lambdas.audit.events.AuditWriteError` propagates and fails the state).

State data stays small: services reload the request from the table by id, so the execution's
input is never trusted for who, which tier or how long.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import boto3

from breakglass.contracts import ENV_APPROVAL_URL, ENV_SENDER, iso, utc_now
from breakglass.lambdas.access import early_revoke, grants
from breakglass.lambdas.approvals import mail
from breakglass.lambdas.approvals.links import link_key_from_env
from breakglass.lambdas.approvals.requests import (
    RequestRejected,
    TierApproval,
    eligible_approvers,
    load_policy,
    validate_request,
)
from breakglass.lambdas.approvals.store import Enrollment, RequestNotFound, RequestRecord, Store
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.runtime import audit_writer_from_env, get_logger, log_fields, required_env
from breakglass.validation import REQUEST_ID, ConfigError, require_choice, require_mapping, require_str

log = get_logger("breakglass.workflow")

_MODULE: Final = "breakglass.lambdas.approvals.workflow"
# Which handler runs behind each Task state of the state machine (keys: WorkflowFunctions fields).
TASK_HANDLERS: Final[Mapping[str, str]] = {
    "validate": f"{_MODULE}.validate_request_handler",
    "await_approval": f"{_MODULE}.await_approval_handler",
    "auto_approve": f"{_MODULE}.auto_approve_handler",
    "deny": f"{_MODULE}.deny_handler",
    # Grant and revoke share one function (concurrency 1): edits of a role never interleave.
    "grant": f"{_MODULE}.access_handler",
    "notify_requester": f"{_MODULE}.notify_requester_handler",
    "revoke": f"{_MODULE}.access_handler",
    "open_review": f"{_MODULE}.open_review_handler",
    "record_error": f"{_MODULE}.record_error_handler",
}

ROUNDS: Final = ("primary", "backup")
DENY_CAUSES: Final = ("denied", "timed_out")
ERROR_STAGES: Final = ("before-grant", "revoke", "review")
_CAUSE_MAX: Final = 2000


@dataclass(frozen=True)
class WorkflowDeps:
    """What the workflow's services work with (boto3 clients and configuration)."""

    store: Store
    audit: AuditWriter
    ses: Any
    iam: Any
    tiers: Mapping[str, grants.Tier]
    policy: Mapping[str, TierApproval]
    sender: str
    approval_url: str
    link_key: Callable[[], bytes]  # read only by the function that signs links
    clock: Callable[[], datetime] = field(default=utc_now)


def deps_from_env(environ: Mapping[str, str] | None = None, *, session: Any = None) -> WorkflowDeps:
    env = os.environ if environ is None else environ
    boto = session or boto3
    return WorkflowDeps(
        store=Store.from_env(env, session=session),
        audit=audit_writer_from_env(env, session=session),
        ses=boto.client("ses"),
        iam=boto.client("iam"),
        tiers=grants.load_tiers(env),
        policy=load_policy(env),
        sender=required_env(ENV_SENDER, env),
        approval_url=env.get(ENV_APPROVAL_URL, ""),
        link_key=lambda: link_key_from_env(env, session=session),
    )


def _request_id(event: Mapping[str, Any]) -> str:
    return require_str("request_id", event.get("request_id"), pattern=REQUEST_ID)


def _record(deps: WorkflowDeps, request_id: str) -> RequestRecord:
    record = deps.store.get_request(request_id)
    if record is None:
        raise RequestNotFound(f"request {request_id!r} not found")
    return record


def _event(event_type: str, record: RequestRecord, *, actor: str, outcome: str, **details: Any) -> AuditEvent:
    return AuditEvent(
        event_type=event_type,
        actor=actor,
        outcome=outcome,
        request_id=record.request_id,
        requester=record.requester,
        tier=record.tier,
        reason=record.reason,
        ticket=record.ticket,
        details=details,
    )


def _enrollments(deps: WorkflowDeps, users: Sequence[str]) -> tuple[list[Enrollment], list[str]]:
    found, missing = [], []
    for user in users:
        enrollment = deps.store.get_enrollment(user)
        if enrollment is None or not set(enrollment.roles) & set(mail.APPROVING_ROLES):
            missing.append(user)
        else:
            found.append(enrollment)
    return found, missing


def _notice(deps: WorkflowDeps, to: Sequence[str], notice: mail.Notice) -> str:
    return mail.send_notice(
        deps.ses, sender=deps.sender, to=list(to), subject=notice.subject, text=notice.text, html=notice.html
    )


# -- Validate -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidateEvent:
    request_id: str
    input: Mapping[str, Any]
    execution_arn: str | None

    @classmethod
    def parse(cls, event: Any) -> ValidateEvent:
        values = require_mapping("event", event)
        arn = values.get("execution_arn")
        return cls(
            request_id=_request_id(values),
            input=require_mapping("input", values.get("input")),
            execution_arn=require_str("execution_arn", arn) if arn is not None else None,
        )


def start_request(deps: WorkflowDeps, e: ValidateEvent) -> dict[str, Any]:
    """Validate and record a request; a rejection is audited, then raised as RequestRejected."""
    try:
        validated = validate_request(
            deps.store,
            deps.tiers,
            deps.policy,
            e.input,
            request_id=e.request_id,
            now=deps.clock(),
            execution_arn=e.execution_arn,
        )
    except RequestRejected as exc:
        requester = e.input.get("requester")
        tier = e.input.get("tier")
        deps.audit.write(
            AuditEvent(
                event_type="request",
                actor=str(requester)[:64] if isinstance(requester, str) and requester else "unknown",
                outcome="failed",
                request_id=e.request_id,
                requester=str(requester)[:64] if isinstance(requester, str) else None,
                tier=str(tier)[:64] if isinstance(tier, str) else None,
                details={"field": exc.field, "problem": exc.problem},
            )
        )
        log.warning("request rejected", extra=log_fields(request_id=e.request_id, field=exc.field))
        raise
    record = validated.record
    deps.store.put_request(record)
    deps.audit.write(
        _event(
            "request",
            record,
            actor=record.requester,
            outcome="pending",
            duration_seconds=record.duration_seconds,
            quorum=record.quorum,
            approvers=list(record.approvers),
            execution_arn=record.execution_arn,
        )
    )
    log.info("request recorded", extra=log_fields(request_id=record.request_id, tier=record.tier))
    return validated.state()


def validate_request_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    parsed = ValidateEvent.parse(event)
    return start_request(deps_from_env(), parsed)


# -- AwaitApproval (wait-for-token) -------------------------------------------------------------


@dataclass(frozen=True)
class AwaitEvent:
    request_id: str
    task_token: str
    round: str
    execution_arn: str | None

    @classmethod
    def parse(cls, event: Any) -> AwaitEvent:
        values = require_mapping("event", event)
        arn = values.get("execution_arn")
        return cls(
            request_id=_request_id(values),
            task_token=require_str("task_token", values.get("task_token"), max_length=8192),
            round=require_choice("round", values.get("round", "primary"), ROUNDS),
            execution_arn=require_str("execution_arn", arn) if arn is not None else None,
        )


def await_approval(deps: WorkflowDeps, e: AwaitEvent) -> dict[str, Any]:
    """Store the task token and email the round's approvers their signed links.

    The primary round asks the tier's approvers. The backup round (after the deadline passed)
    opens the vote to the backup approvers too and emails everyone eligible who has not voted
    yet, once. The requester is never among them.
    """
    record = _record(deps, e.request_id)
    approval = deps.policy.get(record.tier)
    if approval is None:
        raise ConfigError("tier", f"tier {record.tier!r} has no approval policy")
    backup = e.round == "backup"
    voters = eligible_approvers(approval, record.requester, backup=backup)
    deps.store.set_waiting(record.request_id, e.task_token, voters, execution_arn=e.execution_arn)
    record = _record(deps, e.request_id)
    pending = [u for u in voters if u not in record.approvals and u not in record.denials]
    recipients, missing = _enrollments(deps, pending)
    if not recipients:
        raise ConfigError(
            "approvers",
            f"no enrolled approver can be asked for request {record.request_id} "
            f"({e.round} round; not enrolled as approvers: {', '.join(missing) or 'none'})",
        )
    ttl = min(max(approval.approval_timeout_seconds, mail.MIN_LINK_TTL), mail.MAX_LINK_TTL)
    message_ids = mail.send_approval_requests(
        deps.ses,
        deps.link_key(),
        record,
        recipients,
        sender=deps.sender,
        approval_url=deps.approval_url,
        now=deps.clock(),
        link_ttl_seconds=ttl,
    )
    notified = [r.user for r in recipients]
    deps.audit.write(
        _event(
            "approval",
            record,
            actor="system",
            outcome="pending",
            round=e.round,
            notified=notified,
            not_enrolled=missing,
            quorum=record.quorum,
            approvals=list(record.approvals),
            deadline_seconds=approval.approval_timeout_seconds,
        )
    )
    log.info(
        "approvers notified", extra=log_fields(request_id=record.request_id, round=e.round, notified=notified)
    )
    return {"round": e.round, "notified": notified, "message_ids": message_ids}


def await_approval_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    parsed = AwaitEvent.parse(event)
    return await_approval(deps_from_env(), parsed)


# -- AutoApprove ---------------------------------------------------------------------------------


def auto_approve(deps: WorkflowDeps, request_id: str) -> dict[str, Any]:
    """Approve a tier whose policy is ``auto`` at once, and tell its approvers."""
    record = _record(deps, request_id)
    if record.quorum != 0:
        raise ConfigError("quorum", f"request {request_id} needs {record.quorum} approvals, not auto")
    deps.store.set_status(request_id, "approved", expected="pending")
    recipients, missing = _enrollments(deps, record.approvers)
    message_id = None
    if recipients:
        message_id = _notice(deps, [r.email for r in recipients], mail.auto_approve_notice(record))
    deps.audit.write(
        _event(
            "approval",
            record,
            actor="system:auto",
            outcome="succeeded",
            mode="auto",
            notified=[r.user for r in recipients],
            not_enrolled=missing,
        )
    )
    return {"decision": "approved", "mode": "auto", "message_id": message_id}


def auto_approve_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    request_id = _request_id(require_mapping("event", event))
    return auto_approve(deps_from_env(), request_id)


# -- Deny ------------------------------------------------------------------------------------------


def deny(deps: WorkflowDeps, request_id: str, cause: str) -> dict[str, Any]:
    """Final: the request is denied (by an approver or by the deadline); the requester is told."""
    require_choice("decision", cause, DENY_CAUSES)
    record = _record(deps, request_id)
    # Whatever a late vote did meanwhile, the workflow's decision stands.
    deps.store.set_status(request_id, "denied")
    actor = ",".join(record.denials) if cause == "denied" and record.denials else "system:timeout"
    requester = deps.store.get_enrollment(record.requester)
    message_id = None
    if requester is not None:
        message_id = _notice(deps, [requester.email], mail.denial_notice(record, cause))
    deps.audit.write(
        _event(
            "denial",
            record,
            actor=actor,
            outcome="succeeded",
            cause=cause,
            approvals=list(record.approvals),
            denials=list(record.denials),
            quorum=record.quorum,
        )
    )
    return {"status": "denied", "cause": cause, "message_id": message_id}


def deny_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    values = require_mapping("event", event)
    request_id = _request_id(values)
    cause = require_choice("decision", values.get("decision"), DENY_CAUSES)
    return deny(deps_from_env(), request_id, cause)


# -- Grant ------------------------------------------------------------------------------------------


def _grant_of(record: RequestRecord, starts_at: datetime, expires_at: datetime) -> grants.Grant:
    return grants.Grant.from_event(
        {
            "request_id": record.request_id,
            "tier": record.tier,
            "requester_arn": record.requester_arn,
            "source_identity": record.requester,
            "starts_at": iso(starts_at),
            "expires_at": iso(expires_at),
        }
    )


def grant(deps: WorkflowDeps, request_id: str) -> dict[str, Any]:
    """Open the approved window (now until now + duration) on the tier's emergency role.

    A retry after a failure that followed the role edit (e.g. the status update, or a timeout)
    finds the window already written and grants it again unchanged, instead of being refused."""
    record = _record(deps, request_id)
    if record.status not in ("approved", "granted"):
        raise grants.GrantError("status", f"request {request_id} is {record.status}, not approved")
    now = deps.clock()
    tier = deps.tiers.get(record.tier)
    window = grants.granted_window(deps.iam, tier, request_id) if tier is not None else None
    starts_at, expires_at = window or (now, now + timedelta(seconds=record.duration_seconds))
    g = _grant_of(record, starts_at, expires_at)
    result = grants.grant(deps.iam, deps.audit, deps.tiers, g, now=now, actor="system")
    if record.status == "approved":
        deps.store.set_status(request_id, "granted", expected="approved")
    return {
        "role_arn": result["role_arn"],
        "starts_at": result["starts_at"],
        "expires_at": result["expires_at"],
        "outcome": result["outcome"],
    }


def grant_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    request_id = _request_id(require_mapping("event", event))
    return grant(deps_from_env(), request_id)


# -- NotifyRequester --------------------------------------------------------------------------------


def notify_requester(deps: WorkflowDeps, request_id: str, granted: Mapping[str, Any]) -> dict[str, Any]:
    """Tell the requester access is open, until when, and how to use it.

    No audit event of its own: the grant event already records the access; this is only mail.
    """
    record = _record(deps, request_id)
    enrollment = deps.store.get_enrollment(record.requester)
    if enrollment is None:
        raise ConfigError("requester", f"{record.requester!r} is no longer enrolled")
    message_id = _notice(deps, [enrollment.email], mail.grant_notice(record, granted))
    return {"message_id": message_id}


def notify_requester_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    values = require_mapping("event", event)
    return notify_requester(
        deps_from_env(), _request_id(values), require_mapping("grant", values.get("grant"))
    )


# -- Revoke ---------------------------------------------------------------------------------------


def revoke(deps: WorkflowDeps, request_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """End the grant: at expiry, or at once after a failure (then older sessions are cut too).

    Idempotent, so it is harmless after an early revoke and safe to retry.
    """
    record = _record(deps, request_id)
    failed = "failure" in state
    granted = state.get("grant")
    now = deps.clock()
    if isinstance(granted, Mapping):
        starts_at = grants.parse_timestamp("grant.starts_at", granted.get("starts_at"))
        expires_at = grants.parse_timestamp("grant.expires_at", granted.get("expires_at"))
    else:
        # Grant failed before reporting its window: revoke by request id over the widest window.
        starts_at = grants.parse_timestamp("requested_at", record.requested_at)
        expires_at = max(now, starts_at) + timedelta(seconds=record.duration_seconds)
    g = _grant_of(record, starts_at, expires_at)
    # Recorded as expiry only when the clock has reached expires_at (the emulator fast-forwards it).
    result = grants.revoke(deps.iam, deps.audit, deps.tiers, g, early=failed, actor="system", now=now)
    if record.status in ("approved", "granted"):
        deps.store.set_status(request_id, "revoked" if failed else "expired")
    if failed:
        failure = state["failure"]
        deps.audit.write(
            _event(
                "error",
                record,
                actor="system",
                outcome="failed",
                stage="after-grant",
                revoked=True,
                **_failure_summary(failure if isinstance(failure, Mapping) else {}),
            )
        )
    return {
        "outcome": result["outcome"],
        "event_type": result["event_type"],
        "role_locked": result["role_locked"],
        "after_failure": failed,
    }


def revoke_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    values = require_mapping("event", event)
    return revoke(deps_from_env(), _request_id(values), require_mapping("state", values.get("state")))


ACCESS_ACTIONS: Final = ("grant", "revoke", "early_revoke")


def access_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The one function that edits emergency roles: ``action`` grant, revoke or early_revoke."""
    values = require_mapping("event", event)
    action = require_choice("action", values.get("action"), ACCESS_ACTIONS)
    if action == "grant":
        return grant_handler(values, context)
    if action == "revoke":
        return revoke_handler(values, context)
    return early_revoke.handler(values, context)


# -- OpenReview ------------------------------------------------------------------------------------


def open_review(deps: WorkflowDeps, request_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """Open the post-event review an auditor signs off (``unreviewed_events`` lists it until then)."""
    record = _record(deps, request_id)
    failure = state.get("failure")
    revoked_value = state.get("revoke")
    revoked: Mapping[str, Any] = revoked_value if isinstance(revoked_value, Mapping) else {}
    key = deps.audit.write(
        _event(
            "review",
            record,
            actor="system",
            outcome="opened",
            status=record.status,
            approvals=list(record.approvals),
            revoke_outcome=revoked.get("outcome"),
            failure=_failure_summary(failure) if isinstance(failure, Mapping) else None,
        )
    )
    return {"review": "opened", "audit_key": key}


def open_review_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    values = require_mapping("event", event)
    return open_review(deps_from_env(), _request_id(values), require_mapping("state", values.get("state")))


# -- RecordError -----------------------------------------------------------------------------------


def _failure_summary(failure: Mapping[str, Any]) -> dict[str, str]:
    cause = str(failure.get("Cause", ""))
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, Mapping) and "errorMessage" in parsed:
            cause = str(parsed["errorMessage"])
    except ValueError:
        pass
    return {"error": str(failure.get("Error", "unknown"))[:200], "cause": cause[:_CAUSE_MAX]}


def record_error(
    deps: WorkflowDeps, request_id: str, failure: Mapping[str, Any], stage: str
) -> dict[str, Any]:
    """Audit a workflow failure. Before a grant, the request is closed as denied."""
    require_choice("stage", stage, ERROR_STAGES)
    record = deps.store.get_request(request_id)
    summary = _failure_summary(failure)
    if record is not None and stage == "before-grant" and record.status in ("pending", "approved"):
        deps.store.set_status(request_id, "denied")
    deps.audit.write(
        AuditEvent(
            event_type="error",
            actor="system",
            outcome="failed",
            request_id=request_id,
            requester=record.requester if record else None,
            tier=record.tier if record else None,
            details={"stage": stage, **summary},
        )
    )
    log.error("workflow failure", extra=log_fields(request_id=request_id, stage=stage, **summary))
    return {"recorded": True, "stage": stage, **summary}


def record_error_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    values = require_mapping("event", event)
    return record_error(
        deps_from_env(),
        _request_id(values),
        require_mapping("failure", values.get("failure")),
        str(values.get("stage", "before-grant")),
    )
