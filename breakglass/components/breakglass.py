"""BreakGlass: the whole system in one component, with production-safe defaults.

Wires :class:`AuditTrail`, :class:`AuditQueries`, one :class:`EmergencyRole` per tier, the
:class:`ApprovalWorkflow` and (when targets are declared) :class:`HaltActions`, then publishes what
the ``breakglass`` command needs to SSM Parameter Store under ``/breakglass/<deployment>/`` so
responders, approvers and auditors find a deployment by name, and draws a CloudWatch dashboard.

Default tiers (each can be changed per tier; anything weaker than these defaults needs an argument
whose name says so):

- ``halt``: approved automatically, may halt models through the access API, may not resume; reads
  SageMaker; 1 h windows.
- ``operator``: one approver; may halt and resume; SageMaker full access; 2 h windows.
- ``admin``: two approvers and a ticket; AdministratorAccess within the boundary; at most 1 h;
  MFA no older than 15 minutes; review-gated: a requester whose last admin grant has no review
  verdict cannot ask again until security records one or waives the gate for one request.
- ``drill``: approved automatically, may call ``sts:GetCallerIdentity`` and nothing else, 30-minute
  windows: ``breakglass drill --against NAME`` rehearses the whole path (request, grant, assume,
  revoke, audit events, CloudTrail) on the real deployment without touching anything.
"""

# No `from __future__ import annotations`: Pulumi's schema analyzer reads the real annotations.
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Required, TypedDict, cast

import pulumi
import pulumi_aws as aws

from breakglass import __version__
from breakglass.components.approval_workflow import ApprovalWorkflow, ApprovalWorkflowArgs
from breakglass.components.audit_queries import AuditQueries, AuditQueriesArgs
from breakglass.components.audit_trail import AuditTrail
from breakglass.components.emergency_role import (
    DEFAULT_MAX_WINDOW_SECONDS,
    EmergencyRole,
    EmergencyRoleArgs,
)
from breakglass.components.halt_actions import HaltActions, HaltActionsArgs, HaltTargetArgs, TripwireArgs
from breakglass.components.sealed_access import SealedAccess, SealedAccessArgs
from breakglass.components.wiring import Where
from breakglass.contracts import (
    DEPLOYMENT_NAME,
    DRILL_TIER,
    DRILL_WINDOW_SECONDS,
    EVENTS_PREFIX,
    SSM_KEYS,
    SSM_SEALED_ACCESS_KEY,
    SSM_VALUE_MAX,
    ssm_page_key,
    ssm_parameter_name,
)
from breakglass.lambdas.approvals.requests import TIER_APPROVAL_KEYS
from breakglass.policies.naming import PROTECTED_TAG
from breakglass.validation import (
    EMAIL,
    EMAIL_HINT,
    IAM_ROLE_OR_USER_ARN,
    RESOURCE_NAME,
    RESOURCE_NAME_HINT,
    USER_ID,
    USER_ID_HINT,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_mapping,
    require_str,
    require_str_list,
)

