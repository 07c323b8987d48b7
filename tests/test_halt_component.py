"""HaltActions under the Pulumi mock runtime: functions, roles, policies, alarm, rule, wiring."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pulumi
import pytest
from iam_eval import ADMIN_POLICY, session_allowed, session_context
from parliament import analyze_policy_string

from breakglass.components import HaltActions, HaltActionsArgs
from breakglass.components.halt_actions import MAX_TARGETS
from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    HALT_CONFIG_FILE,
)
from breakglass.local.synth import ACCOUNT_ID, SynthError, SynthResult, synth
from breakglass.policies.boundary import permission_boundary
from breakglass.policies.halt import HaltTarget, parse_halt_config
from breakglass.policies.naming import PROTECTED_TAG

KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/audit"
ALARM_ARN = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT_ID}:alarm:ai-trip-errors"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:alerts"
CLAUDE = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"


def args(**overrides: Any) -> HaltActionsArgs:
    base: dict[str, Any] = {
        "targets": [
            {
                "id": "chat",
                "endpoint_name": "chat-endpoint",
                "invoker_roles": ["chat-invoker"],
                "modes": ["deny-invoke", "delete-endpoint"],
            },
            {"id": "claude", "bedrock_arns": [CLAUDE], "invoker_roles": ["agent-invoker"]},
        ],
        "audit_bucket_name": "audit-bucket",
        "audit_kms_key_arn": KEY,
        "alert_topic_arn": TOPIC,
        "tripwires": [
            {
                "name": "errors",
                "metric_name": "Invocation5XXErrors",
                "namespace": "AWS/SageMaker",
                "dimensions": {"EndpointName": "chat-endpoint", "VariantName": "AllTraffic"},
                "threshold": 5,
                "evaluation_periods": 3,
                "datapoints_to_alarm": 2,
                "targets": ["chat"],
            }
        ],
    }
    base.update(overrides)
    return base  # type: ignore[return-value]


def run(**overrides: Any) -> SynthResult:
    return synth(lambda: HaltActions("ai", args(**overrides)))


def shipped_config(result: SynthResult, function: str) -> tuple[tuple[HaltTarget, ...], dict[str, str]]:
    """The targets and tripwires in the function's archive, as its handler parses them."""
    code = result.one("aws:lambda/function:Function", function).inputs["code"]
    return parse_halt_config(HALT_CONFIG_FILE, json.loads(code.assets[HALT_CONFIG_FILE].text))


def policy_of(result: SynthResult, function: str) -> dict[str, Any]:
    return dict(
        json.loads(result.one("aws:iam/rolePolicy:RolePolicy", f"{function}-policy").inputs["policy"])
    )


def test_it_deploys_a_halt_and_a_resume_function_each_with_its_own_role() -> None:
    result = run()
    component = result.one("breakglass:index:HaltActions")
    assert component.name == "ai"
    functions = {f.name: f for f in result.by_type("aws:lambda/function:Function")}
    assert sorted(functions) == ["ai-halt", "ai-resume"]
    assert functions["ai-halt"].inputs["handler"] == "breakglass.lambdas.halt.handler.halt_handler"
    assert functions["ai-resume"].inputs["handler"] == "breakglass.lambdas.halt.handler.resume_handler"
    assert functions["ai-resume"].inputs["timeout"] == 900
    assert {r.name for r in result.by_type("aws:iam/role:Role")} == {"ai-halt-role", "ai-resume-role"}
    assert all(f.parent == "ai" for f in functions.values())


def test_the_functions_get_the_audit_settings_by_environment_and_the_targets_in_their_archive() -> None:
    result = run()
    variables = result.one("aws:lambda/function:Function", "ai-halt").inputs["environment"]["variables"]
    assert variables == {
        ENV_AUDIT_BUCKET: "audit-bucket",
        ENV_AUDIT_PREFIX: "breakglass-events",
        ENV_AUDIT_KMS_KEY: KEY,
        ENV_ALERT_TOPIC: TOPIC,
    }
    for function in ("ai-halt", "ai-resume"):
        targets, _ = shipped_config(result, function)
        assert [t.id for t in targets] == ["chat", "claude"]


