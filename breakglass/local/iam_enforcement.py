"""IAM enforced on every call to an emulator that asks for it: moto's checks, completed.

What moto 5.2 checks by itself once enforcement is on (``INITIAL_NO_AUTH_ACTION_COUNT`` /
``set_initial_no_auth_action_count``, see ``moto/core/authorization.py`` and
``moto/iam/access_control.py``):

- the SigV4 signature, against IAM users' access keys and STS sessions' keys and tokens
  (unknown key: ``InvalidClientTokenId``; wrong secret or altered request: ``SignatureDoesNotMatch``);
- the caller's identity policies: a user's inline, attached and group policies; a role session's
  role inline and attached policies;
- Action, and Resource only where moto names one: S3 (bucket / object), SQS (queue), IAM calls on
  a role (``RoleName``) and ``sts:AssumeRole`` (the role). Every other call is checked against
  resource ``*``, which a statement naming ARNs never matches;
- for ``sts:AssumeRole``, the role's trust policy: its ``Principal.AWS`` compared as a string
  with the caller's ARN, and ``StringEquals`` on ``sts:ExternalId``. Identity policy and trust
  must both allow (AWS needs only the trust when it names the caller).

What this module adds, only for calls that reach an emulator (``breakglass.local.calls``; other
moto users in the process keep moto's behaviour):

- a switch per emulator instead of one per process;
- the resource of each call for the services this package's functions use
  (:mod:`breakglass.local.iam_resources`: DynamoDB tables, KMS keys by id, alias or ciphertext,
  Secrets Manager secrets, SNS topics, SES identities, Step Functions state machines and
  executions (task tokens too), Lambda functions, SageMaker endpoints, configs and models, IAM
  users and policies, EventBridge rules, CloudWatch alarms, SSM parameters), and the IAM action
  where it differs from the API operation. When the resource cannot be told, the action alone
  decides;
- statements evaluated as IAM does (:mod:`breakglass.local.iam_conditions`): conditions on the
  keys in :func:`request_context`, principals that name an account or a role's sessions, and an
  Allow that does not apply being *not applicable* rather than a deny;
- what moto's STS drops: a session's source identity (inherited through role chaining), session
  tags, whether MFA was given, and its issue time (:func:`session_facts`); AssumeRole with a
  source identity or tags also needs ``sts:SetSourceIdentity`` / ``sts:TagSession`` in the trust;
- credentials for a service acting under a role (:func:`service_credentials`): Lambda runs each
  function with its own role, Step Functions calls Lambda with the state machine's role; the role
  must trust the service.

Not evaluated by anyone here (documented in docs/emulator.md): permission boundaries, session
policies, SCPs, resource-based policies (bucket, key, topic, queue and secret policies; a Lambda
function's policy is checked only where the emulator plays API Gateway or EventBridge), the
service-side calls AWS makes as the caller (KMS-via-service for S3 SSE-KMS and encrypted SNS
topics), condition keys the emulator does not know (taken to hold, as moto does), and policy
variables. Session expiry is not enforced.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from breakglass.contracts import iso, utc_now
from breakglass.local import calls
from breakglass.local.iam_conditions import (
    ANY_RESOURCE,
    Context,
    Decision,
    lower_keys,
    policy_decision,
    statement_decision,
)
from breakglass.local.iam_resources import call_params, resources_of

# Keys every call's context may hold; prefixes cover tag keys.
_KNOWN_KEYS: Final = frozenset(
    {
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:TokenIssueTime",
        "aws:SourceIdentity",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:userid",
        "aws:username",
        "aws:MultiFactorAuthPresent",
        "aws:MultiFactorAuthAge",
        "aws:SecureTransport",
        "aws:RequestedRegion",
        "aws:ViaAWSService",
    }
)
_KNOWN_PREFIXES: Final = ("aws:PrincipalTag/",)
# Keys only an AssumeRole call has (in the trust and in the caller's policies).
_ASSUME_ROLE_KEYS: Final = frozenset(
    {"sts:SourceIdentity", "sts:RoleSessionName", "sts:ExternalId", "aws:TagKeys", "sts:TransitiveTagKeys"}
)
_ASSUME_ROLE_PREFIXES: Final = ("aws:RequestTag/",)

SERVICE_SESSION_SECONDS: Final = 3600
_RENEW_BEFORE: Final = timedelta(minutes=5)


class ServiceRoleError(PermissionError):
    """A service was asked to act under a role that does not exist or does not trust it."""


# -- session facts moto's STS does not keep ------------------------------------------------------


@dataclass(frozen=True)
class SessionFacts:
    """What an STS session carries beyond moto's AssumedRole."""

    issued_at: datetime
    source_identity: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    mfa_authenticated: bool = False
    caller_arn: str | None = None


