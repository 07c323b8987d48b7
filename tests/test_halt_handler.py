"""The halt / resume / tripwire Lambda entry points: validated events in, audited halts out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from breakglass.contracts import ENV_ALERT_TOPIC, ENV_AUDIT_BUCKET, ENV_HALT_TARGETS
from breakglass.lambdas.audit.events import parse_record
from breakglass.lambdas.halt.handler import (
    halt_handler,
    load_targets,
    location,
    parse_request,
    parse_tripwire,
    resume_handler,
    tripwire_handler,
)
from breakglass.policies.halt import (
    encode_targets,
    parse_targets,
    tripwire_event_pattern,
    tripwire_input_template,
)
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "audit-bucket"
CONTEXT = SimpleNamespace(
    invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ai-halt",
    get_remaining_time_in_millis=lambda: 120_000,
)
TARGETS = parse_targets(
    "targets",
    [
        {
            "id": "chat",
            "endpoint_name": "chat-endpoint",
            "invoker_roles": ["chat-invoker"],
            "modes": ["deny-invoke"],
        },
        {"id": "batch", "endpoint_name": "batch-endpoint", "modes": ["delete-endpoint"]},
    ],
)
CATALOG = {t.id: t for t in TARGETS}
ALARM_NAME = "ai-trip-errors"
APP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "*"}],
}


def alarm_event(alarm_arn: str, state: str = "ALARM") -> dict[str, Any]:
    """A CloudWatch Alarm State Change event as EventBridge delivers it."""
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2025-05-01T12:00:00Z",
        "region": REGION,
        "resources": [alarm_arn],
        "detail": {
            "alarmName": ALARM_NAME,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 1 datapoint [12.0 (01/05/25 11:59:00)] was >= the threshold (5.0).",
                "reasonData": '{"version":"1.0","queryDate":"2025-05-01T12:00:00.000+0000"}',
                "timestamp": "2025-05-01T12:00:00.000+0000",
            },
            "previousState": {"value": "OK", "reason": "ok", "timestamp": "2025-05-01T11:00:00.000+0000"},
            "configuration": {
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": "AWS/SageMaker",
                                "name": "Invocation5XXErrors",
                                "dimensions": {"EndpointName": "chat-endpoint", "VariantName": "AllTraffic"},
                            },
                            "period": 60,
                            "stat": "Sum",
                        },
                        "returnData": True,
                    }
                ]
            },
        },
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        alerts = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
        alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=alerts_arn, Attributes={"RawMessageDelivery": "true"}
        )
        iam = boto3.client("iam")
        iam.create_role(RoleName="chat-invoker", AssumeRolePolicyDocument="{}")
        iam.put_role_policy(
            RoleName="chat-invoker", PolicyName="app-access", PolicyDocument=json.dumps(APP_POLICY)
        )
        monkeypatch.setenv(ENV_HALT_TARGETS, encode_targets(TARGETS))
        monkeypatch.setenv(ENV_AUDIT_BUCKET, BUCKET)
        monkeypatch.setenv(ENV_ALERT_TOPIC, topic)
        yield {"s3": s3, "iam": iam, "sqs": sqs, "alerts": alerts}


def _events(s3: Any) -> list[Any]:
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        if o["Key"].startswith("breakglass-events/")
    ]
    return [parse_record(json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())) for k in keys]


def test_halt_and_resume_handlers_act_on_declared_targets_and_audit(aws: dict[str, Any]) -> None:
    event = {
        "targets": ["chat"],
        "mode": "deny-invoke",
        "actor": "alice",
        "reason": "bad outputs",
        "request_id": "r1",
    }

    halted = halt_handler(event, CONTEXT)
    assert halted["status"] == "ok"
    assert halted["results"][0]["outcome"] == "halted"
    assert sorted(aws["iam"].list_role_policies(RoleName="chat-invoker")["PolicyNames"]) == [
        "app-access",
        "breakglass-halt-chat",
    ]

    resumed = resume_handler({**event, "reason": "fixed"}, CONTEXT)
    assert resumed["results"][0]["outcome"] == "resumed"
    assert aws["iam"].list_role_policies(RoleName="chat-invoker")["PolicyNames"] == ["app-access"]
    assert sorted((e.event_type, e.request_id) for e in _events(aws["s3"])) == [
        ("halt", "r1"),
        ("resume", "r1"),
    ]


def test_an_alarm_state_change_routed_by_eventbridge_drives_a_halt_through_the_tripwire(
    aws: dict[str, Any],
) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM_NAME,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    alarm_arn = cloudwatch.describe_alarms(AlarmNames=[ALARM_NAME])["MetricAlarms"][0]["AlarmArn"]
    # The rule and input transformer the component deploys, delivering to a queue we can read
    # (moto runs Lambda targets only in Docker) so the handler gets exactly what EventBridge sends.
    sqs = aws["sqs"]
    inbox = sqs.create_queue(QueueName="halt-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="ai-trip-errors", EventPattern=json.dumps(tripwire_event_pattern(alarm_arn)))
    events.put_targets(
        Rule="ai-trip-errors",
        Targets=[
            {
                "Id": "halt",
                "Arn": inbox_arn,
                "InputTransformer": {
                    "InputTemplate": tripwire_input_template("errors", ["chat"], "deny-invoke")
                },
            }
        ],
    )
    for state in ("OK", "ALARM"):  # only the ALARM transition may pass the rule
        alarm = alarm_event(alarm_arn, state)
        events.put_events(
            Entries=[
                {
                    "Source": alarm["source"],
                    "DetailType": alarm["detail-type"],
                    "Resources": alarm["resources"],
                    "Detail": json.dumps(alarm["detail"]),
                }
            ]
        )
    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    delivered = json.loads(messages[0]["Body"])

    result = tripwire_handler(delivered, CONTEXT)

    assert result["status"] == "ok"
    assert result["results"][0]["target"] == "chat"
    assert "breakglass-halt-chat" in aws["iam"].list_role_policies(RoleName="chat-invoker")["PolicyNames"]
    [event] = _events(aws["s3"])
    assert event.event_type == "halt"
    assert event.actor == f"tripwire:{ALARM_NAME}"
    assert "Threshold Crossed" in (event.reason or "")
    assert event.details["trigger"]["detail"]["alarmName"] == ALARM_NAME
    assert event.details["trigger"]["detail"]["state"]["value"] == "ALARM"
    assert event.details["trigger"]["resources"] == [alarm_arn]
    # The halt also reached the alert topic.
    alerts = sqs.receive_message(QueueUrl=aws["alerts"], MaxNumberOfMessages=10).get("Messages", [])
    assert any(json.loads(m["Body"])["event_type"] == "halt" for m in alerts)


def test_the_halt_function_hands_tripwire_input_to_the_tripwire_handler(aws: dict[str, Any]) -> None:
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM_NAME}"
    delivered = json.loads(
        tripwire_input_template("errors", ["chat"], "deny-invoke").replace(
            "<aws.events.event.json>", json.dumps(alarm_event(arn))
        )
    )
    result = halt_handler(delivered, CONTEXT)
    assert result["results"][0]["outcome"] == "halted"
    assert _events(aws["s3"])[0].actor == f"tripwire:{ALARM_NAME}"


def test_a_tripwire_event_not_in_alarm_is_refused() -> None:
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM_NAME}"
    base = {"source": "breakglass.tripwire", "tripwire": "errors", "mode": "deny-invoke", "targets": ["chat"]}
    with pytest.raises(ConfigError, match=r"^alarm\.detail\.state\.value: must be 'ALARM'"):
        parse_tripwire({**base, "alarm": alarm_event(arn, "OK")}, CATALOG)
    with pytest.raises(ConfigError, match=r"^alarm: must be a 'CloudWatch Alarm State Change'"):
        parse_tripwire({**base, "alarm": {**alarm_event(arn), "source": "aws.ec2"}}, CATALOG)
    with pytest.raises(
        ConfigError, match=r"^targets\[0\]: 'batch' does not allow mode deny-invoke|^targets\[0\]"
    ):
        parse_tripwire({**base, "targets": ["batch"], "alarm": alarm_event(arn)}, CATALOG)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"mode": "deny-invoke", "actor": "alice", "reason": "r"}, "targets"),
        ({"targets": ["chat"], "mode": "unplug", "actor": "alice", "reason": "r"}, "mode"),
        ({"targets": ["nope"], "mode": "deny-invoke", "actor": "alice", "reason": "r"}, r"targets\[0\]"),
        ({"targets": ["batch"], "mode": "deny-invoke", "actor": "alice", "reason": "r"}, r"targets\[0\]"),
        ({"targets": ["chat"], "mode": "deny-invoke", "actor": "", "reason": "r"}, "actor"),
        ({"targets": ["chat"], "mode": "deny-invoke", "actor": "alice", "reason": "r" * 1001}, "reason"),
        (
            {"targets": ["chat"], "mode": "deny-invoke", "actor": "alice", "reason": "r", "force": True},
            "force",
        ),
        ({"targets": "chat", "mode": "deny-invoke", "actor": "alice", "reason": "r"}, "targets"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        parse_request(event, CATALOG)


def test_all_selects_every_target_that_allows_the_mode() -> None:
    request = parse_request(
        {"targets": "all", "mode": "delete-endpoint", "actor": "alice", "reason": "r"}, CATALOG
    )
    assert [t.id for t in request.targets] == ["batch"]


def test_a_function_without_its_targets_is_misconfigured_and_says_so() -> None:
    with pytest.raises(RuntimeError, match=ENV_HALT_TARGETS):
        load_targets({})
    with pytest.raises(RuntimeError, match="not JSON"):
        load_targets({ENV_HALT_TARGETS: "{oops"})
    assert load_targets({ENV_HALT_TARGETS: encode_targets(TARGETS)}) == CATALOG


def test_the_function_learns_its_account_and_region_from_its_own_arn() -> None:
    assert location(CONTEXT) == ("aws", REGION, ACCOUNT)
    with pytest.raises(RuntimeError, match="function ARN"):
        location(SimpleNamespace(invoked_function_arn="nope"))
