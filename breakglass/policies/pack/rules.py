"""The guardrail rules, as plain functions over resources (type token, name, inputs/outputs).

Two kinds, both returning a list of :class:`Finding` (empty: the rule holds):

- a **resource rule** reads one resource: ``rule(resource, config)``;
- a **stack rule** needs several at once (a role and the policies it holds, a function and its role,
  a bucket and its lock): ``rule(resources, config)``.

CrossGuard runs them as ``ResourceValidationPolicy`` / ``StackValidationPolicy`` (``__main__.py``);
``breakglass synth --check`` runs them over a synthesized program. Property names are Pulumi's
(camelCase), as both see them. Imports nothing from pulumi: the rules are tested directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from breakglass.contracts import ENV_AUDIT_BUCKET, MAX_WINDOW_SECONDS, parse_iso
from breakglass.policies.boundary import (
    MAIL_TAMPERING,
    SHADOW_ADMIN_ACTIONS,
    TRAIL_TAMPERING,
    WORKFLOW_ANSWERS,
)
from breakglass.policies.kms_rights import (
    ATTACHMENTS_EXCLUSIVE,
    BUCKETS,
    FUNCTION,
    MANAGED_POLICY,
    ROLE,
    action_matches,
    glob_matches,
    missing_kms_rights,
    policies_outside,
    policy_statements,
    role_statements,
)
from breakglass.policies.naming import (
    EMERGENCY_ROLE_PREFIX,
    EMERGENCY_ROLE_TAG,
    ROLE_CHAINING_OPT_IN,
    ROLE_CHAINING_TAG,
    SYSTEM_NAME_PREFIX,
)
from breakglass.validation import require_int, require_mapping, require_str_list

OBJECT_LOCK: Final = (
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
)
TRAIL: Final = "aws:cloudtrail/trail:Trail"
STATE_MACHINE: Final = "aws:sfn/stateMachine:StateMachine"
ROUTE: Final = "aws:apigatewayv2/route:Route"
BUCKET_POLICY: Final = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE: Final = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
ROLE_POLICIES_EXCLUSIVE: Final = "aws:iam/rolePoliciesExclusive:RolePoliciesExclusive"
LAMBDA_PERMISSION: Final = "aws:lambda/permission:Permission"
FUNCTION_URL: Final = "aws:lambda/functionUrl:FunctionUrl"

# Pack config: the defaults are the components' own (EmergencyRole's max_session_duration,
# AuditTrail's retention_days); the bounds are AWS's.
DEFAULT_MAX_SESSION_SECONDS: Final = 3600
DEFAULT_MIN_RETENTION_DAYS: Final = 365
SESSION_SECONDS_BOUNDS: Final = (900, 43200)
RETENTION_DAYS_BOUNDS: Final = (1, 36500)
MAX_SESSION_KEY: Final = "maxSessionSeconds"
MIN_RETENTION_KEY: Final = "minRetentionDays"
GET_ROUTES_KEY: Final = "readOnlyGetRoutesOptIn"
GET_ROUTE: Final = r"(GET|HEAD) /\S*"
EXTERNAL_BUCKETS_KEY: Final = "externalAuditBucketsOptIn"
BUCKET_NAME: Final = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"

# Service principals whose roles run the system's code: the wildcard rule covers both.
SYSTEM_SERVICES: Final = ("lambda.amazonaws.com", "states.amazonaws.com")

# Actions a function or state machine role may hold on "Resource": "*", each with why. Every one
# has no resource-level form in the Service Authorization Reference (IAM matches the call against
# "*" only), so naming an ARN would not work; nothing else may be granted on "*".
RESOURCE_STAR_ALLOWED: Final[Mapping[str, str]] = {
    "cloudwatch:PutMetricData": (
        "no resource-level form; the sealed check publishes its runs and findings, and the statement "
        "is bounded to the system's namespace by a cloudwatch:namespace condition"
    ),
    "iam:ListVirtualMFADevices": (
        "no resource-level form; the sealed check lists virtual MFA devices to prove the sealed "
        "users still hold hardware ones (read only)"
    ),
    **{
        f"logs:{action}": (
            "no resource-level form; the log delivery rights AWS documents for a state machine that "
            "logs to CloudWatch Logs (the state-machine-logs rule requires that logging)"
        )
        for action in (
            "CreateLogDelivery",
            "GetLogDelivery",
            "UpdateLogDelivery",
            "DeleteLogDelivery",
            "ListLogDeliveries",
            "PutResourcePolicy",
            "DescribeResourcePolicies",
            "DescribeLogGroups",
        )
    },
    **{
        f"xray:{action}": "no resource-level form; the state machine's X-Ray tracing (write-only telemetry)"
        for action in ("PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets")
    },
}
# Of those, the ones allowed only under a condition (the key that must bound them).
RESOURCE_STAR_CONDITIONS: Final[Mapping[str, str]] = {"cloudwatch:PutMetricData": "cloudwatch:namespace"}

# GET routes that only read, by path, with why. Any other GET (and any ANY or $default route, which
# sends GETs too) could reach code that decides: approvals decide only on POST, so a link preview,
# a mail scanner or a prefetch can never approve. tests/test_policy_pack.py checks this list against
# the routes the handlers serve.
READ_ONLY_GET_PATHS: Final[Mapping[str, str]] = {
    "/requests/{id}": "the approval page shows the request and a form that POSTs; the access API reads one request",
    "/requests": "the access API lists requests",
    "/whoami": "the access API says who AWS says the caller is",
}
LOGGED_LEVELS: Final = ("ALL", "ERROR", "FATAL")


@dataclass(frozen=True)
class Resource:
    """One resource as a rule reads it (satisfies ``kms_rights.RegisteredResource``).

    ``unknown`` names the properties whose value is not known yet (a CrossGuard preview): a rule
    that reads one of them says nothing rather than guess.
    """

    type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    urn: str = ""
    unknown: frozenset[str] = frozenset()

    def get(self, key: str) -> Any:
        return self.outputs.get(key, self.inputs.get(key))

    def known(self, *keys: str) -> bool:
        return not self.unknown & set(keys)


@dataclass(frozen=True, order=True)
class Finding:
    """A rule that does not hold for one resource, with what to do about it."""

    rule: str
    resource_type: str
    resource_name: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.resource_type} {self.resource_name}: {self.message}"


@dataclass(frozen=True)
class PackConfig:
    """The pack's settings (CrossGuard policy config; ``synth --check --policy-config``)."""

    max_session_seconds: int = DEFAULT_MAX_SESSION_SECONDS
    min_retention_days: int = DEFAULT_MIN_RETENTION_DAYS
    # GET routes of the stack's own APIs (not the break-glass ones) that only read, by route key:
    # listed by hand, so each exemption is visible in the config.
    read_only_get_routes_opt_in: tuple[str, ...] = ()
    # Buckets outside the program a trail may deliver to (AuditTrail's existing_bucket_name), by
    # name: each is locked in the stack that owns it, and listed by hand so the trust is visible.
    external_audit_buckets_opt_in: tuple[str, ...] = ()

    @classmethod
    def from_policy_config(cls, raw: Any) -> PackConfig:
        """Read a Pulumi policy config document: ``{"<rule>": {"<key>": value, ...}, ...}``.

        Only the pack's settings are read (under the rules that use them); anything else is an
        enforcement level or another rule's config, and left to Pulumi.
        """
        document = require_mapping("policy config", raw)
        values: dict[str, Any] = {}
        for rule, key, attr, (low, high) in (
            (SESSION_LIMIT, MAX_SESSION_KEY, "max_session_seconds", SESSION_SECONDS_BOUNDS),
            (COMPLIANCE_LOCK, MIN_RETENTION_KEY, "min_retention_days", RETENTION_DAYS_BOUNDS),
        ):
            section = document.get(rule)
            if isinstance(section, Mapping) and key in section:
                values[attr] = require_int(f"{rule}.{key}", section[key], minimum=low, maximum=high)
        section = document.get(POST_ONLY)
        if isinstance(section, Mapping) and GET_ROUTES_KEY in section:
            values["read_only_get_routes_opt_in"] = require_str_list(
                f"{POST_ONLY}.{GET_ROUTES_KEY}",
                section[GET_ROUTES_KEY],
                pattern=GET_ROUTE,
                hint='must be a GET route key, e.g. "GET /predict"',
            )
        section = document.get(COMPLIANCE_LOCK)
        if isinstance(section, Mapping) and EXTERNAL_BUCKETS_KEY in section:
            values["external_audit_buckets_opt_in"] = require_str_list(
                f"{COMPLIANCE_LOCK}.{EXTERNAL_BUCKETS_KEY}",
                section[EXTERNAL_BUCKETS_KEY],
                pattern=BUCKET_NAME,
                hint='must be an S3 bucket name, e.g. "org-audit-logs"',
            )
        return cls(**values)


