"""The access API: every action a person takes from a terminal, behind IAM-authorized routes.

API Gateway (HTTP API, routes with ``AWS_IAM`` authorization) verifies each request's SigV4
signature and gives this function the caller's ARN. Who is acting is always derived from that ARN
(:mod:`breakglass.lambdas.approvals.identity`), never from the body; what they prove on top is
their TOTP code. Routes (JSON in, JSON out)::

    GET    /whoami                       who AWS says you are, and your enrollment
    POST   /requests                     ask for a tier (intake: minted id, synchronous checks)
    GET    /requests?scope=mine|pending|active|all
    GET    /requests/{id}
    POST   /requests/{id}/extensions    extend your granted window (a new request, approved again)
    POST   /requests/{id}/votes          approve or deny from a terminal (approvers)
    POST   /requests/{id}/revoke         end access early (requester, its approvers, security)
    POST   /requests/{id}/review         the post-event review verdict (security)
    POST   /waivers                      let a person's next request past a tier's review gate (security)
    POST   /halts  |  POST /resumes      as an emergency session of a tier that may
    POST   /enrollments                  enroll a person (security, or a bootstrap admin)
    DELETE /enrollments/{user}           remove one (security)

Errors are ``{"error": {"code", "field", "message"}}`` with 400 (bad input), 401 (no verified
caller), 403 (not allowed), 404, 409 (state conflict), 429 (rate limit or TOTP lockout).
Refusals of a person AWS verified are audited; a caller no enrollment matches is only logged and
counted (there is no person to record).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

import boto3

from breakglass import __version__
from breakglass.contracts import (
    ENV_ACCESS_FUNCTION,
    ENV_HALT_FUNCTION,
    ENV_RESUME_FUNCTION,
    ENV_STATE_MACHINE_ARN,
    SECURITY_ADMINS_FILE,
    RequestStatus,
    utc_now,
)
from breakglass.lambdas.access import early_revoke, grants
from breakglass.lambdas.approvals import extensions
from breakglass.lambdas.approvals.admission import Admission, AdmissionRefused, RateLimited, StillLive
from breakglass.lambdas.approvals.chains import current_grant
from breakglass.lambdas.approvals.enrollment import enroll, validate_enrollment
from breakglass.lambdas.approvals.identity import (
    Caller,
    NotAuthenticated,
    UnknownCaller,
    caller_from_event,
    emergency_person,
    person_of,
)
from breakglass.lambdas.approvals.intake import IntakeDeps, submit_request
from breakglass.lambdas.approvals.requests import RequestRejected, TierApproval, check_reason, load_policy
from breakglass.lambdas.approvals.store import (
    Enrollment,
    RequestRecord,
    Store,
    VoteRefused,
    one_person,
    same_identity,
    same_person,
)
from breakglass.lambdas.approvals.totp import TotpRejected, verify_totp
from breakglass.lambdas.approvals.votes import cast_vote
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.audit.review import ReviewRefused, check_verdict, record_verdict, review_refusal
from breakglass.lambdas.runtime import (
    archive_json,
    audit_writer_from_env,
    get_logger,
    log_fields,
    required_env,
)
from breakglass.validation import (
    IAM_ROLE_OR_USER_ARN,
    REQUEST_ID,
    USER_ID,
    ConfigError,
    reject_unknown_keys,
    require_choice,
    require_mapping,
    require_str_list,
)

log = get_logger("breakglass.access_api")

MAX_BODY_BYTES: Final = 16384
SCOPES: Final = ("mine", "pending", "active", "all")
LIST_DAYS: Final = 30
LIST_LIMIT: Final = 200
# What a terminal sees of a request (never the task token).
_VISIBLE: Final = (
    "request_id",
    "requester",
    "requester_arn",
    "tier",
    "reason",
    "ticket",
    "duration_seconds",
    "requested_at",
    "status",
    "quorum",
    "approvers",
    "approvals",
    "denials",
    "starts_at",
    "expires_at",
    "review_opened",
    "review_verdict",
    "start_at",
    "extends",
    "extended_by",
)
_VOTE_STATUS: Final = {
    "self-approval": 403,
    "not-an-approver": 403,
    "not-enrolled": 403,
    "not-found": 404,
    "already-voted": 409,
    "already-decided": 409,
    "bad-decision": 400,
    "totp-malformed": 400,
    "totp-wrong": 403,
    "totp-replayed": 403,
    "totp-rate-limited": 429,
    "totp-not-enrolled": 403,
}


class ApiError(Exception):
    """A refusal with its HTTP status; the message says what was wrong and what to do."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class AccessDeps:
    store: Store
    admission: Admission
    audit: AuditWriter
    sfn: Any
    lambda_client: Any
    state_machine_arn: str
    access_function: str
    halt_function: str | None
    resume_function: str | None
    tiers: Mapping[str, grants.Tier]
    policy: Mapping[str, TierApproval]
    security_admins: tuple[str, ...] = ()
    clock: Callable[[], datetime] = field(default=utc_now)

    def intake(self) -> IntakeDeps:
        return IntakeDeps(
            store=self.store,
            admission=self.admission,
            audit=self.audit,
            sfn=self.sfn,
            state_machine_arn=self.state_machine_arn,
            tiers=self.tiers,
            policy=self.policy,
            clock=self.clock,
        )


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    caller: Caller


