"""HaltActions: the AI kill switch as a Pulumi component.

Declares the halt targets (SageMaker endpoints by name or tags, Bedrock model / inference-profile /
agent ARNs, their invoker roles), the modes each allows, a halt and a resume Lambda whose roles
can touch exactly those targets, and optional tripwires: a CloudWatch alarm on a metric the user
chooses, an EventBridge rule on the alarm entering ALARM, and the halt Lambda as its target with the
configured targets and mode (the alarm also notifies the alert topic).

Who invokes the functions: the access API's function (``POST /halts``, ``POST /resumes``, with the
verified caller as actor) and the tripwire rules. They are protected and invoked by nobody else:
an emergency session cannot invoke them with a payload of its choosing. The component exposes
their ARNs and names (``halt_function_arn`` ... ``resume_function_name``) for the access API's role
and environment. The halt function gets ``{alarm ARN: tripwire name}`` of its tripwires and may
read only those alarms' state, which it checks before believing a tripwire event.
"""

# No `from __future__ import annotations`: Pulumi's schema analyzer reads the real annotations.

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import pulumi
import pulumi_aws as aws

from breakglass.components.functions import DeployedFunction, python_function
from breakglass.components.tagging import protect_children
from breakglass.components.wiring import Where, allow_invoke
from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    EVENTS_PREFIX,
    HALT_CONFIG_FILE,
)
from breakglass.policies.halt import (
    MODES,
    AuditAccess,
    HaltTarget,
    alarm_arn,
    encode_halt_config,
    halt_function_statements,
    parse_targets,
    resume_function_statements,
    tripwire_event_pattern,
    tripwire_input_template,
)
from breakglass.validation import (
    RESOURCE_NAME,
    RESOURCE_NAME_HINT,
    ConfigError,
    reject_unknown_keys,
    require_choice,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
)

TYPE_TOKEN = "breakglass:index:HaltActions"
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
COMPARISONS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
MISSING_DATA = ("notBreaching", "breaching", "ignore", "missing")
# The targets travel in a file of the functions' archive (HALT_CONFIG_FILE), not their 4 KB
# environment; the bound keeps one switch's fan-out, policies and audit within what a halt
# function finishes in its timeout (benchmarks/halt_fanout.py, benchmarks/load.py).
MAX_TARGETS = 1000
HALT_TIMEOUT_SECONDS = 300
# Resume waits for recreated endpoints to be InService, which takes minutes: the Lambda maximum.
RESUME_TIMEOUT_SECONDS = 900


class HaltTargetArgs(TypedDict, total=False):
    """One thing the kill switch can stop."""

    id: Required[str]
    """Short name of the target (1-40 lower-case letters, digits, '-'): used in results, audit
    events, the statement ids of its denies and the name of a deny page it has alone
    (``breakglass-halt-<id>``; targets halted together on one invoker role share a page)."""
    endpoint_name: str
    """A SageMaker endpoint name. Give exactly one of endpoint_name, endpoint_tags, bedrock_arns."""
    endpoint_tags: Mapping[str, str]
    """SageMaker endpoints selected by tags (all must match), resolved when the switch is pulled."""
    bedrock_arns: Sequence[str]
    """Bedrock foundation-model, inference-profile, provisioned-model, custom-model, agent or
    agent-alias ARNs."""
    invoker_roles: Sequence[str]
    """Names of the IAM roles that call the target; deny-invoke puts its deny on each of them."""
    modes: Sequence[str]
    """Halt modes allowed for the target: deny-invoke (default), delete-endpoint (SageMaker), scp."""
    scp_target_ids: Sequence[str]
    """For scp: the account ids, OU ids (ou-...) or root ids (r-...) the deny SCP is attached to."""