# ----- reading resources ---------------------------------------------------------------------


def _finding(rule: str, resource: Resource, message: str) -> Finding:
    return Finding(rule, resource.type, resource.name, message)


def _as_list(value: Any) -> list[Any]:
    """A value IAM reads as "one or many" as a list; anything that is not a list is one value, so
    an odd shape (a number where a string belongs) is read, never a crash."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _is_allow(statement: Mapping[str, Any]) -> bool:
    # Case-blind on purpose: whether IAM takes "allow" or refuses it, treating it as an Allow can
    # only add a finding, never hide one.
    return str(statement.get("Effect", "")).lower() == "allow"


def _principals(statement: Mapping[str, Any]) -> list[str]:
    """Every principal a statement names, whatever the shape (a string, a list, a map of lists)."""
    principal = statement.get("Principal")
    if isinstance(principal, Mapping):
        return [str(p) for kind in principal.values() for p in _as_list(kind)]
    return [str(p) for p in _as_list(principal)]


def _tags(resource: Resource) -> Mapping[str, Any]:
    tags = resource.get("tagsAll") or resource.get("tags") or {}
    return tags if isinstance(tags, Mapping) else {}


def _whole(value: Any) -> int | None:
    """A whole number as the program may have written it (3600, 3600.0, "3600"); None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _true(value: Any) -> bool:
    """Only ``true`` (or the text "true", which the provider reads as true) is true: "false" as
    text must not count as set, as any non-empty string would."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _false(value: Any) -> bool:
    """An explicit false, as a bool or as the text "false"."""
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def is_emergency_role(resource: Resource) -> bool:
    """An emergency role, by its tier tag or by its IAM name or name prefix (either one is enough),
    in any case: IAM names are unique whatever their case, and a differently-cased name would still
    dodge the alert rules and queries that match the prefix."""
    if resource.type != ROLE:
        return False
    tagged = EMERGENCY_ROLE_TAG.lower() in {str(k).lower() for k in _tags(resource)}
    names = (str(resource.get(key) or "").lower() for key in ("name", "namePrefix"))
    return tagged or any(name.startswith(EMERGENCY_ROLE_PREFIX) for name in names)


def _trust(resource: Resource) -> list[Mapping[str, Any]]:
    return policy_statements(resource.get("assumeRolePolicy"))


def _trusted_services(resource: Resource) -> set[str]:
    services: set[str] = set()
    for statement in _trust(resource):
        principal = statement.get("Principal")
        if _is_allow(statement) and isinstance(principal, Mapping):
            services |= {str(s) for s in _as_list(principal.get("Service"))}
    return services


def _condition_keys(statement: Mapping[str, Any], operator: str) -> set[str]:
    """Keys tested by an operator of the statement's Condition (``IfExists`` forms do not count:
    a missing key passes them)."""
    condition = statement.get("Condition") or {}
    block = condition.get(operator) if isinstance(condition, Mapping) else None
    return {str(k).lower() for k in block} if isinstance(block, Mapping) else set()


# ----- resource rules ------------------------------------------------------------------------

OPEN_TRUST: Final = "role-trust-not-open"
TRUST_LOCKED: Final = "emergency-role-trust-locked"
BOUNDARY: Final = "emergency-role-boundary"
SESSION_LIMIT: Final = "emergency-role-session-limit"
TRAIL_RULE: Final = "trail-multi-region-validated-encrypted"
STATE_MACHINE_LOGS: Final = "state-machine-logs"
POST_ONLY: Final = "approval-api-post-only"


def role_trust_not_open(resource: Resource, config: PackConfig) -> list[Finding]:
    """No role trusts everyone: an Allow whose principal is or holds a ``*`` (or everyone but a
    ``NotPrincipal``) lets any AWS account, or any role of one, assume it."""
    if resource.type != ROLE or not resource.known("assumeRolePolicy"):
        return []
    return [
        _finding(
            OPEN_TRUST,
            resource,
            f"trust statement {s.get('Sid') or i} allows a principal with '*' (or NotPrincipal): name the principals "
            "that may assume it",
        )
        for i, s in enumerate(_trust(resource))
        if _is_allow(s) and (any("*" in p for p in _principals(s)) or "NotPrincipal" in s)
    ]


# Ways into a role a grant never opens: each would admit every user of an identity provider.
FEDERATED_ASSUME: Final = ("sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML")
# What the component's grant statements pin on every AssumeRole they allow (docs/security.md).
_GRANT_CONDITIONS: Final = (
    ("StringEquals", "sts:SourceIdentity", "sts:SourceIdentity equal to the requester"),
    ("StringEquals", "sts:RoleSessionName", "sts:RoleSessionName equal to the requester"),
    ("DateGreaterThan", "aws:CurrentTime", "a DateGreaterThan aws:CurrentTime start of the window"),
    ("DateLessThan", "aws:CurrentTime", "a DateLessThan aws:CurrentTime end of the window"),
)


def _window_problem(statement: Mapping[str, Any]) -> str | None:
    """What is wrong with a grant statement's window (None: it is one a tier could approve).

    Pinned keys alone would let a hand-written statement open the role until 2099: the window must
    be readable and no longer than the longest a request may ask for (MAX_WINDOW_SECONDS)."""
    condition = statement.get("Condition")
    bounds = []
    for operator in ("DateGreaterThan", "DateLessThan"):
        block = condition.get(operator) if isinstance(condition, Mapping) else None
        values = {str(k).lower(): v for k, v in block.items()} if isinstance(block, Mapping) else {}
        texts = [str(v) for v in _as_list(values.get("aws:currenttime"))]
        if len(texts) != 1:
            return f"its {operator} aws:CurrentTime is not one date"
        try:
            bounds.append(parse_iso(texts[0]))
        except ValueError:
            return f"its {operator} aws:CurrentTime {texts[0]!r} is not an ISO 8601 time"
    seconds = (bounds[1] - bounds[0]).total_seconds()
    if seconds > MAX_WINDOW_SECONDS:
        return (
            f"its window lasts {int(seconds)} s, over the longest a request may ask for "
            f"({MAX_WINDOW_SECONDS} s)"
        )
    return None


def emergency_role_trust_locked(resource: Resource, config: PackConfig) -> list[Finding]:
    """An emergency role's trust is locked (no Allow) or admits named principals only with the
    conditions a grant sets: source identity, session name and the end of the window."""
    if not is_emergency_role(resource) or not resource.known("assumeRolePolicy", "tags", "name"):
        return []
    statements = _trust(resource)
    if not statements:
        return [_finding(TRUST_LOCKED, resource, "the trust policy is missing or unreadable")]
    found: list[Finding] = []
    for i, statement in enumerate(statements):
        sid = statement.get("Sid") or i
        federated = [a for a in FEDERATED_ASSUME if action_matches(statement, a)]
        if _is_allow(statement) and federated:
            found.append(
                _finding(
                    TRUST_LOCKED,
                    resource,
                    f"trust statement {sid} allows {', '.join(federated)}: an emergency role is assumed "
                    "only through sts:AssumeRole, as a grant allows it",
                )
            )
        if not _is_allow(statement) or not action_matches(statement, "sts:AssumeRole"):
            continue
        if len(_principals(statement)) != 1 or "*" in _principals(statement)[0]:
            found.append(
                _finding(TRUST_LOCKED, resource, f"trust statement {sid} does not name one principal")
            )
        missing = [
            what for op, key, what in _GRANT_CONDITIONS if key.lower() not in _condition_keys(statement, op)
        ]
        if missing:
            found.append(
                _finding(
                    TRUST_LOCKED,
                    resource,
                    f"trust statement {sid} allows sts:AssumeRole without {', '.join(missing)}: leave the "
                    "trust locked and let the workflow grant access",
                )
            )
        elif problem := _window_problem(statement):
            found.append(
                _finding(
                    TRUST_LOCKED,
                    resource,
                    f"trust statement {sid} allows sts:AssumeRole but {problem}: leave the trust locked and "
                    "let the workflow grant access",
                )
            )
    return found


def emergency_role_boundary(resource: Resource, config: PackConfig) -> list[Finding]:
    """An emergency role carries a permissions boundary (the one that denies tampering)."""
    if not is_emergency_role(resource) or not resource.known("permissionsBoundary", "tags", "name"):
        return []
    if resource.get("permissionsBoundary"):
        return []
    return [
        _finding(
            BOUNDARY, resource, "no permissions boundary: create it with EmergencyRole, which attaches one"
        )
    ]


def emergency_role_session_limit(resource: Resource, config: PackConfig) -> list[Finding]:
    """An emergency role's longest session is at most the configured maximum."""
    if not is_emergency_role(resource) or not resource.known("maxSessionDuration", "tags", "name"):
        return []
    # IAM's default when the property is absent is one hour.
    raw = resource.get("maxSessionDuration")
    seconds = 3600 if raw is None else _whole(raw)
    if seconds is None:
        return [
            _finding(
                SESSION_LIMIT,
                resource,
                f"max_session_duration {raw!r} is not a whole number of seconds: give it as one",
            )
        ]
    if seconds <= config.max_session_seconds:
        return []
    return [
        _finding(
            SESSION_LIMIT,
            resource,
            f"max_session_duration is {seconds} s, over the pack's {MAX_SESSION_KEY} of "
            f"{config.max_session_seconds} s: lower the tier's max_session_duration",
        )
    ]


