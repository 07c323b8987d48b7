"""The approval workflow: request, approval (email or terminal), time-bound grant, revoke, review.

A Standard Step Functions state machine (definition from
:func:`breakglass.policies.state_machine.definition`) drives one execution per request. Requests
enter only through the **access API**, an HTTP API whose routes are all IAM-authorized: AWS, not a
payload, says who is asking; the function behind it checks everything (TOTP included), mints the
request id and starts the execution. Approvers answer from email through the public **approval
page** (signed single-use links, their TOTP, a POST) or from a terminal through the access API.

Each Task is a Lambda with its own role (named ``breakglass-system-*``, so the emergency roles'
boundary protects it by name) and least-privilege policy; grant, the end-of-window revoke, early
revoke and the reconciler share the "access" function with a concurrency of one, the only one
allowed to edit the emergency roles. State (enrollments, spent links, TOTP replay steps, requests,
rate counters, the request index) lives in one DynamoDB table encrypted with the workflow's KMS
key, with TTL and point-in-time recovery. The HMAC key of the approval links is a random Secrets
Manager secret encrypted with the same key. A schedule runs the reconciler, which repairs requests
whose execution was stopped after a grant; alarms fire on failed, timed-out and aborted executions.

Execution logging is ALL levels but without execution data by default: the data carries
justifications and ticket ids, and CloudWatch Logs is readable by far more people than the locked
audit bucket, which already records every step.
"""

# No `from __future__ import annotations`: Pulumi's schema analyzer reads the real annotations.
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Required, TypedDict

import pulumi
import pulumi_aws as aws

from breakglass.components.audit_trail import KEY_DELETION_WINDOW_DAYS
from breakglass.components.emergency_role import EmergencyRole, tiers_json
from breakglass.components.functions import DeployedFunction, python_function
from breakglass.components.tagging import protect_children
from breakglass.components.wiring import Where, allow_invoke, rate
from breakglass.contracts import (
    APPROVAL_POLICY_FILE,
    ENV_ACCESS_FUNCTION,
    ENV_ALERT_TOPIC,
    ENV_APPROVAL_URL,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    ENV_HALT_FUNCTION,
    ENV_KMS_KEY,
    ENV_LINK_SECRET_ARN,
    ENV_RESUME_FUNCTION,
    ENV_SENDER,
    ENV_STATE_MACHINE_ARN,
    ENV_STATE_MACHINE_NAME,
    ENV_TABLE,
    EVENTS_PREFIX,
    SECURITY_ADMINS_FILE,
    SSM_ROOT,
    TIERS_CONFIG_FILE,
)
from breakglass.lambdas.approvals import access_api, store
from breakglass.lambdas.approvals.requests import TierApproval, parse_policy, policy_to_json
from breakglass.lambdas.approvals.workflow import FUNCTION_HANDLERS, TASK_FUNCTIONS
from breakglass.lambdas.runtime import (
    DIMENSION_FUNCTION,
    METRIC_ALERT_PUBLISH_FAILURES,
    METRIC_LINK_REFUSALS,
    METRIC_UNAUTHENTICATED_REFUSALS,
    METRICS_NAMESPACE,
)
from breakglass.policies import state_machine as sm
from breakglass.policies.audit_trail import audit_writer_statements
from breakglass.policies.emergency_role import grant_function_statements
from breakglass.policies.naming import (
    EMERGENCY_ROLE_PREFIX,
    PROTECTED_TAG,
    emergency_role_name,
    system_role_name,
)
from breakglass.validation import (
    EMAIL,
    EMAIL_HINT,
    IAM_ROLE_OR_USER_ARN,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
    require_tags,
)

APPROVAL_PAGE_HANDLER: Final = "breakglass.lambdas.approvals.api.handler"
ACCESS_API_HANDLER: Final = "breakglass.lambdas.approvals.access_api.handler"
# Every physical name starts with "breakglass" (see the args' name_prefix).
NAME_PREFIX_PATTERN: Final = r"breakglass(-[a-z0-9]+)*"
LINK_KEY_BYTES: Final = 48
_PATH_PARAMETER: Final = re.compile(r"\{[^}]+\}")
# Per-route throttles. The approval page's POST gets its own budget so floods of page views or
# junk decisions cannot crowd approvers out; approvers can also vote from a terminal through
# the IAM-authorized access API, which no anonymous caller reaches.
PAGE_ROUTE_THROTTLE: Final = {"GET": (20, 10.0), "POST": (10, 5.0)}
ACCESS_API_THROTTLE: Final = (50, 25.0)
# Refusals counted on the approval page (metric, threshold per 5 minutes, what it means).
PAGE_REFUSAL_ALARMS: Final = (
    (METRIC_UNAUTHENTICATED_REFUSALS, 300, "hundreds of requests without a genuine link"),
    (METRIC_LINK_REFUSALS, 20, "many attempts with genuine links (wrong codes, reuse, self-approval)"),
)
# Workflow execution metrics that mean a request did not end normally.
EXECUTION_ALARMS: Final = (
    ("ExecutionsFailed", "failed"),
    ("ExecutionsTimedOut", "by timing out"),
    ("ExecutionsAborted", "because someone stopped it (the reconciler revokes and opens the review)"),
)