Route = Callable[[AccessDeps, ApiRequest, Mapping[str, str]], tuple[int, Any]]
_ROUTES: list[tuple[str, re.Pattern[str], Route]] = []


_ROUTE_KEYS: list[str] = []


def route(method: str, pattern: str) -> Callable[[Route], Route]:
    compiled = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")

    def register(fn: Route) -> Route:
        _ROUTES.append((method, compiled, fn))
        _ROUTE_KEYS.append(f"{method} {pattern}")
        return fn

    return register


def route_keys() -> tuple[str, ...]:
    """Every route this function serves, as API Gateway route keys (``"POST /requests"``)."""
    return tuple(_ROUTE_KEYS)


# Which routes each kind of caller needs (the component turns these into IAM policies: the
# managed policies people attach, and each emergency role's own). The routes check again who
# may do what; IAM keeps everyone else from reaching them at all.
PERSONA_ROUTES: Final[Mapping[str, tuple[str, ...]]] = {
    "responder": (
        "GET /whoami",
        "POST /requests",
        "GET /requests",
        "GET /requests/{id}",
        "POST /requests/{id}/extensions",
        "POST /requests/{id}/revoke",
    ),
    "approver": (
        "GET /whoami",
        "GET /requests",
        "GET /requests/{id}",
        "POST /requests/{id}/votes",
        "POST /requests/{id}/revoke",
    ),
    "security": (
        "GET /whoami",
        "GET /requests",
        "GET /requests/{id}",
        "POST /requests/{id}/votes",
        "POST /requests/{id}/revoke",
        "POST /requests/{id}/review",
        "POST /waivers",
        "POST /enrollments",
        "DELETE /enrollments/{user}",
    ),
}
# What an emergency session of a tier may call, by capability.
HALT_ROUTE: Final = "POST /halts"
RESUME_ROUTE: Final = "POST /resumes"
EMERGENCY_ROUTES: Final = ("GET /whoami",)


# -- helpers ------------------------------------------------------------------------------------


def _person(deps: AccessDeps, request: ApiRequest) -> Enrollment:
    try:
        return person_of(deps.store, request.caller)
    except UnknownCaller as exc:
        raise ApiError(403, "unknown-caller", str(exc)) from exc


def _request_id(params: Mapping[str, str]) -> str:
    value = params.get("id", "")
    if not re.fullmatch(REQUEST_ID, value):
        raise ApiError(404, "not-found", "no such request: use the id break-glass printed")
    return value


def _record(deps: AccessDeps, request_id: str) -> RequestRecord:
    record = deps.store.get_request(request_id)
    if record is None:
        raise ApiError(404, "not-found", f"no request {request_id}")
    return record


