"""One emergency role per access tier: locked until granted, bounded by a tamper-proof boundary.

The role is created with the locked trust (nobody can assume it). Grants and revokes
(:mod:`breakglass.lambdas.access.grants`) then edit its trust policy and its inline guard policy at
run time, so the role ignores later changes to ``assumeRolePolicy``: a ``pulumi up`` during an
incident must not wipe the active grants. Permissions are attached as separate resources (never
the role's exclusive ``inline_policies`` / ``managed_policy_arns``), so Pulumi never removes the
guard policy either.
"""

# No `from __future__ import annotations`: Pulumi's schema analyzer reads the real annotations.

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Required, TypedDict

import pulumi
import pulumi_aws as aws

from breakglass.contracts import MAX_WINDOW_SECONDS, MIN_SESSION_SECONDS
from breakglass.lambdas.access.grants import MAX_TRUST_POLICY_CHARS, Tier
from breakglass.policies.boundary import permission_boundary
from breakglass.policies.documents import policy_size
from breakglass.policies.emergency_role import (
    GUARD_POLICY_NAME,
    GUARD_POLICY_RESERVE_CHARS,
    INLINE_POLICIES_MAX_CHARS,
    TRUST_POLICY_MAX_CHARS,
    locked_trust_policy,
)
from breakglass.policies.naming import (
    EMERGENCY_ROLE_TAG,
    PROTECTED_TAG,
    ROLE_CHAINING_OPT_IN,
    ROLE_CHAINING_TAG,
    emergency_role_name,
)
from breakglass.validation import (
    ARN,
    IAM_ROLE_OR_USER_ARN,
    RESOURCE_NAME,
    RESOURCE_NAME_HINT,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
    require_tags,
)

DEFAULT_MAX_SESSION_DURATION: Final = 3600
DEFAULT_MAX_WINDOW_SECONDS: Final = 4 * 3600
MAX_SESSION_DURATION: Final = 43200
ROLE_ARN: Final = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+"
MANAGED_POLICY_ARN: Final = r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+"
INLINE_POLICY_NAME: Final = r"[\w+=,.@-]{1,128}"
_RESERVED_TAGS: Final = (EMERGENCY_ROLE_TAG, PROTECTED_TAG, ROLE_CHAINING_TAG)


class EmergencyRoleArgs(TypedDict, total=False):
    """Settings of :class:`EmergencyRole`. ``tier`` and ``allowed_requesters`` are required."""

    tier: Required[str]
    """Tier name (e.g. ``halt``, ``operator``, ``admin``): 1-40 lower-case letters, digits or '-'.
    The role is named ``breakglass-emergency-<tier>``."""

    managed_policy_arns: list[str]
    """Managed policy ARNs giving the tier its permissions (e.g. AWS's ReadOnlyAccess)."""

    inline_policies: dict[str, dict[str, Any]]
    """Inline policy documents by name, giving the tier its permissions. Together at most
    6144 characters: the rest of IAM's 10240-character inline quota is kept for grant guards."""

    max_session_duration: int
    """Longest session of the role in seconds (900-43200). Default 3600. Sessions never outlive the
    grant's window whatever this says; it caps how long one session lasts inside it."""

    max_window_seconds: int
    """Longest grant window for this tier in seconds (900 to 7 days). Default 14400 (4 hours)."""

    require_mfa: bool
    """Require ``aws:MultiFactorAuthPresent`` when assuming. Default true. Set false only for
    requesters whose sessions never carry the key (e.g. IAM Identity Center role sessions)."""

    max_mfa_age_seconds: int
    """With ``require_mfa``: also require the MFA sign-in to be younger than this (60-129600 s)."""

    allowed_requesters: Required[list[str]]
    """IAM role or user ARNs that may ever be granted this tier (non-empty). Nobody else can be."""

    protected_arns: list[pulumi.Input[str]]
    """ARNs of the system's own resources the role may only read (audit bucket, key, workflow,
    grant Lambdas, table). Invoking a listed Lambda is denied too, so list the workflow's functions
    here but not the halt Lambdas responders run. Resources tagged ``breakglass:protected=true``
    and every emergency role are protected without listing."""

    trust_policy_max_chars: int
    """The account's role trust policy quota (2048 by default; AWS raises it to 4096 on request).
    Two concurrent grants fit in 2048, four in 4096; grants beyond it are refused clearly."""

    partition: str
    """AWS partition of the ARNs in the boundary. Default ``aws``."""

    role_chaining_opt_in: list[str]
    """Role ARNs this tier's sessions may assume (role chaining). Default none: the boundary denies
    ``sts:AssumeRole``, because a chained session lasts up to one hour and is not a session of the
    emergency role, so neither the expiry guard nor an early revoke ends it. Each role listed here
    reintroduces that lag for itself."""

    tags: dict[str, str]
    """Tags added to the role and its boundary (the tier and protected tags are always added)."""


