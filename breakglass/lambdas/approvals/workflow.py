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

from breakglass.contracts import ENV_APPROVAL_URL, ENV_SENDER, ENV_STATE_MACHINE_NAME, iso, utc_now
from breakglass.lambdas.access import early_revoke, grants, reconcile
from breakglass.lambdas.approvals import mail
from breakglass.lambdas.approvals.admission import Admission
from breakglass.lambdas.approvals.links import link_key_from_env
from breakglass.lambdas.approvals.requests import (
    RequestRejected,
    TierApproval,
    eligible_approvers,
    load_policy,
    state_of,
)
from breakglass.lambdas.approvals.store import (
    DECIDED_BY_VOTES,
    Enrollment,
    RequestNotFound,
    RequestRecord,
    Store,
)
from breakglass.lambdas.approvals.votes import answer_task
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.audit.review import opened_review_id
from breakglass.lambdas.runtime import audit_writer_from_env, get_logger, log_fields, required_env
from breakglass.validation import REQUEST_ID, ConfigError, require_choice, require_mapping, require_str

log = get_logger("breakglass.workflow")

_MODULE: Final = "breakglass.lambdas.approvals.workflow"
# The workflow's functions and the handler each runs. Grant and revoke share the "access" function
# (concurrency 1, the only one that edits emergency roles): IAM has no conditional writes, so
# edits of one role must never interleave.
FUNCTION_HANDLERS: Final[Mapping[str, str]] = {
    "validate": f"{_MODULE}.validate_request_handler",
    "await-approval": f"{_MODULE}.await_approval_handler",
    "auto-approve": f"{_MODULE}.auto_approve_handler",
    "deny": f"{_MODULE}.deny_handler",
    "access": f"{_MODULE}.access_handler",
    "notify-requester": f"{_MODULE}.notify_requester_handler",
    "open-review": f"{_MODULE}.open_review_handler",
    "record-error": f"{_MODULE}.record_error_handler",
}
# Which function runs behind each Task state (keys: WorkflowFunctions fields).
TASK_FUNCTIONS: Final[Mapping[str, str]] = {
    "validate": "validate",
    "await_approval": "await-approval",
    "auto_approve": "auto-approve",
    "deny": "deny",
    "grant": "access",
    "notify_requester": "notify-requester",
    "revoke": "access",
    "open_review": "open-review",
    "record_error": "record-error",
}
TASK_HANDLERS: Final[Mapping[str, str]] = {task: FUNCTION_HANDLERS[fn] for task, fn in TASK_FUNCTIONS.items()}
# The state whose function may run the end-of-window revoke (checked against the execution).
REVOKE_STATE: Final = "Revoke"

ROUNDS: Final = ("primary", "backup")
DENY_CAUSES: Final = mail.DENY_CAUSES
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
    sfn: Any = None  # read-only use: the access function checks the execution asking to revoke


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
        sfn=boto.client("stepfunctions"),
    )


def _request_id(event: Mapping[str, Any]) -> str:
    return require_str("request_id", event.get("request_id"), pattern=REQUEST_ID)


def _record(deps: WorkflowDeps, request_id: str) -> RequestRecord:
    record = deps.store.get_request(request_id)
    if record is None:
        raise RequestNotFound(f"request {request_id!r} not found")
    return record