TYPE_TOKEN: Final = "breakglass:index:BreakGlass"
ADMIN_MAX_WINDOW_SECONDS: Final = 3600
ADMIN_MIN_QUORUM: Final = 2
# The settings of each default tier: (EmergencyRole settings, approval settings).
DEFAULT_TIERS: Final[Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]]] = {
    "halt": (
        {
            "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"],
            "max_window_seconds": 3600,
        },
        {"approval": "auto", "may_halt": True, "may_resume": False},
    ),
    "operator": (
        {
            "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"],
            "max_window_seconds": 2 * 3600,
        },
        {"approval": 1, "may_halt": True, "may_resume": True},
    ),
    "admin": (
        {
            "managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
            "max_window_seconds": ADMIN_MAX_WINDOW_SECONDS,
            "max_mfa_age_seconds": 900,
        },
        {
            "approval": ADMIN_MIN_QUORUM,
            "ticket_required": True,
            "may_halt": True,
            "may_resume": True,
            "review_gate": True,
        },
    ),
    DRILL_TIER: (
        {
            "inline_policies": {
                "drill-identity-only": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "WhoAmI",
                            "Effect": "Allow",
                            "Action": "sts:GetCallerIdentity",
                            "Resource": "*",
                        }
                    ],
                }
            },
            "max_window_seconds": DRILL_WINDOW_SECONDS,
        },
        {"approval": "auto", "may_halt": False, "may_resume": False},
    ),
}
# Which keys of a tier's settings go to its EmergencyRole, which to its approval policy.
ROLE_KEYS: Final = (
    "managed_policy_arns",
    "inline_policies",
    "max_session_duration",
    "max_window_seconds",
    "require_mfa",
    "max_mfa_age_seconds",
    "trust_policy_max_chars",
    "role_chaining_opt_in",
)


class BreakGlassArgs(TypedDict, total=False):
    """Settings of :class:`BreakGlass`. Required: ``requesters``, ``approvers``, ``sender_email``."""

    deployment: str
    """Name the command finds this deployment by (``breakglass --deployment NAME``); its settings
    are published under ``/breakglass/<deployment>/`` in SSM. 1-40 lower-case letters, digits or
    '-'. Default ``breakglass``."""

    requesters: Required[list[str]]
    """IAM user or role ARNs that may request any tier (responders' own principals)."""

    approvers: Required[list[str]]
    """Enrolled user ids who approve requests (never their own)."""

    backup_approvers: list[str]
    """User ids asked when the approvers do not answer before the deadline."""

    security_admins: list[str]
    """IAM principal ARNs allowed to enroll people before any security person is enrolled."""

    sender_email: Required[str]
    """Address the approval emails come from (an SES identity is created; verify it)."""

    alert_emails: list[str]
    """Addresses subscribed to the alert topic (every assume, tampering, workflow failure)."""

    tiers: dict[str, dict[str, Any]]
    """Per tier: changes to a default tier (``halt``, ``operator``, ``admin``, ``drill``) or a new tier. Keys:
    EmergencyRole settings (``managed_policy_arns``, ``inline_policies``, ``max_session_duration``,
    ``max_window_seconds``, ``require_mfa``, ``max_mfa_age_seconds``, ``trust_policy_max_chars``,
    ``role_chaining_opt_in``) and approval settings (``approval``, ``approvers``,
    ``backup_approvers``, ``ticket_required``, ``ticket_pattern``, ``approval_timeout_seconds``,
    ``may_halt``, ``may_resume``, ``resume_without_quorum_opt_in``,
    ``max_requests_per_person_per_hour``, ``max_requests_per_hour``, ``review_gate``: refuse a
    person's request while their last grant of the tier has no review verdict, default on for
    ``admin`` only, never on an auto-approved tier that may halt; ``max_total_seconds`` (cap
    from a first window's start to its last extension's expiry; default twice the window),
    ``max_start_delay_seconds`` (how far ahead a request may schedule its start; default 4 h, 0
    turns scheduling off)). ``None`` or ``False`` removes a default tier (``false`` from other
    languages: their null entries never reach the component)."""

    admin_long_window_opt_in: bool
    """Allow the ``admin`` tier windows over one hour (weaker; default false)."""

    admin_single_approver_opt_in: bool
    """Allow the ``admin`` tier fewer than two approvers (weaker; default false)."""

    admin_without_review_gate_opt_in: bool
    """Allow ``tiers={"admin": {"review_gate": False}}``: admin access again before the last admin
    grant was reviewed (weaker; default false)."""

    halt_targets: list[HaltTargetArgs]
    """The AI systems the kill switch can stop (see HaltActions' targets). Optional."""

    tripwires: list[TripwireArgs]
    """Alarms that halt targets without waiting for a person (see HaltActions' tripwires)."""

    audit: dict[str, Any]
    """Settings passed to AuditTrail (e.g. ``retention_days``, ``existing_trail_arn``), and where
    an existing trail delivers, for the Athena tables (AuditQueries): ``cloudtrail_prefix`` and,
    for an organization trail, ``organization_id``."""

    dashboard: bool
    """Create the CloudWatch dashboard. Default true."""

    sealed_access: dict[str, Any]
    """The sealed last resort (SealedAccess), optional: ``users``, ``managed_policy_arns`` and
    optionally ``max_session_seconds``, ``max_mfa_age_seconds``, ``check_every_minutes`` and
    ``alert_emails`` (added to ``alert_emails``: list the approvers' addresses here, the stack
    knows them only by user id). The alert topic, audit bucket, sender and table are this stack's."""

    tags: dict[str, str]
    """Tags added to every resource."""