class ApprovalWorkflowArgs(TypedDict, total=False):
    """Settings of :class:`ApprovalWorkflow`. Required: ``tiers``, the emergency roles (either
    ``emergency_roles`` or ``tiers_json``), the audit trail outputs and ``sender_email``."""

    tiers: Required[dict[str, dict[str, Any]]]
    """Approval policy per tier name: ``approval`` (``"auto"`` or a quorum 1-10), ``approvers``
    and ``backup_approvers`` (enrolled user ids), ``ticket_required``, ``ticket_pattern`` (regex)
    and ``approval_timeout_seconds`` (deadline of each approval round, 3600 unless set)."""

    # list[Any], not list[EmergencyRole]: Pulumi's analyzer refuses a reference to a component of
    # this package (it looks for another package's schema); the config checks each item's type.
    emergency_roles: list[Any]
    """The tiers' :class:`EmergencyRole` components (one per tier in ``tiers``), from Python only:
    the workflow reads each role's settings from the Python object, which another language's
    reference does not carry (there, give ``tiers_json`` and ``emergency_role_arns``)."""

    tiers_json: pulumi.Input[str]
    """Instead of ``emergency_roles``: the tiers as JSON (``{tier: Tier.to_dict()}``),
    e.g. from ``breakglass.components.emergency_role.tiers_json``."""

    emergency_role_arns: list[pulumi.Input[str]]
    """With ``tiers_json``: the ARNs of the emergency roles the grant function may edit."""

    audit_bucket_name: Required[pulumi.Input[str]]
    """Name of the locked audit bucket (``AuditTrail.bucket_name``)."""

    audit_bucket_arn: Required[pulumi.Input[str]]
    """ARN of the locked audit bucket (``AuditTrail.bucket_arn``)."""

    audit_kms_key_arn: Required[pulumi.Input[str]]
    """ARN of the audit KMS key (``AuditTrail.kms_key_arn``)."""

    audit_events_prefix: str
    """Key prefix of the workflow's events in the bucket. Default ``breakglass-events``."""

    alert_topic_arn: Required[pulumi.Input[str]]
    """The alert topic (``AuditTrail.alert_topic_arn``): every event and the workflow's alarms."""

    sender_email: Required[str]
    """Address the approval emails come from; created as an SES email identity (verify it)."""

    name_prefix: str
    """Prefix of physical names (functions, table, state machine, APIs): ``breakglass`` or
    ``breakglass-<suffix>``, at most 30 characters (the emergency roles' boundary protects the
    system's state machines and roles by this prefix). Default ``breakglass``."""

    halt_actions: Any
    """The :class:`~breakglass.components.HaltActions` whose halt and resume functions the access
    API invokes for emergency sessions (``POST /halts``, ``POST /resumes``). Optional."""

    security_admins: list[str]
    """IAM principal ARNs (users or roles) that may enroll people through the access API without
    being enrolled themselves: how the first security person gets enrolled. Keep it short."""

    reconcile_every_minutes: int
    """How often the reconciler looks for grants whose execution stopped without revoke or
    review (1-60). Default 5."""

    log_execution_data_opt_in: bool
    """Include execution input and output in the state machine's logs (default false: they hold
    justifications and ticket ids; the audit bucket records every step anyway)."""

    log_retention_days: int
    """Retention of the state machine's log group, in days. Default 365."""

    tags: dict[str, str]
    """Tags added to every resource (the protected tag is always added)."""


_KNOWN: Final = tuple(ApprovalWorkflowArgs.__annotations__)


