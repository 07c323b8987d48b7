"""The approval workflow: request, email approval with TOTP, quorum, time-bound grant, revoke.

A Standard Step Functions state machine (definition from
:func:`breakglass.policies.state_machine.definition`) drives one execution per request. Each
Task is a Lambda with its own role and least-privilege policy; grant, revoke and early revoke
share one function with a concurrency of one, the only one allowed to edit the emergency roles.
Approvers answer through an HTTP API (``GET``/``POST /requests/{id}``) served by the approval
Lambda. State (enrollments, spent links, TOTP replay steps, requests) lives in one DynamoDB table
encrypted with the workflow's KMS key, with TTL and point-in-time recovery. The HMAC key of the
approval links is a random Secrets Manager secret encrypted with the same key.

Execution logging is ALL levels but without execution data by default: the data carries
justifications, ticket ids and (in the input) the requester's TOTP code, and CloudWatch Logs is
readable by far more people than the locked audit bucket, which already records every step.
"""

# No `from __future__ import annotations`: Pulumi's schema analyzer reads the real annotations.
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

import pulumi
import pulumi_aws as aws

from breakglass import contracts
from breakglass.components.emergency_role import EmergencyRole, tiers_json
from breakglass.components.functions import DeployedFunction, python_function
from breakglass.components.tagging import protect_children
from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_APPROVAL_POLICY,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    ENV_TIERS,
    EVENTS_PREFIX,
)
from breakglass.lambdas.approvals import store
from breakglass.lambdas.approvals.requests import TierApproval, parse_policy, policy_to_json
from breakglass.lambdas.approvals.workflow import TASK_HANDLERS
from breakglass.policies import state_machine as sm
from breakglass.policies.audit_trail import audit_writer_statements
from breakglass.policies.emergency_role import grant_function_statements
from breakglass.policies.naming import PROTECTED_TAG
from breakglass.validation import (
    EMAIL,
    EMAIL_HINT,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_int,
    require_mapping,
    require_str,
    require_tags,
)

APPROVAL_API_HANDLER: Final = "breakglass.lambdas.approvals.api.handler"
NAME_PREFIX_PATTERN: Final = r"[a-z][a-z0-9-]{0,29}"
# Lambda's limit on all environment variables of a function together.
ENV_MAX_BYTES: Final = 4096
LINK_KEY_BYTES: Final = 48


class ApprovalWorkflowArgs(TypedDict, total=False):
    """Settings of :class:`ApprovalWorkflow`. Required: ``tiers``, the emergency roles (either
    ``emergency_roles`` or ``tiers_json``), the audit trail outputs and ``sender_email``."""

    tiers: dict[str, dict[str, Any]]
    """Approval policy per tier name: ``approval`` (``"auto"`` or a quorum 1-10), ``approvers``
    and ``backup_approvers`` (enrolled user ids), ``ticket_required``, ``ticket_pattern`` (regex)
    and ``approval_timeout_seconds`` (deadline of each approval round; default 3600)."""

    emergency_roles: list[EmergencyRole]
    """The tiers' :class:`EmergencyRole` components (one per tier in ``tiers``)."""

    tiers_json: pulumi.Input[str]
    """Instead of ``emergency_roles``: the ``BREAKGLASS_TIERS`` JSON (``{tier: Tier.to_dict()}``),
    e.g. from ``breakglass.components.emergency_role.tiers_json``."""

    emergency_role_arns: list[pulumi.Input[str]]
    """With ``tiers_json``: the ARNs of the emergency roles the grant function may edit."""

    audit_bucket_name: pulumi.Input[str]
    """Name of the locked audit bucket (``AuditTrail.bucket_name``)."""

    audit_bucket_arn: pulumi.Input[str]
    """ARN of the locked audit bucket (``AuditTrail.bucket_arn``)."""

    audit_kms_key_arn: pulumi.Input[str]
    """ARN of the audit KMS key (``AuditTrail.kms_key_arn``)."""

    audit_events_prefix: str
    """Key prefix of the workflow's events in the bucket. Default ``breakglass-events``."""

    alert_topic_arn: pulumi.Input[str]
    """The alert topic (``AuditTrail.alert_topic_arn``): every event and the workflow's alarms."""

    sender_email: str
    """Address the approval emails come from; created as an SES email identity (verify it)."""

    name_prefix: str
    """Prefix of physical names (functions, table, state machine, API); 1-30 chars. Default
    ``breakglass``."""

    log_execution_data_opt_in: bool
    """Include execution input and output in the state machine's logs (default false: they hold
    justifications and the requester's TOTP code; the audit bucket records every step anyway)."""

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
                hint="use 1-30 lower-case letters, digits or '-', starting with a letter",
            ),
            log_execution_data_opt_in=require_bool(
                "log_execution_data_opt_in", values.get("log_execution_data_opt_in", False)
            ),
            log_retention_days=require_int(
                "log_retention_days", values.get("log_retention_days", 365), minimum=1, maximum=3653
            ),
            tags=require_tags("tags", values.get("tags", {})),
        )
        if len(policy_to_json(config.tiers).encode()) > ENV_MAX_BYTES // 2:
            raise ConfigError(
                "tiers", "the approval policy is too large for a Lambda environment; use fewer approvers"
            )
        return config