def _management_events_problem(resource: Resource) -> str | None:
    """Why the trail's selectors drop some management events (None: it records them all).

    Advanced selectors replace basic ones when given. Every management event means: a basic
    selector that includes them, reads and writes, excluding no event source (KMS's are the key
    deletions); or an advanced selector that selects the Management category and narrows nothing."""
    advanced = resource.get("advancedEventSelectors")
    if advanced:
        for selector in _as_list(advanced):
            fields = selector.get("fieldSelectors") if isinstance(selector, Mapping) else None
            fields = [f for f in _as_list(fields) if isinstance(f, Mapping)]
            categories = [f for f in fields if f.get("field") == "eventCategory"]
            if (
                len(fields) == 1
                and len(categories) == 1
                and "Management" in [str(v) for v in _as_list(categories[0].get("equals"))]
            ):
                return None
        return "advanced event selectors that select no Management category without narrowing it"
    basic = resource.get("eventSelectors")
    if basic is None:
        return None  # CloudTrail's default: every management event, reads and writes
    for selector in _as_list(basic):
        if (
            isinstance(selector, Mapping)
            and not _false(selector.get("includeManagementEvents", True))
            and str(selector.get("readWriteType") or "All") == "All"
            and not selector.get("excludeManagementEventSources")
        ):
            return None
    return (
        "event selectors that drop management events (include_management_events false, a ReadOnly or "
        "WriteOnly read_write_type, or exclude_management_event_sources)"
    )