def test_five_hundred_targets_synthesize_and_ship_in_the_archive() -> None:
    many = [
        {"id": f"model-{i:03d}", "endpoint_name": f"model-{i:03d}", "invoker_roles": [f"invoker-{i % 5}"]}
        for i in range(500)
    ]
    result = run(targets=many, tripwires=[])
    targets, tripwires = shipped_config(result, "ai-halt")
    assert [t.id for t in targets] == [t["id"] for t in many] and tripwires == {}
    assert len(json.dumps(result.one("aws:lambda/function:Function", "ai-halt").inputs["environment"])) < 4096


def test_more_targets_than_one_switch_halts_are_refused_by_name() -> None:
    too_many = [
        {"id": f"m{i}", "endpoint_name": f"m{i}", "invoker_roles": ["invoker"]}
        for i in range(MAX_TARGETS + 1)
    ]
    with pytest.raises(
        SynthError, match=f"targets: declares {MAX_TARGETS + 1} targets, over the {MAX_TARGETS}"
    ):
        run(targets=too_many, tripwires=[])


def test_the_function_policies_name_only_the_declared_targets_and_lint_clean() -> None:
    result = run()
    halt = policy_of(result, "ai-halt")
    text = json.dumps(halt)
    assert f"arn:aws:iam::{ACCOUNT_ID}:role/chat-invoker" in text
    assert f"arn:aws:sagemaker:us-east-1:{ACCOUNT_ID}:endpoint/chat-endpoint" in text
    assert "arn:aws:s3:::audit-bucket/breakglass-snapshots/chat/*" in text
    assert not any(s["Resource"] == "*" for s in halt["Statement"])  # no tag selector, no scp target
    for name in ("ai-halt", "ai-resume"):
        document = policy_of(result, name)
        assert [str(f) for f in analyze_policy_string(json.dumps(document)).findings] == []