class ApprovalWorkflow(pulumi.ComponentResource):
    """Turns a justified request into a time-bound grant, answered by humans from email."""

    state_machine_arn: pulumi.Output[str]
    """The workflow; ``breakglass request`` starts one execution per request (name = request id)."""
    approval_url: pulumi.Output[str]
    """Base URL of the approval page (links are ``<approval_url>/requests/<id>?token=...``)."""
    table_name: pulumi.Output[str]
    """The workflow's DynamoDB table (enrollments, spent links, TOTP steps, requests)."""
    kms_key_arn: pulumi.Output[str]
    """The key encrypting the table, the link secret and the TOTP secrets."""
    link_secret_arn: pulumi.Output[str]
    """The Secrets Manager secret holding the link HMAC key."""
    access_function_name: pulumi.Output[str]
    """The function that grants and revokes (invoke with ``action: early_revoke`` to revoke early)."""

    def __init__(
        self, name: str, args: ApprovalWorkflowArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        config = ApprovalWorkflowConfig.from_args(args)
        # Every taggable child, including each function's role and log group, is protected: an
        # untagged access function or role could be rewritten by an admin-tier session to grant
        # itself a window that never ends. None of the workflow's functions is responder-invocable.
        tagging = pulumi.ResourceOptions(transformations=[protect_children(config.tags)])
        super().__init__(
            "breakglass:index:ApprovalWorkflow", name, None, pulumi.ResourceOptions.merge(opts, tagging)
        )
        self.config = config
        child = pulumi.ResourceOptions(parent=self)
        prefix = config.name_prefix
        tags = {**config.tags, PROTECTED_TAG: "true"}

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{prefix} approval workflow: table, link secret, TOTP secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
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
        self.api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=f"{prefix}-approvals",
            protocol_type="HTTP",
            description="Break-glass approval page: GET shows a request, POST decides it",
            tags=tags,
            opts=child,
        )
        approval_url = self.api.api_endpoint

        tiers_value = (
            tiers_json(list(config.emergency_roles)) if config.emergency_roles else config.tiers_json
        )
        role_arns: pulumi.Output[list[str]] = pulumi.Output.all(
            *([r.role_arn for r in config.emergency_roles] or list(config.emergency_role_arns))
        )
        environment: dict[str, pulumi.Input[str]] = {
            ENV_AUDIT_BUCKET: config.audit_bucket_name,
            ENV_AUDIT_PREFIX: config.audit_events_prefix,
            ENV_AUDIT_KMS_KEY: config.audit_kms_key_arn,
            ENV_ALERT_TOPIC: config.alert_topic_arn,
            contracts.ENV_TABLE: self.table.name,
            contracts.ENV_KMS_KEY: self.key.arn,
            contracts.ENV_LINK_SECRET_ARN: self.link_secret.arn,
            contracts.ENV_APPROVAL_URL: approval_url,
            contracts.ENV_SENDER: config.sender_email,
            ENV_TIERS: tiers_value,
            ENV_APPROVAL_POLICY: policy_to_json(config.tiers),
        }
        audit = pulumi.Output.all(
            config.audit_bucket_arn, config.audit_kms_key_arn, config.alert_topic_arn
        ).apply(
            lambda p: audit_writer_statements(
                bucket_arn=p[0], prefix=config.audit_events_prefix, kms_key_arn=p[1], topic_arn=p[2]
            )
        )

        def statements(
            *,
            read: tuple[str, ...] = (),
            write: tuple[str, ...] = (),
            decrypt: bool = False,
            mail: bool = False,
            link_key: bool = False,
            roles: bool = False,
            sfn: Any = None,
        ) -> pulumi.Output[list[dict[str, Any]]]:
            parts = pulumi.Output.all(
                self.table.arn, self.key.arn, self.identity.arn, self.link_secret.arn, role_arns, audit, sfn
            )

            def build(p: list[Any]) -> list[dict[str, Any]]:
                table_arn, key_arn, identity_arn, secret_arn, arns, audit_statements, machine = p
                found = [*sm.table_statements(table_arn, read=read, write=write), *audit_statements]
                if decrypt or link_key:
                    found.append(sm.key_statement(key_arn))
                if link_key:
                    found.append(sm.secret_statement(secret_arn))
                if mail:
                    found.append(sm.send_email_statement(identity_arn))
                if roles:
                    found.extend(grant_function_statements(list(arns)))
                if machine:
                    found.append(sm.send_task_statement(machine))
                return found

            return parts.apply(build)

        task_permissions: dict[str, pulumi.Output[list[dict[str, Any]]]] = {
            "validate": statements(read=("USER",), write=("USER", "REQUEST"), decrypt=True),
            "await_approval": statements(
                read=("USER", "REQUEST"), write=("REQUEST",), mail=True, link_key=True
            ),
            "auto_approve": statements(read=("USER", "REQUEST"), write=("REQUEST",), mail=True),
            "deny": statements(read=("USER", "REQUEST"), write=("REQUEST",), mail=True),
            "notify_requester": statements(read=("USER", "REQUEST"), mail=True),
            "open_review": statements(read=("REQUEST",)),
            "record_error": statements(read=("REQUEST",), write=("REQUEST",)),
            # grant, revoke and early revoke (its TOTP check reads and claims USER items)
            "access": statements(
                read=("USER", "REQUEST"), write=("USER", "REQUEST"), decrypt=True, roles=True
            ),
        }
        self.functions: dict[str, DeployedFunction] = {}
        for task, handler in TASK_HANDLERS.items():
            label = "access" if handler.endswith(".access_handler") else task.replace("_", "-")
            if label in self.functions:
                continue
            self.functions[label] = python_function(
                f"{prefix}-{label}",
                handler=handler,
                description=f"break-glass workflow task: {label}",
                statements=task_permissions["access" if label == "access" else task],
                environment=environment,
                # IAM has no conditional writes: grants and revokes of a role must not interleave.
                reserved_concurrent_executions=1 if label == "access" else None,
                parent=self,
            )
        arns = {
            task: self.functions[
                "access" if handler.endswith(".access_handler") else task.replace("_", "-")
            ].function.arn
            for task, handler in TASK_HANDLERS.items()
        }

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-execution-logs",
            name=f"/aws/vendedlogs/states/{prefix}-workflow",
            retention_in_days=config.log_retention_days,
            tags=tags,
            opts=child,
        )
        self.state_machine_role = aws.iam.Role(
            f"{name}-states-role",
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
            tags=tags,
            opts=child,
        )
        self.state_machine_policy = aws.iam.RolePolicy(
            f"{name}-states-policy",
            role=self.state_machine_role.id,
            policy=pulumi.Output.all(*arns.values()).apply(
                lambda a: json.dumps(
                    {"Version": "2012-10-17", "Statement": sm.state_machine_role_statements(list(a))}
                )
            ),
            opts=child,
        )
        names = list(arns)
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-workflow",
            name=f"{prefix}-workflow",
            type="STANDARD",
            role_arn=self.state_machine_role.arn,
            definition=pulumi.Output.all(*arns.values()).apply(
                lambda a: json.dumps(sm.definition(sm.WorkflowFunctions(**dict(zip(names, a, strict=True)))))
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

        self.approval_function = python_function(
            f"{prefix}-approval-api",
            handler=APPROVAL_API_HANDLER,
            description="break-glass approval page and decisions",
            statements=statements(
                read=("USER", "TOKEN", "REQUEST"),
                write=("USER", "TOKEN", "REQUEST"),
                link_key=True,
                sfn=self.state_machine.arn,
            ),
            environment=environment,
            parent=self,
        )
        self.integration = aws.apigatewayv2.Integration(
            f"{name}-api-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_uri=self.approval_function.function.arn,
            payload_format_version="2.0",
            opts=child,
        )
        self.routes = [
            aws.apigatewayv2.Route(
                f"{name}-route-{method.lower()}",
                api_id=self.api.id,
                route_key=f"{method} /requests/{{id}}",
                target=self.integration.id.apply(lambda i: f"integrations/{i}"),
                opts=child,
            )
            for method in ("GET", "POST")
        ]
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-api-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=20, throttling_rate_limit=10
            ),
            tags=tags,
            opts=child,
        )
        self.api_permission = aws.lambda_.Permission(
            f"{name}-api-invoke",
            action="lambda:InvokeFunction",
            function=self.approval_function.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*/requests/*"),
            opts=child,
        )

        self.alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-{metric.lower()}",
                name=f"{prefix}-workflow-{metric}",
                alarm_description=f"A break-glass workflow execution ended {what}: read its error audit event",
                namespace="AWS/States",
                metric_name=metric,
                dimensions={"StateMachineArn": self.state_machine.arn},
                statistic="Sum",
                period=60,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[config.alert_topic_arn],
                tags=tags,
                opts=child,
            )
            for metric, what in (("ExecutionsFailed", "failed"), ("ExecutionsTimedOut", "by timing out"))
        ]

        self.state_machine_arn = self.state_machine.arn
        self.approval_url = approval_url
        self.table_name = self.table.name
        self.kms_key_arn = self.key.arn
        self.link_secret_arn = self.link_secret.arn
        self.access_function_name = self.functions["access"].function.name
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "approval_url": self.approval_url,
                "table_name": self.table_name,
                "kms_key_arn": self.kms_key_arn,
                "link_secret_arn": self.link_secret_arn,
                "access_function_name": self.access_function_name,
            }
        )


def approval_policy_json(tiers: Mapping[str, Any]) -> str:
    """The ``BREAKGLASS_APPROVAL_POLICY`` value for ``tiers`` (validated), e.g. for the CLI."""
    return policy_to_json(parse_policy(tiers, "tiers"))


__all__: Sequence[str] = ["ApprovalWorkflow", "ApprovalWorkflowArgs", "ApprovalWorkflowConfig"]
