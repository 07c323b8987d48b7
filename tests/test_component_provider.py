"""The component provider constructs components from what another language sends, under mocks.

A TypeScript or YAML program's arguments reach the provider as the engine delivers them: schema
(camelCase) names, plain values decoded from protobuf (every number a float), snake_case keys
inside the untyped settings (``tiers``, ``audit``, ``sealedAccess``). The provider must build the
same resources the Python program builds from the same settings.
"""

import json
from typing import Any

import pytest
from provider_wire import over_the_wire
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.server import ComponentInitError

from breakglass import BreakGlass
from breakglass.components import AuditTrail
from breakglass.local.synth import SynthError, SynthResult, synth
from breakglass.provider import COMPONENTS, BreakGlassProvider

ACCOUNT = "123456789012"
PYTHON_ARGS: dict[str, Any] = {
    "deployment": "lang",
    "requesters": [f"arn:aws:iam::{ACCOUNT}:role/oncall-ml"],
    "approvers": ["ann", "bob", "cat"],
    "security_admins": [f"arn:aws:iam::{ACCOUNT}:role/cloud-admin"],
    "sender_email": "breakglass@example.com",
    "alert_emails": ["security@example.com"],
    "tiers": {"operator": {"approval": 2, "approvers": ["ann", "bob"], "max_window_seconds": 3600}},
    "audit": {"retention_days": 400},
    "halt_targets": [
        {"id": "chat", "endpoint_name": "chat-prod", "invoker_roles": ["chat-api"], "modes": ["deny-invoke"]}
    ],
    "tripwires": [
        {
            "name": "chat-5xx",
            "namespace": "AWS/SageMaker",
            "metric_name": "Invocation5XXErrors",
            "dimensions": {"EndpointName": "chat-prod", "VariantName": "AllTraffic"},
            "threshold": 5,
            "evaluation_periods": 3,
            "datapoints_to_alarm": 2,
            "targets": ["chat"],
        }
    ],
    "sealed_access": {
        "users": ["breakglass-sealed"],
        "managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "max_session_seconds": 1800,
    },
}
# The same settings as a TypeScript program writes them (what examples/typescript/index.ts does).
WIRE_ARGS: dict[str, Any] = {
    "deployment": "lang",
    "requesters": [f"arn:aws:iam::{ACCOUNT}:role/oncall-ml"],
    "approvers": ["ann", "bob", "cat"],
    "securityAdmins": [f"arn:aws:iam::{ACCOUNT}:role/cloud-admin"],
    "senderEmail": "breakglass@example.com",
    "alertEmails": ["security@example.com"],
    "tiers": {"operator": {"approval": 2, "approvers": ["ann", "bob"], "max_window_seconds": 3600}},
    "audit": {"retention_days": 400},
    "haltTargets": [
        {"id": "chat", "endpointName": "chat-prod", "invokerRoles": ["chat-api"], "modes": ["deny-invoke"]}
    ],
    "tripwires": [
        {
            "name": "chat-5xx",
            "namespace": "AWS/SageMaker",
            "metricName": "Invocation5XXErrors",
            "dimensions": {"EndpointName": "chat-prod", "VariantName": "AllTraffic"},
            "threshold": 5,
            "evaluationPeriods": 3,
            "datapointsToAlarm": 2,
            "targets": ["chat"],
        }
    ],
    "sealedAccess": {
        "users": ["breakglass-sealed"],
        "managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "max_session_seconds": 1800,
    },
}


def shape(result: SynthResult) -> list[tuple[str, str]]:
    # Sorted: registration order follows the order Outputs resolve in, not the program.
    return sorted((r.type, r.name) for r in result.resources)


@pytest.fixture(scope="module")
def provider() -> BreakGlassProvider:
    return BreakGlassProvider()


def test_numbers_arrive_as_floats_and_settings_keep_their_keys() -> None:
    wire = over_the_wire(WIRE_ARGS)
    assert wire["tripwires"][0]["evaluationPeriods"] == 3.0
    assert isinstance(wire["tripwires"][0]["evaluationPeriods"], float)
    assert wire["tiers"]["operator"]["max_window_seconds"] == 3600.0