@dataclass(frozen=True)
class ApprovalWorkflowConfig:
    """Validated :class:`ApprovalWorkflowArgs`."""

    tiers: Mapping[str, TierApproval]
    sender_email: str
    audit_bucket_name: Any
    audit_bucket_arn: Any
    audit_kms_key_arn: Any
    alert_topic_arn: Any
    emergency_roles: tuple[EmergencyRole, ...] = ()
    tiers_json: Any = None
    emergency_role_arns: tuple[Any, ...] = ()
    audit_events_prefix: str = EVENTS_PREFIX
    name_prefix: str = "breakglass"
    log_execution_data_opt_in: bool = False
    log_retention_days: int = 365
    tags: Mapping[str, str] = field(default_factory=dict)
    halt_actions: Any = None
    security_admins: tuple[str, ...] = ()
    reconcile_every_minutes: int = 5

    @classmethod
    def from_args(cls, args: Mapping[str, Any] | None) -> "ApprovalWorkflowConfig":
        values = require_mapping("args", args if args is not None else {})
        reject_unknown_keys("", values, _KNOWN)
        for name in ("tiers", "sender_email", "audit_bucket_name", "audit_bucket_arn", "audit_kms_key_arn"):
            if values.get(name) is None:
                raise ConfigError(name, "is required")
        if values.get("alert_topic_arn") is None:
            raise ConfigError("alert_topic_arn", "is required: the workflow's alarms and events go there")
        tiers = parse_policy(values["tiers"], "tiers")
        roles = tuple(values.get("emergency_roles") or ())
        given_json = values.get("tiers_json")
        if bool(roles) == (given_json is not None):
            raise ConfigError(
                "emergency_roles", "give either emergency_roles or tiers_json (with its role ARNs)"
            )
        for i, role in enumerate(roles):
            if not isinstance(role, EmergencyRole):
                raise ConfigError(f"emergency_roles[{i}]", "must be an EmergencyRole component")
        if roles:
            role_tiers = sorted(r.config.tier for r in roles)
            if role_tiers != sorted(tiers):
                raise ConfigError(
                    "tiers",
                    f"approval policies ({', '.join(sorted(tiers))}) and emergency roles "
                    f"({', '.join(role_tiers)}) must name the same tiers",
                )
        role_arns = tuple(values.get("emergency_role_arns") or ())
        if given_json is not None and not role_arns:
            raise ConfigError(
                "emergency_role_arns", "is required with tiers_json: the roles the grant function edits"
            )
        config = cls(
            tiers=tiers,
            sender_email=require_str(
                "sender_email",
                values["sender_email"],
                pattern=EMAIL,
                max_length=254,
                hint=EMAIL_HINT,
            ),
            audit_bucket_name=values["audit_bucket_name"],
            audit_bucket_arn=values["audit_bucket_arn"],
            audit_kms_key_arn=values["audit_kms_key_arn"],
            alert_topic_arn=values["alert_topic_arn"],
            emergency_roles=roles,
            tiers_json=given_json,
            emergency_role_arns=role_arns,
            audit_events_prefix=require_str(
                "audit_events_prefix",
                values.get("audit_events_prefix", EVENTS_PREFIX),
                pattern=r"[\w.-]+(/[\w.-]+)*",
            ),
            name_prefix=require_str(
                "name_prefix",
                values.get("name_prefix", "breakglass"),
                pattern=NAME_PREFIX_PATTERN,
                max_length=30,
                hint="use 'breakglass' or 'breakglass-<suffix>' (lower-case letters, digits, '-'; 30 at most)",
            ),
            log_execution_data_opt_in=require_bool(
                "log_execution_data_opt_in", values.get("log_execution_data_opt_in", False)
            ),
            log_retention_days=require_int(
                "log_retention_days", values.get("log_retention_days", 365), minimum=1, maximum=3653
            ),
            tags=require_tags("tags", values.get("tags", {})),
            halt_actions=_halt_actions(values.get("halt_actions")),
            security_admins=require_str_list(
                "security_admins",
                values.get("security_admins", []),
                pattern=IAM_ROLE_OR_USER_ARN,
                hint="must be an IAM user or role ARN",
            ),
            reconcile_every_minutes=require_int(
                "reconcile_every_minutes", values.get("reconcile_every_minutes", 5), minimum=1, maximum=60
            ),
        )
        return config


def _halt_actions(value: Any) -> Any:
    if value is None:
        return None
    if not hasattr(value, "halt_function") or not hasattr(value, "resume_function"):
        raise ConfigError("halt_actions", "must be a HaltActions component")
    return value


