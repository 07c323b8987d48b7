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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from breakglass.contracts import ENV_AUDIT_BUCKET
from breakglass.policies.kms_rights import (
    action_matches,
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
)
from breakglass.validation import require_int, require_mapping, require_str_list

ROLE: Final = "aws:iam/role:Role"
MANAGED_POLICY: Final = "aws:iam/policy:Policy"
FUNCTION: Final = "aws:lambda/function:Function"
BUCKETS: Final = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
OBJECT_LOCK: Final = (
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
)
TRAIL: Final = "aws:cloudtrail/trail:Trail"
STATE_MACHINE: Final = "aws:sfn/stateMachine:StateMachine"
ROUTE: Final = "aws:apigatewayv2/route:Route"

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

    @classmethod
    def from_policy_config(cls, raw: Any) -> PackConfig:
        """Read a Pulumi policy config document: ``{"<rule>": {"<key>": value, ...}, ...}``.

        Only the two settings are read (under the rules that use them); anything else is an
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
        return cls(**values)


# ----- reading resources ---------------------------------------------------------------------


def _finding(rule: str, resource: Resource, message: str) -> Finding:
    return Finding(rule, resource.type, resource.name, message)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    return list(value)


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if isinstance(principal, str):
        return [principal]
    if isinstance(principal, Mapping):
        return [str(p) for kind in principal.values() for p in _as_list(kind)]
    return []


def _tags(resource: Resource) -> Mapping[str, Any]:
    tags = resource.get("tagsAll") or resource.get("tags") or {}
    return tags if isinstance(tags, Mapping) else {}


def is_emergency_role(resource: Resource) -> bool:
    """An emergency role, by its tier tag or by its IAM name (either one is enough)."""
    if resource.type != ROLE:
        return False
    return EMERGENCY_ROLE_TAG in _tags(resource) or str(resource.get("name") or "").startswith(
        EMERGENCY_ROLE_PREFIX
    )


def _trust(resource: Resource) -> list[Mapping[str, Any]]:
    return policy_statements(resource.get("assumeRolePolicy"))


def _trusted_services(resource: Resource) -> set[str]:
    services: set[str] = set()
    for statement in _trust(resource):
        principal = statement.get("Principal")
        if statement.get("Effect") == "Allow" and isinstance(principal, Mapping):
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
    """No role trusts everyone: an Allow whose principal is ``*`` (or everyone but a ``NotPrincipal``)
    lets any AWS account assume it."""
    if resource.type != ROLE or not resource.known("assumeRolePolicy"):
        return []
    return [
        _finding(
            OPEN_TRUST,
            resource,
            f"trust statement {s.get('Sid') or i} allows principal '*' (or NotPrincipal): name the principals "
            "that may assume it",
        )
        for i, s in enumerate(_trust(resource))
        if s.get("Effect") == "Allow" and ("*" in _principals(s) or "NotPrincipal" in s)
    ]


# Ways into a role a grant never opens: each would admit every user of an identity provider.
FEDERATED_ASSUME: Final = ("sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML")
# What the component's grant statements pin on every AssumeRole they allow (docs/security.md).
_GRANT_CONDITIONS: Final = (
    ("StringEquals", "sts:SourceIdentity", "sts:SourceIdentity equal to the requester"),
    ("StringEquals", "sts:RoleSessionName", "sts:RoleSessionName equal to the requester"),
    ("DateLessThan", "aws:CurrentTime", "a DateLessThan aws:CurrentTime end of the window"),
)


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
        if statement.get("Effect") == "Allow" and federated:
            found.append(
                _finding(
                    TRUST_LOCKED,
                    resource,
                    f"trust statement {sid} allows {', '.join(federated)}: an emergency role is assumed "
                    "only through sts:AssumeRole, as a grant allows it",
                )
            )
        if statement.get("Effect") != "Allow" or not action_matches(statement, "sts:AssumeRole"):
            continue
        if _principals(statement) == ["*"] or len(_principals(statement)) != 1:
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
    seconds = int(resource.get("maxSessionDuration") or 3600)
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


def trail_multi_region_validated_encrypted(resource: Resource, config: PackConfig) -> list[Finding]:
    """A trail is logging, in every region, signs its log files (validation) and encrypts them with KMS."""
    keys = ("isMultiRegionTrail", "enableLogFileValidation", "kmsKeyId", "enableLogging")
    if resource.type != TRAIL or not resource.known(*keys):
        return []
    # enable_logging defaults to true; only an explicit false stops the trail.
    problems = ["is not logging (enable_logging is false)"] if resource.get("enableLogging") is False else []
    problems += [
        text
        for key, text in (
            ("isMultiRegionTrail", "is not multi-region (is_multi_region_trail)"),
            ("enableLogFileValidation", "does not validate log files (enable_log_file_validation)"),
            ("kmsKeyId", "is not encrypted with a KMS key (kms_key_id)"),
        )
        if not resource.get(key)
    ]
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
    method, _, path = key.partition(" ")
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


# ----- stack rules ---------------------------------------------------------------------------

COMPLIANCE_LOCK: Final = "audit-bucket-compliance-lock"
NO_WILDCARDS: Final = "lambda-role-no-wildcards"
KMS_RIGHTS: Final = "function-kms-rights"
ROLE_CHAINING: Final = "role-chaining-opt-in"


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
    days = int(retention.get("days") or 0) or 365 * int(retention.get("years") or 0)
    if days < config.min_retention_days:
        found.append(
            _finding(
                COMPLIANCE_LOCK,
                resource,
                f"default retention of {days} days, under the pack's {MIN_RETENTION_KEY} of "
                f"{config.min_retention_days}",
            )
        )
    return found


def _bucket_name(resource: Resource) -> str:
    return str(resource.get("bucket") or resource.get("id") or resource.name)


def audit_bucket_compliance_lock(resources: Sequence[Resource], config: PackConfig) -> list[Finding]:
    """Every Object Lock configuration is COMPLIANCE with at least the configured retention, and
    every audit bucket (a trail's bucket, a function's ``BREAKGLASS_AUDIT_BUCKET``) has one."""
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


def _wildcard_problems(statement: Mapping[str, Any]) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    sid = statement.get("Sid") or "(no Sid)"
    problems: list[str] = []
    if "NotAction" in statement:
        problems.append(f"statement {sid} allows NotAction (everything else)")
    actions = [str(a) for a in _as_list(statement.get("Action"))]
    wild = [a for a in actions if a == "*" or a.endswith(":*")]
    if wild:
        problems.append(f"statement {sid} allows every action of {', '.join(sorted(wild))}")
    if "NotResource" in statement:
        problems.append(f"statement {sid} allows NotResource (everything else)")
    if "*" in [str(r) for r in _as_list(statement.get("Resource"))]:
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
    found: list[Finding] = []
    for role in resources:
        if role.type != ROLE or not _trusted_services(role) & set(SYSTEM_SERVICES):
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
    ``role_chaining_opt_in``); even then it denies it everywhere but the named roles."""
    if any(not r.known("arn", "permissionsBoundary", "policy", "tags") for r in resources):
        return []
    boundaries = {str(r.get("arn")): r for r in resources if r.type == MANAGED_POLICY and r.get("arn")}
    found: list[Finding] = []
    for role in (r for r in resources if is_emergency_role(r)):
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
        opted_in = _tags(role).get(ROLE_CHAINING_TAG) == ROLE_CHAINING_OPT_IN
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
}
STACK_RULES: Final[Mapping[str, StackRule]] = {
    COMPLIANCE_LOCK: audit_bucket_compliance_lock,
    NO_WILDCARDS: lambda_role_no_wildcards,
    KMS_RIGHTS: function_kms_rights,
    ROLE_CHAINING: role_chaining_opt_in,
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
        }
    },
}


def description(rule: str) -> str:
    """The rule's one-paragraph description (its function's docstring)."""
    every: dict[str, Callable[..., Any]] = {**RESOURCE_RULES, **STACK_RULES}
    function = every[rule]
    return " ".join((function.__doc__ or rule).split())


def check(resources: Sequence[Resource], config: PackConfig | None = None) -> list[Finding]:
    """Every rule over every resource: the findings, sorted (none: the program passes)."""
    settings = config or PackConfig()
    found: list[Finding] = []
    for resource in resources:
        for resource_rule in RESOURCE_RULES.values():
            found += resource_rule(resource, settings)
    for stack_rule in STACK_RULES.values():
        found += stack_rule(resources, settings)
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
]