_FACTS_ATTRIBUTE: Final = "breakglass_session_facts"


def session_facts(assumed_role: Any) -> SessionFacts:
    """The facts recorded for a moto ``AssumedRole`` (a session the emulator did not see: none)."""
    facts = getattr(assumed_role, _FACTS_ATTRIBUTE, None)
    if isinstance(facts, SessionFacts):
        return facts
    expiration = getattr(assumed_role, "expiration", None)
    issued = (expiration - timedelta(seconds=SERVICE_SESSION_SECONDS)) if expiration else utc_now()
    return SessionFacts(issued_at=issued.replace(tzinfo=issued.tzinfo or utc_now().tzinfo))


def _set_facts(assumed_role: Any, facts: SessionFacts) -> None:
    setattr(assumed_role, _FACTS_ATTRIBUTE, facts)


def find_session(access_key_id: str) -> Any | None:
    """moto's ``AssumedRole`` for a temporary access key, in whichever account holds it."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends.values()):
        for backend in list(account.values()):
            for assumed in list(backend.assumed_roles):
                if assumed.access_key_id == access_key_id:
                    return assumed
    return None


def find_user(access_key_id: str) -> Any | None:
    """moto's IAM ``User`` owning a long-term access key, in whichever account holds it."""
    from moto.iam.models import iam_backends

    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            key = backend.access_keys.get(access_key_id)
            if key is not None and getattr(key, "user_name", None):
                return backend.get_user(str(key.user_name))
    return None


# -- the principal behind a key, as IAM and CloudTrail describe it -------------------------------