@dataclass(frozen=True)
class EmergencyRoleConfig:
    """Validated :class:`EmergencyRoleArgs` with every default filled in."""

    tier: str
    allowed_requesters: tuple[str, ...]
    managed_policy_arns: tuple[str, ...] = ()
    inline_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    max_session_duration: int = DEFAULT_MAX_SESSION_DURATION
    max_window_seconds: int = DEFAULT_MAX_WINDOW_SECONDS
    require_mfa: bool = True
    max_mfa_age_seconds: int | None = None
    protected_arns: tuple[pulumi.Input[str], ...] = ()
    trust_policy_max_chars: int = TRUST_POLICY_MAX_CHARS
    partition: str = "aws"
    tags: Mapping[str, str] = field(default_factory=dict)
    role_chaining_opt_in: tuple[str, ...] = ()

    @property
    def role_name(self) -> str:
        return emergency_role_name(self.tier)

    @classmethod
    def from_args(cls, args: Mapping[str, Any] | None) -> "EmergencyRoleConfig":
        raw = require_mapping("args", {} if args is None else args)
        reject_unknown_keys("", raw, EmergencyRoleArgs.__annotations__)
        tier = require_str("tier", raw.get("tier"), pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT)
        requesters = require_str_list(
            "allowed_requesters",
            raw.get("allowed_requesters"),
            pattern=IAM_ROLE_OR_USER_ARN,
            allow_empty=False,
            hint="must be an IAM role or user ARN (arn:aws:iam::ACCOUNT:role/NAME or :user/NAME)",
        )
        values: dict[str, Any] = {"tier": tier, "allowed_requesters": requesters}
        if "managed_policy_arns" in raw:
            values["managed_policy_arns"] = require_str_list(
                "managed_policy_arns",
                raw["managed_policy_arns"],
                pattern=MANAGED_POLICY_ARN,
                hint="must be a managed policy ARN (arn:aws:iam::aws:policy/NAME or ::ACCOUNT:policy/NAME)",
            )
        if "inline_policies" in raw:
            values["inline_policies"] = _inline_policies(raw["inline_policies"])
        if not values.get("managed_policy_arns") and not values.get("inline_policies"):
            raise ConfigError(
                "managed_policy_arns",
                "give the tier its permissions: a managed policy ARN or an inline policy",
            )
        if "max_session_duration" in raw:
            values["max_session_duration"] = require_int(
                "max_session_duration",
                raw["max_session_duration"],
                minimum=MIN_SESSION_SECONDS,
                maximum=MAX_SESSION_DURATION,
            )
        if "max_window_seconds" in raw:
            values["max_window_seconds"] = require_int(
                "max_window_seconds",
                raw["max_window_seconds"],
                minimum=MIN_SESSION_SECONDS,
                maximum=MAX_WINDOW_SECONDS,
            )
        if "require_mfa" in raw:
            values["require_mfa"] = require_bool("require_mfa", raw["require_mfa"])
        if "max_mfa_age_seconds" in raw:
            if not values.get("require_mfa", True):
                raise ConfigError(
                    "max_mfa_age_seconds", "needs require_mfa: an MFA age cannot be checked without MFA"
                )
            values["max_mfa_age_seconds"] = require_int(
                "max_mfa_age_seconds", raw["max_mfa_age_seconds"], minimum=60, maximum=129600
            )
        if "protected_arns" in raw:
            values["protected_arns"] = _protected_arns(raw["protected_arns"])
        if "trust_policy_max_chars" in raw:
            values["trust_policy_max_chars"] = require_int(
                "trust_policy_max_chars",
                raw["trust_policy_max_chars"],
                minimum=TRUST_POLICY_MAX_CHARS,
                maximum=MAX_TRUST_POLICY_CHARS,
            )
        if "partition" in raw:
            values["partition"] = require_str(
                "partition", raw["partition"], pattern=r"aws[a-z-]*", hint="e.g. aws, aws-us-gov, aws-cn"
            )
        if "tags" in raw:
            values["tags"] = require_tags("tags", raw["tags"], reserved=_RESERVED_TAGS)
        if "role_chaining_opt_in" in raw:
            values["role_chaining_opt_in"] = require_str_list(
                "role_chaining_opt_in",
                raw["role_chaining_opt_in"],
                pattern=ROLE_ARN,
                hint="must be an IAM role ARN (wildcards are not accepted: name each role)",
            )
        return cls(**values)

    def tier_settings(self, role_arn: str) -> Tier:
        return Tier(
            name=self.tier,
            role_name=self.role_name,
            role_arn=role_arn,
            max_session_seconds=self.max_session_duration,
            max_window_seconds=self.max_window_seconds,
            require_mfa=self.require_mfa,
            allowed_requesters=self.allowed_requesters,
            max_mfa_age_seconds=self.max_mfa_age_seconds,
            trust_policy_max_chars=self.trust_policy_max_chars,
        )