def trail_multi_region_validated_encrypted(resource: Resource, config: PackConfig) -> list[Finding]:
    """A trail is logging, in every region, records every management event, signs its log files
    (validation) and encrypts them with KMS."""
    keys = (
        "isMultiRegionTrail",
        "enableLogFileValidation",
        "kmsKeyId",
        "enableLogging",
        "eventSelectors",
        "advancedEventSelectors",
    )
    if resource.type != TRAIL or not resource.known(*keys):
        return []
    # enable_logging defaults to true; only an explicit false stops the trail.
    problems = ["is not logging (enable_logging is false)"] if _false(resource.get("enableLogging")) else []
    problems += [
        text
        for key, text in (
            ("isMultiRegionTrail", "is not multi-region (is_multi_region_trail)"),
            ("enableLogFileValidation", "does not validate log files (enable_log_file_validation)"),
        )
        if not _true(resource.get(key))
    ]
    if not resource.get("kmsKeyId"):
        problems.append("is not encrypted with a KMS key (kms_key_id)")
    if selectors := _management_events_problem(resource):
        problems.append(f"does not record all management events: it has {selectors}")
    return [_finding(TRAIL_RULE, resource, f"the trail {p}") for p in problems]


def state_machine_logs(resource: Resource, config: PackConfig) -> list[Finding]:
    """A state machine logs its executions to CloudWatch Logs."""
    if resource.type != STATE_MACHINE or not resource.known("loggingConfiguration"):
        return []
    logging = resource.get("loggingConfiguration") or {}
    level = str(logging.get("level") or "OFF") if isinstance(logging, Mapping) else "OFF"
    destination = logging.get("logDestination") if isinstance(logging, Mapping) else None
    if level in LOGGED_LEVELS and destination:
        return []
    return [
        _finding(
            STATE_MACHINE_LOGS,
            resource,
            f"logging level {level}{'' if destination else ' and no log destination'}: set "
            f"logging_configuration with a level of {', '.join(LOGGED_LEVELS)} and a log group",
        )
    ]


def approval_api_post_only(resource: Resource, config: PackConfig) -> list[Finding]:
    """Routes decide only on POST: no ANY or ``$default`` route, and GET only where it only reads
    (the system's read paths, and the stack's own routes listed in ``readOnlyGetRoutesOptIn``)."""
    if resource.type != ROUTE or not resource.known("routeKey"):
        return []
    key = str(resource.get("routeKey") or "")
    parts = key.split()
    if key != "$default" and (len(parts) != 2 or " ".join(parts) != key):
        # A tab, a second space or a missing path would make the method read as something else.
        return [
            _finding(POST_ONLY, resource, f"route {key!r} is not of the form 'METHOD /path': write it so")
        ]
    method, path = parts if key != "$default" else (key, "")
    if key == "$default" or method.upper() == "ANY":
        return [
            _finding(
                POST_ONLY,
                resource,
                f"route {key!r} sends every method, GET included, to the handler: name the method",
            )
        ]
    if method.upper() in ("GET", "HEAD") and path not in READ_ONLY_GET_PATHS:
        if key in config.read_only_get_routes_opt_in:
            return []
        return [
            _finding(
                POST_ONLY,
                resource,
                f"route {key!r} answers GET on a path that does not only read: decisions are POSTs "
                "(a link preview or a mail scanner must never decide)",
            )
        ]
    return []


INVOKE_NOT_OPEN: Final = "function-invoke-not-open"


def function_invoke_not_open(resource: Resource, config: PackConfig) -> list[Finding]:
    """Nobody may invoke a function with an event they wrote: a permission names a service bound to
    its source (``source_arn``) or one principal without a ``*``, and no function URL skips IAM.
    The approval and access functions trust the caller ARN that API Gateway puts in the event; an
    open invoke lets anyone forge it."""
    if resource.type == FUNCTION_URL and resource.known("authorizationType"):
        if str(resource.get("authorizationType") or "") == "AWS_IAM":
            return []
        return [
            _finding(
                INVOKE_NOT_OPEN,
                resource,
                f"function URL with authorization {resource.get('authorizationType')!r}: anyone on the internet "
                "can call it; use AWS_IAM or call the function through its API",
            )
        ]
    if resource.type != LAMBDA_PERMISSION or not resource.known("principal", "sourceArn"):
        return []
    principal = str(resource.get("principal") or "")
    function = str(resource.get("function") or "")
    # The system's own functions, by IAM name or ARN (SYSTEM_NAME_PREFIX names every one of them).
    system = function.startswith(SYSTEM_NAME_PREFIX) or f":function:{SYSTEM_NAME_PREFIX}" in function
    service = principal.endswith(".amazonaws.com")
    if "*" in principal or not principal:
        problem = f"principal {principal!r} is everyone"
    elif service and not resource.get("sourceArn") and (system or not resource.get("sourceAccount")):
        problem = f"service {principal} without a source_arn admits that service acting for any resource"
    elif system and not service:
        problem = f"principal {principal} is not a service bound to its source: the system's functions are invoked only by the services the components wire"
    else:
        return []
    return [
        _finding(
            INVOKE_NOT_OPEN,
            resource,
            f"{problem}: anyone it admits can invoke the function with a forged event; name the source",
        )
    ]


READABLE: Final = "policy-documents-readable"
# IAM's policy grammar element names, each exactly as IAM spells it.
POLICY_ELEMENTS: Final = (
    "Version",
    "Id",
    "Statement",
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
_ELEMENT_BY_CASE: Final = {name.lower(): name for name in POLICY_ELEMENTS}


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"the key {twice[0]!r} appears twice")
    return dict(pairs)