class ApprovalWorkflow(pulumi.ComponentResource):
    """Turns a justified request into a time-bound grant, answered by humans from email or a terminal."""

    state_machine_arn: pulumi.Output[str]
    """The workflow; the access API starts one execution per admitted request (name = request id)."""
    approval_url: pulumi.Output[str]
    """Base URL of the approval page (links are ``<approval_url>/requests/<id>?token=...``)."""
    access_api_url: pulumi.Output[str]
    """Base URL of the IAM-authorized access API the ``breakglass`` command calls."""
    table_name: pulumi.Output[str]
    """The workflow's DynamoDB table (enrollments, spent links, TOTP steps, requests)."""
    kms_key_arn: pulumi.Output[str]
    """The key encrypting the table, the link secret and the TOTP secrets."""
    link_secret_arn: pulumi.Output[str]
    """The Secrets Manager secret holding the link HMAC key."""
    access_function_name: pulumi.Output[str]
    """The function that grants and revokes (only the state machine and the access API invoke it)."""
    persona_policy_arns: pulumi.Output[dict[str, str]]
    """Managed policies to attach to people's principals: ``responder``, ``approver``, ``security``
    (each allows exactly the access API routes that persona uses)."""

    def __init__(
        self, name: str, args: ApprovalWorkflowArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        config = ApprovalWorkflowConfig.from_args(args)
        # Every taggable child, including each function's role and log group, is protected: an
        # untagged access function or role could be rewritten by an admin-tier session to grant
        # itself a window that never ends.
        tagging = pulumi.ResourceOptions(transformations=[protect_children(config.tags)])
        super().__init__(
            "breakglass:index:ApprovalWorkflow", name, None, pulumi.ResourceOptions.merge(opts, tagging)
        )
        self.config = config
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._tags = {**config.tags, PROTECTED_TAG: "true"}
        self._where = Where.of(self)

        self._create_state()
        self._create_apis()
        self._create_task_functions()
        self._create_state_machine()
        self._create_approval_page()
        self._create_access_api()
        self._schedule_reconciler()
        self._open_routes_to_emergency_roles()
        self._create_persona_policies()
        self._create_alarms()

        self.state_machine_arn = self.state_machine.arn
        self.approval_url = self.page_api.api_endpoint
        self.access_api_url = self.access_api.api_endpoint
        self.table_name = self.table.name
        self.kms_key_arn = self.key.arn
        self.link_secret_arn = self.link_secret.arn
        self.access_function_name = self.functions["access"].function.name
        self.persona_policy_arns = pulumi.Output.all(
            **{persona: policy.arn for persona, policy in self.persona_policies.items()}
        )
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "approval_url": self.approval_url,
                "access_api_url": self.access_api_url,
                "table_name": self.table_name,
                "kms_key_arn": self.kms_key_arn,
                "link_secret_arn": self.link_secret_arn,
                "access_function_name": self.access_function_name,
                "persona_policy_arns": self.persona_policy_arns,
            }
        )

    # -- names --------------------------------------------------------------------------------------

    @property
    def state_machine_name(self) -> str:
        return f"{self.config.name_prefix}-workflow"

    # -- state: key, table, link secret, sender ---------------------------------------------------------

    def _create_state(self) -> None:
        config, name, child, tags = self.config, self._name, self._child, self._tags
        prefix = config.name_prefix
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{prefix} approval workflow: table, link secret, TOTP secrets",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            tags=tags,
            opts=child,
        )
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=f"{prefix}-workflow",
            billing_mode="PAY_PER_REQUEST",
            hash_key=store.TABLE_KEY_SCHEMA[0]["AttributeName"],
            range_key=store.TABLE_KEY_SCHEMA[1]["AttributeName"],
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=a["AttributeName"], type=a["AttributeType"])
                for a in store.TABLE_ATTRIBUTE_DEFINITIONS
            ],
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=self.key.arn
            ),
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=store.TTL_ATTRIBUTE, enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=True,
            tags=tags,
            opts=child,
        )
        self.link_secret = aws.secretsmanager.Secret(
            f"{name}-link-key",
            name_prefix=f"{prefix}-approval-link-key-",
            description="HMAC key signing the approval links",
            kms_key_id=self.key.arn,
            tags=tags,
            opts=child,
        )
        # Generated once; later runs keep the stored value (rotate it with put-secret-value).
        self.link_secret_version = aws.secretsmanager.SecretVersion(
            f"{name}-link-key-value",
            secret_id=self.link_secret.id,
            secret_string=pulumi.Output.secret(secrets.token_urlsafe(LINK_KEY_BYTES)),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
        )
        self.identity = aws.ses.EmailIdentity(f"{name}-sender", email=config.sender_email, opts=child)

    # -- the two HTTP APIs (created first: functions' environments name their URLs) --------------------

    def _create_apis(self) -> None:
        prefix = self.config.name_prefix
        self.page_api = aws.apigatewayv2.Api(
            f"{self._name}-api",
            name=f"{prefix}-approvals",
            protocol_type="HTTP",
            description="Break-glass approval page: GET shows a request, POST decides it",
            tags=self._tags,
            opts=self._child,
        )
        self.access_api = aws.apigatewayv2.Api(
            f"{self._name}-access-api",
            name=f"{prefix}-access",
            protocol_type="HTTP",
            description="Break-glass access API: every route is IAM-authorized (SigV4)",
            tags=self._tags,
            opts=self._child,
        )

    # -- the state machine's task functions -------------------------------------------------------------

    def _config_files(self) -> pulumi.Output[dict[str, str]]:
        """The tiers (every requester) and the approval policy (every approver): files of the
        archive of each function that loads them, since they outgrow Lambda's 4 KB environment."""
        config = self.config
        tiers_value = (
            tiers_json(list(config.emergency_roles)) if config.emergency_roles else config.tiers_json
        )
        policy = policy_to_json(config.tiers)
        return pulumi.Output.from_input(tiers_value).apply(
            lambda tiers: {TIERS_CONFIG_FILE: tiers, APPROVAL_POLICY_FILE: policy}
        )

    def _environment(self) -> dict[str, pulumi.Input[str]]:
        """Fixed-size values only (names, ARNs, URLs): what grows with people goes in _config_files."""
        config = self.config
        return {
            ENV_AUDIT_BUCKET: config.audit_bucket_name,
            ENV_AUDIT_PREFIX: config.audit_events_prefix,
            ENV_AUDIT_KMS_KEY: config.audit_kms_key_arn,
            ENV_ALERT_TOPIC: config.alert_topic_arn,
            ENV_TABLE: self.table.name,
            ENV_KMS_KEY: self.key.arn,
            ENV_LINK_SECRET_ARN: self.link_secret.arn,
            ENV_APPROVAL_URL: self.page_api.api_endpoint,
            ENV_SENDER: config.sender_email,
            ENV_STATE_MACHINE_NAME: self.state_machine_name,
        }

    def _statements(
        self,
        *,
        read: tuple[str, ...] = (),
        write: tuple[str, ...] = (),
        query: tuple[str, ...] = (),
        delete: tuple[str, ...] = (),
        key: tuple[str, ...] = (),
        mail: bool = False,
        link_key: bool = False,
        roles: bool = False,
        watch: bool = False,
        answer: bool = False,
        extra: pulumi.Input[list[dict[str, Any]]] | None = None,
    ) -> pulumi.Output[list[dict[str, Any]]]:
        """One function's statements: its table item kinds, keys, mail, roles; plus audit writing."""
        config, where = self.config, self._where
        role_arns = pulumi.Output.all(
            *([r.role_arn for r in config.emergency_roles] or list(config.emergency_role_arns))
        )
        parts = pulumi.Output.all(
            self.table.arn,
            self.key.arn,
            self.identity.arn,
            self.link_secret.arn,
            role_arns,
            config.audit_bucket_arn,
            config.audit_kms_key_arn,
            config.alert_topic_arn,
            where.partition,
            where.region,
            where.account,
            extra or [],
        )
        prefix, machine = config.audit_events_prefix, self.state_machine_name

        def build(p: list[Any]) -> list[dict[str, Any]]:
            (
                table_arn,
                key_arn,
                identity_arn,
                secret_arn,
                arns,
                bucket,
                audit_key,
                topic,
                part,
                reg,
                acct,
                more,
            ) = p
            found = [
                *sm.table_statements(table_arn, read=read, write=write, query=query, delete=delete),
                *audit_writer_statements(
                    bucket_arn=bucket, prefix=prefix, kms_key_arn=audit_key, topic_arn=topic
                ),
            ]
            # The table, the link secret and the TOTP secrets are encrypted with the workflow key:
            # DynamoDB and Secrets Manager use it on the caller's behalf.
            key_actions = [*key]
            if read or query or link_key:
                key_actions.append("kms:Decrypt")
            if write or delete:
                key_actions += ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
            if key_actions:
                found.append(sm.key_statement(key_arn, tuple(dict.fromkeys(key_actions))))
            if link_key:
                found.append(sm.secret_statement(secret_arn))
            if mail:
                found.append(sm.send_email_statement(identity_arn))
            if roles:
                found.extend(grant_function_statements(list(arns)))
            if answer:
                # Named, since the machine's ARN depends on the functions.
                found.append(sm.send_task_statement(f"arn:{part}:states:{reg}:{acct}:stateMachine:{machine}"))
            if watch:
                found.append(
                    sm.watch_executions_statement(
                        partition=part, region=reg, account=acct, state_machine_name=machine
                    )
                )
            return [*found, *more]

        return parts.apply(build)

    def _create_task_functions(self) -> None:
        config = self.config
        decrypt = ("kms:Decrypt",)
        permissions: dict[str, pulumi.Output[list[dict[str, Any]]]] = {
            "validate": self._statements(read=("REQUEST",), write=("REQUEST",), key=decrypt),
            # answer: votes that decided the request before it waited are handed to the task at once
            "await-approval": self._statements(
                read=("USER", "REQUEST"),
                write=("REQUEST",),
                key=decrypt,
                mail=True,
                link_key=True,
                answer=True,
            ),
            "auto-approve": self._statements(
                read=("USER", "REQUEST"), write=("REQUEST",), key=decrypt, mail=True
            ),
            "deny": self._statements(read=("USER", "REQUEST"), write=("REQUEST",), key=decrypt, mail=True),
            "notify-requester": self._statements(read=("USER", "REQUEST"), key=decrypt, mail=True),
            "open-review": self._statements(read=("REQUEST",), write=("REQUEST",), key=decrypt),
            "record-error": self._statements(read=("REQUEST",), write=("REQUEST",), key=decrypt),
            # grant, revoke (verified against the execution), early revoke, reconcile
            "access": self._statements(
                read=("USER", "REQUEST"),
                write=("USER", "REQUEST"),
                query=("INDEX",),
                key=decrypt,
                roles=True,
                watch=True,
            ),
        }
        environment, files = self._environment(), self._config_files()
        self.functions: dict[str, DeployedFunction] = {
            label: python_function(
                f"{config.name_prefix}-{label}",
                handler=handler,
                description=f"break-glass workflow: {label}",
                statements=permissions[label],
                environment=environment,
                files=files,
                # IAM has no conditional writes: grants and revokes of a role must not interleave.
                reserved_concurrent_executions=1 if label == "access" else None,
                parent=self,
            )
            for label, handler in FUNCTION_HANDLERS.items()
        }

    # -- the state machine ----------------------------------------------------------------------------

    def _create_state_machine(self) -> None:
        config, name, tags = self.config, self._name, self._tags
        arns = {task: self.functions[label].function.arn for task, label in TASK_FUNCTIONS.items()}
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-execution-logs",
            name=f"/aws/vendedlogs/states/{config.name_prefix}-workflow",
            retention_in_days=config.log_retention_days,
            tags=tags,
            opts=self._child,
        )
        self._create_state_machine_role(list(arns.values()))
        tasks = list(arns)
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-workflow",
            name=self.state_machine_name,
            type="STANDARD",
            role_arn=self.state_machine_role.arn,
            definition=pulumi.Output.all(*arns.values()).apply(
                lambda a: json.dumps(sm.definition(sm.WorkflowFunctions(**dict(zip(tasks, a, strict=True)))))
            ),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ALL",
                include_execution_data=config.log_execution_data_opt_in,
                log_destination=self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.state_machine_policy]),
        )

    def _create_state_machine_role(self, function_arns: list[pulumi.Output[str]]) -> None:
        """The workflow's own role: it may invoke exactly its task functions."""
        config, name, child = self.config, self._name, self._child
        self.state_machine_role = aws.iam.Role(
            f"{name}-states-role",
            name=system_role_name(f"{config.name_prefix}-states"),
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "states.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            description="Execution role of the break-glass approval workflow",
            tags=self._tags,
            opts=child,
        )
        self.state_machine_policy = aws.iam.RolePolicy(
            f"{name}-states-policy",
            role=self.state_machine_role.id,
            policy=pulumi.Output.all(*function_arns).apply(
                lambda a: json.dumps(
                    {"Version": "2012-10-17", "Statement": sm.state_machine_role_statements(list(a))}
                )
            ),
            opts=child,
        )

    # -- the approval page (public: signed links, TOTP, POST) ---------------------------------------------

    def _create_approval_page(self) -> None:
        self.approval_function = python_function(
            f"{self.config.name_prefix}-approval-api",
            handler=APPROVAL_PAGE_HANDLER,
            description="break-glass approval page and decisions",
            statements=self._statements(
                read=("USER", "TOKEN", "REQUEST"),
                write=("USER", "TOKEN", "REQUEST"),
                link_key=True,
                extra=self.state_machine.arn.apply(lambda arn: [sm.send_task_statement(arn)]),
            ),
            environment=self._environment(),
            parent=self,
        )
        function = self.approval_function.function
        self.integration = self._integrate("api", self.page_api, function)
        self.routes = [
            aws.apigatewayv2.Route(
                f"{self._name}-route-{method.lower()}",
                api_id=self.page_api.id,
                route_key=f"{method} /requests/{{id}}",
                target=self.integration.id.apply(lambda i: f"integrations/{i}"),
                opts=self._child,
            )
            for method in ("GET", "POST")
        ]
        self.stage = self._stage(
            "api",
            self.page_api,
            self.routes,
            throttle=(20, 10),
            route_settings=[
                aws.apigatewayv2.StageRouteSettingArgs(
                    route_key=f"{method} /requests/{{id}}",
                    throttling_burst_limit=burst,
                    throttling_rate_limit=limit,
                )
                for method, (burst, limit) in PAGE_ROUTE_THROTTLE.items()
            ],
        )
        self.api_permission = self._let_api_invoke("api", self.page_api, function, "/*/*/requests/*")

    # -- the access API (IAM-authorized: requests, votes, revoke, review, halt, resume, enrollment) ----

    def _create_access_api(self) -> None:
        self.access_api_function = self._create_access_api_function()
        function = self.access_api_function.function
        self.access_integration = self._integrate("access", self.access_api, function)
        self.access_routes = [
            aws.apigatewayv2.Route(
                f"{self._name}-access-route-{_slug(key)}",
                api_id=self.access_api.id,
                route_key=key,
                authorization_type="AWS_IAM",
                target=self.access_integration.id.apply(lambda i: f"integrations/{i}"),
                opts=self._child,
            )
            for key in access_api.route_keys()
        ]
        self.access_stage = self._stage(
            "access", self.access_api, self.access_routes, throttle=ACCESS_API_THROTTLE
        )
        self.access_permission = self._let_api_invoke("access", self.access_api, function, "/*/*")

    def _create_access_api_function(self) -> DeployedFunction:
        """The function behind every access API route; it alone starts executions and invokes
        the access function and the halt functions, always for the caller AWS verified."""
        config = self.config
        halt = config.halt_actions
        invokable = [self.functions["access"].function.arn]
        environment = {
            **self._environment(),
            ENV_STATE_MACHINE_ARN: self.state_machine.arn,
            ENV_ACCESS_FUNCTION: self.functions["access"].function.name,
        }
        if halt is not None:
            invokable += [halt.halt_function.arn, halt.resume_function.arn]
            environment[ENV_HALT_FUNCTION] = halt.halt_function.name
            environment[ENV_RESUME_FUNCTION] = halt.resume_function.name
        extra = pulumi.Output.all(self.state_machine.arn, *invokable).apply(
            lambda p: [
                sm.start_execution_statement(p[0]),
                sm.send_task_statement(p[0]),
                sm.invoke_statement("InvokeAccessAndHaltFunctions", list(p[1:])),
            ]
        )
        return python_function(
            f"{config.name_prefix}-access-api",
            handler=ACCESS_API_HANDLER,
            description="break-glass access API: requests, votes, revoke, review, halt, resume",
            statements=self._statements(
                read=("USER", "REQUEST", "LIVE"),
                write=("USER", "REQUEST", "RATE", "LIVE", "INDEX"),
                query=("INDEX",),
                delete=("USER",),
                key=("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"),
                extra=extra,
            ),
            environment=environment,
            files=self._config_files().apply(
                lambda files: {**files, SECURITY_ADMINS_FILE: json.dumps(list(self.config.security_admins))}
            ),
            parent=self,
        )

    # -- serving a function on an HTTP API ------------------------------------------------------------

    def _integrate(
        self, label: str, api: aws.apigatewayv2.Api, function: aws.lambda_.Function
    ) -> aws.apigatewayv2.Integration:
        return aws.apigatewayv2.Integration(
            f"{self._name}-{label}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_uri=function.arn,
            payload_format_version="2.0",
            opts=self._child,
        )

    def _stage(
        self,
        label: str,
        api: aws.apigatewayv2.Api,
        routes: Sequence[aws.apigatewayv2.Route],
        *,
        throttle: tuple[int, float],
        route_settings: Sequence[aws.apigatewayv2.StageRouteSettingArgs] | None = None,
    ) -> aws.apigatewayv2.Stage:
        """The auto-deployed default stage, throttled, created once its routes exist."""
        burst, limit = throttle
        return aws.apigatewayv2.Stage(
            f"{self._name}-{label}-stage",
            api_id=api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=burst, throttling_rate_limit=limit
            ),
            route_settings=route_settings,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(routes)),
        )

    def _let_api_invoke(
        self, label: str, api: aws.apigatewayv2.Api, function: aws.lambda_.Function, routes: str
    ) -> aws.lambda_.Permission:
        """API Gateway may invoke ``function`` for this API's ``routes`` (``/stage/method/path``) only."""
        return allow_invoke(
            f"{self._name}-{label}-invoke",
            function,
            principal="apigateway.amazonaws.com",
            source_arn=api.execution_arn.apply(lambda arn: f"{arn}{routes}"),
            parent=self,
        )

    # -- the reconciler ---------------------------------------------------------------------------------

    def _schedule_reconciler(self) -> None:
        name, child, minutes = self._name, self._child, self.config.reconcile_every_minutes
        access = self.functions["access"].function
        self.reconcile_rule = aws.cloudwatch.EventRule(
            f"{name}-reconcile",
            name=f"{self.config.name_prefix}-reconcile",
            description="Repair grants whose workflow execution stopped without revoke or review",
            schedule_expression=rate(minutes),
            tags=self._tags,
            opts=child,
        )
        self.reconcile_target = aws.cloudwatch.EventTarget(
            f"{name}-reconcile-target",
            rule=self.reconcile_rule.name,
            arn=access.arn,
            input=json.dumps({"action": "reconcile"}),
            opts=child,
        )
        self.reconcile_permission = allow_invoke(
            f"{name}-reconcile-invoke",
            access,
            principal="events.amazonaws.com",
            source_arn=self.reconcile_rule.arn,
            parent=self,
        )

    # -- who may call which route ---------------------------------------------------------------------

    def _route_arns(self, keys: Sequence[str]) -> pulumi.Output[list[str]]:
        return self.access_api.execution_arn.apply(lambda arn: [route_arn(arn, key) for key in keys])

    def _open_routes_to_emergency_roles(self) -> None:
        """Each tier's role may call the halt / resume routes its approval policy allows."""
        self.tier_route_policies = []
        for tier, approval in self.config.tiers.items():
            keys = [*access_api.EMERGENCY_ROUTES]
            if approval.may_halt:
                keys.append(access_api.HALT_ROUTE)
            if approval.may_resume:
                keys.append(access_api.RESUME_ROUTE)
            self.tier_route_policies.append(
                aws.iam.RolePolicy(
                    f"{self._name}-{tier}-routes",
                    name="breakglass-access-api",
                    role=emergency_role_name(tier),
                    policy=self._route_arns(keys).apply(_invoke_policy),
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[r.role for r in self.config.emergency_roles]
                    ),
                )
            )

    def _create_persona_policies(self) -> None:
        """Managed policies a cloud team attaches to responders', approvers' and security's principals.

        Each allows exactly the access API routes of that persona and reading the deployment's
        published settings; responders may also call AssumeRole on the emergency roles (their trust
        still admits nobody without a grant: this only lets the call be made); security may also
        read the audit bucket (``breakglass audit sync`` / ``report``) and the emergency roles' trust.
        """
        where = self._where

        audit = pulumi.Output.all(self.config.audit_bucket_arn, self.config.audit_kms_key_arn)

        def document(keys: Sequence[str], persona: str) -> pulumi.Output[str]:
            return pulumi.Output.all(self._route_arns(keys), where.partition, audit).apply(
                lambda p: _persona_policy(
                    p[0],
                    partition=p[1],
                    assume=persona == "responder",
                    audit=(p[2][0], p[2][1]) if persona == "security" else None,
                )
            )

        self.persona_policies = {
            persona: aws.iam.Policy(
                f"{self._name}-{persona}-policy",
                name=f"{self.config.name_prefix}-{persona}",
                description=f"Break-glass {persona}: the access API routes a {persona} uses",
                policy=document(keys, persona),
                tags=self._tags,
                opts=self._child,
            )
            for persona, keys in access_api.PERSONA_ROUTES.items()
        }

    # -- alarms -------------------------------------------------------------------------------------------

    def _create_alarms(self) -> None:
        """Alarms to the alert topic: executions that did not end normally, floods of refusals on
        the approval page (counted, never stored one by one), and alerts that could not be sent."""
        self.alarms = [
            self._alarm(
                f"{self._name}-{metric.lower()}",
                f"{self.config.name_prefix}-workflow-{metric}",
                f"A break-glass workflow execution ended {what}: read its audit events",
                namespace="AWS/States",
                metric=metric,
                dimensions={"StateMachineArn": self.state_machine.arn},
                threshold=1,
                period=60,
            )
            for metric, what in EXECUTION_ALARMS
        ]
        page = self.approval_function.function.name
        for metric, threshold, what in PAGE_REFUSAL_ALARMS:
            self.alarms.append(
                self._alarm(
                    f"{self._name}-{metric.lower()}",
                    f"{self.config.name_prefix}-approval-page-{metric}",
                    f"The approval page refused {what}: someone may be probing it (see its logs)",
                    namespace=METRICS_NAMESPACE,
                    metric=metric,
                    dimensions={DIMENSION_FUNCTION: page},
                    threshold=threshold,
                    period=300,
                )
            )
        writers = [
            *(f.function.name for f in self.functions.values()),
            page,
            self.access_api_function.function.name,
        ]
        for i, function in enumerate(writers):
            self.alarms.append(
                self._alarm(
                    f"{self._name}-alert-failures-{i}",
                    function.apply(lambda n: f"{n}-{METRIC_ALERT_PUBLISH_FAILURES}"),
                    "An audit event was stored but its alert could not be sent: alerts may be missing",
                    namespace=METRICS_NAMESPACE,
                    metric=METRIC_ALERT_PUBLISH_FAILURES,
                    dimensions={DIMENSION_FUNCTION: function},
                    threshold=1,
                    period=300,
                )
            )

    def _alarm(
        self,
        resource_name: str,
        alarm_name: pulumi.Input[str],
        description: str,
        *,
        namespace: str,
        metric: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        threshold: float,
        period: int,
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            resource_name,
            name=alarm_name,
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dict(dimensions),
            statistic="Sum",
            period=period,
            evaluation_periods=1,
            threshold=threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.config.alert_topic_arn],
            tags=self._tags,
            opts=self._child,
        )