def _body(request: ApiRequest, fields: tuple[str, ...]) -> Mapping[str, Any]:
    try:
        values = require_mapping("body", request.body if request.body is not None else {})
        reject_unknown_keys("", values, fields)
    except ConfigError as exc:
        raise ApiError(400, "bad-input", str(exc), exc.field) from exc
    return values


def _text(body: Mapping[str, Any], name: str) -> str:
    """A text field of the body, or "" (validation downstream names the field)."""
    value = body.get(name)
    return value if isinstance(value, str) else ""


def _is_security(person: Enrollment) -> bool:
    return "security" in person.roles


def visible(record: RequestRecord) -> dict[str, Any]:
    data = record.to_dict()
    return {k: data.get(k) for k in _VISIBLE}


def _may_see(person: Enrollment, record: RequestRecord) -> bool:
    return (
        same_person(person.user, record.requester)
        or any(same_person(person.user, a) for a in record.approvers)
        or _is_security(person)
    )


def _audit_refusal(
    deps: AccessDeps, actor: str, event_type: str, record: RequestRecord | None, why: str
) -> None:
    deps.audit.write(
        AuditEvent(
            event_type=event_type,
            actor=actor,
            outcome="failed",
            request_id=record.request_id if record else None,
            requester=record.requester if record else None,
            tier=record.tier if record else None,
            details={"refused": why[:500], "channel": "access-api"},
        )
    )


def _totp(deps: AccessDeps, person: Enrollment, code: Any) -> None:
    try:
        verify_totp(deps.store, person.user, code if isinstance(code, str) else "", now=deps.clock())
    except TotpRejected as exc:
        status = {"malformed": 400, "rate-limited": 429}.get(exc.reason, 403)
        raise ApiError(status, f"totp-{exc.reason}", str(exc), "totp") from exc


def _invoke(deps: AccessDeps, function: str, payload: Mapping[str, Any]) -> tuple[bool, Any]:
    response = deps.lambda_client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(dict(payload)).encode()
    )
    result = json.loads(response["Payload"].read() or b"null")
    return not response.get("FunctionError"), result


# -- who am I -------------------------------------------------------------------------------------