def _element_problems(document: Any) -> list[str]:
    """IAM element names spelt another way in a parsed document (none: not a policy at all)."""
    if not isinstance(document, Mapping) or "statement" not in {str(k).lower() for k in document}:
        return []  # not a policy (a state machine definition, a dashboard)
    problems = []
    statements = next(v for k, v in document.items() if str(k).lower() == "statement")
    elements = [document, *(s for s in _as_list(statements) if isinstance(s, Mapping))]
    for element in elements:
        for key in element:
            canonical = _ELEMENT_BY_CASE.get(str(key).lower())
            if canonical and canonical != key:
                problems.append(f"spells {canonical} as {key!r}")
    return problems


def _document_problems(document: Any) -> list[str]:
    """Why a policy document (text, or a mapping given in its place) could be read two ways."""
    if isinstance(document, str):
        try:
            document = json.loads(document, object_pairs_hook=_reject_duplicates)
        except ValueError as exc:
            return [f"is not one JSON document ({exc})"]
    return _element_problems(document)


def policy_documents_readable(resource: Resource, config: PackConfig) -> list[Finding]:
    """Every policy document reads one way: valid JSON, no key given twice (which value counts
    differs between readers), and IAM's element names spelt as IAM spells them, so what the rules
    read is what IAM enforces."""
    found = []
    for key, value in sorted(resource.inputs.items()):
        if not resource.known(key):
            continue
        for document in _documents(value):
            found += [
                _finding(READABLE, resource, f"{key} {problem}: write the document the one way IAM reads it")
                for problem in _document_problems(document)
            ]
    return found


def _documents(value: Any) -> list[Any]:
    """Everything inside a property that may be a policy document: JSON text naming a statement,
    or a mapping with a statement key (inline policies sit in a list of mappings)."""
    if isinstance(value, str):
        return [value] if value.lstrip().startswith("{") and '"statement"' in value.lower() else []
    if isinstance(value, Mapping):
        if "statement" in {str(k).lower() for k in value}:
            return [value]
        return [d for inner in value.values() for d in _documents(inner)]
    if isinstance(value, list | tuple):
        return [d for inner in value for d in _documents(inner)]
    return []


OPEN_RESOURCE_POLICY: Final = "resource-policy-not-open"
# Condition keys that bound an open principal to an organization, an account or a source resource.
BOUNDING_CONDITION_KEYS: Final = (
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:sourcearn",
    "aws:sourceaccount",
    "aws:sourceowner",
    "kms:calleraccount",
)


def resource_policy_not_open(resource: Resource, config: PackConfig) -> list[Finding]:
    """No resource policy (a key's, a bucket's, a topic's, a queue's, a secret's) allows a
    principal that is or holds ``*`` (or everyone but a ``NotPrincipal``) unless a condition bounds
    it to an organization, an account or a source: otherwise anyone in any account may use the key
    that encrypts the audit trail, or publish to the alert topic."""
    if resource.type.startswith("aws:iam/") or not resource.known("policy"):
        return []
    found = []
    for i, statement in enumerate(policy_statements(resource.get("policy"))):
        if not _is_allow(statement):
            continue
        if not (any("*" in p for p in _principals(statement)) or "NotPrincipal" in statement):
            continue
        condition = statement.get("Condition")
        bounded = {
            str(key).lower()
            for operator, block in (condition.items() if isinstance(condition, Mapping) else ())
            if "IfExists" not in str(operator) and isinstance(block, Mapping)
            for key in block
        }
        if bounded & set(BOUNDING_CONDITION_KEYS):
            continue
        found.append(
            _finding(
                OPEN_RESOURCE_POLICY,
                resource,
                f"policy statement {statement.get('Sid') or i} allows everyone ('*' or NotPrincipal) with no "
                "aws:PrincipalOrgID, account or source condition: name the principals",
            )
        )
    return found


# ----- stack rules ---------------------------------------------------------------------------

COMPLIANCE_LOCK: Final = "audit-bucket-compliance-lock"
NO_WILDCARDS: Final = "lambda-role-no-wildcards"
KMS_RIGHTS: Final = "function-kms-rights"
ROLE_CHAINING: Final = "role-chaining-opt-in"
GUARDS: Final = "emergency-role-guards"
# What an emergency role's boundary must deny unconditionally, on every resource: the component's
# own denies (breakglass/policies/boundary.py), so a boundary that allows everything and denies
# only role chaining is not mistaken for one.
GUARDED_ACTIONS: Final = (*TRAIL_TAMPERING, *SHADOW_ADMIN_ACTIONS, *WORKFLOW_ANSWERS, *MAIL_TAMPERING)


def _default_retention(lock: Any) -> Mapping[str, Any] | None:
    """The default retention of a lock configuration (its ``rule``, one mapping or a list of one)."""
    rules = _as_list(lock.get("rule")) if isinstance(lock, Mapping) else []
    retention = rules[0].get("defaultRetention") if rules and isinstance(rules[0], Mapping) else None
    return retention if isinstance(retention, Mapping) else None


def _lock_findings(resource: Resource, lock: Any, config: PackConfig) -> list[Finding]:
    retention = _default_retention(lock)
    if retention is None:
        return [
            _finding(COMPLIANCE_LOCK, resource, "no default retention: set a COMPLIANCE default retention")
        ]
    found: list[Finding] = []
    mode = str(retention.get("mode") or "")
    if mode != "COMPLIANCE":
        found.append(
            _finding(
                COMPLIANCE_LOCK,
                resource,
                f"Object Lock mode {mode or 'unset'}: only COMPLIANCE keeps the root user from deleting "
                "audit records (GOVERNANCE can be bypassed)",
            )
        )
    # A value that is not a whole number counts as no retention (the finding says what was given).
    days = (_whole(retention.get("days")) or 0) or 365 * (_whole(retention.get("years")) or 0)
    if days < config.min_retention_days:
        found.append(
            _finding(
                COMPLIANCE_LOCK,
                resource,
                f"default retention of {days} days (days {retention.get('days')!r}, years "
                f"{retention.get('years')!r}), under the pack's {MIN_RETENTION_KEY} of {config.min_retention_days}",
            )
        )
    return found


def _bucket_name(resource: Resource) -> str:
    return str(resource.get("bucket") or resource.get("id") or resource.name)


# What no bucket policy of an audit bucket may allow anyone: changing the lock, the retention of a
# record, the policy or lifecycle that guard them, or deleting records (prefixes cover the variants).
AUDIT_BUCKET_TAMPERING: Final = (
    "s3:PutBucketObjectLockConfiguration",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
)