def _inline_policies(value: Any) -> dict[str, Mapping[str, Any]]:
    policies = require_mapping("inline_policies", value)
    checked: dict[str, Mapping[str, Any]] = {}
    total = 0
    for name, document in policies.items():
        field_name = f"inline_policies.{name}"
        require_str(
            field_name, name, pattern=INLINE_POLICY_NAME, hint="policy names use 1-128 of [A-Za-z0-9+=,.@_-]"
        )
        if name == GUARD_POLICY_NAME:
            raise ConfigError(field_name, f"{GUARD_POLICY_NAME!r} is reserved for the grant guards")
        document = require_mapping(field_name, document)
        statements = document.get("Statement")
        if not statements or not isinstance(statements, list | dict):
            raise ConfigError(f"{field_name}.Statement", "must hold at least one statement")
        total += policy_size(document)
        checked[name] = document
    budget = INLINE_POLICIES_MAX_CHARS - GUARD_POLICY_RESERVE_CHARS
    if total > budget:
        raise ConfigError(
            "inline_policies",
            f"{total} characters together, over the {budget} left after reserving {GUARD_POLICY_RESERVE_CHARS} "
            "for grant guards in IAM's 10240 quota; move permissions to managed policies",
        )
    return checked


def _protected_arns(value: Any) -> tuple[pulumi.Input[str], ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError("protected_arns", f"must be a list of ARNs, got {type(value).__name__}")
    arns: list[pulumi.Input[str]] = []
    for i, arn in enumerate(value):
        if isinstance(arn, str):  # Outputs (e.g. AuditTrail.bucket_arn) are checked when known
            require_str(f"protected_arns[{i}]", arn, pattern=ARN, hint=f"{arn!r} is not an ARN")
        arns.append(arn)
    return tuple(arns)


def _checked_boundary(arns: Sequence[str], partition: str, chaining: Sequence[str]) -> str:
    for i, arn in enumerate(arns):
        if not re.fullmatch(ARN, arn):
            raise ConfigError(f"protected_arns[{i}]", f"{arn!r} is not an ARN")
    return json.dumps(permission_boundary(arns, partition=partition, role_chaining_to=chaining))


class EmergencyRole(pulumi.ComponentResource):
    """An emergency role for one tier: locked trust, permission boundary, the tier's permissions.

    ``tier`` is an Output of :meth:`Tier.to_dict` for the grant Lambdas (see :func:`tiers_json`).
    """

    role_arn: pulumi.Output[str]
    """ARN of the emergency role (locked until a grant opens its trust to one requester)."""
    role_name: pulumi.Output[str]
    """Name of the emergency role, ``breakglass-emergency-<tier>``."""
    boundary_arn: pulumi.Output[str]
    """ARN of the role's permission boundary (no tampering with the system)."""
    tier: pulumi.Output[dict[str, Any]]
    """The tier's settings for the grant function (``name``, windows, MFA, requesters): ApprovalWorkflow's
    ``tiers_json`` is these objects of every tier, keyed by ``name``, JSON-encoded."""

    def __init__(
        self, name: str, args: EmergencyRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        config = EmergencyRoleConfig.from_args(args)
        super().__init__("breakglass:index:EmergencyRole", name, None, opts)
        self.config = config
        self._name = name
        self._tags = {**config.tags, EMERGENCY_ROLE_TAG: config.tier, PROTECTED_TAG: "true"}
        if config.role_chaining_opt_in:
            # Says so on the role, where the guardrail pack looks (see docs/policy-pack.md).
            self._tags[ROLE_CHAINING_TAG] = ROLE_CHAINING_OPT_IN

        self.boundary = self._create_boundary()
        self.role = self._create_role()
        self._attach_permissions()

        self.role_arn = self.role.arn
        self.role_name = self.role.name
        self.boundary_arn = self.boundary.arn
        self.tier = self.role.arn.apply(lambda arn: config.tier_settings(arn).to_dict())
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "role_name": self.role_name,
                "boundary_arn": self.boundary_arn,
                "tier": self.tier,
            }
        )

    def _create_boundary(self) -> aws.iam.Policy:
        config = self.config
        document = pulumi.Output.all(*config.protected_arns).apply(
            lambda arns: _checked_boundary(
                [str(a) for a in arns], config.partition, config.role_chaining_opt_in
            )
        )
        return aws.iam.Policy(
            f"{self._name}-boundary",
            name=f"{config.role_name}-boundary",
            description=f"Permission boundary of break-glass tier {config.tier}: no tampering with the system",
            policy=document,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_role(self) -> aws.iam.Role:
        """The role with a trust that admits nobody until a grant opens it."""
        config = self.config
        return aws.iam.Role(
            f"{self._name}-role",
            name=config.role_name,
            description=f"Break-glass emergency role, tier {config.tier}: assumable only inside a granted window",
            assume_role_policy=json.dumps(locked_trust_policy()),
            max_session_duration=config.max_session_duration,
            permissions_boundary=self.boundary.arn,
            tags=self._tags,
            # Grants edit the trust at run time; `pulumi up` must not reset it mid-incident.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["assumeRolePolicy"]),
        )

    def _attach_permissions(self) -> None:
        """The tier's own permissions: managed policies and inline documents."""
        child = pulumi.ResourceOptions(parent=self)
        self.attachments = [
            aws.iam.RolePolicyAttachment(
                f"{self._name}-managed-{i}", role=self.role.name, policy_arn=arn, opts=child
            )
            for i, arn in enumerate(self.config.managed_policy_arns)
        ]
        self.inline = [
            aws.iam.RolePolicy(
                f"{self._name}-inline-{policy_name}",
                name=policy_name,
                role=self.role.name,
                policy=json.dumps(document),
                opts=child,
            )
            for policy_name, document in self.config.inline_policies.items()
        ]


def tiers_json(roles: Sequence[EmergencyRole]) -> pulumi.Output[str]:
    """The grant Lambdas' tiers file (``TIERS_CONFIG_FILE``): ``{tier: Tier.to_dict()}`` as JSON."""
    names = [r.config.tier for r in roles]
    if len(set(names)) != len(names):
        raise ConfigError(
            "tiers",
            f"each tier needs its own role; duplicated: {sorted(n for n in set(names) if names.count(n) > 1)}",
        )
    return pulumi.Output.all(*[r.tier for r in roles]).apply(
        lambda tiers: json.dumps({t["name"]: t for t in tiers}, sort_keys=True)
    )