@route("GET", "/whoami")
def whoami(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    caller = request.caller
    answer: dict[str, Any] = {"arn": caller.arn, "account": caller.account, "version": __version__}
    if caller.emergency_tier is not None:
        try:
            tier, user = emergency_person(caller)
        except UnknownCaller as exc:
            raise ApiError(403, "not-emergency-session", str(exc)) from exc
        answer["emergency"] = {"tier": tier, "user": user}
        return 200, answer
    try:
        person = person_of(deps.store, caller)
        answer["user"] = person.user
        answer["roles"] = list(person.roles)
        answer["email"] = person.email
    except UnknownCaller as exc:
        answer["enrolled"] = False
        answer["problem"] = str(exc)
    return 200, answer


# -- requests -----------------------------------------------------------------------------------


@route("POST", "/requests")
def create_request(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    person = _person(deps, request)
    try:
        record = submit_request(deps.intake(), person, request.body)
    except RequestRejected as exc:
        cause = exc.__cause__
        if isinstance(cause, AdmissionRefused):
            raise ApiError(
                429 if isinstance(cause, RateLimited) else 409, "not-admitted", exc.problem, exc.field
            ) from exc
        if exc.field == "totp":
            status = 429 if "too many wrong codes" in exc.problem else 403
            raise ApiError(status, "totp", exc.problem, "totp") from exc
        raise ApiError(400, "rejected", exc.problem, exc.field) from exc
    return 201, visible(record)


@route("POST", "/requests/{id}/extensions")
def extend_request(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    person = _person(deps, request)
    request_id = _request_id(params)
    try:
        record = extensions.submit_extension(deps.intake(), person, request_id, request.body)
    except extensions.ExtensionRefused as exc:
        codes = {403: "forbidden", 404: "not-found", 409: "not-admitted", 429: "not-admitted"}
        code = "totp" if exc.field == "totp" else codes.get(exc.status, "rejected")
        raise ApiError(exc.status, code, exc.problem, exc.field) from exc
    return 201, visible(record)


@route("GET", "/requests")
def list_requests(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    person = _person(deps, request)
    scope = request.query.get("scope", "mine")
    if scope not in SCOPES:
        raise ApiError(400, "bad-input", f"scope must be one of {', '.join(SCOPES)}", "scope")
    if scope == "all" and not _is_security(person):
        raise ApiError(403, "forbidden", "only security may list every request", "scope")
    since = deps.clock() - timedelta(days=LIST_DAYS)
    entries = list(deps.admission.recent(since=since, limit=LIST_LIMIT))
    records = deps.store.get_requests([e.request_id for e in entries])

    def wanted(r: RequestRecord) -> bool:
        mine = same_person(person.user, r.requester)
        approver = any(same_person(person.user, a) for a in r.approvers)
        if scope == "mine":
            return mine
        if scope == "pending":
            return (
                r.status == RequestStatus.PENDING
                and approver
                and person.user not in r.approvals
                and person.user not in r.denials
            )
        if scope == "active":
            return r.status == RequestStatus.GRANTED and (mine or approver or _is_security(person))
        return True

    return 200, {"scope": scope, "requests": [visible(r) for r in records if wanted(r)]}


@route("GET", "/requests/{id}")
def show_request(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    person = _person(deps, request)
    record = _record(deps, _request_id(params))
    if not _may_see(person, record):
        raise ApiError(403, "forbidden", "only the requester, its approvers and security may see a request")
    return 200, visible(record)


@route("POST", "/requests/{id}/votes")
def vote(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    person = _person(deps, request)
    request_id = _request_id(params)
    body = _body(request, ("decision", "totp"))
    try:
        decision = require_choice("decision", body.get("decision"), ("approve", "deny"))
    except ConfigError as exc:
        raise ApiError(400, "bad-input", str(exc), exc.field) from exc
    try:
        outcome = cast_vote(
            deps.store,
            deps.audit,
            deps.sfn,
            request_id=request_id,
            approver=person.user,
            decision=decision,
            totp=_text(body, "totp"),
            now=deps.clock(),
            channel="access-api",
            refused=lambda record, why: _audit_refusal(
                deps, person.user, "denial" if decision == "deny" else "approval", record, why
            ),
        )
    except VoteRefused as exc:
        raise ApiError(_VOTE_STATUS.get(exc.reason, 409), exc.reason, str(exc)) from exc
    answer = visible(outcome.record)
    answer["decided"] = outcome.decided
    if outcome.round_closed:
        answer["note"] = (
            "the approval round closed before your vote arrived: it is recorded but grants nothing"
        )
    return 200, answer


@route("POST", "/requests/{id}/revoke")
def revoke(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    person = _person(deps, request)
    request_id = _request_id(params)
    body = _body(request, ("totp", "reason"))
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
        raise ApiError(400, "bad-input", "reason: at most 1000 characters of text", "reason")
    try:
        early_revoke.authorize(
            deps.store, deps.audit, request_id, person.user, str(body.get("totp") or ""), now=deps.clock()
        )
    except early_revoke.RevokeRefused as exc:
        code = "totp" if "code" in str(exc) else "forbidden"
        raise ApiError(404 if "not found" in str(exc) else 403, code, str(exc)) from exc
    ok, result = _invoke(
        deps,
        deps.access_function,
        {"action": "early_revoke", "request_id": request_id, "actor": person.user, "reason": reason},
    )
    if not ok:
        raise ApiError(
            502, "revoke-failed", f"the revoke failed: {_error_text(result)}; it is retried at expiry"
        )
    revoked = deps.store.get_request(request_id)
    if revoked is not None:
        # Extensions still waiting for votes must not outlive the grant they extend.
        result["extensions_withdrawn"] = extensions.withdraw_pending(
            deps.store, deps.audit, deps.sfn, revoked, person.user
        )
    return 200, result


@route("POST", "/requests/{id}/review")
def review(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    """Security's verdict on a grant that ended: never their own, never one they approved."""
    person = _person(deps, request)
    request_id = _request_id(params)
    record = deps.store.get_request(request_id)

    def refuse(status: int, code: str, message: str, field: str | None = None) -> ApiError:
        _audit_refusal(deps, person.user, "review", record, message)
        return ApiError(status, code, message, field)

    if not _is_security(person):
        raise refuse(403, "forbidden", "only people enrolled with the security role record reviews")
    try:
        body = _body(request, ("verdict", "notes", "totp"))
        verdict, notes = str(body.get("verdict", "")), _text(body, "notes")
        check_verdict(request_id, person.user, verdict, notes)
    except ApiError as exc:
        raise refuse(exc.status, exc.code, str(exc), exc.field) from exc
    except ConfigError as exc:
        raise refuse(400, "bad-input", str(exc), exc.field) from exc
    if record is None:
        raise refuse(404, "not-found", f"no request {request_id}")
    # Who and when are checked before the code, so a refused attempt does not spend it.
    refusal = review_refusal(deps.store, record, person.user)
    if refusal is not None:
        raise refuse(refusal.status, _REVIEW_CODES[refusal.status], refusal.problem, refusal.field)
    _audited_totp(deps, person, body.get("totp"), refuse)
    try:
        key = record_verdict(deps.audit, request_id, person.user, verdict, notes, store=deps.store)
    except ReviewRefused as exc:
        raise refuse(exc.status, _REVIEW_CODES[exc.status], exc.problem, exc.field) from exc
    except ConfigError as exc:
        raise refuse(400, "bad-input", str(exc), exc.field) from exc
    return 201, {
        "request_id": request_id,
        "verdict": verdict,
        "reviewer": person.user,
        "audit_key": key,
    }


_REVIEW_CODES: Final = {403: "forbidden", 409: "review-not-open"}


def _audited_totp(
    deps: AccessDeps, person: Enrollment, code: Any, refuse: Callable[[int, str, str, str | None], ApiError]
) -> None:
    """Check the person's code; a wrong one is a refusal like any other, on record."""
    try:
        _totp(deps, person, code)
    except ApiError as exc:
        raise refuse(exc.status, exc.code, str(exc), exc.field) from exc


@route("POST", "/waivers")
def waive(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    """Security lets one person's next request of a tier past its review gate, with a reason.

    Every refusal is on record. The waiver is stored inactive, its event written, and only then
    activated: a waiver that is not on record never lets a request through, even one in flight.
    """
    person = _person(deps, request)
    body = request.body if isinstance(request.body, Mapping) else {}
    user, tier, reason = _text(body, "user"), _text(body, "tier"), _text(body, "reason").strip()
    approval = deps.policy.get(tier)
    target = user if re.fullmatch(USER_ID, user) else None
    known_tier = tier if approval is not None else None

    def refuse(status: int, code: str, message: str, field: str | None = None) -> ApiError:
        deps.audit.write(
            AuditEvent(
                event_type="waiver",
                actor=person.user,
                outcome="failed",
                requester=target,
                tier=known_tier,
                details={"refused": message[:500], "channel": "access-api"},
            )
        )
        return ApiError(status, code, message, field)

    if not _is_security(person):
        raise refuse(403, "forbidden", "only people enrolled with the security role waive the review gate")
    try:
        _body(request, ("user", "tier", "reason", "totp"))
    except ApiError as exc:
        raise refuse(exc.status, exc.code, str(exc), exc.field) from exc
    if target is not None and one_person(deps.store, person.user, target):
        raise refuse(
            403,
            "forbidden",
            "nobody waives their own review gate, under any name: ask another security person",
        )
    if target is None:
        raise refuse(400, "bad-input", "user: the person's user id, as enrolled", "user")
    if approval is None:
        known = ", ".join(sorted(deps.policy))
        raise refuse(400, "bad-input", f"tier: unknown tier {tier!r}; known tiers: {known}", "tier")
    if not approval.review_gate:
        raise refuse(400, "bad-input", f"tier: tier {tier!r} is not review-gated: nothing to waive", "tier")
    try:
        check_reason(reason)
    except ConfigError as exc:
        raise refuse(400, "bad-input", str(exc), exc.field) from exc
    lookup = deps.store.get_request
    try:
        # Checked before the code too, so a waiver that is not needed (or not yet) does not spend it.
        deps.admission.unreviewed_grant(tier, target, lookup=lookup)
        _audited_totp(deps, person, body.get("totp"), refuse)
        waiver = deps.admission.waive(
            tier, target, by=person.user, reason=reason, lookup=lookup, now=deps.clock()
        )
    except AdmissionRefused as exc:
        code = "grant-not-ended" if isinstance(exc, StillLive) else "nothing-to-waive"
        raise refuse(409, code, exc.problem, exc.field) from exc
    event = AuditEvent(
        event_type="waiver",
        actor=person.user,
        outcome="succeeded",
        request_id=waiver.blocks[-1],
        requester=target,
        tier=tier,
        reason=reason,
        expires_at=waiver.expires_at,
        details={
            "waiver_id": waiver.waiver_id,
            "unreviewed_requests": list(waiver.blocks),
            "channel": "access-api",
        },
    )
    try:
        key = deps.audit.write(event)
    except Exception:
        # Not on record, and never active: take it back so it cannot be activated later.
        deps.admission.withdraw_waiver(tier, target, waiver)
        raise
    if not deps.admission.activate_waiver(tier, target, waiver):
        # Replaced by another waiver between its store and now: on record, it let nobody through.
        deps.audit.write(
            replace(
                event,
                outcome="failed",
                details={**event.details, "withdrawn": "replaced by another waiver before it took effect"},
            )
        )
        raise ApiError(
            409,
            "waiver-replaced",
            f"another waiver for {target} on tier {tier!r} was given at the same time and replaced this one",
        )
    return 201, {
        "waiver_id": waiver.waiver_id,
        "user": target,
        "tier": tier,
        "unreviewed_request": waiver.blocks[-1],
        "unreviewed_requests": list(waiver.blocks),
        "reason": reason,
        "waived_by": person.user,
        "expires_at": waiver.expires_at,
        "audit_key": key,
    }


# -- halt and resume --------------------------------------------------------------------------------


def _halt(deps: AccessDeps, request: ApiRequest, *, halting: bool) -> tuple[int, Any]:
    try:
        tier, user = emergency_person(request.caller)
    except UnknownCaller as exc:
        raise ApiError(403, "not-emergency-session", str(exc)) from exc
    action = "halt" if halting else "resume"
    approval = deps.policy.get(tier)
    if approval is None or not (approval.may_halt if halting else approval.may_resume):
        raise ApiError(
            403,
            "forbidden",
            f"tier {tier!r} may not {action}"
            + ("" if halting else ": resuming needs a tier approved by a quorum (e.g. operator)"),
        )
    function = deps.halt_function if halting else deps.resume_function
    if not function:
        raise ApiError(404, "no-halt-actions", "this deployment has no halt actions")
    request_id = deps.admission.live_request(tier, user)
    now = deps.clock()
    # The person's request on the tier, or the extension whose window holds now.
    record = current_grant(deps.store, request_id, now) if request_id else None
    if record is None:
        raise ApiError(403, "no-active-grant", f"{user} holds no active grant of tier {tier!r}")
    body = _body(request, ("targets", "mode", "reason"))
    ok, result = _invoke(
        deps,
        function,
        {
            "targets": body.get("targets"),
            "mode": body.get("mode"),
            "reason": body.get("reason"),
            "actor": user,
            "request_id": record.request_id,
        },
    )
    if not ok:
        if _error_type(result) == "HaltAuditError":
            # Every target was acted on but a record could not be written: say what happened to each.
            try:
                detail = json.loads(str(result.get("errorMessage", "")))
            except ValueError:
                detail = {}
            error = {"code": f"{action}-not-recorded", "field": None, "message": _error_text(result)}
            return 502, {**(detail if isinstance(detail, dict) else {}), "error": error}
        raise ApiError(
            400 if _error_type(result) == "ConfigError" else 502, f"{action}-failed", _error_text(result)
        )
    return 200, result


@route("POST", "/halts")
def halt(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    return _halt(deps, request, halting=True)


@route("POST", "/resumes")
def resume(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    return _halt(deps, request, halting=False)


# -- enrollment -------------------------------------------------------------------------------------


def _enroller(deps: AccessDeps, request: ApiRequest, totp: Any) -> str:
    """Who may enroll: an enrolled security person (with their code), or a bootstrap admin."""
    if request.caller.principal_arn in deps.security_admins or request.caller.arn in deps.security_admins:
        return f"admin:{request.caller.name}"
    person = _person(deps, request)
    if not _is_security(person):
        _audit_refusal(deps, person.user, "enrollment", None, "not security")
        raise ApiError(
            403, "forbidden", "only security (or a bootstrap admin of the stack) may enroll people"
        )
    _totp(deps, person, totp)
    return person.user


def _not_themselves(deps: AccessDeps, actor: str, person: Enrollment) -> None:
    """A security person never enrolls themselves, under any name: no new roles, no second
    identity (it would be a second vote or review of their own). Another security person, or a
    bootstrap admin of the stack, does it, on record."""
    mine = deps.store.get_enrollment(actor)
    if mine is not None and same_identity(mine, person):
        _audit_refusal(deps, actor, "enrollment", None, f"enrolling themselves as {person.user}")
        raise ApiError(
            403,
            "forbidden",
            "you cannot enroll yourself or change your own roles, under any name: ask another "
            "security person",
            "user",
        )


@route("POST", "/enrollments")
def create_enrollment(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    body = _body(request, ("user", "principal_arn", "email", "roles", "totp"))
    actor = _enroller(deps, request, body.get("totp"))
    try:
        person = validate_enrollment(
            body.get("user"), body.get("principal_arn"), body.get("email"), body.get("roles")
        )
        _not_themselves(deps, actor, person)
        uri = enroll(deps.store, person.user, person.principal_arn, person.email, person.roles)
    except ConfigError as exc:
        raise ApiError(400, "bad-input", str(exc), exc.field) from exc
    deps.audit.write(
        AuditEvent(
            event_type="enrollment",
            actor=actor,
            outcome="succeeded",
            requester=person.user,
            details={
                "user": person.user,
                "principal_arn": person.principal_arn,
                "roles": list(person.roles),
            },
        )
    )
    return 201, {"user": person.user, "otpauth_uri": uri}


@route("DELETE", "/enrollments/{user}")
def delete_enrollment(deps: AccessDeps, request: ApiRequest, params: Mapping[str, str]) -> tuple[int, Any]:
    user = params.get("user", "")
    if not re.fullmatch(USER_ID, user):
        raise ApiError(400, "bad-input", "user: not a user id", "user")
    actor = _enroller(
        deps, request, (request.body or {}).get("totp") if isinstance(request.body, Mapping) else None
    )
    if not deps.store.delete_enrollment(user):
        raise ApiError(404, "not-found", f"{user!r} is not enrolled")
    deps.audit.write(
        AuditEvent(
            event_type="enrollment",
            actor=actor,
            outcome="succeeded",
            requester=user,
            details={"removed": user},
        )
    )
    return 200, {"user": user, "removed": True}


# -- plumbing ---------------------------------------------------------------------------------------


def _error_type(result: Any) -> str:
    return str(result.get("errorType", "")) if isinstance(result, Mapping) else ""


def _error_text(result: Any) -> str:
    if isinstance(result, Mapping) and "errorMessage" in result:
        return str(result["errorMessage"])[:500]
    return "unexpected answer"


def _response(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": json.dumps(body, sort_keys=True, default=str),
        "isBase64Encoded": False,
    }


def _error(exc: ApiError) -> dict[str, Any]:
    return _response(exc.status, {"error": {"code": exc.code, "field": exc.field, "message": str(exc)}})


def _parse(event: Any) -> ApiRequest:
    """The request in an API Gateway (HTTP API, payload 2.0) event; ApiError for anything else."""
    if not isinstance(event, Mapping):
        raise ApiError(400, "bad-event", "not an API Gateway HTTP API event")
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    if not isinstance(http, Mapping):
        http = {}
    raw = event.get("body")
    if raw is None:
        raw = ""
    if not isinstance(raw, str | bytes):
        raise ApiError(400, "bad-input", "the body must be JSON text")
    # Base64 is a third longer than what it encodes: refuse early what cannot fit once decoded.
    if len(raw) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise ApiError(413, "too-large", f"the body may be at most {MAX_BODY_BYTES} bytes")
    try:
        if isinstance(raw, str) and event.get("isBase64Encoded") is True:
            raw = base64.b64decode(raw.encode("ascii"), validate=True)
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
    except ValueError as exc:  # binascii.Error, UnicodeError
        raise ApiError(400, "bad-input", "the body must be UTF-8 JSON") from exc
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too-large", f"the body may be at most {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than Python's stack
        raise ApiError(400, "bad-input", "the body must be JSON") from exc
    query = event.get("queryStringParameters") or {}
    return ApiRequest(
        method=str(http.get("method") or "GET").upper(),
        path=str(event.get("rawPath") or http.get("path") or "/"),
        query={str(k): str(v) for k, v in query.items()} if isinstance(query, Mapping) else {},
        body=body,
        caller=caller_from_event(event),
    )


def handle(deps: AccessDeps, event: Any) -> dict[str, Any]:
    try:
        request = _parse(event)
        path = request.path
        allowed = [m for m, p, _ in _ROUTES if p.match(path)]
        for method, pattern, fn in _ROUTES:
            match = pattern.match(path)
            if match and method == request.method:
                status, body = fn(deps, request, match.groupdict())
                log.info(
                    "access api",
                    extra=log_fields(
                        method=method, path=pattern.pattern, status=status, caller=request.caller.arn
                    ),
                )
                return _response(status, body)
        if allowed:
            raise ApiError(405, "method", f"use {', '.join(sorted(set(allowed)))} on this path")
        raise ApiError(404, "no-route", "no such route: see breakglass --help")
    except NotAuthenticated as exc:
        log.warning("unauthenticated call", extra=log_fields(problem=str(exc)))
        return _error(ApiError(401, "not-authenticated", str(exc)))
    except ApiError as exc:
        # Every refusal is a log line (Logs Insights, the dashboard); refusals of a verified
        # person are also audit events where the route writes them.
        log.warning(
            "access api refused",
            extra=log_fields(
                status=exc.status,
                code=exc.code,
                field=exc.field,
                path=str(event.get("rawPath", ""))[:200] if isinstance(event, Mapping) else "",
            ),
        )
        return _error(exc)
    except (AdmissionRefused, ConfigError) as exc:
        return _error(ApiError(400, "bad-input", str(exc), getattr(exc, "field", None)))


def security_admins_from_archive(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The bootstrap principals the component shipped (``SECURITY_ADMINS_FILE``, maybe ``[]``)."""
    listed = archive_json(SECURITY_ADMINS_FILE, environ)
    return tuple(
        require_str_list(
            SECURITY_ADMINS_FILE, listed, pattern=IAM_ROLE_OR_USER_ARN, hint="must be an IAM user or role ARN"
        )
    )


def deps_from_env(environ: Mapping[str, str] | None = None, *, session: Any = None) -> AccessDeps:
    env = os.environ if environ is None else environ
    boto = session or boto3
    store = Store.from_env(env, session=session)
    admins = security_admins_from_archive(env)
    return AccessDeps(
        store=store,
        admission=Admission(store.dynamodb, store.table),
        audit=audit_writer_from_env(env, session=session),
        sfn=boto.client("stepfunctions"),
        lambda_client=boto.client("lambda"),
        state_machine_arn=required_env(ENV_STATE_MACHINE_ARN, env),
        access_function=required_env(ENV_ACCESS_FUNCTION, env),
        halt_function=env.get(ENV_HALT_FUNCTION) or None,
        resume_function=env.get(ENV_RESUME_FUNCTION) or None,
        tiers=grants.load_tiers(env),
        policy=load_policy(env),
        security_admins=admins,
    )


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point behind the access API (HTTP API payload 2.0)."""
    return handle(deps_from_env(), event)