@dataclass(frozen=True)
class TierSettings:
    role: Mapping[str, Any]
    approval: Mapping[str, Any]


@dataclass(frozen=True)
class BreakGlassConfig:
    deployment: str
    requesters: tuple[str, ...]
    approvers: tuple[str, ...]
    sender_email: str
    tiers: Mapping[str, TierSettings]
    backup_approvers: tuple[str, ...] = ()
    security_admins: tuple[str, ...] = ()
    alert_emails: tuple[str, ...] = ()
    halt_targets: tuple[Mapping[str, Any], ...] = ()
    tripwires: tuple[Mapping[str, Any], ...] = ()
    audit: Mapping[str, Any] = field(default_factory=dict)
    dashboard: bool = True
    sealed_access: Mapping[str, Any] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Mapping[str, Any] | None) -> "BreakGlassConfig":
        values = require_mapping("args", args if args is not None else {})
        reject_unknown_keys("", values, BreakGlassArgs.__annotations__)
        for required in ("requesters", "approvers", "sender_email"):
            if values.get(required) is None:
                raise ConfigError(required, "is required")
        approvers = require_str_list(
            "approvers", values["approvers"], pattern=USER_ID, allow_empty=False, hint=USER_ID_HINT
        )
        backups = require_str_list(
            "backup_approvers", values.get("backup_approvers", []), pattern=USER_ID, hint=USER_ID_HINT
        )
        tiers = _tiers(
            values.get("tiers", {}),
            approvers=approvers,
            backups=backups,
            long_admin=require_bool(
                "admin_long_window_opt_in", values.get("admin_long_window_opt_in", False)
            ),
            single_admin=require_bool(
                "admin_single_approver_opt_in", values.get("admin_single_approver_opt_in", False)
            ),
            ungated_admin=require_bool(
                "admin_without_review_gate_opt_in", values.get("admin_without_review_gate_opt_in", False)
            ),
        )
        sequences = {}
        for name in ("halt_targets", "tripwires"):
            value = values.get(name, [])
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ConfigError(name, f"must be a list, got {type(value).__name__}")
            sequences[name] = tuple(value)
        if sequences["tripwires"] and not sequences["halt_targets"]:
            raise ConfigError("tripwires", "need halt_targets to halt")
        return cls(
            deployment=require_str(
                "deployment",
                values.get("deployment", "breakglass"),
                pattern=DEPLOYMENT_NAME,
                hint="use 1-40 lower-case letters, digits or '-', starting with a letter",
            ),
            requesters=require_str_list(
                "requesters",
                values["requesters"],
                pattern=IAM_ROLE_OR_USER_ARN,
                allow_empty=False,
                hint="must be an IAM user or role ARN",
            ),
            approvers=approvers,
            backup_approvers=backups,
            security_admins=require_str_list(
                "security_admins",
                values.get("security_admins", []),
                pattern=IAM_ROLE_OR_USER_ARN,
                hint="must be an IAM user or role ARN",
            ),
            sender_email=require_str(
                "sender_email", values["sender_email"], pattern=EMAIL, max_length=254, hint=EMAIL_HINT
            ),
            alert_emails=require_str_list(
                "alert_emails", values.get("alert_emails", []), pattern=EMAIL, hint=EMAIL_HINT
            ),
            tiers=tiers,
            halt_targets=sequences["halt_targets"],
            tripwires=sequences["tripwires"],
            audit=dict(require_mapping("audit", values.get("audit", {}))),
            dashboard=require_bool("dashboard", values.get("dashboard", True)),
            sealed_access=_sealed_settings(values.get("sealed_access")),
            tags=dict(require_mapping("tags", values.get("tags", {}))),
        )