def test_a_tripwire_is_an_alarm_a_rule_on_its_alarm_state_and_the_halt_function_as_target() -> None:
    result = run()
    alarm = result.one("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["metricName"] == "Invocation5XXErrors"
    assert alarm.inputs["namespace"] == "AWS/SageMaker"
    assert alarm.inputs["dimensions"] == {"EndpointName": "chat-endpoint", "VariantName": "AllTraffic"}
    assert alarm.inputs["threshold"] == 5.0
    assert alarm.inputs["evaluationPeriods"] == 3
    assert alarm.inputs["datapointsToAlarm"] == 2
    assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm.inputs["treatMissingData"] == "notBreaching"
    assert alarm.inputs["alarmActions"] == [TOPIC]

    rule = result.one("aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["resources"] == [ALARM_ARN]  # the ARN CloudWatch gives an alarm of that name
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}

    target = result.one("aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["rule"] == rule.inputs["name"]
    assert target.inputs["arn"] == result.one("aws:lambda/function:Function", "ai-halt").outputs["arn"]
    template = target.inputs["inputTransformer"]["inputTemplate"]
    rendered = json.loads(template.replace("<aws.events.event.json>", "{}"))
    assert rendered == {
        "source": "breakglass.tripwire",
        "tripwire": "errors",
        "mode": "deny-invoke",
        "targets": ["chat"],
        "alarm": {},
    }

    permission = result.one("aws:lambda/permission:Permission")
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["function"] == "ai-halt"
    assert permission.inputs["sourceArn"] == rule.outputs["arn"]


def test_without_tripwires_there_is_no_alarm_or_rule() -> None:
    result = run(tripwires=[])
    assert result.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") == []
    assert result.by_type("aws:cloudwatch/eventRule:EventRule") == []


def test_a_tripwire_without_targets_halts_every_target_that_allows_its_mode() -> None:
    tripwire = {
        "name": "guardrail",
        "metric_name": "InvocationsIntervened",
        "namespace": "AWS/Bedrock",
        "threshold": 1,
    }
    template = (
        run(tripwires=[tripwire]).one("aws:cloudwatch/eventTarget:EventTarget").inputs["inputTransformer"]
    )
    assert json.loads(template["inputTemplate"].replace("<aws.events.event.json>", "{}"))["targets"] == [
        "chat",
        "claude",
    ]


def test_a_scp_target_adds_only_the_organizations_statements_it_needs() -> None:
    targets = [{"id": "org", "bedrock_arns": [CLAUDE], "modes": ["scp"], "scp_target_ids": ["111122223333"]}]
    halt = policy_of(run(targets=targets, tripwires=[]), "ai-halt")
    actions = sorted(a for s in halt["Statement"] for a in s["Action"] if a.startswith("organizations:"))
    assert actions == [
        "organizations:AttachPolicy",
        "organizations:CreatePolicy",
        "organizations:DescribePolicy",
        "organizations:ListPolicies",
        "organizations:ListTargetsForPolicy",
        "organizations:UpdatePolicy",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"targets": []}, "targets: declare at least one"),
        ({"audit_bucket_name": None}, "audit_bucket_name: is required"),
        ({"audit_bucket": "x"}, "audit_bucket: unknown setting"),
        ({"targets": [{"id": "x", "endpoint_name": "e"}]}, r"targets\[0\]\.invoker_roles"),
        ({"tripwires": [{"name": "t", "metric_name": "m", "namespace": "n"}]}, r"tripwires\[0\]\.threshold"),
        (
            {
                "tripwires": [
                    {"name": "t", "metric_name": "m", "namespace": "n", "threshold": 1, "period": 45}
                ]
            },
            r"tripwires\[0\]\.period",
        ),
        (
            {
                "tripwires": [
                    {"name": "t", "metric_name": "m", "namespace": "n", "threshold": 1, "targets": ["nope"]}
                ]
            },
            r"tripwires\[0\]\.targets\[0\]",
        ),
        (
            {
                "tripwires": [
                    {
                        "name": "t",
                        "metric_name": "m",
                        "namespace": "n",
                        "threshold": 1,
                        "mode": "delete-endpoint",
                        "targets": ["claude"],
                    }
                ]
            },
            r"tripwires\[0\]\.targets\[0\]: target 'claude' does not allow mode delete-endpoint",
        ),
        (
            {
                "tripwires": [
                    {"name": "t", "metric_name": "m", "namespace": "n", "threshold": 1, "statistic": "p99"}
                ]
            },
            r"tripwires\[0\]\.statistic",
        ),
        (
            {
                "tripwires": [
                    {
                        "name": "t",
                        "metric_name": "m",
                        "namespace": "n",
                        "threshold": 1,
                        "datapoints_to_alarm": 2,
                    }
                ]
            },
            r"tripwires\[0\]\.datapoints_to_alarm",
        ),
    ],
)
def test_bad_args_are_rejected_naming_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SynthError, match=message):
        run(**overrides)


# --- tags: protected, and only halt and resume invocable by responders -----------------------------

# Every type HaltActions creates that has tags (permissions, role policies and event targets have none).
TAGGABLE = {
    "aws:lambda/function:Function",
    "aws:iam/role:Role",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/eventRule:EventRule",
}


def test_the_halt_and_resume_functions_are_protected_and_not_responder_invocable() -> None:
    """Emergency sessions halt through the access API (the verified caller becomes the actor),
    never by invoking these functions with a payload of their choosing."""
    result = run()
    for name in ("ai-halt", "ai-resume"):
        tags = result.one("aws:lambda/function:Function", name).inputs["tags"]
        assert tags == {PROTECTED_TAG: "true"}