def test_the_provider_builds_breakglass_from_another_languages_values_as_python_does(
    provider: BreakGlassProvider,
) -> None:
    direct = synth(lambda: BreakGlass("breakglass", PYTHON_ARGS))  # type: ignore[arg-type]
    wire = over_the_wire(WIRE_ARGS)
    built = synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire, None))
    assert shape(built) == shape(direct)
    assert len(built.resources) > 150
    alarm = built.one("aws:cloudwatch/metricAlarm:MetricAlarm", "breakglass-ai-trip-chat-5xx")
    assert (alarm.inputs["evaluationPeriods"], alarm.inputs["datapointsToAlarm"]) == (3, 2)
    lock = built.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 400}


ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-halt"
AUDIT = {
    "auditBucketName": "audit-bucket",
    "auditKmsKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "alertTopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:breakglass-alerts",
}
# Each component's smallest settings, as another language writes them (plain values only).
EVERY_COMPONENT: dict[str, dict[str, Any]] = {
    "BreakGlass": WIRE_ARGS,
    "AuditTrail": {},
    "AuditQueries": {"auditBucket": "audit-bucket", "kmsKeyArn": AUDIT["auditKmsKeyArn"]},
    "EmergencyRole": {
        "tier": "halt",
        "allowedRequesters": [f"arn:aws:iam::{ACCOUNT}:role/oncall-ml"],
        "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    },
    "ApprovalWorkflow": {
        **AUDIT,
        "auditBucketArn": "arn:aws:s3:::audit-bucket",
        "senderEmail": "breakglass@example.com",
        "tiers": {"halt": {"approval": "auto", "approvers": ["ann"]}},
        "tiersJson": json.dumps({"halt": {"name": "halt", "role_arn": ROLE_ARN}}),
        "emergencyRoleArns": [ROLE_ARN],
    },
    "HaltActions": {
        "auditBucketName": "audit-bucket",
        "targets": [{"id": "chat", "endpointName": "chat-prod", "invokerRoles": ["chat-api"]}],
    },
    "SealedAccess": {
        "auditBucketName": "audit-bucket",
        "alertTopicArn": AUDIT["alertTopicArn"],
        "users": ["bg-anna"],
        "managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "alertEmails": ["security@example.com"],
    },
}


def test_every_component_is_listed_with_settings_here() -> None:
    assert sorted(EVERY_COMPONENT) == sorted(c.__name__ for c in COMPONENTS)


@pytest.mark.parametrize("component", EVERY_COMPONENT)
def test_every_component_is_built_from_plain_values_and_returns_every_declared_output(
    provider: BreakGlassProvider, component: str
) -> None:
    state: dict[str, Any] = {}
    wire = over_the_wire(EVERY_COMPONENT[component])

    def program() -> None:
        result = provider.construct("it", f"breakglass:index:{component}", wire, None)
        state.update(result.state)

    built = synth(program)
    assert built.one(f"breakglass:index:{component}", "it")
    assert len(built.resources) > 1
    assert sorted(state) == sorted(provider._component_defs[component].outputs)


def test_pulumis_stock_provider_still_hands_integers_over_as_floats() -> None:
    # Why BreakGlassProvider exists: the stock mapping (pulumi 3.272) writes the float back over its
    # own int conversion, and the components refuse 400.0 days. When this fails, Pulumi fixed it.
    stock = ComponentProvider(list(COMPONENTS), "breakglass")
    wire = over_the_wire({"retentionDays": 400})
    with pytest.raises(SynthError, match=r"retention_days: must be a whole number, got 400\.0"):
        synth(lambda: stock.construct("t", "breakglass:index:AuditTrail", wire, None))


def test_a_whole_number_setting_from_another_language_reaches_the_component_as_an_int(
    provider: BreakGlassProvider,
) -> None:
    wire = over_the_wire({"retentionDays": 400})
    built = synth(lambda: provider.construct("t", "breakglass:index:AuditTrail", wire, None))
    direct = synth(lambda: AuditTrail("t", {"retention_days": 400}))
    assert shape(built) == shape(direct)


def test_a_fractional_number_where_a_whole_one_belongs_is_refused_naming_the_field(
    provider: BreakGlassProvider,
) -> None:
    wire = over_the_wire({"retentionDays": 400.5})
    with pytest.raises(SynthError, match=r"retention_days: must be a whole number, got 400\.5"):
        synth(lambda: provider.construct("t", "breakglass:index:AuditTrail", wire, None))


def test_a_missing_required_input_is_refused_before_the_component_runs(provider: BreakGlassProvider) -> None:
    wire = over_the_wire({k: v for k, v in WIRE_ARGS.items() if k != "senderEmail"})
    with pytest.raises(SynthError, match="Missing required input 'senderEmail' on 'BreakGlass'"):
        synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire, None))


def test_a_bad_setting_is_refused_with_the_components_own_error_naming_the_field(
    provider: BreakGlassProvider,
) -> None:
    wire = over_the_wire({**WIRE_ARGS, "tiers": {"admin": {"approval": 1}}})
    with pytest.raises(SynthError) as refused:
        synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire, None))
    assert isinstance(refused.value.__cause__, ComponentInitError)
    assert "tiers.admin.approval" in str(refused.value)


def _role_names(result: SynthResult) -> set[str]:
    return {r.name for r in result.by_type("aws:iam/role:Role")}


def test_a_null_tier_from_another_language_never_reaches_the_component(provider: BreakGlassProvider) -> None:
    # The attack on intent: a team "removes" the operator tier (1 approver, SageMaker full access)
    # with null, as Python's None; the entry is dropped on the way, so the tier would stay.
    assert over_the_wire({"tiers": {"operator": None}}) == {"tiers": {}}


def test_a_default_tier_removed_with_false_from_another_language_is_removed(
    provider: BreakGlassProvider,
) -> None:
    wire = over_the_wire({**WIRE_ARGS, "tiers": {"operator": False}})
    wire_kept = over_the_wire(WIRE_ARGS)
    built = synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire, None))
    kept = synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire_kept, None))
    assert "breakglass-operator-role" in _role_names(kept)
    assert "breakglass-operator-role" not in _role_names(built)


def test_python_removes_a_default_tier_with_none_or_false_alike() -> None:
    by_none = synth(lambda: BreakGlass("breakglass", {**PYTHON_ARGS, "tiers": {"operator": None}}))  # type: ignore[arg-type,dict-item]
    by_false = synth(lambda: BreakGlass("breakglass", {**PYTHON_ARGS, "tiers": {"operator": False}}))  # type: ignore[arg-type,dict-item]
    assert shape(by_none) == shape(by_false)
    assert "breakglass-operator-role" not in _role_names(by_none)


def test_a_camelcase_key_inside_an_untyped_setting_is_refused_naming_it(provider: BreakGlassProvider) -> None:
    # Inside `tiers` the keys are the Python names; a guessed camelCase one must not be ignored.
    wire = over_the_wire({**WIRE_ARGS, "tiers": {"operator": {"maxWindowSeconds": 600}}})
    with pytest.raises(SynthError, match=r"tiers\.operator.*maxWindowSeconds"):
        synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire, None))