# The `audit` settings that say where an existing trail delivers: for the Athena tables
# (AuditQueries), not for AuditTrail.
AUDIT_QUERY_KEYS: Final = ("cloudtrail_prefix", "organization_id")


# What BreakGlass passes on to SealedAccess from its own `sealed_access` setting (the rest is wired).
SEALED_KEYS: Final = (
    "users",
    "managed_policy_arns",
    "max_session_seconds",
    "max_mfa_age_seconds",
    "check_every_minutes",
    "alert_emails",
)


def _sealed_settings(raw: Any) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    settings = dict(require_mapping("sealed_access", raw))
    reject_unknown_keys("sealed_access", settings, SEALED_KEYS)
    return settings


def _tiers(
    raw: Any,
    *,
    approvers: Sequence[str],
    backups: Sequence[str],
    long_admin: bool,
    single_admin: bool,
    ungated_admin: bool = False,
) -> dict[str, TierSettings]:
    changes = require_mapping("tiers", raw)
    merged: dict[str, TierSettings] = {}
    for tier in [*DEFAULT_TIERS, *(t for t in changes if t not in DEFAULT_TIERS)]:
        require_str(f"tiers.{tier}", tier, pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT)
        if tier in changes and changes[tier] in (None, False):
            # A default tier removed on purpose. False too: other languages' programs reach the
            # component provider without their null map entries, so a null there never arrives.
            continue
        change = dict(require_mapping(f"tiers.{tier}", changes.get(tier, {})))
        reject_unknown_keys(f"tiers.{tier}", change, (*ROLE_KEYS, *TIER_APPROVAL_KEYS))
        role_defaults, approval_defaults = DEFAULT_TIERS.get(tier, ({}, {}))
        role = {**role_defaults, **{k: v for k, v in change.items() if k in ROLE_KEYS}}
        approval = {
            "approvers": list(approvers),
            "backup_approvers": list(backups),
            **approval_defaults,
            **{k: v for k, v in change.items() if k in TIER_APPROVAL_KEYS},
        }
        if "approval" not in approval:
            raise ConfigError(f"tiers.{tier}.approval", 'a new tier needs "auto" or a quorum')
        if not role.get("managed_policy_arns") and not role.get("inline_policies"):
            raise ConfigError(f"tiers.{tier}.managed_policy_arns", "a new tier needs its permissions")
        if tier == "admin":
            if role.get("max_window_seconds", 0) > ADMIN_MAX_WINDOW_SECONDS and not long_admin:
                raise ConfigError(
                    "tiers.admin.max_window_seconds",
                    f"admin windows are at most {ADMIN_MAX_WINDOW_SECONDS} s; set admin_long_window_opt_in "
                    "to accept longer ones",
                )
            quorum = approval["approval"]
            if (
                quorum == "auto" or (isinstance(quorum, int) and quorum < ADMIN_MIN_QUORUM)
            ) and not single_admin:
                raise ConfigError(
                    "tiers.admin.approval",
                    f"admin needs at least {ADMIN_MIN_QUORUM} approvers; set admin_single_approver_opt_in "
                    "to accept fewer",
                )
            if approval.get("review_gate") is False and not ungated_admin:
                raise ConfigError(
                    "tiers.admin.review_gate",
                    "admin is review-gated; set admin_without_review_gate_opt_in to allow admin access "
                    "again before the last admin grant is reviewed",
                )
        _check_total(tier, role, approval)
        merged[tier] = TierSettings(role=role, approval=approval)
    if not merged:
        raise ConfigError("tiers", "at least one tier must remain")
    return merged