def _event(
    event_type: str,
    record: RequestRecord,
    *,
    actor: str,
    outcome: str,
    event_id: str | None = None,
    **details: Any,
) -> AuditEvent:
    return AuditEvent(
        **({"event_id": event_id} if event_id else {}),
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


# -- Validate ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidateEvent:
    request_id: str
    execution_arn: str

    @classmethod
    def parse(cls, event: Any) -> ValidateEvent:
        values = require_mapping("event", event)
        return cls(
            request_id=_request_id(values),
            execution_arn=require_str("execution_arn", values.get("execution_arn"), max_length=2048),
        )


def bind_request(deps: WorkflowDeps, e: ValidateEvent) -> dict[str, Any]:
    """The first state: the execution takes up the request the access API admitted.

    Requests enter only through the access API, which checks them, stores them and starts the
    execution named after the minted id. An execution started any other way finds no pending
    request of its name (or one another execution already holds) and is rejected.
    """
    record = deps.store.get_request(e.request_id)
    if record is None or record.status != "pending":
        raise RequestRejected(
            "request_id",
            f"no pending request {e.request_id} was admitted: requests enter through the access API",
        )
    approval = deps.policy.get(record.tier)
    if approval is None:
        raise RequestRejected("tier", f"tier {record.tier!r} has no approval policy")
    if not deps.store.bind_execution(record.request_id, e.execution_arn):
        raise RequestRejected("request_id", f"request {e.request_id} is already run by another execution")
    log.info("request bound", extra=log_fields(request_id=record.request_id, tier=record.tier))
    return state_of(record, approval)


def validate_request_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    parsed = ValidateEvent.parse(event)
    return bind_request(deps_from_env(), parsed)


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
    record = deps.store.set_waiting(record.request_id, e.task_token, voters, execution_arn=e.execution_arn)
    if record.status in DECIDED_BY_VOTES:
        # Votes decided it before any task waited (a terminal vote right after the request, or one
        # between rounds): their decision is this task's answer, and nobody more is asked.
        answer_task(deps.sfn, e.task_token, record)
        log.info(
            "decided before the workflow waited",
            extra=log_fields(request_id=record.request_id, round=e.round, status=record.status),
        )
        return {"round": e.round, "notified": [], "message_ids": [], "decided": record.status}
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
    actor = (
        ",".join(record.denials)
        if cause == "denied" and record.denials
        else "system:withdrawn"
        if cause == mail.WITHDRAWN
        else "system:timeout"
    )
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


def planned_window(record: RequestRecord, now: datetime) -> tuple[datetime, datetime]:
    """The window a grant opens now: from now for the asked duration; or, for a scheduled request
    or an extension, from its planned start (``start_at``) for the duration. An approval that
    arrives after the planned start opens the window at once and keeps the planned expiry: a
    late approval never lengthens access (and an extension's cap holds)."""
    # A second before now (whole seconds, as IAM's conditions read them), so an assume in the
    # very second of the grant is inside the window.
    opens = now.replace(microsecond=0) - timedelta(seconds=1)
    if record.start_at is None:
        return opens, opens + timedelta(seconds=record.duration_seconds)
    planned = grants.parse_timestamp("start_at", record.start_at)
    expires_at = planned + timedelta(seconds=record.duration_seconds)
    if expires_at <= now:
        raise grants.GrantError(
            "start_at",
            f"the window of {record.request_id} ({record.start_at} to {iso(expires_at)}) passed before "
            "it was approved; ask again",
        )
    return max(planned, opens), expires_at


def _check_extended(deps: WorkflowDeps, record: RequestRecord) -> dict[str, Any]:
    """An extension is granted only while the request it extends was not revoked; its grant event
    names that request."""
    if record.extends is None:
        return {"scheduled_start": record.start_at} if record.start_at else {}
    parent = deps.store.get_request(record.extends)
    if parent is None or parent.status == "revoked" or parent.extended_by != record.request_id:
        raise grants.GrantError(
            "extends",
            f"request {record.extends}, which {record.request_id} extends, was revoked or extended "
            "otherwise: the extension is not granted",
        )
    return {"extends": record.extends, "extended_window": f"{parent.starts_at} to {parent.expires_at}"}


def grant(deps: WorkflowDeps, request_id: str) -> dict[str, Any]:
    """Open the approved window on the tier's emergency role (see :func:`planned_window`).

    A retry after a failure that followed the role edit (e.g. the status update, or a timeout)
    finds the window already written and grants it again unchanged, instead of being refused."""
    record = _record(deps, request_id)
    if record.status not in ("approved", "granted"):
        raise grants.GrantError("status", f"request {request_id} is {record.status}, not approved")
    now = deps.clock()
    context = _check_extended(deps, record)
    tier = deps.tiers.get(record.tier)
    window = grants.granted_window(deps.iam, tier, request_id) if tier is not None else None
    guarded = (
        grants.guarded_expiry(deps.iam, tier, request_id, record.requester) if tier and not window else None
    )
    if guarded is not None:  # an earlier attempt died between the guard and the trust
        window = (guarded - timedelta(seconds=record.duration_seconds), guarded)
    starts_at, expires_at = window or planned_window(record, now)
    g = _grant_of(record, starts_at, expires_at)
    # Still "approved": no earlier attempt got as far as recording the grant and marking it.
    recorded = record.status == "granted"
    result = grants.grant(
        deps.iam, deps.audit, deps.tiers, g, now=now, actor="system", context=context, recorded=recorded
    )
    deps.store.set_grant_window(request_id, result["starts_at"], result["expires_at"])
    log.info(
        "grant",
        extra=log_fields(
            request_id=request_id,
            tier=record.tier,
            requester=record.requester,
            expires_at=result["expires_at"],
        ),
    )
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


class RevokeNotFromWorkflow(PermissionError):
    """The end-of-window revoke was asked for by something other than the request's execution."""


def _history(sfn: Any, execution_arn: str) -> list[Mapping[str, Any]]:
    events: list[Mapping[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page.get("events", []))
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def verify_revoke_caller(sfn: Any, request_id: str, execution_arn: str, state_machine_name: str) -> None:
    """Only the request's own execution, standing in its Revoke state, may run this revoke.

    Anyone else who can invoke the access function (the access API) cannot forge it: AWS, not the
    payload, says which execution is running, of which state machine, and in which state.
    """
    try:
        description = sfn.describe_execution(executionArn=execution_arn)
    except Exception as exc:
        raise RevokeNotFromWorkflow(f"execution {execution_arn[:200]!r} cannot be read: {exc}") from exc
    machine = str(description.get("stateMachineArn", "")).rsplit(":", 1)[-1]
    if (
        description.get("status") != "RUNNING"
        or description.get("name") != request_id
        or machine != state_machine_name
    ):
        raise RevokeNotFromWorkflow(
            f"execution {execution_arn[:200]!r} is not the running workflow of request {request_id}"
        )
    entered = [e for e in _history(sfn, execution_arn) if str(e.get("type", "")).endswith("StateEntered")]
    current = max(entered, key=lambda e: int(e.get("id", 0)), default=None)
    name = (current or {}).get("stateEnteredEventDetails", {}).get("name")
    if name != REVOKE_STATE:
        raise RevokeNotFromWorkflow(
            f"the workflow of request {request_id} is in {name!r}, not {REVOKE_STATE}"
        )


def revoke(deps: WorkflowDeps, request_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """End the grant: at expiry, or at once after a failure (then its sessions are cut too, and
    its approved or granted extensions are revoked with it: :func:`early_revoke.revoke_chain`).

    Idempotent, so it is harmless after an early revoke and safe to retry. The event says
    ``expiry`` only when the window has really ended (the grant module decides from the clock).
    """
    record = _record(deps, request_id)
    failed = "failure" in state
    now = deps.clock()
    if record.starts_at and record.expires_at:
        starts_at = grants.parse_timestamp("starts_at", record.starts_at)
        expires_at = grants.parse_timestamp("expires_at", record.expires_at)
    else:
        # Grant failed before recording its window: revoke by request id over the widest window.
        starts_at = grants.parse_timestamp("requested_at", record.requested_at)
        expires_at = max(now, starts_at) + timedelta(seconds=record.duration_seconds)
    g = _grant_of(record, starts_at, expires_at)
    # Recorded as expiry only when the clock has reached expires_at (the emulator fast-forwards it).
    result = grants.revoke(deps.iam, deps.audit, deps.tiers, g, early=failed, actor="system", now=now)
    if record.status in ("approved", "granted"):
        deps.store.set_status(
            request_id, "revoked" if failed or result["event_type"] != "expiry" else "expired"
        )
    # Cut short after a failure: the extensions granted ahead go too (at expiry they go on).
    cascaded = (
        early_revoke.revoke_chain(deps.store, deps.iam, deps.audit, deps.tiers, record, "system", now=now)
        if failed
        else []
    )
    log.info(
        result["event_type"],
        extra=log_fields(
            request_id=request_id, tier=record.tier, outcome=result["outcome"], after_failure=failed
        ),
    )
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
                extensions_revoked=[c["request_id"] for c in cascaded],
                **_failure_summary(failure if isinstance(failure, Mapping) else {}),
            )
        )
    return {
        "outcome": result["outcome"],
        "event_type": result["event_type"],
        "role_locked": result["role_locked"],
        "after_failure": failed,
        "extensions_revoked": [c["request_id"] for c in cascaded],
    }


def revoke_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    values = require_mapping("event", event)
    request_id = _request_id(values)
    execution_arn = require_str("execution_arn", values.get("execution_arn"), max_length=2048)
    deps = deps_from_env()
    verify_revoke_caller(deps.sfn, request_id, execution_arn, required_env(ENV_STATE_MACHINE_NAME))
    return revoke(deps, request_id, require_mapping("state", values.get("state")))


ACCESS_ACTIONS: Final = ("grant", "revoke", "early_revoke", "reconcile")


def access_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The one function that edits emergency roles.

    ``grant`` (the state machine; only an approved request is granted), ``revoke`` (the state
    machine's end-of-window or after-failure revoke, verified against the running execution) and
    ``early_revoke`` (the access API, which verified the person and their TOTP code) and
    ``reconcile`` (a schedule: repairs requests whose execution stopped short).
    """
    values = require_mapping("event", event)
    action = require_choice("action", values.get("action"), ACCESS_ACTIONS)
    if action == "grant":
        return grant_handler(values, context)
    if action == "revoke":
        return revoke_handler(values, context)
    if action == "reconcile":
        deps = deps_from_env()
        return reconcile.reconcile(
            reconcile.ReconcileDeps(
                store=deps.store,
                admission=Admission(deps.store.dynamodb, deps.store.table),
                audit=deps.audit,
                sfn=deps.sfn,
                iam=deps.iam,
                tiers=deps.tiers,
            ),
            now=deps.clock(),
        )
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
            event_id=opened_review_id(request_id),
            status=record.status,
            approvals=list(record.approvals),
            revoke_outcome=revoked.get("outcome"),
            failure=_failure_summary(failure) if isinstance(failure, Mapping) else None,
        )
    )
    deps.store.mark_review_opened(request_id)
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
