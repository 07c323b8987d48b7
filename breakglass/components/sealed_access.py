"""SealedAccess: the last resort for when the workflow, SES, the identity provider or the region is down.

A role whose trust admits only named break-glass IAM users with MFA: no request, no approval. It
is guarded by being loud and watched instead (see ``breakglass.policies.sealed_access``):

- the users are created here with no access key and no password; a person adds the hardware MFA
  device and a console password out of band (docs/sealed-access.md: two people, a safe);
- every AssumeRole of the role and every console sign-in of the users alerts at once, from rules in
  the home region and in us-east-1 (where IAM, STS's global endpoint and sign-in events arrive),
  each to an SNS topic in its own region with every alert address subscribed (alerting depends
  neither on the home region nor on Lambda), plus the home alert topic, plus a function in each
  region that records a ``sealed-use`` event in the locked bucket and opens the mandatory review;
- an hourly check alarms when the users gain an access key, a password without MFA, a virtual MFA
  device or any policy but assuming the role, and when the check itself stops running.
"""

# No `from __future__ import annotations`: Pulumi's component schema analyzer reads the real annotations.
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Required, TypedDict

import pulumi
import pulumi_aws as aws

from breakglass.components.audit_trail import TARGET_MAX_EVENT_AGE_SECONDS, TARGET_MAX_RETRY_ATTEMPTS
from breakglass.components.functions import python_function
from breakglass.components.tagging import protect_children
from breakglass.components.wiring import Where, allow_invoke, rate
from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    ENV_HOME_REGION,
    ENV_KMS_KEY,
    ENV_SEALED_ALERT_EMAILS,
    ENV_SEALED_ROLE_ARN,
    ENV_SEALED_ROLE_BASELINE,
    ENV_SEALED_USERS,
    ENV_SENDER,
    ENV_TABLE,
    EVENTS_PREFIX,
    MAX_MFA_AGE_SECONDS,
    MAX_SESSION_SECONDS,
    MIN_MFA_AGE_SECONDS,
    MIN_SESSION_SECONDS,
)
from breakglass.lambdas.runtime import DIMENSION_FUNCTION, METRICS_NAMESPACE
from breakglass.lambdas.sealed.check import METRIC_CHECK_FINDINGS, METRIC_CHECK_RUNS
from breakglass.policies import sealed_access as policies
from breakglass.policies.audit_trail import alert_topic_policy, audit_writer_statements
from breakglass.policies.naming import PROTECTED_TAG
from breakglass.policies.state_machine import key_statement, send_email_statement, table_statements
from breakglass.validation import (
    EMAIL,
    EMAIL_HINT,
    ConfigError,
    reject_unknown_keys,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
    require_tags,
)

TYPE_TOKEN: Final = "breakglass:index:SealedAccess"
# IAM user names: 1-64 of letters, digits and + = , . @ _ -.
IAM_USER_NAME: Final = r"[\w+=,.@-]{1,64}"
MANAGED_POLICY_ARN: Final = r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+"
NAME_PREFIX: Final = r"[a-z][a-z0-9-]{0,29}"
DEFAULT_NAME_PREFIX: Final = policies.DEFAULT_NAME_PREFIX
DEFAULT_MAX_SESSION_SECONDS: Final = 3600
DEFAULT_MAX_MFA_AGE_SECONDS: Final = 900
DEFAULT_CHECK_MINUTES: Final = 60
# Where each set of alerts lives: the home region (the default provider) and us-east-1.
WHERE_HOME: Final = "home"
WHERE_GLOBAL: Final = "global"
_TABLE_KEYS: Final = ("request_table_name", "request_table_arn", "request_table_kms_key_arn")