def json_pages(items: Sequence[Mapping[str, Any]], limit: int = SSM_VALUE_MAX) -> list[str]:
    """``items`` as JSON lists of at most ``limit`` characters each, in order (always one page)."""
    pages: list[list[Mapping[str, Any]]] = [[]]
    for item in items:
        if pages[-1] and len(json.dumps([*pages[-1], item], sort_keys=True)) > limit:
            pages.append([])
        pages[-1].append(item)
    return [json.dumps(page, sort_keys=True) for page in pages]


def _check_total(tier: str, role: Mapping[str, Any], approval: Mapping[str, Any]) -> None:
    """A chain of extended windows may not be capped below one window of the tier."""
    total = approval.get("max_total_seconds")
    window = role.get("max_window_seconds", DEFAULT_MAX_WINDOW_SECONDS)
    if isinstance(total, int) and isinstance(window, int) and total < window:
        raise ConfigError(
            f"tiers.{tier}.max_total_seconds",
            f"must be at least the tier's max_window_seconds ({window}), got {total}",
        )


class BreakGlass(pulumi.ComponentResource):
    """Governed, audited emergency access to AI systems: every part, wired, with safe defaults."""

    access_api_url: pulumi.Output[str]
    """The IAM-authorized access API the ``breakglass`` command calls."""
    approval_url: pulumi.Output[str]
    """The approval page approvers open from their email."""
    state_machine_arn: pulumi.Output[str]
    """The approval workflow."""
    role_arns: pulumi.Output[dict[str, str]]
    """The emergency role of each tier."""
    audit_bucket: pulumi.Output[str]
    """The Object Lock (COMPLIANCE) audit bucket."""
    athena_workgroup: pulumi.Output[str]
    """The Athena workgroup auditors run the named queries in."""
    alert_topic_arn: pulumi.Output[str]
    """The SNS topic every alert goes to."""
    halt_function: pulumi.Output[str]
    """The halt function's name ("" without halt targets)."""
    resume_function: pulumi.Output[str]
    """The resume function's name ("" without halt targets)."""

    def __init__(self, name: str, args: BreakGlassArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config = BreakGlassConfig.from_args(args)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.config = config
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._where = Where.of(self)

        self._create_audit()
        self._create_halt_actions()
        self._create_tiers()
        self._create_workflow()
        self._create_sealed_access()
        self._publish_settings()
        if config.dashboard:
            self._create_dashboard()

        self.access_api_url = self.workflow.access_api_url
        self.approval_url = self.workflow.approval_url
        self.state_machine_arn = self.workflow.state_machine_arn
        self.role_arns = pulumi.Output.all(**{t: r.role_arn for t, r in self.roles.items()})
        self.audit_bucket = self.audit.bucket_name
        self.athena_workgroup = self.queries.workgroup_name
        self.alert_topic_arn = self.audit.alert_topic_arn
        self.halt_function = self.halt.halt_function.name if self.halt else pulumi.Output.from_input("")
        self.resume_function = self.halt.resume_function.name if self.halt else pulumi.Output.from_input("")
        self.register_outputs(
            {
                "access_api_url": self.access_api_url,
                "approval_url": self.approval_url,
                "state_machine_arn": self.state_machine_arn,
                "role_arns": self.role_arns,
                "audit_bucket": self.audit_bucket,
                "athena_workgroup": self.athena_workgroup,
                "alert_topic_arn": self.alert_topic_arn,
                "halt_function": self.halt_function,
                "resume_function": self.resume_function,
            }
        )

    def _create_audit(self) -> None:
        settings = self.config.audit
        audit_args = {
            "alert_emails": list(self.config.alert_emails),
            **{k: v for k, v in settings.items() if k not in AUDIT_QUERY_KEYS},
        }
        if self.config.tags:
            audit_args.setdefault("tags", dict(self.config.tags))
        self.audit = AuditTrail(f"{self._name}-audit", audit_args, opts=self._child)  # type: ignore[arg-type]
        try:
            self.queries = AuditQueries(
                f"{self._name}-queries",
                cast(
                    AuditQueriesArgs,
                    {
                        "audit_bucket": self.audit.bucket_name,
                        "kms_key_arn": self.audit.kms_key_arn,
                        **{k: v for k, v in settings.items() if k in AUDIT_QUERY_KEYS},
                    },
                ),
                opts=self._child,
            )
        except ConfigError as exc:
            raise ConfigError(f"audit.{exc.field}", exc.problem) from exc

    def _create_tiers(self) -> None:
        # The halt functions and their roles by ARN: no session invokes them, changes them or
        # passes their roles (whatever the functions are named).
        protected = [
            self.audit.bucket_arn,
            self.audit.kms_key_arn,
            *(self.halt.protected_arns if self.halt else []),
        ]
        self.roles: dict[str, EmergencyRole] = {
            tier: EmergencyRole(
                f"{self._name}-{tier}",
                cast(
                    EmergencyRoleArgs,
                    {
                        "tier": tier,
                        "allowed_requesters": list(self.config.requesters),
                        "protected_arns": protected,
                        **settings.role,
                        **({"tags": dict(self.config.tags)} if self.config.tags else {}),
                    },
                ),
                opts=self._child,
            )
            for tier, settings in self.config.tiers.items()
        }

    def _create_halt_actions(self) -> None:
        self.halt: HaltActions | None = None
        if self.config.halt_targets:
            self.halt = HaltActions(
                f"{self._name}-ai",
                cast(
                    HaltActionsArgs,
                    {
                        "targets": list(self.config.halt_targets),
                        "tripwires": list(self.config.tripwires),
                        "audit_bucket_name": self.audit.bucket_name,
                        "audit_kms_key_arn": self.audit.kms_key_arn,
                        "alert_topic_arn": self.audit.alert_topic_arn,
                    },
                ),
                opts=self._child,
            )

    def _create_workflow(self) -> None:
        config = self.config
        args: ApprovalWorkflowArgs = {
            "tiers": {tier: dict(settings.approval) for tier, settings in config.tiers.items()},
            "emergency_roles": list(self.roles.values()),
            "audit_bucket_name": self.audit.bucket_name,
            "audit_bucket_arn": self.audit.bucket_arn,
            "audit_kms_key_arn": self.audit.kms_key_arn,
            "alert_topic_arn": self.audit.alert_topic_arn,
            "sender_email": config.sender_email,
            "security_admins": list(config.security_admins),
        }
        if self.halt:
            args["halt_actions"] = self.halt
        if config.tags:
            args["tags"] = dict(config.tags)
        self.workflow = ApprovalWorkflow(f"{self._name}-approvals", args, opts=self._child)

    @property
    def _parameter_tags(self) -> dict[str, str]:
        """Every ``/breakglass/*`` parameter is protected: deleting or rewriting one blinds the CLI
        and the drill (e.g. the sealed settings: the drill would find no sealed access)."""
        return {**self.config.tags, "breakglass:deployment": self.config.deployment, PROTECTED_TAG: "true"}

    def _create_sealed_access(self) -> None:
        self.sealed: SealedAccess | None = None
        settings = self.config.sealed_access
        if settings is None:
            return
        extra = list(settings.get("alert_emails") or [])
        emails = list(dict.fromkeys([*self.config.alert_emails, *extra]))
        if not emails:
            raise ConfigError("sealed_access.alert_emails", "name who is alerted (or set alert_emails)")
        workflow = self.workflow
        args: dict[str, Any] = {
            **{k: v for k, v in settings.items() if k != "alert_emails"},
            "alert_emails": emails,
            "alert_topic_arn": self.audit.alert_topic_arn,
            "audit_bucket_name": self.audit.bucket_name,
            "audit_kms_key_arn": self.audit.kms_key_arn,
            "sender_email": self.config.sender_email,
            "request_table_name": workflow.table_name,
            "request_table_arn": workflow.table.arn,
            "request_table_kms_key_arn": workflow.kms_key_arn,
            **({"tags": dict(self.config.tags)} if self.config.tags else {}),
        }
        try:
            self.sealed = SealedAccess(f"{self._name}-sealed", cast(SealedAccessArgs, args), opts=self._child)
        except ConfigError as exc:
            raise ConfigError(f"sealed_access.{exc.field}", exc.problem) from exc
        self._parameter(
            "sealed-access",
            SSM_SEALED_ACCESS_KEY,
            self.sealed.published,
            "the sealed last resort",
            # The rules' patterns and targets pass a Standard parameter's 4 KB: SSM moves it to the
            # Advanced tier (8 KB) only when it needs to.
            tier="Intelligent-Tiering",
        )

    def _publish_settings(self) -> None:
        """What the command needs, under /breakglass/<deployment>/ (one String parameter each)."""
        target_pages = json_pages(
            [
                {"id": t.get("id"), "modes": list(t.get("modes", ["deny-invoke"]))}
                for t in self.config.halt_targets
            ]
        )
        values: dict[str, pulumi.Input[str]] = {
            "version": __version__,
            "region": self._where.region,
            "access_api_url": self.workflow.access_api_url,
            "approval_url": self.workflow.approval_url,
            "state_machine_arn": self.workflow.state_machine_arn,
            "audit_bucket": self.audit.bucket_name,
            "audit_events_prefix": EVENTS_PREFIX,
            "athena_workgroup": self.queries.workgroup_name,
            "glue_database": self.queries.database_name,
            "alert_topic_arn": self.audit.alert_topic_arn,
            "tiers": self._published_tiers(),
            "halt_targets": target_pages[0],
        }
        if set(values) != set(SSM_KEYS):
            raise RuntimeError(
                f"published settings {sorted(values)} differ from the contract {sorted(SSM_KEYS)}"
            )
        self.parameters = {
            key: self._parameter(key.replace("_", "-"), key, value, key) for key, value in values.items()
        }
        # A long target list goes on in pages (the command reads them all back).
        for page, value in enumerate(target_pages[1:], start=2):
            key = ssm_page_key("halt_targets", page)
            self.parameters[key] = self._parameter(
                f"halt-targets-{page}", key, value, f"halt_targets, page {page}"
            )

    def _published_tiers(self) -> pulumi.Output[str]:
        """Each tier as the workflow reads it (its defaults included), so the command and the
        access API never disagree about what a tier may do."""
        effective = self.workflow.config.tiers
        return pulumi.Output.all(**{t: r.tier for t, r in self.roles.items()}).apply(
            lambda found: json.dumps(
                {
                    tier: {
                        # Not who may ask (the access API decides that; the command never reads
                        # it): one ARN per requester would outgrow the parameter's 4 KB.
                        **{k: v for k, v in settings.items() if k != "allowed_requesters"},
                        "quorum": effective[tier].quorum,
                        "may_halt": effective[tier].may_halt,
                        "may_resume": effective[tier].may_resume,
                        "ticket_required": effective[tier].ticket_required,
                        "review_gate": effective[tier].review_gate,
                    }
                    for tier, settings in found.items()
                },
                sort_keys=True,
            )
        )

    def _parameter(
        self, suffix: str, key: str, value: pulumi.Input[str], what: str, *, tier: str | None = None
    ) -> aws.ssm.Parameter:
        """One published setting, ``/breakglass/<deployment>/<key>``."""
        return aws.ssm.Parameter(
            f"{self._name}-param-{suffix}",
            name=ssm_parameter_name(self.config.deployment, key),
            type="String",
            tier=tier,
            # Not secrets: insecure_value keeps them readable in the state and in previews.
            insecure_value=value,
            description=f"break-glass deployment {self.config.deployment}: {what}",
            tags=self._parameter_tags,
            opts=self._child,
        )

    def _create_dashboard(self) -> None:
        region = self._where.region
        halt_names = [self.halt.halt_function.name, self.halt.resume_function.name] if self.halt else []
        alarm_arns = [a.arn for a in self.workflow.alarms] + (
            [a.arn for a in self.halt.alarms.values()] if self.halt else []
        )
        body = pulumi.Output.all(
            region,
            self.workflow.state_machine.arn,
            self.workflow.functions["access"].log_group.name,
            self.workflow.access_api_function.log_group.name,
            pulumi.Output.all(*halt_names),
            pulumi.Output.all(*alarm_arns),
        ).apply(lambda p: json.dumps(dashboard_body(*p), sort_keys=True))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{self._name}-dashboard",
            dashboard_name=f"breakglass-{self.config.deployment}",
            dashboard_body=body,
            opts=self._child,
        )