@dataclass(frozen=True)
class Principal:
    """Who signed a request."""

    type: str  # "IAMUser" or "AssumedRole"
    arn: str
    account_id: str
    principal_id: str  # user id, or "ROLEID:session"
    access_key_id: str
    user_name: str | None = None
    role_arn: str | None = None
    role_id: str | None = None
    role_name: str | None = None
    session_name: str | None = None
    facts: SessionFacts | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def _tag_values(tags: Any) -> dict[str, str]:
    """moto keeps IAM tags as {key: {"Key", "Value"}} (or a list of such); as a plain mapping."""
    if isinstance(tags, Mapping):
        return {str(k): str(v.get("Value") if isinstance(v, Mapping) else v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags or []}


def principal_for(access_key_id: str) -> Principal | None:
    """The IAM user or STS session owning ``access_key_id`` (None for a key nobody issued)."""
    from moto.iam.models import iam_backends

    session = find_session(access_key_id)
    if session is not None:
        role_name = session.role_arn.split("/")[-1]
        role_id = session.user_id.split(":")[0]
        role_tags: dict[str, str] = {}
        backend = iam_backends[session.account_id][session.partition]
        try:
            role = backend.get_role_by_arn(session.role_arn)
            role_tags = _tag_values(role.tags)
        except Exception:  # the role was deleted; the session's own facts still stand
            pass
        facts = session_facts(session)
        return Principal(
            type="AssumedRole",
            arn=session.arn,
            account_id=session.account_id,
            principal_id=session.user_id,
            access_key_id=access_key_id,
            role_arn=session.role_arn,
            role_id=role_id,
            role_name=role_name,
            session_name=session.session_name,
            facts=facts,
            tags={**role_tags, **facts.tags},
        )
    user = find_user(access_key_id)
    if user is not None:
        tags = _tag_values(getattr(user, "tags", None))
        return Principal(
            type="IAMUser",
            arn=user.arn,
            account_id=user.account_id,
            principal_id=user.id,
            access_key_id=access_key_id,
            user_name=user.name,
            tags=tags,
        )
    return None


def request_context(
    principal: Principal | None, *, region: str, assume_role: Mapping[str, Any] | None = None
) -> dict[str, list[str]]:
    """The condition keys of one call: time (the emulator's clock), the principal and its session,
    and for AssumeRole the request's source identity, session name, tags and MFA."""
    now = utc_now()
    context: dict[str, list[str]] = {
        "aws:CurrentTime": [iso(now)],
        "aws:EpochTime": [str(int(now.timestamp()))],
        # The emulator stands in for AWS's HTTPS endpoints; SDK calls to AWS always use TLS.
        "aws:SecureTransport": ["true"],
        "aws:RequestedRegion": [region],
        "aws:ViaAWSService": ["false"],
    }
    mfa = False
    mfa_at: datetime | None = None
    if principal is not None:
        context["aws:PrincipalAccount"] = [principal.account_id]
        context["aws:userid"] = [principal.principal_id]
        for key, value in principal.tags.items():
            context[f"aws:PrincipalTag/{key}"] = [value]
        if principal.type == "IAMUser":
            context["aws:PrincipalArn"] = [principal.arn]
            context["aws:PrincipalType"] = ["User"]
            context["aws:username"] = [principal.user_name or ""]
        else:
            facts = principal.facts or SessionFacts(issued_at=now)
            context["aws:PrincipalArn"] = [principal.role_arn or principal.arn]
            context["aws:PrincipalType"] = ["AssumedRole"]
            context["aws:TokenIssueTime"] = [iso(facts.issued_at)]
            context["aws:MultiFactorAuthPresent"] = ["true" if facts.mfa_authenticated else "false"]
            if facts.source_identity:
                context["aws:SourceIdentity"] = [facts.source_identity]
            if facts.mfa_authenticated:
                mfa, mfa_at = True, facts.issued_at
    if assume_role is not None:
        context["sts:RoleSessionName"] = [str(assume_role.get("RoleSessionName") or "")]
        source_identity = assume_role.get("SourceIdentity")
        if source_identity:
            context["sts:SourceIdentity"] = [str(source_identity)]
        if assume_role.get("ExternalId"):
            context["sts:ExternalId"] = [str(assume_role["ExternalId"])]
        tags: Mapping[str, str] = assume_role.get("Tags") or {}
        for key, value in tags.items():
            context[f"aws:RequestTag/{key}"] = [value]
        if tags:
            context["aws:TagKeys"] = list(tags)
        if assume_role.get("TransitiveTagKeys"):
            context["sts:TransitiveTagKeys"] = list(assume_role["TransitiveTagKeys"])
        if assume_role.get("SerialNumber") and assume_role.get("TokenCode"):
            mfa, mfa_at = True, now
        context["aws:MultiFactorAuthPresent"] = ["true" if mfa else "false"]
    if mfa and mfa_at is not None:
        context["aws:MultiFactorAuthAge"] = [str(max(0, int((now - mfa_at).total_seconds())))]
    return lower_keys(context)


_KNOWN_LOWER: Final = frozenset(k.lower() for k in _KNOWN_KEYS)
_KNOWN_PREFIXES_LOWER: Final = tuple(p.lower() for p in _KNOWN_PREFIXES)
_ASSUME_ROLE_LOWER: Final = frozenset(k.lower() for k in _ASSUME_ROLE_KEYS)
_ASSUME_ROLE_PREFIXES_LOWER: Final = tuple(p.lower() for p in _ASSUME_ROLE_PREFIXES)


def known_key_for(assume_role: bool) -> Callable[[str], bool]:
    """Which (lower-case) condition keys the emulator knows for a call (AssumeRole knows more)."""

    def known(key: str) -> bool:
        if key in _KNOWN_LOWER or key.startswith(_KNOWN_PREFIXES_LOWER):
            return True
        return assume_role and (key in _ASSUME_ROLE_LOWER or key.startswith(_ASSUME_ROLE_PREFIXES_LOWER))

    return known


# -- statement evaluation inside moto's IAM check --------------------------------------------


@dataclass(frozen=True)
class _Evaluation:
    context: Context
    known: Callable[[str], bool]


_EVALUATION = threading.local()


@contextmanager
def _evaluating(context: Context, known: Callable[[str], bool]) -> Iterator[None]:
    previous = getattr(_EVALUATION, "value", None)
    _EVALUATION.value = _Evaluation(context, known)
    try:
        yield
    finally:
        _EVALUATION.value = previous


def _statement_is_action_permitted(
    self: Any,
    action: str,
    resource: str = "*",
    principal: str | None = None,
    incoming_condition_values: dict[str, str] | None = None,
) -> Any:
    """``IAMPolicyStatement.is_action_permitted`` for calls to an emulator (moto's otherwise)."""
    from moto.iam.access_control import PermissionResult

    evaluation: _Evaluation | None = getattr(_EVALUATION, "value", None)
    if evaluation is None:
        assert _ORIGINALS.statement is not None
        return _ORIGINALS.statement(self, action, resource, principal, incoming_condition_values)
    decision = statement_decision(
        self._statement, action, resource, evaluation.context, evaluation.known, principal
    )
    return {
        Decision.ALLOW: PermissionResult.PERMITTED,
        Decision.DENY: PermissionResult.DENIED,
        Decision.NOT_APPLICABLE: PermissionResult.NEUTRAL,
    }[decision]


# -- the check ---------------------------------------------------------------------------------


def _assume_role_request(params: Mapping[str, Any], caller: Principal | None) -> dict[str, Any]:
    """AssumeRole's parameters with tags as a mapping and the caller's source identity inherited."""
    tags: dict[str, str] = {}
    index = 1
    while f"Tags.member.{index}.Key" in params:
        tags[str(params[f"Tags.member.{index}.Key"])] = str(params.get(f"Tags.member.{index}.Value", ""))
        index += 1
    transitive = []
    index = 1
    while f"TransitiveTagKeys.member.{index}" in params:
        transitive.append(str(params[f"TransitiveTagKeys.member.{index}"]))
        index += 1
    request = dict(params)
    request["Tags"] = tags
    request["TransitiveTagKeys"] = transitive
    if caller is not None and caller.facts is not None and caller.facts.source_identity:
        # A source identity, once set, follows the session through role chaining.
        request.setdefault("SourceIdentity", caller.facts.source_identity)
    return request


def _denied(iam_request: Any) -> None:
    iam_request._raise_access_denied()


def _call_context(
    response: Any, action: str
) -> tuple[Principal | None, dict[str, Any], dict[str, Any] | None]:
    """The caller (None when unsigned or unknown), the call's parameters, and AssumeRole's request."""
    match = re.search(r"Credential=([^/,\s]+)/", str(response.headers.get("Authorization") or ""))
    caller = principal_for(match.group(1)) if match else None
    params = call_params(response)
    assume = _assume_role_request(params, caller) if action == "AssumeRole" else None
    return caller, params, assume


def _check(response: Any, iam_request_cls: type, moto_resource: str) -> None:
    from moto.core.exceptions import InvalidClientTokenIdError

    headers = response.headers
    if not headers.get("Authorization"):
        raise _missing_token()
    action = response._get_action()
    iam_request = iam_request_cls(
        account_id=response.current_account,
        method=response.method,
        path=_path_with_query(response),
        # The signed payload: the form moto parsed (its raw body is consumed by then) for query
        # APIs, else the raw body; moto's parsed parameters of any other request would change the
        # payload hash (Lambda's ListFunctions, an Invoke without payload).
        data=response.data if _is_form(response) else {},
        body=response.raw_body,
        headers=headers,
        action=action,
    )
    iam_request.check_signature()
    caller, params, assume = _call_context(response, action)
    if caller is None:
        raise InvalidClientTokenIdError()
    context = _EVALUATION.value.context
    for iam_action, resource in resources_of(response, action, moto_resource):
        iam_request._action = iam_action
        iam_request.check_action_permitted(resource)
    if assume is not None:
        _check_session_actions(iam_request, str(params.get("RoleArn") or ""), assume, caller, context)


def _check_session_actions(
    iam_request: Any, role_arn: str, assume: Mapping[str, Any], caller: Principal, context: Context
) -> None:
    """STS authorizes a source identity and session tags as separate actions the trust must allow."""
    from moto.iam.models import iam_backends

    needed = []
    if assume.get("SourceIdentity"):
        needed.append("sts:SetSourceIdentity")
    if assume.get("Tags"):
        needed.append("sts:TagSession")
    if not needed:
        return
    try:
        role = iam_backends[caller.account_id]["aws"].get_role_by_arn(role_arn)
        trust = json.loads(role.assume_role_policy_document)
    except Exception:
        return  # moto's own check has already refused a missing role
    for action in needed:
        decision = policy_decision(trust, action, ANY_RESOURCE, context, known_key_for(True), caller.arn)
        if decision is not Decision.ALLOW:
            iam_request._action = action
            _denied(iam_request)


def _is_form(response: Any) -> bool:
    return "x-www-form-urlencoded" in str(response.headers.get("Content-Type") or "")


def _path_with_query(response: Any) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(response.uri)
    path = str(response.raw_path)
    return f"{path}?{parsed.query}" if parsed.query else path


def _missing_token() -> Exception:
    from moto.core.exceptions import _RESTError

    class MissingAuthenticationTokenError(_RESTError):
        code = 403

    return MissingAuthenticationTokenError("MissingAuthenticationToken", "Missing Authentication Token")


def _authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """moto's hook, deciding per emulator: enforce, skip, or (outside any emulator) moto's own way."""
    scope = calls.current()
    if scope is None:
        assert _ORIGINALS.authorize is not None
        _ORIGINALS.authorize(self, iam_request_cls, resource)
        return
    # The evaluation context lasts for the rest of the request (cleared by request_finished):
    # moto also evaluates a bucket's policy when it serves an object, after this check.
    action = self._get_action()
    caller, _, assume = _call_context(self, action)
    _EVALUATION.value = _Evaluation(
        request_context(caller, region=str(self.region), assume_role=assume),
        known_key_for(assume is not None),
    )
    if not scope.enforce_iam:
        return
    from moto.core.authorization import ActionAuthenticatorMixin

    if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    from moto.core.exceptions import JsonRESTError, _RESTError

    try:
        _check(self, iam_request_cls, resource)
    except _RESTError as error:
        if isinstance(error, JsonRESTError) or not _speaks_json(self):
            raise
        # moto answers in XML whatever the protocol; JSON services' SDKs read a JSON error, and
        # call a refusal AccessDeniedException.
        code = "AccessDeniedException" if error.error_type == "AccessDenied" else error.error_type
        converted = JsonRESTError(code, error.message)
        converted.code = error.code
        raise converted from error


def _speaks_json(response: Any) -> bool:
    from moto.core.utils import get_service_model

    try:
        protocol = str(get_service_model(response.boto3_service_name).protocol)
    except Exception:
        return False
    return protocol in ("json", "rest-json")


def request_started(authorization: str, default_region: str) -> None:
    """Set the evaluation context of a request as soon as it arrives (the server calls this).

    moto evaluates a bucket's policy before it authorizes an object call, so the context must
    exist before moto's IAM hook refines it.
    """
    match = re.search(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/", authorization)
    caller = principal_for(match.group(1)) if match else None
    region = match.group(2) if match else default_region
    _EVALUATION.value = _Evaluation(request_context(caller, region=region), known_key_for(False))


def request_finished() -> None:
    """Forget the finished request's evaluation context (the server calls this per request)."""
    _EVALUATION.value = None


# -- API Gateway's IAM authorization (execute-api:Invoke) -------------------------------------

MAX_SIGNATURE_AGE: Final = timedelta(minutes=15)


class RequestRefused(Exception):
    """API Gateway refuses the request: ``reason`` is missing, invalid-key, signature, expired or denied."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_CANONICAL_HEADERS: Final = {
    name.lower(): name
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256")
}


def authorize_execute_api(
    *,
    account_id: str,
    region: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    resource_arn: str,
) -> Principal:
    """What API Gateway does for an ``AWS_IAM`` route: verify the SigV4 signature (service
    ``execute-api``) against the emulator's credentials, then authorize ``execute-api:Invoke`` on
    ``resource_arn`` against the caller's identity policies. Returns the caller."""
    from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError, SignatureDoesNotMatchError
    from moto.iam.access_control import IAMRequest

    # moto's signature check looks headers up by their usual spelling.
    canonical = {_CANONICAL_HEADERS.get(k.lower(), k): v for k, v in headers.items()}
    authorization = canonical.get("Authorization", "")
    if not authorization:
        raise RequestRefused("missing", "Missing Authentication Token")
    scope = re.search(r"Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request", authorization)
    if not scope or scope.group(4) != "execute-api" or scope.group(3) != region:
        raise RequestRefused("signature", "the credential scope must be <date>/<api region>/execute-api")
    stamp = canonical.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RequestRefused("signature", "X-Amz-Date is missing or malformed") from exc
    # Signatures are made with real time (botocore), so their age is measured with real time.
    if abs(datetime.now(UTC) - signed_at) > MAX_SIGNATURE_AGE:
        raise RequestRefused("expired", "Signature expired")
    try:
        request = IAMRequest(
            account_id=account_id,
            method=method,
            path=path,
            data={},
            body=body,
            headers=canonical,
            action="Invoke",
        )
        request.check_signature()
    except InvalidClientTokenIdError as exc:
        raise RequestRefused("invalid-key", "The security token included in the request is invalid.") from exc
    except SignatureDoesNotMatchError as exc:
        raise RequestRefused("signature", "The request signature does not match.") from exc
    caller = principal_for(scope.group(1))
    if caller is None:
        raise RequestRefused("invalid-key", "The security token included in the request is invalid.")
    with _evaluating(request_context(caller, region=region), known_key_for(False)):
        try:
            request.check_action_permitted(resource_arn)
        except AccessDeniedError as exc:
            raise RequestRefused("denied", f"{caller.arn} may not execute-api:Invoke {resource_arn}") from exc
    return caller


# -- STS: keep what moto drops -------------------------------------------------------------------


def _assume_role(self: Any) -> Any:
    assert _ORIGINALS.assume_role is not None
    result = _ORIGINALS.assume_role(self)
    session = result.result.get("Credentials") if isinstance(result.result, dict) else None
    if session is None:
        return result
    caller = principal_for(str(self.get_access_key()))
    request = _assume_role_request(call_params(self), caller)
    inherited: dict[str, str] = {}
    if caller is not None and caller.facts is not None:
        # Transitive tags follow a chained session.
        inherited = {k: v for k, v in caller.facts.tags.items() if k in caller.facts.transitive_tag_keys}
    facts = SessionFacts(
        issued_at=utc_now(),
        source_identity=request.get("SourceIdentity") or None,
        tags={**inherited, **request["Tags"]},
        transitive_tag_keys=tuple(request["TransitiveTagKeys"]),
        mfa_authenticated=bool(request.get("SerialNumber") and request.get("TokenCode"))
        or bool(caller and caller.facts and caller.facts.mfa_authenticated),
        caller_arn=caller.arn if caller else None,
    )
    _set_facts(session, facts)
    if facts.source_identity:
        result.result["SourceIdentity"] = facts.source_identity
    return result


# -- credentials of a service acting under a role ------------------------------------------------


@dataclass(frozen=True)
class ServiceCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    arn: str


_SERVICE_SESSIONS: dict[tuple[str, str, str], ServiceCredentials] = {}
_SERVICE_LOCK = threading.Lock()


def trusts_service(trust: Mapping[str, Any], service: str) -> bool:
    """Whether a trust policy lets ``service`` (e.g. ``lambda.amazonaws.com``) assume the role."""
    allowed = False
    for statement in trust.get("Statement") or []:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else list(actions)
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal")
        services = principal.get("Service") if isinstance(principal, Mapping) else None
        services = [services] if isinstance(services, str) else list(services or [])
        named = principal == "*" or service in services
        if named and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (named and statement.get("Effect") == "Allow")
    return allowed


def service_credentials(role_arn: str, service: str, *, session_name: str, region: str) -> ServiceCredentials:
    """Temporary credentials of ``role_arn`` as ``service`` would get them from STS.

    The role must exist and trust the service. Sessions are reused until five minutes before
    they expire, like a service's cached credentials.
    """
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    match = re.fullmatch(r"arn:([\w-]+):iam::(\d{12}):role/.+", role_arn)
    if not match:
        raise ServiceRoleError(f"{role_arn!r} is not a role ARN; {service} cannot assume it")
    partition, account = match.groups()
    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception as exc:
        raise ServiceRoleError(f"role {role_arn} does not exist; {service} cannot assume it") from exc
    if not trusts_service(json.loads(role.assume_role_policy_document), service):
        raise ServiceRoleError(f"role {role_arn} does not trust {service}; the service cannot assume it")
    key = (role_arn, service, session_name)
    with _SERVICE_LOCK:
        cached = _SERVICE_SESSIONS.get(key)
        if cached is not None and cached.expiration - utc_now() > _RENEW_BEFORE:
            return cached
        assumed = sts_backends[account][partition].assume_role(
            region_name=region,
            role_session_name=session_name,
            role_arn=role_arn,
            # moto's own STS passes None for absent parameters; its annotations say str.
            policy=None,  # type: ignore[arg-type]
            duration=SERVICE_SESSION_SECONDS,
            external_id=None,  # type: ignore[arg-type]
        )
        now = utc_now()
        _set_facts(assumed, SessionFacts(issued_at=now, caller_arn=service))
        credentials = ServiceCredentials(
            access_key_id=assumed.access_key_id,
            secret_access_key=assumed.secret_access_key,
            session_token=assumed.session_token,
            expiration=now + timedelta(seconds=SERVICE_SESSION_SECONDS),
            arn=assumed.arn,
        )
        _SERVICE_SESSIONS[key] = credentials
        return credentials


# -- AWS managed policies, loaded when first used ------------------------------------------------

_MANAGED_DATA: dict[str, Any] = {}
_MANAGED_LOCK = threading.Lock()


def ensure_aws_managed_policy(account_id: str, policy_arn: str, partition: str = "aws") -> bool:
    """Make an AWS managed policy (``arn:aws:iam::aws:policy/...``) exist in the account's IAM.

    moto loads all ~1,600 of them per account only when configured to, which costs every other
    moto user in the process; the emulator loads the few a deployment attaches, on demand.
    Returns False for an ARN that is not an AWS managed policy moto knows.
    """
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    match = re.fullmatch(r"arn:[\w-]+:iam::aws:policy/(?:.*/)?([^/]+)", policy_arn)
    if not match:
        return False
    backend = iam_backends[account_id][partition]
    if policy_arn in backend.managed_policies:
        return True
    with _MANAGED_LOCK:
        if not _MANAGED_DATA:
            _MANAGED_DATA.update(json.loads(aws_managed_policies_data))
        data = _MANAGED_DATA.get(match.group(1))
        if data is None:
            return False
        policy = AWSManagedPolicy.from_data(match.group(1), account_id, "us-east-1", data)
        if policy.arn != policy_arn:
            return False
        backend.managed_policies[policy.arn] = policy
        backend.aws_managed_policies.append(policy)
    return True


# -- resource policies the emulator plays the service for ------------------------------------


def function_admits(function: Any, service: str, *, source_arn: str, source_account: str) -> bool:
    """Whether a Lambda function's resource policy lets ``service`` invoke it for ``source_arn``.

    What Lambda checks when EventBridge or API Gateway invokes a function: a statement naming
    the service principal, ``lambda:InvokeFunction`` on the function, and its
    ``aws:SourceArn`` / ``aws:SourceAccount`` conditions.
    """
    policy = getattr(function, "policy", None)
    statements = list(getattr(policy, "statements", None) or [])
    if not statements:
        return False
    context = lower_keys({"aws:SourceArn": [source_arn], "aws:SourceAccount": [source_account]})
    decision = policy_decision(
        {"Statement": statements},
        "lambda:InvokeFunction",
        str(function.function_arn),
        context,
        lambda key: key in ("aws:sourcearn", "aws:sourceaccount"),
        principal=service,
    )
    if decision is Decision.ALLOW:
        return True
    # moto stores the statement's resource with ":$LATEST"; the unqualified ARN is the same function.
    decision = policy_decision(
        {"Statement": statements},
        "lambda:InvokeFunction",
        f"{function.function_arn}:$LATEST",
        context,
        lambda key: key in ("aws:sourcearn", "aws:sourceaccount"),
        principal=service,
    )
    return decision is Decision.ALLOW


# -- installing the hooks ----------------------------------------------------------------------


@dataclass
class _Originals:
    authorize: Callable[..., None] | None = None
    statement: Callable[..., Any] | None = None
    assume_role: Callable[..., Any] | None = None
    users: int = 0


_ORIGINALS = _Originals()
_INSTALL_LOCK = threading.Lock()


def install() -> None:
    """Hook moto's IAM check, statement evaluation and AssumeRole (counted; see :func:`uninstall`)."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicyStatement
    from moto.sts.responses import TokenResponse

    with _INSTALL_LOCK:
        if _ORIGINALS.users == 0:
            _ORIGINALS.authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action
            _ORIGINALS.statement = IAMPolicyStatement.is_action_permitted
            _ORIGINALS.assume_role = TokenResponse.assume_role
            ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action  # type: ignore[method-assign]
            IAMPolicyStatement.is_action_permitted = _statement_is_action_permitted  # type: ignore[method-assign]
            TokenResponse.assume_role = _assume_role  # type: ignore[method-assign]
        _ORIGINALS.users += 1


def uninstall() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicyStatement
    from moto.sts.responses import TokenResponse

    with _INSTALL_LOCK:
        if _ORIGINALS.users == 0:
            return
        _ORIGINALS.users -= 1
        if _ORIGINALS.users == 0:
            ActionAuthenticatorMixin._authenticate_and_authorize_action = _ORIGINALS.authorize  # type: ignore[method-assign,assignment]
            IAMPolicyStatement.is_action_permitted = _ORIGINALS.statement  # type: ignore[method-assign,assignment]
            TokenResponse.assume_role = _ORIGINALS.assume_role  # type: ignore[method-assign,assignment]
            _ORIGINALS.authorize = _ORIGINALS.statement = _ORIGINALS.assume_role = None
            with _SERVICE_LOCK:
                _SERVICE_SESSIONS.clear()


__all__ = [
    "Principal",
    "RequestRefused",
    "ServiceCredentials",
    "ServiceRoleError",
    "SessionFacts",
    "authorize_execute_api",
    "ensure_aws_managed_policy",
    "find_session",
    "function_admits",
    "install",
    "principal_for",
    "request_context",
    "request_finished",
    "request_started",
    "resources_of",
    "service_credentials",
    "session_facts",
    "trusts_service",
    "uninstall",
]