def _audit_policy_findings(resource: Resource, config: PackConfig) -> list[Finding]:
    found = []
    for i, statement in enumerate(policy_statements(resource.get("policy"))):
        allowed = [a for a in AUDIT_BUCKET_TAMPERING if _is_allow(statement) and action_matches(statement, a)]
        if allowed:
            found.append(
                _finding(
                    COMPLIANCE_LOCK,
                    resource,
                    f"the audit bucket's policy statement {statement.get('Sid') or i} allows "
                    f"{', '.join(allowed)}: nobody may unlock, re-police or delete audit records",
                )
            )
    return found


def _lifecycle_findings(resource: Resource, config: PackConfig) -> list[Finding]:
    found = []
    for i, rule in enumerate(r for r in _as_list(resource.get("rules")) if isinstance(r, Mapping)):
        if str(rule.get("status") or "Enabled") != "Enabled":
            continue
        for key, days_key in (("expiration", "days"), ("noncurrentVersionExpiration", "noncurrentDays")):
            for expiry in (e for e in _as_list(rule.get(key)) if isinstance(e, Mapping)):
                if days_key not in expiry and "date" not in expiry:
                    continue  # only removes expired delete markers: no record goes
                days = _whole(expiry.get(days_key))
                if days is None or days < config.min_retention_days:
                    found.append(
                        _finding(
                            COMPLIANCE_LOCK,
                            resource,
                            f"lifecycle rule {rule.get('id') or i} expires audit records ({key} "
                            f"{dict(expiry)!r}) before the pack's {MIN_RETENTION_KEY} of "
                            f"{config.min_retention_days}: move them to cold storage instead",
                        )
                    )
    return found


def audit_bucket_compliance_lock(resources: Sequence[Resource], config: PackConfig) -> list[Finding]:
    """Every Object Lock configuration is COMPLIANCE with at least the configured retention, every
    audit bucket (a trail's bucket, a function's ``BREAKGLASS_AUDIT_BUCKET``) has one, no policy of
    an audit bucket allows unlocking or deleting records, and no lifecycle rule expires them sooner."""
    found: list[Finding] = []
    locked: set[str] = set()
    for resource in resources:
        if resource.type in OBJECT_LOCK and resource.known("rule", "bucket"):
            locked.add(str(resource.get("bucket")))
            found += _lock_findings(resource, resource.inputs, config)
        elif resource.type in BUCKETS and resource.get("objectLockConfiguration"):
            # The bucket's own (deprecated) lock block counts as its lock configuration.
            locked.add(_bucket_name(resource))
            found += _lock_findings(resource, resource.get("objectLockConfiguration"), config)
    audit: set[str] = set()
    for resource in resources:
        if resource.type == TRAIL and resource.known("s3BucketName"):
            audit.add(str(resource.get("s3BucketName")))
        elif resource.type == FUNCTION and resource.known("environment"):
            environment = resource.get("environment") or {}
            variables = environment.get("variables") if isinstance(environment, Mapping) else None
            if isinstance(variables, Mapping) and variables.get(ENV_AUDIT_BUCKET):
                audit.add(str(variables[ENV_AUDIT_BUCKET]))
    for resource in resources:
        if _bucket_name(resource) not in audit:
            continue
        # A bucket's own (deprecated) policy property is a bucket policy too.
        if (resource.type == BUCKET_POLICY or resource.type in BUCKETS) and resource.known("policy"):
            found += _audit_policy_findings(resource, config)
        elif resource.type in LIFECYCLE and resource.known("rules"):
            found += _lifecycle_findings(resource, config)
    buckets = {_bucket_name(b) for b in resources if b.type in BUCKETS}
    for trail in (r for r in resources if r.type == TRAIL and r.known("s3BucketName")):
        delivered_to = str(trail.get("s3BucketName"))
        if delivered_to not in buckets and delivered_to not in config.external_audit_buckets_opt_in:
            found.append(
                _finding(
                    COMPLIANCE_LOCK,
                    trail,
                    f"delivers to bucket {trail.get('s3BucketName')!r}, which is not in this program, so nothing "
                    f"shows it is locked: deliver to AuditTrail's bucket, or list the bucket in "
                    f"{EXTERNAL_BUCKETS_KEY} once the stack that owns it locks it",
                )
            )
    for bucket in (b for b in resources if b.type in BUCKETS):
        if _bucket_name(bucket) in audit - locked:
            found.append(
                _finding(
                    COMPLIANCE_LOCK,
                    bucket,
                    "an audit bucket without an Object Lock configuration: use AuditTrail, which locks it "
                    "in COMPLIANCE mode",
                )
            )
    return found


def _every_action_of(action: str) -> bool:
    """``*``, ``s3:*``, and the same in other spellings: a wildcard in the service (``*:*``,
    ``s*:*``) or an action name made of wildcards only (``iam:?*``, ``iam:**``)."""
    service, _, name = action.partition(":")
    return not name or any(c in service for c in "*?") or not name.strip("*?")


# ARNs of unrelated services: a Resource pattern that matches them all is "*" in another spelling.
_ANY_ARN_PROBES: Final = (
    "arn:aws:s3:::bucket/key",
    "arn:aws:iam::123456789012:role/name",
    "arn:aws:lambda:us-east-1:123456789012:function:name",
)


def _every_resource(pattern: str) -> bool:
    return pattern == "*" or all(glob_matches(pattern, arn) for arn in _ANY_ARN_PROBES)


def _wildcard_problems(statement: Mapping[str, Any]) -> list[str]:
    if not _is_allow(statement):
        return []
    sid = statement.get("Sid") or "(no Sid)"
    problems: list[str] = []
    if "NotAction" in statement:
        problems.append(f"statement {sid} allows NotAction (everything else)")
    actions = [str(a) for a in _as_list(statement.get("Action"))]
    wild = [a for a in actions if _every_action_of(a)]
    if wild:
        problems.append(f"statement {sid} allows every action of {', '.join(sorted(wild))}")
    if "NotResource" in statement:
        problems.append(f"statement {sid} allows NotResource (everything else)")
    if any(_every_resource(str(r)) for r in _as_list(statement.get("Resource"))):
        unjustified = sorted(a for a in actions if a not in RESOURCE_STAR_ALLOWED)
        unbounded = sorted(
            a
            for a in actions
            if a in RESOURCE_STAR_CONDITIONS
            and RESOURCE_STAR_CONDITIONS[a].lower() not in _condition_keys(statement, "StringEquals")
        )
        if unjustified and not wild:
            problems.append(f"statement {sid} allows {', '.join(unjustified)} on every resource ('*')")
        if unbounded:
            problems.append(
                f"statement {sid} allows {', '.join(unbounded)} on '*' without its "
                f"{', '.join(RESOURCE_STAR_CONDITIONS[a] for a in unbounded)} condition"
            )
    return problems