def dashboard_body(
    region: str,
    state_machine_arn: str,
    access_log_group: str,
    api_log_group: str,
    halt_functions: Sequence[str],
    alarm_arns: Sequence[str],
) -> dict[str, Any]:
    """The dashboard: grants and requests, approvals waiting, halts and resumes, failed runs, alarms."""

    def metrics(namespace: str, names: Sequence[str], dimension: str, value: str) -> list[list[str]]:
        return [[namespace, name, dimension, value] for name in names]

    def widget(
        title: str, x: int, y: int, properties: dict[str, Any], kind: str = "metric"
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": region, **properties},
        }

    logs = "SOURCE '{}' | ".format
    widgets = [
        widget(
            "Grants, revokes and expiries (latest first)",
            0,
            0,
            {
                "query": logs(access_log_group)
                + "fields @timestamp, message, request_id, tier, requester, expires_at"
                " | filter message in ['grant', 'revoke', 'expiry', 'revoked early', 'reconciled']"
                " | sort @timestamp desc | limit 50",
                "view": "table",
            },
            "log",
        ),
        widget(
            "Requests and pending approvals",
            12,
            0,
            {
                "query": logs(api_log_group)
                + "filter message = 'access api' | stats count(*) by path, status, bin(1h)",
                "view": "table",
            },
            "log",
        ),
        widget(
            "Workflow executions: started, failed, aborted, timed out",
            0,
            6,
            {
                "metrics": metrics(
                    "AWS/States",
                    [
                        "ExecutionsStarted",
                        "ExecutionsSucceeded",
                        "ExecutionsFailed",
                        "ExecutionsAborted",
                        "ExecutionsTimedOut",
                    ],
                    "StateMachineArn",
                    state_machine_arn,
                ),
                "stat": "Sum",
                "period": 300,
            },
        ),
        widget(
            "Halts and resumes",
            12,
            6,
            {
                "metrics": [
                    ["AWS/Lambda", m, "FunctionName", f]
                    for f in halt_functions
                    for m in ("Invocations", "Errors")
                ]
                or [["AWS/Lambda", "Invocations", "FunctionName", "none"]],
                "stat": "Sum",
                "period": 300,
            },
        ),
        widget("Alarms: workflow and tripwires", 0, 12, {"alarms": list(alarm_arns)}, "alarm"),
    ]
    return {"widgets": widgets}


__all__: Sequence[str] = ["BreakGlass", "BreakGlassArgs", "BreakGlassConfig", "dashboard_body"]