class SealedAccessArgs(TypedDict, total=False):
    """Settings of :class:`SealedAccess`. Required: ``users``, ``managed_policy_arns``,
    ``alert_topic_arn``, ``alert_emails``, ``audit_bucket_name``."""

    users: Required[list[str]]
    """Names of the break-glass IAM users to create (no access key, no password: a person adds the
    hardware MFA device and the console password out of band). Existing users are not adopted: the
    check's baseline is what this component made."""

    managed_policy_arns: Required[list[str]]
    """What the sealed role may do (managed policy ARNs), e.g. AdministratorAccess. Required: no
    default grants everything."""

    max_session_seconds: int
    """Longest session of the sealed role, 900-43200 s. Default 3600."""

    max_mfa_age_seconds: int
    """How fresh the user's MFA sign-in must be to assume the role, 60-129600 s. Default 900."""

    alert_topic_arn: Required[pulumi.Input[str]]
    """The home alert topic (AuditTrail's): every sealed use and the check's alarms go there too."""

    alert_emails: Required[list[str]]
    """Every approver's and security's address: subscribed to the sealed topics in both regions
    (each must confirm) and mailed by the record function when ``sender_email`` is set."""

    audit_bucket_name: Required[pulumi.Input[str]]
    """The Object Lock audit bucket the ``sealed-use`` and ``review`` events are written to."""

    audit_kms_key_arn: pulumi.Input[str]
    """The key the audit bucket and the alert topic are encrypted with."""

    sender_email: pulumi.Input[str]
    """A verified SES identity (the workflow's sender): the record function emails every alert
    address from it. Optional: the SNS topics alert without it."""

    request_table_name: pulumi.Input[str]
    """The workflow's table: a sealed use gets a final request record there, so
    ``breakglass audit review ID`` accepts its review. With ``request_table_arn`` and
    ``request_table_kms_key_arn``; all three or none."""

    request_table_arn: pulumi.Input[str]
    """ARN of ``request_table_name``."""

    request_table_kms_key_arn: pulumi.Input[str]
    """The key encrypting ``request_table_name``."""

    check_every_minutes: int
    """How often the sealed check runs, 5-1440 minutes. Default 60."""

    name_prefix: str
    """Prefix of every physical name; 1-30 chars. Default ``breakglass``."""

    tags: dict[str, str]
    """Tags added to every resource created (the protected tag is always added)."""


def _input(field_name: str, value: Any, *, pattern: str | None = None) -> pulumi.Input[str]:
    """An Output is taken as given (checked where it is made); a plain value is validated here."""
    if isinstance(value, pulumi.Output):
        return value
    return require_str(field_name, value, pattern=pattern)