def route_arn(execution_arn: str, route_key: str) -> str:
    """The execute-api ARN of a route on any stage (path parameters become ``*``)."""
    method, path = route_key.split(" ", 1)
    return f"{execution_arn}/*/{method}{_PATH_PARAMETER.sub('*', path)}"


def _persona_policy(
    route_arns: list[str], *, partition: str, assume: bool, audit: tuple[str, str] | None = None
) -> str:
    statements: list[dict[str, Any]] = [
        {"Sid": "CallAccessApi", "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": route_arns},
        {
            "Sid": "FindDeployments",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "Resource": f"arn:{partition}:ssm:*:*:parameter{SSM_ROOT}/*",
        },
    ]
    if assume:
        statements.append(
            {
                "Sid": "AssumeGrantedEmergencyRoles",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                "Resource": f"arn:{partition}:iam::*:role/{EMERGENCY_ROLE_PREFIX}*",
            }
        )
    if audit is not None:
        bucket, key = audit
        statements += [
            {
                "Sid": "ReadAuditTrail",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes"],
                "Resource": [bucket, f"{bucket}/*"],
            },
            {"Sid": "DecryptAuditTrail", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
            {
                # Read-only: which grants a role's trust holds (`breakglass drill --against` checks
                # that a revoke removed them).
                "Sid": "InspectEmergencyRoles",
                "Effect": "Allow",
                "Action": "iam:GetRole",
                "Resource": f"arn:{partition}:iam::*:role/{EMERGENCY_ROLE_PREFIX}*",
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _invoke_policy(arns: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "CallAccessApi", "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": arns}
            ],
        }
    )


def _slug(route_key: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in route_key.lower()).strip("-").replace("--", "-")


def approval_policy_json(tiers: Mapping[str, Any]) -> str:
    """The approval policy file (``APPROVAL_POLICY_FILE``) for ``tiers`` (validated), e.g. for the CLI."""
    return policy_to_json(parse_policy(tiers, "tiers"))


__all__: Sequence[str] = ["ApprovalWorkflow", "ApprovalWorkflowArgs", "ApprovalWorkflowConfig", "route_arn"]