class TripwireArgs(TypedDict, total=False):
    """An alarm that halts targets without waiting for a person."""

    name: Required[str]
    """Short name of the tripwire (1-40 lower-case letters, digits, '-')."""
    metric_name: Required[str]
    """The CloudWatch metric watched, e.g. ``Invocation5XXErrors`` or a guardrail-intervention metric."""
    namespace: Required[str]
    """The metric's namespace, e.g. ``AWS/SageMaker`` or ``AWS/Bedrock``."""
    dimensions: Mapping[str, str]
    """The metric's dimensions, e.g. ``{"EndpointName": "chat", "VariantName": "AllTraffic"}``."""
    statistic: str
    """SampleCount, Average, Sum (default), Minimum or Maximum."""
    threshold: Required[float]
    """The value compared with the statistic (required)."""
    comparison: str
    """How the statistic is compared with the threshold (default GreaterThanOrEqualToThreshold)."""
    period: int
    """Seconds per datapoint: 10, 30 or a multiple of 60 (default 60)."""
    evaluation_periods: int
    """Number of periods evaluated (default 1)."""
    datapoints_to_alarm: int
    """Breaching datapoints within the evaluated periods that trip the alarm (default: all of them)."""
    treat_missing_data: str
    """notBreaching (default: no traffic is no reason to halt), breaching, ignore or missing."""
    mode: str
    """The halt mode used when it trips (default deny-invoke: reversible, capacity stays warm)."""
    targets: Sequence[str]
    """Ids of the targets it halts (default: every target that allows the mode)."""


class HaltActionsArgs(TypedDict, total=False):
    """Arguments of :class:`HaltActions`."""

    targets: Required[Sequence[HaltTargetArgs]]
    """The halt targets (at least one)."""
    audit_bucket_name: Required[pulumi.Input[str]]
    """Name of the audit bucket (Object Lock) for audit events and delete-endpoint snapshots. Required."""
    audit_kms_key_arn: pulumi.Input[str]
    """ARN of the audit KMS key used for those objects (recommended)."""
    audit_events_prefix: pulumi.Input[str]
    """Key prefix of the audit events in the bucket (default ``breakglass-events``)."""
    alert_topic_arn: pulumi.Input[str]
    """SNS topic that gets every halt / resume event and each tripwire alarm (recommended)."""
    tripwires: Sequence[TripwireArgs]
    """Optional alarms that halt targets automatically."""