@dataclass(frozen=True)
class SealedAccessConfig:
    users: tuple[str, ...]
    managed_policy_arns: tuple[str, ...]
    alert_topic_arn: pulumi.Input[str]
    alert_emails: tuple[str, ...]
    audit_bucket_name: pulumi.Input[str]
    audit_kms_key_arn: pulumi.Input[str] | None = None
    sender_email: pulumi.Input[str] | None = None
    request_table: tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str]] | None = None
    max_session_seconds: int = DEFAULT_MAX_SESSION_SECONDS
    max_mfa_age_seconds: int = DEFAULT_MAX_MFA_AGE_SECONDS
    check_every_minutes: int = DEFAULT_CHECK_MINUTES
    name_prefix: str = DEFAULT_NAME_PREFIX
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def role_name(self) -> str:
        return policies.role_name(self.name_prefix)

    @classmethod
    def from_args(cls, args: Mapping[str, Any] | None) -> "SealedAccessConfig":
        raw = require_mapping("args", {} if args is None else args)
        reject_unknown_keys("", raw, SealedAccessArgs.__annotations__)
        for required in (
            "users",
            "managed_policy_arns",
            "alert_topic_arn",
            "alert_emails",
            "audit_bucket_name",
        ):
            if raw.get(required) is None:
                raise ConfigError(required, "is required")
        users = require_str_list(
            "users", raw["users"], pattern=IAM_USER_NAME, allow_empty=False, hint="use IAM user names"
        )
        if len(set(users)) != len(users):
            raise ConfigError("users", "names a user twice")
        given_table = [k for k in _TABLE_KEYS if raw.get(k) is not None]
        if given_table and len(given_table) != len(_TABLE_KEYS):
            missing = next(k for k in _TABLE_KEYS if k not in given_table)
            raise ConfigError(
                missing, f"is required with {given_table[0]} (all of {', '.join(_TABLE_KEYS)} or none)"
            )
        return cls(
            users=users,
            managed_policy_arns=require_str_list(
                "managed_policy_arns",
                raw["managed_policy_arns"],
                pattern=MANAGED_POLICY_ARN,
                allow_empty=False,
                hint="use managed policy ARNs (arn:aws:iam::aws:policy/NAME or arn:aws:iam::ACCOUNT:policy/NAME)",
            ),
            alert_topic_arn=_input("alert_topic_arn", raw["alert_topic_arn"]),
            alert_emails=require_str_list(
                "alert_emails", raw["alert_emails"], pattern=EMAIL, allow_empty=False, hint=EMAIL_HINT
            ),
            audit_bucket_name=_input("audit_bucket_name", raw["audit_bucket_name"]),
            audit_kms_key_arn=_input("audit_kms_key_arn", raw["audit_kms_key_arn"])
            if raw.get("audit_kms_key_arn") is not None
            else None,
            sender_email=_input("sender_email", raw["sender_email"], pattern=EMAIL)
            if raw.get("sender_email") is not None
            else None,
            request_table=(
                _input("request_table_name", raw["request_table_name"]),
                _input("request_table_arn", raw["request_table_arn"]),
                _input("request_table_kms_key_arn", raw["request_table_kms_key_arn"]),
            )
            if given_table
            else None,
            max_session_seconds=require_int(
                "max_session_seconds",
                raw.get("max_session_seconds", DEFAULT_MAX_SESSION_SECONDS),
                minimum=MIN_SESSION_SECONDS,
                maximum=MAX_SESSION_SECONDS,
            ),
            max_mfa_age_seconds=require_int(
                "max_mfa_age_seconds",
                raw.get("max_mfa_age_seconds", DEFAULT_MAX_MFA_AGE_SECONDS),
                minimum=MIN_MFA_AGE_SECONDS,
                maximum=MAX_MFA_AGE_SECONDS,
            ),
            check_every_minutes=require_int(
                "check_every_minutes",
                raw.get("check_every_minutes", DEFAULT_CHECK_MINUTES),
                minimum=5,
                maximum=1440,
            ),
            name_prefix=require_str(
                "name_prefix",
                raw.get("name_prefix", "breakglass"),
                pattern=NAME_PREFIX,
                hint="use 1-30 lower-case letters, digits or '-', starting with a letter",
            ),
            tags=require_tags("tags", raw.get("tags", {})),
        )


@dataclass
class _RegionAlerts:
    """One region's topic, rules and record function."""

    region: pulumi.Output[str]
    topic: aws.sns.Topic
    rules: dict[str, aws.cloudwatch.EventRule]
    function: aws.lambda_.Function
    # Each rule's pattern and target ARNs, published for the drill to compare with AWS's.
    patterns: pulumi.Output[dict[str, Any]]
    targets: dict[str, list[pulumi.Input[str]]]