def lambda_role_no_wildcards(resources: Sequence[Resource], config: PackConfig) -> list[Finding]:
    """A function's (or the state machine's) role holds no ``*`` action and no ``*`` resource beyond
    :data:`RESOURCE_STAR_ALLOWED`, and no policy the program does not show: code that runs
    unattended gets what it needs, by name."""
    if any(
        not r.known("policy", "assumeRolePolicy", "inlinePolicies", "role", "policyArn") for r in resources
    ):
        return []
    statements = role_statements(resources)
    outside = policies_outside(resources)
    # A role a function or state machine runs as is a system role whatever its trust says.
    used = {str(r.get("role") or "") for r in resources if r.type == FUNCTION}
    used |= {str(r.get("roleArn") or "") for r in resources if r.type == STATE_MACHINE}
    found: list[Finding] = []
    for role in resources:
        if role.type != ROLE:
            continue
        refs = {str(role.get("arn") or ""), str(role.get("name") or ""), role.name} - {""}
        if not (_trusted_services(role) & set(SYSTEM_SERVICES) or refs & used):
            continue
        for statement in statements.get(role.name, []):
            found += [_finding(NO_WILDCARDS, role, p) for p in _wildcard_problems(statement)]
        found += [
            _finding(
                NO_WILDCARDS,
                role,
                f"attached policy {arn} is outside the program, so nothing shows it grants no '*': "
                "grant what the function needs in its own policy",
            )
            for arn in outside.get(role.name, [])
        ]
    return found


def function_kms_rights(resources: Sequence[Resource], config: PackConfig) -> list[Finding]:
    """Every function holds the KMS rights the services it may touch ask of it
    (:mod:`breakglass.policies.kms_rights` derives them)."""
    if any(r.unknown for r in resources):
        return []  # ARNs tie functions, roles, keys and resources together; all must be known
    functions = {str(r.get("name") or r.name): r for r in resources if r.type == FUNCTION}
    found: list[Finding] = []
    for right in missing_kms_rights(resources):
        function = functions.get(right.function)
        found.append(
            Finding(
                KMS_RIGHTS,
                FUNCTION,
                function.name if function else right.function,
                f"{right}: add {right.action} on the key to the function's role",
            )
        )
    return found


def _denies_everywhere(statements: Sequence[Mapping[str, Any]], action: str) -> bool:
    return any(
        statement.get("Effect") == "Deny"
        and not statement.get("Condition")
        and action_matches(statement, action)
        and "*" in [str(r) for r in _as_list(statement.get("Resource"))]
        for statement in statements
    )


def emergency_role_guards(resources: Sequence[Resource], config: PackConfig) -> list[Finding]:
    """An emergency role's boundary (in the program) denies, everywhere and unconditionally, what
    the component's boundary denies (changing trails, making shadow admins, answering the workflow,
    changing mail); and no exclusive-management resource (``RolePoliciesExclusive``,
    ``RolePolicyAttachmentsExclusive``) names the role, since each ``pulumi up`` would then remove
    the guards a grant or a revoke adds to it."""
    if any(
        not r.known("arn", "permissionsBoundary", "policy", "tags", "name", "roleName") for r in resources
    ):
        return []
    boundaries = {str(r.get("arn")): r for r in resources if r.type == MANAGED_POLICY and r.get("arn")}
    found: list[Finding] = []
    roles = [r for r in resources if is_emergency_role(r)]
    for role in roles:
        boundary = boundaries.get(str(role.get("permissionsBoundary") or ""))
        if boundary is None:
            continue  # emergency-role-boundary and role-chaining-opt-in report it
        statements = policy_statements(boundary.get("policy"))
        missing = [a for a in GUARDED_ACTIONS if not _denies_everywhere(statements, a)]
        if missing:
            found.append(
                _finding(
                    GUARDS,
                    role,
                    f"its boundary does not deny {len(missing)} of the {len(GUARDED_ACTIONS)} actions the "
                    f"component's boundary denies on every resource (first {', '.join(missing[:4])}): create the "
                    "role with EmergencyRole, whose boundary does",
                )
            )
    names = {str(r.get("name") or r.name) for r in roles} | {str(r.get("arn") or "") for r in roles}
    for resource in resources:
        if resource.type in (ROLE_POLICIES_EXCLUSIVE, ATTACHMENTS_EXCLUSIVE) and (
            str(resource.get("roleName") or "") in names - {""}
        ):
            found.append(
                _finding(
                    GUARDS,
                    resource,
                    f"manages the policies of emergency role {resource.get('roleName')} exclusively: each "
                    "pulumi up would remove the expiry and revoke guards the workflow adds; remove it",
                )
            )
    return found


def _chaining_denied_everywhere(statements: Iterable[Mapping[str, Any]]) -> bool | None:
    """True: sts:AssumeRole denied on every resource; False: denied except some; None: not denied."""
    verdict: bool | None = None
    for statement in statements:
        if statement.get("Effect") != "Deny" or statement.get("Condition"):
            continue
        if not action_matches(statement, "sts:AssumeRole"):
            continue
        if "*" in [str(r) for r in _as_list(statement.get("Resource"))]:
            return True
        if "NotResource" in statement:
            verdict = False
    return verdict