@dataclass(frozen=True)
class Tripwire:
    name: str
    metric_name: str
    namespace: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    threshold: float
    comparison: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    mode: str
    targets: tuple[str, ...]

    @classmethod
    def parse(cls, field: str, value: Any, targets: Sequence[HaltTarget]) -> "Tripwire":
        spec = require_mapping(field, value)
        reject_unknown_keys(field, spec, TripwireArgs.__annotations__)
        for required in ("name", "metric_name", "namespace", "threshold"):
            if required not in spec:
                raise ConfigError(f"{field}.{required}", "is required")
        name = require_str(f"{field}.name", spec["name"], pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT)
        threshold = spec["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"{field}.threshold", f"must be a number, got {threshold!r}")
        period = require_int(f"{field}.period", spec.get("period", 60), minimum=10, maximum=86400)
        if period not in (10, 30) and period % 60:
            raise ConfigError(f"{field}.period", f"must be 10, 30 or a multiple of 60, got {period}")
        evaluation_periods = require_int(
            f"{field}.evaluation_periods", spec.get("evaluation_periods", 1), minimum=1, maximum=100
        )
        datapoints = require_int(
            f"{field}.datapoints_to_alarm",
            spec.get("datapoints_to_alarm", evaluation_periods),
            minimum=1,
            maximum=evaluation_periods,
        )
        dimensions = require_mapping(f"{field}.dimensions", spec.get("dimensions", {}))
        for key, dim_value in dimensions.items():
            require_str(f"{field}.dimensions.{key}", dim_value, max_length=1024)
        mode = require_choice(f"{field}.mode", spec.get("mode", "deny-invoke"), MODES)
        declared = {t.id: t for t in targets}
        if "targets" in spec:
            ids = require_str_list(f"{field}.targets", spec["targets"], allow_empty=False)
            for i, target_id in enumerate(ids):
                if target_id not in declared:
                    raise ConfigError(f"{field}.targets[{i}]", f"{target_id!r} is not a declared target")
                if mode not in declared[target_id].modes:
                    raise ConfigError(
                        f"{field}.targets[{i}]", f"target {target_id!r} does not allow mode {mode}"
                    )
        else:
            ids = tuple(t.id for t in targets if mode in t.modes)
            if not ids:
                raise ConfigError(f"{field}.mode", f"no declared target allows mode {mode}")
        return cls(
            name=name,
            metric_name=require_str(f"{field}.metric_name", spec["metric_name"], max_length=255),
            namespace=require_str(f"{field}.namespace", spec["namespace"], max_length=255),
            dimensions=tuple(sorted((str(k), str(v)) for k, v in dimensions.items())),
            statistic=require_choice(f"{field}.statistic", spec.get("statistic", "Sum"), STATISTICS),
            threshold=float(threshold),
            comparison=require_choice(
                f"{field}.comparison", spec.get("comparison", "GreaterThanOrEqualToThreshold"), COMPARISONS
            ),
            period=period,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data=require_choice(
                f"{field}.treat_missing_data", spec.get("treat_missing_data", "notBreaching"), MISSING_DATA
            ),
            mode=mode,
            targets=ids,
        )


def _optional_input(field: str, value: Any) -> pulumi.Input[str] | None:
    if value is None:
        return None
    if isinstance(value, pulumi.Output):
        return value
    return require_str(field, value, max_length=2048)


@dataclass(frozen=True)
class HaltActionsConfig:
    targets: tuple[HaltTarget, ...]
    audit_bucket_name: pulumi.Input[str]
    audit_kms_key_arn: pulumi.Input[str] | None
    audit_events_prefix: pulumi.Input[str]
    alert_topic_arn: pulumi.Input[str] | None
    tripwires: tuple[Tripwire, ...]

    @classmethod
    def from_args(cls, name: str, args: Mapping[str, Any] | None) -> "HaltActionsConfig":
        require_str("name", name, pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT)
        values = require_mapping("args", args if args is not None else {})
        reject_unknown_keys("", values, HaltActionsArgs.__annotations__)
        if "targets" not in values:
            raise ConfigError("targets", "declare at least one halt target")
        targets = parse_targets("targets", values["targets"])
        if len(targets) > MAX_TARGETS:
            raise ConfigError(
                "targets",
                f"declares {len(targets)} targets, over the {MAX_TARGETS} one switch halts; split them over "
                "several HaltActions components",
            )
        if values.get("audit_bucket_name") is None:
            raise ConfigError("audit_bucket_name", "is required: every halt and resume is audited")
        bucket: pulumi.Input[str] = (
            values["audit_bucket_name"]
            if isinstance(values["audit_bucket_name"], pulumi.Output)
            else require_str("audit_bucket_name", values["audit_bucket_name"], max_length=63)
        )
        raw_tripwires = values.get("tripwires", [])
        if isinstance(raw_tripwires, str) or not isinstance(raw_tripwires, Sequence):
            raise ConfigError("tripwires", f"must be a list, got {type(raw_tripwires).__name__}")
        tripwires = tuple(Tripwire.parse(f"tripwires[{i}]", t, targets) for i, t in enumerate(raw_tripwires))
        seen: set[str] = set()
        for i, tripwire in enumerate(tripwires):
            if tripwire.name in seen:
                raise ConfigError(f"tripwires[{i}].name", f"{tripwire.name!r} is used twice")
            seen.add(tripwire.name)
            if len(f"{name}-trip-{tripwire.name}") > 64:
                raise ConfigError(
                    f"tripwires[{i}].name", "together with the component name it must fit 64 characters"
                )
        return cls(
            targets=targets,
            audit_bucket_name=bucket,
            audit_kms_key_arn=_optional_input("audit_kms_key_arn", values.get("audit_kms_key_arn")),
            audit_events_prefix=_optional_input("audit_events_prefix", values.get("audit_events_prefix"))
            or EVENTS_PREFIX,
            alert_topic_arn=_optional_input("alert_topic_arn", values.get("alert_topic_arn")),
            tripwires=tripwires,
        )


class HaltActions(pulumi.ComponentResource):
    """Halt and resume Lambdas scoped to the declared targets, and optional tripwires."""

    # ``halt_function`` and ``resume_function`` (the aws.lambda_.Function resources, for wiring in
    # Python) are deliberately not annotated here: annotated attributes become the component's
    # schema outputs, and a resource reference would tie every other language's SDK to pulumi-aws.
    halt_function_arn: pulumi.Output[str]
    """ARN of the halt function (responders' sessions and the tripwires invoke it)."""
    halt_function_name: pulumi.Output[str]
    """Name of the halt function."""
    resume_function_arn: pulumi.Output[str]
    """ARN of the resume function (undoes a halt; only quorum-approved tiers may invoke it)."""
    resume_function_name: pulumi.Output[str]
    """Name of the resume function."""
    tripwire_alarm_arns: pulumi.Output[dict[str, str]]
    """The CloudWatch alarm of each tripwire, by tripwire name."""
    halt_role_arn: pulumi.Output[str]
    """The halt function's execution role."""
    resume_role_arn: pulumi.Output[str]
    """The resume function's execution role."""
    protected_arns: list[pulumi.Output[str]]
    """ARNs of this component's functions and roles, for the emergency roles' ``protected_arns``."""

    def __init__(self, name: str, args: HaltActionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config = HaltActionsConfig.from_args(name, args)
        # Every taggable child (functions, roles, log groups, alarms, rules) is protected: the
        # emergency roles' boundary lets a session only read it. No session invokes them: the
        # access API invokes halt and resume for a verified caller, the tripwire rules invoke halt.
        tagging = pulumi.ResourceOptions(transformations=[protect_children()])
        super().__init__(TYPE_TOKEN, name, None, pulumi.ResourceOptions.merge(opts, tagging))
        self.config = config
        self._name = name
        self._where = Where.of(self)

        self.tripwire_alarm_arns = self._planned_alarm_arns()
        self._create_functions()
        self._create_tripwires()

        self.halt_function = self.halt.function
        self.resume_function = self.resume.function
        # What the access API needs to invoke them (its role's lambda:InvokeFunction, its environment).
        self.halt_function_arn = self.halt_function.arn
        self.halt_function_name = self.halt_function.name
        self.resume_function_arn = self.resume_function.arn
        self.resume_function_name = self.resume_function.name
        self.halt_role_arn = self.halt.role.arn
        self.resume_role_arn = self.resume.role.arn
        # For EmergencyRole's protected_arns: named by ARN, the functions cannot be invoked or
        # changed and their roles cannot be passed (iam:PassRole) to new compute by a session,
        # whatever tag conditions a given action honours.
        self.protected_arns = [
            self.halt_function_arn,
            self.resume_function_arn,
            self.halt_role_arn,
            self.resume_role_arn,
        ]
        self.register_outputs(
            {
                "halt_function_arn": self.halt_function_arn,
                "halt_function_name": self.halt_function_name,
                "halt_role_arn": self.halt_role_arn,
                "resume_function_arn": self.resume_function_arn,
                "resume_function_name": self.resume_function_name,
                "resume_role_arn": self.resume_role_arn,
                "protected_arns": pulumi.Output.all(*self.protected_arns),
                "tripwire_alarm_arns": self.tripwire_alarm_arns,
                "tripwire_rule_arns": self.tripwire_rule_arns,
            }
        )

    def _planned_alarm_arns(self) -> pulumi.Output[dict[str, str]]:
        """{tripwire name: alarm ARN}, computed from the names the alarms are given, so the halt
        function's configuration, its policy and each rule's pattern name the same alarm."""
        where, name, tripwires = self._where, self._name, self.config.tripwires
        return pulumi.Output.all(where.partition, where.region, where.account).apply(
            lambda v: {
                t.name: alarm_arn(f"{name}-trip-{t.name}", partition=v[0], region=v[1], account=v[2])
                for t in tripwires
            }
        )

    def _statements(self, *, resume: bool) -> pulumi.Output[list[dict[str, Any]]]:
        """The halt (or resume) function's IAM statements: exactly the targets, the audit writes,
        and (halt only) reading its tripwires' alarms."""
        config = self.config

        def build(v: list[Any]) -> list[dict[str, Any]]:
            where = {"partition": v[0], "region": v[1], "account": v[2]}
            audit = AuditAccess(bucket=v[3], events_prefix=v[4], kms_key_arn=v[5], topic_arn=v[6])
            if resume:
                return resume_function_statements(config.targets, audit=audit, **where)
            return halt_function_statements(
                config.targets, audit=audit, tripwire_alarm_arns=sorted(v[7].values()), **where
            )

        return pulumi.Output.all(
            self._where.partition,
            self._where.region,
            self._where.account,
            config.audit_bucket_name,
            config.audit_events_prefix,
            config.audit_kms_key_arn,
            config.alert_topic_arn,
            self.tripwire_alarm_arns,
        ).apply(build)

    def _environment(self) -> dict[str, pulumi.Input[str]]:
        config = self.config
        environment: dict[str, pulumi.Input[str]] = {
            ENV_AUDIT_BUCKET: config.audit_bucket_name,
            ENV_AUDIT_PREFIX: config.audit_events_prefix,
        }
        if config.audit_kms_key_arn is not None:
            environment[ENV_AUDIT_KMS_KEY] = config.audit_kms_key_arn
        if config.alert_topic_arn is not None:
            environment[ENV_ALERT_TOPIC] = config.alert_topic_arn
        return environment

    def _create_functions(self) -> None:
        config, name = self.config, self._name
        # The targets and tripwires ship inside each function's archive: fixed per deployment and,
        # like the code, neither readable nor writable by an emergency session (protected functions).
        halt_files = self.tripwire_alarm_arns.apply(
            lambda arns: {
                HALT_CONFIG_FILE: encode_halt_config(
                    config.targets, {arn: tripwire for tripwire, arn in arns.items()}
                )
            }
        )
        resume_files = {HALT_CONFIG_FILE: encode_halt_config(config.targets, {})}
        ids = ", ".join(t.id for t in config.targets)
        self.halt: DeployedFunction = python_function(
            f"{name}-halt",
            handler="breakglass.lambdas.halt.handler.halt_handler",
            description=f"Break-glass halt of AI targets: {ids}",
            statements=self._statements(resume=False),
            environment=self._environment(),
            files=halt_files,
            timeout=HALT_TIMEOUT_SECONDS,
            parent=self,
        )
        self.resume: DeployedFunction = python_function(
            f"{name}-resume",
            handler="breakglass.lambdas.halt.handler.resume_handler",
            description=f"Break-glass resume of AI targets: {ids}",
            statements=self._statements(resume=True),
            environment=self._environment(),
            files=resume_files,
            timeout=RESUME_TIMEOUT_SECONDS,
            parent=self,
        )

    def _create_tripwires(self) -> None:
        """Per tripwire: its alarm, and the rule on that alarm entering ALARM that invokes halt."""
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        for tripwire in self.config.tripwires:
            alarm = self._alarm(tripwire)
            self.alarms[tripwire.name] = alarm
            self.rules[tripwire.name] = self._rule(tripwire, alarm)
        self.tripwire_rule_arns: pulumi.Output[dict[str, str]] = pulumi.Output.all(
            *[rule.arn for rule in self.rules.values()]
        ).apply(lambda arns: dict(zip(self.rules, arns, strict=True)))

    def _alarm(self, tripwire: Tripwire) -> aws.cloudwatch.MetricAlarm:
        resource = f"{self._name}-trip-{tripwire.name}"
        topic = self.config.alert_topic_arn
        alert = [topic] if topic is not None else []
        return aws.cloudwatch.MetricAlarm(
            resource,
            name=resource,
            alarm_description=(
                f"Break-glass tripwire {tripwire.name}: on ALARM halts {', '.join(tripwire.targets)} "
                f"with {tripwire.mode}"
            )[:1024],
            metric_name=tripwire.metric_name,
            namespace=tripwire.namespace,
            dimensions=dict(tripwire.dimensions) or None,
            statistic=tripwire.statistic,
            threshold=tripwire.threshold,
            comparison_operator=tripwire.comparison,
            period=tripwire.period,
            evaluation_periods=tripwire.evaluation_periods,
            datapoints_to_alarm=tripwire.datapoints_to_alarm,
            treat_missing_data=tripwire.treat_missing_data,
            # The alert topic hears the alarm itself too, even if the halt Lambda fails.
            alarm_actions=alert,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _rule(self, tripwire: Tripwire, alarm: aws.cloudwatch.MetricAlarm) -> aws.cloudwatch.EventRule:
        """The rule on the alarm entering ALARM, with the halt function as its target."""
        resource = f"{self._name}-trip-{tripwire.name}"
        rule = aws.cloudwatch.EventRule(
            f"{resource}-rule",
            name=resource,
            description=f"Alarm {resource} entering ALARM halts its targets"[:512],
            event_pattern=self.tripwire_alarm_arns.apply(
                lambda arns: json.dumps(tripwire_event_pattern(arns[tripwire.name]))
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[alarm]),
        )
        permission = allow_invoke(
            f"{resource}-invoke",
            self.halt.function,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            parent=self,
        )
        aws.cloudwatch.EventTarget(
            f"{resource}-target",
            rule=rule.name,
            arn=self.halt.function.arn,
            input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                input_template=tripwire_input_template(tripwire.name, tripwire.targets, tripwire.mode),
            ),
            # A halt that cannot be delivered within the hour is stale; retries cover brief outages.
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=10
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        return rule