def test_every_taggable_resource_is_protected_and_carries_no_other_system_tag() -> None:
    result = run()
    children = [r for r in result.resources if r.type.startswith("aws:")]
    taggable = [r for r in children if r.type in TAGGABLE]
    assert {r.type for r in taggable} == TAGGABLE
    assert len(taggable) == 2 + 2 + 2 + 1 + 1  # functions, roles, log groups, alarm, rule
    unprotected = [
        (r.type, r.name) for r in taggable if r.inputs.get("tags", {}).get(PROTECTED_TAG) != "true"
    ]
    assert unprotected == []
    assert all(set(r.inputs.get("tags") or {}) <= {PROTECTED_TAG} for r in children)
    # No other child type carries tags at all (so none was missed by the list above).
    assert all(not r.inputs.get("tags") for r in children if r.type not in TAGGABLE)


# --- tripwires are verified; the access API invokes halt and resume -------------------------------


def test_the_halt_function_knows_its_tripwires_by_alarm_arn_and_may_read_only_their_state() -> None:
    result = run()
    assert result.one("aws:cloudwatch/metricAlarm:MetricAlarm").inputs["name"] == "ai-trip-errors"
    assert shipped_config(result, "ai-halt")[1] == {ALARM_ARN: "errors"}
    [verify] = [
        s for s in policy_of(result, "ai-halt")["Statement"] if s.get("Sid") == "VerifyTripwireAlarms"
    ]
    assert verify == {
        "Sid": "VerifyTripwireAlarms",
        "Effect": "Allow",
        "Action": ["cloudwatch:DescribeAlarms"],
        "Resource": [ALARM_ARN],
    }
    # Resume is never driven by a tripwire: no tripwires, no CloudWatch rights.
    assert shipped_config(result, "ai-resume")[1] == {}
    assert "cloudwatch:" not in json.dumps(policy_of(result, "ai-resume"))


def test_without_tripwires_the_halt_function_reads_no_alarm() -> None:
    result = run(tripwires=[])
    assert shipped_config(result, "ai-halt")[1] == {}
    assert "cloudwatch:" not in json.dumps(policy_of(result, "ai-halt"))


def test_the_component_exposes_what_the_access_api_needs_to_invoke_halt_and_resume() -> None:
    def program() -> None:
        kill_switch = HaltActions("ai", args())
        pulumi.export("halt_function_arn", kill_switch.halt_function_arn)
        pulumi.export("halt_function_name", kill_switch.halt_function_name)
        pulumi.export("resume_function_arn", kill_switch.resume_function_arn)
        pulumi.export("resume_function_name", kill_switch.resume_function_name)
        pulumi.export("tripwire_alarm_arns", kill_switch.tripwire_alarm_arns)
        pulumi.export("protected_arns", pulumi.Output.all(*kill_switch.protected_arns))

    outputs = synth(program).outputs
    assert outputs == {
        "halt_function_arn": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ai-halt",
        "halt_function_name": "ai-halt",
        "resume_function_arn": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ai-resume",
        "resume_function_name": "ai-resume",
        "tripwire_alarm_arns": {"errors": ALARM_ARN},
        # Named by ARN for the emergency roles' boundary: not invocable, roles not passable.
        "protected_arns": [
            f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ai-halt",
            f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ai-resume",
            f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-system-ai-halt",
            f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-system-ai-resume",
        ],
    }


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-system-ai-halt"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-system-ai-resume"),
        ("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ai-halt"),
        ("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ai-resume"),
        ("lambda:UpdateFunctionCode", f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ai-halt"),
    ],
)
def test_with_its_arns_protected_an_admin_session_can_neither_invoke_the_functions_nor_pass_their_roles(
    action: str, resource: str
) -> None:
    """Suspected in the review: protection by tags alone may not hold for iam:PassRole (a new
    function running as the halt role could forge audit events). Named by ARN, it holds."""

    def program() -> None:
        pulumi.export("protected_arns", pulumi.Output.all(*HaltActions("ai", args()).protected_arns))

    boundary = permission_boundary(synth(program).outputs["protected_arns"])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    context = session_context(now=now, source_identity="alice", request_id="req1", issued_at=now)
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-emergency-admin"
    assert not session_allowed(
        role, action, resource, policies=[ADMIN_POLICY], boundary=boundary, context=context
    )
    assert session_allowed(role, action, resource, policies=[ADMIN_POLICY], boundary=None, context=context)