class SealedAccess(pulumi.ComponentResource):
    """The sealed last resort: a role only named IAM users with MFA assume, loud and watched."""

    role_arn: pulumi.Output[str]
    """The sealed role."""
    user_arns: pulumi.Output[list[str]]
    """The break-glass IAM users."""
    topic_arns: pulumi.Output[dict[str, str]]
    """The sealed alert topic of each region (``home``, ``global``)."""
    check_function_name: pulumi.Output[str]
    """The hourly sealed check."""
    security_policy_arn: pulumi.Output[str]
    """A managed policy for security's principals: the read rights ``breakglass drill --against``'s
    sealed-access step needs (rules, targets, subscriptions, alarms, the check's metrics)."""
    published: pulumi.Output[str]
    """What the deployment publishes (JSON) for ``breakglass drill --against``."""

    def __init__(self, name: str, args: SealedAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config = SealedAccessConfig.from_args(args)
        # Every taggable child is protected, including each function's role and log group: an
        # admin-tier session could otherwise erase the check's log (its findings' detail).
        tagging = pulumi.ResourceOptions(transformations=[protect_children(config.tags)])
        super().__init__(TYPE_TOKEN, name, None, pulumi.ResourceOptions.merge(opts, tagging))
        self.config = config
        self._name = name
        self._tags = {**config.tags, PROTECTED_TAG: "true"}
        child = pulumi.ResourceOptions(parent=self)
        self._where = Where.of(self)

        self._create_users_and_role(child)
        self.global_provider = aws.Provider(
            f"{name}-us-east-1", region=policies.GLOBAL_EVENTS_REGION, opts=child
        )
        self.regions = {
            WHERE_HOME: self._region_alerts(WHERE_HOME, None),
            WHERE_GLOBAL: self._region_alerts(WHERE_GLOBAL, self.global_provider),
        }
        self._create_check()
        self._schedule_check(child)
        self._create_check_alarms(child)
        self._create_security_policy(child)

        self.role_arn = self.role.arn
        self.user_arns = pulumi.Output.all(*[u.arn for u in self.users])
        self.topic_arns = pulumi.Output.all(**{w: r.topic.arn for w, r in self.regions.items()})
        self.check_function_name = self.check.function.name
        self.security_policy_arn = self.security_policy.arn
        self.published = self._published()
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "user_arns": self.user_arns,
                "topic_arns": self.topic_arns,
                "check_function_name": self.check_function_name,
                "security_policy_arn": self.security_policy_arn,
                "published": self.published,
            }
        )

    # -- the users and the role -----------------------------------------------------------------------

    def _create_users_and_role(self, child: pulumi.ResourceOptions) -> None:
        config = self.config
        self.users = [
            aws.iam.User(
                f"{self._name}-user-{i}", name=user, force_destroy=False, tags=self._tags, opts=child
            )
            for i, user in enumerate(config.users)
        ]
        trust = pulumi.Output.all(self._where.region, *[u.arn for u in self.users]).apply(
            lambda p: json.dumps(
                policies.trust_policy(
                    dict(zip(config.users, p[1:], strict=True)),
                    max_mfa_age_seconds=config.max_mfa_age_seconds,
                    regions=policies.alert_regions(p[0]),
                )
            )
        )
        self.role = aws.iam.Role(
            f"{self._name}-role",
            name=config.role_name,
            description="Sealed break-glass role: only the named IAM users with MFA; every use alerts",
            assume_role_policy=trust,
            max_session_duration=config.max_session_seconds,
            tags=self._tags,
            opts=child,
        )
        for i, arn in enumerate(config.managed_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{self._name}-role-policy-{i}", role=self.role.name, policy_arn=arn, opts=child
            )
        for i, user in enumerate(self.users):
            aws.iam.UserPolicy(
                f"{self._name}-user-{i}-policy",
                name=policies.USER_POLICY_NAME,
                user=user.name,
                policy=self.role.arn.apply(lambda arn: json.dumps(policies.user_policy(arn))),
                opts=child,
            )

    # -- alerts, in one region ------------------------------------------------------------------------

    def _region_alerts(self, where: str, provider: aws.Provider | None) -> _RegionAlerts:
        """One region's alerts: a topic, the function that records a use, and a rule per alert class."""
        config = self.config
        region_parent = pulumi.ComponentResource(
            f"{TYPE_TOKEN}Region",
            f"{self._name}-{where}",
            None,
            pulumi.ResourceOptions(parent=self, providers=[provider] if provider else None),
        )
        region = (
            pulumi.Output.from_input(policies.GLOBAL_EVENTS_REGION)
            if provider is not None
            else self._where.region
        )
        topic = self._region_topic(where, region_parent)
        function = python_function(
            f"{config.name_prefix}-sealed-use-{where}",
            handler="breakglass.lambdas.sealed.use.handler",
            description="Records a sealed use in the audit bucket, opens its review, emails people",
            statements=self._use_statements(),
            environment=self._use_environment(),
            parent=region_parent,
        ).function
        classes = [*policies.ALERT_CLASSES, *(policies.IAM_ALERT_CLASSES if where == WHERE_GLOBAL else ())]
        patterns = self._alert_patterns()
        rules: dict[str, aws.cloudwatch.EventRule] = {}
        rule_targets: dict[str, list[pulumi.Input[str]]] = {}
        for alert in classes:
            records = alert in policies.ALERT_CLASSES  # a use, not an IAM change
            targets: list[tuple[str, pulumi.Input[str]]] = [("topic", topic.arn)]
            if records:
                targets.append(("record", function.arn))
            if provider is None:
                targets.append(("alerts", config.alert_topic_arn))
            rules[alert] = self._region_rule(where, alert, patterns, targets, region_parent)
            if records:
                allow_invoke(
                    f"{self._name}-{where}-{alert}-invoke",
                    function,
                    principal="events.amazonaws.com",
                    source_arn=rules[alert].arn,
                    parent=region_parent,
                )
            rule_targets[alert] = [arn for _, arn in targets]
        region_parent.register_outputs({"topic_arn": topic.arn})
        return _RegionAlerts(
            region=region,
            topic=topic,
            rules=rules,
            function=function,
            patterns=patterns.apply(lambda p: {a: p[a] for a in classes}),
            targets=rule_targets,
        )

    def _region_topic(self, where: str, region_parent: pulumi.Resource) -> aws.sns.Topic:
        """The region's sealed alert topic, publishable by EventBridge, with every address subscribed."""
        name, opts = f"{self._name}-{where}", pulumi.ResourceOptions(parent=region_parent)
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=f"{self.config.name_prefix}-sealed-{where}",
            display_name="Break-glass SEALED access",
            tags=self._tags,
            opts=opts,
        )
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, self._where.partition, self._where.account).apply(
                lambda p: json.dumps(alert_topic_policy(topic_arn=p[0], partition=p[1], account_id=p[2]))
            ),
            opts=opts,
        )
        for i, email in enumerate(self.config.alert_emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{i}", topic=topic.arn, protocol="email", endpoint=email, opts=opts
            )
        return topic

    def _alert_patterns(self) -> pulumi.Output[dict[str, Any]]:
        """Every alert class's event pattern: uses of the role or the users, and IAM changes to them."""
        config, users = self.config, list(self.config.users)
        return pulumi.Output.all(self.role.arn, pulumi.Output.all(*[u.arn for u in self.users])).apply(
            lambda p: {
                **policies.alert_event_patterns(role_arn=p[0], user_arns=p[1]),
                **policies.iam_change_patterns(role_name=config.role_name, user_names=users),
            }
        )

    def _region_rule(
        self,
        where: str,
        alert: str,
        patterns: pulumi.Output[dict[str, Any]],
        targets: Sequence[tuple[str, pulumi.Input[str]]],
        region_parent: pulumi.Resource,
    ) -> aws.cloudwatch.EventRule:
        """One alert class's rule in the region, delivering to each ``(target id, ARN)``."""
        name, opts = f"{self._name}-{where}", pulumi.ResourceOptions(parent=region_parent)
        rule = aws.cloudwatch.EventRule(
            f"{name}-{alert}",
            name=f"{self.config.name_prefix}-{alert}-{where}",
            description=f"Break-glass alert: {alert.replace('-', ' ')} ({where} region)",
            event_pattern=patterns.apply(_pattern_json(alert)),
            state="ENABLED",
            tags=self._tags,
            opts=opts,
        )
        for target_id, arn in targets:
            aws.cloudwatch.EventTarget(
                f"{name}-{alert}-{target_id}",
                rule=rule.name,
                target_id=target_id,
                arn=arn,
                retry_policy={
                    "maximum_event_age_in_seconds": TARGET_MAX_EVENT_AGE_SECONDS,
                    "maximum_retry_attempts": TARGET_MAX_RETRY_ATTEMPTS,
                },
                opts=opts,
            )
        return rule

    def _use_environment(self) -> dict[str, pulumi.Input[str]]:
        config = self.config
        environment: dict[str, pulumi.Input[str]] = {
            ENV_AUDIT_BUCKET: config.audit_bucket_name,
            ENV_AUDIT_PREFIX: EVENTS_PREFIX,
            ENV_ALERT_TOPIC: config.alert_topic_arn,
            ENV_SEALED_ROLE_ARN: self.role.arn,
            ENV_SEALED_USERS: json.dumps(list(config.users)),
            ENV_SEALED_ALERT_EMAILS: json.dumps(list(config.alert_emails)),
            ENV_HOME_REGION: self._where.region,
        }
        if config.audit_kms_key_arn is not None:
            environment[ENV_AUDIT_KMS_KEY] = config.audit_kms_key_arn
        if config.sender_email is not None:
            environment[ENV_SENDER] = config.sender_email
        if config.request_table is not None:
            environment[ENV_TABLE] = config.request_table[0]
            environment[ENV_KMS_KEY] = config.request_table[2]
        return environment

    def _use_statements(self) -> pulumi.Output[list[dict[str, Any]]]:
        config = self.config
        table = config.request_table
        parts = pulumi.Output.all(
            self._where.partition,
            self._where.region,
            self._where.account,
            config.audit_bucket_name,
            config.audit_kms_key_arn,
            config.alert_topic_arn,
            config.sender_email,
            table[1] if table else None,
            table[2] if table else None,
        )

        def build(p: list[Any]) -> list[dict[str, Any]]:
            partition, home, account, bucket, audit_key, topic, sender, table_arn, table_key = p
            found = audit_writer_statements(
                bucket_arn=f"arn:{partition}:s3:::{bucket}",
                prefix=EVENTS_PREFIX,
                kms_key_arn=audit_key,
                topic_arn=topic,
            )
            if sender:
                found.append(send_email_statement(f"arn:{partition}:ses:{home}:{account}:identity/{sender}"))
            if table_arn:
                # A conditional put, then reading it back and marking it mailed after the email.
                found += table_statements(table_arn, read=("REQUEST",), write=("REQUEST",))
                found.append(key_statement(table_key, ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")))
            return found

        return parts.apply(build)

    # -- the hourly check ---------------------------------------------------------------------------

    def _create_check(self) -> None:
        """The function that checks the sealed users and role against their baseline."""
        config = self.config
        statements = pulumi.Output.all(
            self._where.partition, self._where.account, self.role.arn, *[u.arn for u in self.users]
        ).apply(
            lambda p: policies.check_statements(
                user_arns=list(p[3:]),
                role_arn=p[2],
                partition=p[0],
                account_id=p[1],
                metrics_namespace=METRICS_NAMESPACE,
            )
        )
        baseline = self._where.region.apply(
            lambda home: json.dumps(
                {
                    "managed_policy_arns": list(config.managed_policy_arns),
                    "max_session_seconds": config.max_session_seconds,
                    "max_mfa_age_seconds": config.max_mfa_age_seconds,
                    "regions": policies.alert_regions(home),
                },
                sort_keys=True,
            )
        )
        self.check = python_function(
            f"{config.name_prefix}-sealed-check",
            handler="breakglass.lambdas.sealed.check.handler",
            description="Alarms when the sealed users gain keys, a password without MFA, virtual MFA or policies",
            statements=statements,
            environment={
                ENV_SEALED_USERS: json.dumps(list(config.users)),
                ENV_SEALED_ROLE_ARN: self.role.arn,
                ENV_SEALED_ROLE_BASELINE: baseline,
            },
            parent=self,
        )

    def _schedule_check(self, child: pulumi.ResourceOptions) -> None:
        config = self.config
        self.check_rule = aws.cloudwatch.EventRule(
            f"{self._name}-check-schedule",
            name=f"{config.name_prefix}-sealed-check",
            description="Run the sealed check",
            schedule_expression=rate(config.check_every_minutes),
            tags=self._tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-check-target", rule=self.check_rule.name, arn=self.check.function.arn, opts=child
        )
        allow_invoke(
            f"{self._name}-check-invoke",
            self.check.function,
            principal="events.amazonaws.com",
            source_arn=self.check_rule.arn,
            parent=self,
        )

    def _create_check_alarms(self, child: pulumi.ResourceOptions) -> None:
        """Alarms on the check's findings, and on the check no longer running."""
        config = self.config
        dimensions = {DIMENSION_FUNCTION: self.check.function.name}
        period = config.check_every_minutes * 60
        self.alarms = {
            # Any finding of a run.
            "findings": aws.cloudwatch.MetricAlarm(
                f"{self._name}-findings-alarm",
                name=f"{config.name_prefix}-sealed-findings",
                alarm_description="The sealed users have an access key, a password without MFA, a virtual MFA "
                "device or a policy beyond assuming the sealed role: read the sealed check's log",
                namespace=METRICS_NAMESPACE,
                metric_name=METRIC_CHECK_FINDINGS,
                dimensions=dimensions,
                statistic="Maximum",
                period=period,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[config.alert_topic_arn],
                tags=self._tags,
                opts=child,
            ),
            # A check that stopped running is a check that finds nothing.
            "not-running": aws.cloudwatch.MetricAlarm(
                f"{self._name}-not-running-alarm",
                name=f"{config.name_prefix}-sealed-check-not-running",
                alarm_description="The sealed check has not run for two periods: the sealed users are unwatched",
                namespace=METRICS_NAMESPACE,
                metric_name=METRIC_CHECK_RUNS,
                dimensions=dimensions,
                statistic="SampleCount",
                period=period,
                evaluation_periods=2,
                threshold=1,
                comparison_operator="LessThanThreshold",
                treat_missing_data="breaching",
                alarm_actions=[config.alert_topic_arn],
                tags=self._tags,
                opts=child,
            ),
        }

    def _create_security_policy(self, child: pulumi.ResourceOptions) -> None:
        rule_arns = [r.arn for region in self.regions.values() for r in region.rules.values()]
        topic_arns = [region.topic.arn for region in self.regions.values()]
        alarm_arns = [a.arn for a in self.alarms.values()]
        document = pulumi.Output.all(
            pulumi.Output.all(*rule_arns),
            pulumi.Output.all(*topic_arns),
            pulumi.Output.all(*alarm_arns),
            self.role.arn,
        ).apply(
            lambda p: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": policies.inspect_statements(
                        rule_arns=p[0], topic_arns=p[1], alarm_arns=p[2], role_arn=p[3]
                    ),
                }
            )
        )
        self.security_policy = aws.iam.Policy(
            f"{self._name}-security-policy",
            name=f"{self.config.name_prefix}-sealed-security",
            description="Break-glass security: inspect the sealed last resort's alarms (drill --against)",
            policy=document,
            tags=self._tags,
            opts=child,
        )

    def _published(self) -> pulumi.Output[str]:
        regions = {
            where: pulumi.Output.all(
                r.region,
                r.topic.arn,
                r.function.arn,
                pulumi.Output.all(**{a: rule.name for a, rule in r.rules.items()}),
                r.patterns,
                pulumi.Output.all(**{a: pulumi.Output.all(*arns) for a, arns in r.targets.items()}),
            ).apply(
                lambda p: {
                    "region": p[0],
                    "topic_arn": p[1],
                    "rules": list(p[3].values()),
                    "record_function_arn": p[2],
                    # What the drill compares with DescribeRule and ListTargetsByRule.
                    "rule_patterns": {p[3][a]: pattern for a, pattern in p[4].items()},
                    "rule_targets": {p[3][a]: sorted(arns) for a, arns in p[5].items()},
                }
            )
            for where, r in self.regions.items()
        }
        return pulumi.Output.all(
            self.role.arn,
            self.check.function.name,
            pulumi.Output.all(*[a.name for a in self.alarms.values()]),
            self.config.alert_topic_arn,
            pulumi.Output.all(**regions),
        ).apply(
            lambda p: json.dumps(
                {
                    "role_arn": p[0],
                    "users": list(self.config.users),
                    "alert_emails": list(self.config.alert_emails),
                    "alert_topic_arn": p[3],
                    "check_function": p[1],
                    "check_every_minutes": self.config.check_every_minutes,
                    "alarms": list(p[2]),
                    "regions": p[4],
                },
                sort_keys=True,
            )
        )


def _pattern_json(alert: str) -> Callable[[Mapping[str, Any]], str]:
    def render(patterns: Mapping[str, Any]) -> str:
        return json.dumps(patterns[alert], sort_keys=True)

    return render


__all__: Sequence[str] = ["SealedAccess", "SealedAccessArgs", "SealedAccessConfig"]