def role_chaining_opt_in(resources: Sequence[Resource], config: PackConfig) -> list[Finding]:
    """An emergency role's boundary denies ``sts:AssumeRole`` (role chaining) everywhere, unless the
    role says it opted in (tag ``breakglass:role-chaining=opt-in``, set from the tier's
    ``role_chaining_opt_in``); even then it denies it everywhere but the named roles. A role whose
    tier did not opt in holds no policy that allows ``sts:AssumeRole`` either: the boundary would
    deny it today, and the next boundary edit would open it."""
    if any(
        not r.known("arn", "permissionsBoundary", "policy", "tags", "role", "inlinePolicies", "policyArn")
        for r in resources
    ):
        return []
    boundaries = {str(r.get("arn")): r for r in resources if r.type == MANAGED_POLICY and r.get("arn")}
    held = role_statements(resources)
    found: list[Finding] = []
    for role in (r for r in resources if is_emergency_role(r)):
        opted_in = _tags(role).get(ROLE_CHAINING_TAG) == ROLE_CHAINING_OPT_IN
        chaining = [
            str(s.get("Sid") or i)
            for i, s in enumerate(held.get(role.name, []))
            if _is_allow(s) and action_matches(s, "sts:AssumeRole")
        ]
        if chaining and not opted_in:
            found.append(
                _finding(
                    ROLE_CHAINING,
                    role,
                    f"its policies allow sts:AssumeRole (statement {', '.join(chaining)}) but the tier did not "
                    "opt in to role chaining: remove the grant or list the roles in role_chaining_opt_in",
                )
            )
        arn = str(role.get("permissionsBoundary") or "")
        if not arn:
            continue  # emergency-role-boundary reports it
        boundary = boundaries.get(arn)
        if boundary is None:
            found.append(
                _finding(
                    ROLE_CHAINING,
                    role,
                    f"its boundary {arn} is not in this program, so nothing shows it denies role chaining",
                )
            )
            continue
        denied = _chaining_denied_everywhere(policy_statements(boundary.get("policy")))
        if denied is None:
            found.append(
                _finding(
                    ROLE_CHAINING, role, "its boundary does not deny sts:AssumeRole: role chaining is open"
                )
            )
        elif denied is False and not opted_in:
            found.append(
                _finding(
                    ROLE_CHAINING,
                    role,
                    "its boundary lets it chain to other roles but the tier did not opt in: list the roles in "
                    "the tier's role_chaining_opt_in",
                )
            )
    return found


ResourceRule = Callable[[Resource, PackConfig], list[Finding]]
StackRule = Callable[[Sequence[Resource], PackConfig], list[Finding]]

RESOURCE_RULES: Final[Mapping[str, ResourceRule]] = {
    OPEN_TRUST: role_trust_not_open,
    TRUST_LOCKED: emergency_role_trust_locked,
    BOUNDARY: emergency_role_boundary,
    SESSION_LIMIT: emergency_role_session_limit,
    TRAIL_RULE: trail_multi_region_validated_encrypted,
    STATE_MACHINE_LOGS: state_machine_logs,
    POST_ONLY: approval_api_post_only,
    INVOKE_NOT_OPEN: function_invoke_not_open,
    READABLE: policy_documents_readable,
    OPEN_RESOURCE_POLICY: resource_policy_not_open,
}
STACK_RULES: Final[Mapping[str, StackRule]] = {
    COMPLIANCE_LOCK: audit_bucket_compliance_lock,
    NO_WILDCARDS: lambda_role_no_wildcards,
    KMS_RIGHTS: function_kms_rights,
    ROLE_CHAINING: role_chaining_opt_in,
    GUARDS: emergency_role_guards,
}
# The config keys each rule reads (CrossGuard's per-policy config schema).
RULE_CONFIG: Final[Mapping[str, Mapping[str, Mapping[str, Any]]]] = {
    SESSION_LIMIT: {
        MAX_SESSION_KEY: {
            "type": "integer",
            "minimum": SESSION_SECONDS_BOUNDS[0],
            "maximum": SESSION_SECONDS_BOUNDS[1],
            "default": DEFAULT_MAX_SESSION_SECONDS,
            "description": "Longest session an emergency role may allow, in seconds.",
        }
    },
    POST_ONLY: {
        GET_ROUTES_KEY: {
            "type": "array",
            "items": {"type": "string", "pattern": f"^{GET_ROUTE}$"},
            "default": [],
            "description": "GET route keys of the stack's own APIs that only read (each one an exemption).",
        }
    },
    COMPLIANCE_LOCK: {
        MIN_RETENTION_KEY: {
            "type": "integer",
            "minimum": RETENTION_DAYS_BOUNDS[0],
            "maximum": RETENTION_DAYS_BOUNDS[1],
            "default": DEFAULT_MIN_RETENTION_DAYS,
            "description": "Shortest default Object Lock retention of an audit bucket, in days.",
        },
        EXTERNAL_BUCKETS_KEY: {
            "type": "array",
            "items": {"type": "string", "pattern": f"^{BUCKET_NAME}$"},
            "default": [],
            "description": "Buckets outside the stack a trail may deliver to, each locked by the stack that owns it.",
        },
    },
}


def description(rule: str) -> str:
    """The rule's one-paragraph description (its function's docstring)."""
    every: dict[str, Callable[..., Any]] = {**RESOURCE_RULES, **STACK_RULES}
    function = every[rule]
    return " ".join((function.__doc__ or rule).split())


STACK: Final = "(stack)"


def _crashed(rule: str, resource_type: str, name: str, exc: Exception) -> Finding:
    return Finding(
        rule,
        resource_type,
        name,
        f"the rule could not read this ({type(exc).__name__}: {exc}), so it cannot vouch for it: "
        "give the property the shape the provider documents",
    )


def run_resource_rule(rule: str, resource: Resource, config: PackConfig) -> list[Finding]:
    """One resource rule over one resource, failing closed: an exception is a finding, never a pass."""
    try:
        return RESOURCE_RULES[rule](resource, config)
    except Exception as exc:  # a gate that crashes must not pass the stack
        return [_crashed(rule, resource.type, resource.name, exc)]


def run_stack_rule(rule: str, resources: Sequence[Resource], config: PackConfig) -> list[Finding]:
    """One stack rule over the stack, failing closed like :func:`run_resource_rule`."""
    try:
        return STACK_RULES[rule](resources, config)
    except Exception as exc:  # a gate that crashes must not pass the stack
        return [_crashed(rule, STACK, STACK, exc)]


def check(resources: Sequence[Resource], config: PackConfig | None = None) -> list[Finding]:
    """Every rule over every resource: the findings, sorted (none: the program passes)."""
    settings = config or PackConfig()
    found: list[Finding] = []
    for resource in resources:
        for rule in RESOURCE_RULES:
            found += run_resource_rule(rule, resource, settings)
    for rule in STACK_RULES:
        found += run_stack_rule(rule, resources, settings)
    return sorted(set(found))


__all__ = [
    "RESOURCE_RULES",
    "RESOURCE_STAR_ALLOWED",
    "STACK_RULES",
    "Finding",
    "PackConfig",
    "Resource",
    "check",
    "description",
    "run_resource_rule",
    "run_stack_rule",
]
