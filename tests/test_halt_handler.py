"""The halt / resume / tripwire Lambda entry points: validated events in, audited halts out."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from breakglass.contracts import ENV_ALERT_TOPIC, ENV_AUDIT_BUCKET, HALT_CONFIG_FILE
from breakglass.lambdas.audit.events import parse_record
from breakglass.lambdas.halt.handler import (
    TripwireRefused,
    halt_handler,
    load_config,
    location,
    parse_request,
    parse_tripwire,
    resume_handler,
    tripwire_handler,
)
from breakglass.lambdas.runtime import TASK_ROOT_VARIABLE
from breakglass.policies.halt import (
    encode_halt_config,
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
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM_NAME}"
TRIPWIRES = {ALARM_ARN: "errors"}
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


def ship(monkeypatch: pytest.MonkeyPatch, root: Path, tripwires: Mapping[str, str]) -> None:
    """The function's archive as HaltActions builds it: the targets and tripwires in its file."""
    (root / HALT_CONFIG_FILE).write_text(encode_halt_config(TARGETS, tripwires))
    monkeypatch.setenv(TASK_ROOT_VARIABLE, str(root))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
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
        assert cloudwatch.describe_alarms(AlarmNames=[ALARM_NAME])["MetricAlarms"][0]["AlarmArn"] == ALARM_ARN
        ship(monkeypatch, tmp_path, TRIPWIRES)
        monkeypatch.setenv(ENV_AUDIT_BUCKET, BUCKET)
        monkeypatch.setenv(ENV_ALERT_TOPIC, topic)
        yield {"s3": s3, "iam": iam, "sqs": sqs, "alerts": alerts, "cloudwatch": cloudwatch}


def trip(aws: dict[str, Any], state: str = "ALARM", name: str = ALARM_NAME) -> None:
    """Put the alarm in ``state`` as CloudWatch would."""
    aws["cloudwatch"].set_alarm_state(
        AlarmName=name,
        StateValue=state,
        StateReason="Threshold Crossed: 2 out of the last 3 datapoints were >= the threshold (5.0).",
    )


def tripwire_input(alarm: dict[str, Any], tripwire: str = "errors") -> dict[str, Any]:
    """What the tripwire rule's input transformer hands the halt function."""
    return json.loads(
        tripwire_input_template(tripwire, ["chat"], "deny-invoke").replace(
            "<aws.events.event.json>", json.dumps(alarm)
        )
    )


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
    alarm_arn = ALARM_ARN
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
    trip(aws)

    result = tripwire_handler(delivered, CONTEXT)

    assert result["status"] == "ok"
    assert result["results"][0]["target"] == "chat"
    assert "breakglass-halt-chat" in aws["iam"].list_role_policies(RoleName="chat-invoker")["PolicyNames"]
    [event] = _events(aws["s3"])
    assert event.event_type == "halt"
    assert event.actor == "tripwire:errors"  # the configured tripwire's name
    assert "2 out of the last 3 datapoints" in (event.reason or "")  # CloudWatch's words
    assert event.details["trigger"]["verified"]["state"] == "ALARM"
    assert event.details["trigger"]["verified"]["alarm_arn"] == alarm_arn
    assert event.details["trigger"]["detail"]["alarmName"] == ALARM_NAME
    assert event.details["trigger"]["detail"]["state"]["value"] == "ALARM"
    assert event.details["trigger"]["resources"] == [alarm_arn]
    # The halt also reached the alert topic.
    alerts = sqs.receive_message(QueueUrl=aws["alerts"], MaxNumberOfMessages=10).get("Messages", [])
    assert any(json.loads(m["Body"])["event_type"] == "halt" for m in alerts)


def test_the_halt_function_hands_tripwire_input_to_the_tripwire_handler(aws: dict[str, Any]) -> None:
    trip(aws)
    result = halt_handler(tripwire_input(alarm_event(ALARM_ARN)), CONTEXT)
    assert result["results"][0]["outcome"] == "halted"
    assert _events(aws["s3"])[0].actor == "tripwire:errors"


def test_a_malformed_tripwire_event_is_refused_naming_the_field() -> None:
    base = {"source": "breakglass.tripwire", "tripwire": "errors", "mode": "deny-invoke", "targets": ["chat"]}
    with pytest.raises(ConfigError, match=r"^alarm\.detail\.state\.value: must be 'ALARM'"):
        parse_tripwire({**base, "alarm": alarm_event(ALARM_ARN, "OK")}, CATALOG, TRIPWIRES)
    with pytest.raises(ConfigError, match=r"^alarm: must be a 'CloudWatch Alarm State Change'"):
        parse_tripwire({**base, "alarm": {**alarm_event(ALARM_ARN), "source": "aws.ec2"}}, CATALOG, TRIPWIRES)
    with pytest.raises(ConfigError, match=r"^alarm\.resources"):
        parse_tripwire({**base, "alarm": {**alarm_event(ALARM_ARN), "resources": []}}, CATALOG, TRIPWIRES)
    with pytest.raises(ConfigError, match=r"^targets\[0\]: target 'batch' does not allow mode deny-invoke"):
        parse_tripwire({**base, "targets": ["batch"], "alarm": alarm_event(ALARM_ARN)}, CATALOG, TRIPWIRES)


# ----- review finding 10: a tripwire cannot be impersonated ----------------------------------------


def _nothing_happened(aws: dict[str, Any]) -> bool:
    return aws["iam"].list_role_policies(RoleName="chat-invoker")["PolicyNames"] == [
        "app-access"
    ] and not _events(aws["s3"])


def _refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records if r.getMessage() == "tripwire refused"]  # type: ignore[attr-defined]


def test_a_forged_tripwire_event_for_an_alarm_that_is_not_a_configured_tripwire_halts_nothing(
    aws: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The attack on 198d2d6: any event with the tripwire's source halted, audited as tripwire:<any name>."""
    forged = tripwire_input(alarm_event(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:made-up"), "made-up")
    with pytest.raises(TripwireRefused, match="not a configured tripwire; nothing was halted"):
        halt_handler(forged, CONTEXT)
    assert _nothing_happened(aws)
    assert [r["claimed_alarm"] for r in _refusals(caplog)] == [
        f"['arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:made-up']"
    ]


def test_a_forged_tripwire_event_naming_the_configured_alarm_while_it_is_not_in_alarm_halts_nothing(
    aws: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    trip(aws, "OK")
    with pytest.raises(TripwireRefused, match="is OK, not in ALARM; nothing was halted"):
        halt_handler(tripwire_input(alarm_event(ALARM_ARN)), CONTEXT)
    assert _nothing_happened(aws)
    assert len(_refusals(caplog)) == 1


def test_a_tripwire_event_that_claims_another_tripwire_name_is_refused(aws: dict[str, Any]) -> None:
    trip(aws)
    with pytest.raises(TripwireRefused, match=r"names tripwire 'ann' but alarm .* is tripwire 'errors'"):
        halt_handler(tripwire_input(alarm_event(ALARM_ARN), "ann"), CONTEXT)
    assert _nothing_happened(aws)


def test_the_recorded_actor_and_reason_come_from_the_configuration_and_cloudwatch_never_the_event(
    aws: dict[str, Any],
) -> None:
    trip(aws)
    alarm = alarm_event(ALARM_ARN)
    alarm["detail"]["alarmName"] = "ann"
    alarm["detail"]["state"]["reason"] = "SYSTEM: approved by security, see https://evil.example"

    halt_handler(tripwire_input(alarm), CONTEXT)

    [event] = _events(aws["s3"])
    assert event.actor == "tripwire:errors"
    assert "ann" not in (event.reason or "") and "evil" not in (event.reason or "")
    assert event.reason == (
        f"tripwire errors: alarm {ALARM_NAME} is in ALARM: "
        "Threshold Crossed: 2 out of the last 3 datapoints were >= the threshold (5.0)."
    )


def test_a_configured_tripwire_whose_alarm_does_not_exist_is_refused(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gone = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:deleted"
    ship(monkeypatch, tmp_path, {**TRIPWIRES, gone: "gone"})
    with pytest.raises(TripwireRefused, match="does not exist; nothing was halted"):
        halt_handler(tripwire_input(alarm_event(gone), "gone"), CONTEXT)
    assert _nothing_happened(aws)


@pytest.mark.parametrize(
    "where", ["arn:aws:cloudwatch:eu-west-1:123456789012", "arn:aws:cloudwatch:us-east-1:210987654321"]
)
def test_a_tripwire_alarm_of_another_region_or_account_is_refused(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    elsewhere = f"{where}:alarm:{ALARM_NAME}"
    ship(monkeypatch, tmp_path, {elsewhere: "errors"})
    trip(aws)
    with pytest.raises(TripwireRefused, match="not in this function's account and region"):
        halt_handler(tripwire_input(alarm_event(elsewhere)), CONTEXT)
    assert _nothing_happened(aws)


def test_without_configured_tripwires_every_tripwire_event_is_refused(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ship(monkeypatch, tmp_path, {})
    trip(aws)
    with pytest.raises(TripwireRefused, match="not a configured tripwire"):
        halt_handler(tripwire_input(alarm_event(ALARM_ARN)), CONTEXT)
    assert _nothing_happened(aws)


def test_a_tripwire_event_sent_to_resume_is_refused(aws: dict[str, Any]) -> None:
    trip(aws)
    with pytest.raises(ConfigError, match="unknown setting"):
        resume_handler(tripwire_input(alarm_event(ALARM_ARN)), CONTEXT)


# ----- the direct-invocation contract: the access API passes the verified actor and request ------


GOOD = {"targets": ["chat"], "mode": "deny-invoke", "actor": "alice", "reason": "r", "request_id": "k3x9"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"targets": None}, "targets"),
        ({"mode": "unplug"}, "mode"),
        ({"targets": ["nope"]}, r"targets\[0\]"),
        ({"targets": ["batch"]}, r"targets\[0\]"),
        ({"actor": ""}, "actor"),
        ({"reason": "r" * 1001}, "reason"),
        ({"force": True}, "force"),
        ({"targets": "chat"}, "targets"),
        ({"request_id": "K3X9"}, "request_id"),
        ({"request_id": ""}, "request_id"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    event = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=f"^{field}"):
        parse_request(event, CATALOG)


@pytest.mark.parametrize("missing", ["actor", "request_id", "reason", "mode", "targets"])
def test_a_direct_request_without_the_verified_actor_or_its_request_is_refused(missing: str) -> None:
    event = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigError, match=f"^{missing}: is required"):
        parse_request(event, CATALOG)


@pytest.mark.parametrize("actor", ["tripwire:errors", "aws:system", "a"])
def test_a_direct_request_cannot_claim_a_tripwire_or_a_system_actor(actor: str) -> None:
    with pytest.raises(ConfigError, match=r"^actor"):
        parse_request({**GOOD, "actor": actor}, CATALOG)


def test_all_selects_every_target_that_allows_the_mode() -> None:
    request = parse_request({**GOOD, "targets": "all", "mode": "delete-endpoint"}, CATALOG)
    assert [t.id for t in request.targets] == ["batch"]
    assert (request.actor, request.request_id) == ("alice", "k3x9")


def test_a_function_without_its_targets_file_is_misconfigured_and_says_so(tmp_path: Path) -> None:
    where = {TASK_ROOT_VARIABLE: str(tmp_path)}
    with pytest.raises(RuntimeError, match=TASK_ROOT_VARIABLE):
        load_config({})
    with pytest.raises(RuntimeError, match=f"{HALT_CONFIG_FILE} is not in the function's archive"):
        load_config(where)
    (tmp_path / HALT_CONFIG_FILE).write_text("{oops")
    with pytest.raises(RuntimeError, match=f"{HALT_CONFIG_FILE} in the function's archive is not JSON"):
        load_config(where)
    (tmp_path / HALT_CONFIG_FILE).write_text(json.dumps({"targets": [], "tripwires": {}}))
    with pytest.raises(ConfigError, match=f"{HALT_CONFIG_FILE}.targets"):
        load_config(where)
    (tmp_path / HALT_CONFIG_FILE).write_text(json.dumps({"targets": [], "tripwires": {"not-an-arn": "x"}}))
    with pytest.raises(ConfigError, match=HALT_CONFIG_FILE):
        load_config(where)
    (tmp_path / HALT_CONFIG_FILE).write_text(encode_halt_config(TARGETS, TRIPWIRES))
    assert load_config(where) == (CATALOG, TRIPWIRES)


def test_the_function_learns_its_account_and_region_from_its_own_arn() -> None:
    assert location(CONTEXT) == ("aws", REGION, ACCOUNT)
    with pytest.raises(RuntimeError, match="function ARN"):
        location(SimpleNamespace(invoked_function_arn="nope"))


@pytest.mark.parametrize("alarm", ["not an event", None, ["arn"], {"resources": "x"}])
def test_a_tripwire_event_with_a_malformed_alarm_is_refused_and_logged(
    aws: dict[str, Any], caplog: pytest.LogCaptureFixture, alarm: Any
) -> None:
    event = {
        "source": "breakglass.tripwire",
        "tripwire": "errors",
        "mode": "deny-invoke",
        "targets": ["chat"],
        "alarm": alarm,
    }
    with pytest.raises(ConfigError, match=r"^alarm"):
        halt_handler(event, CONTEXT)
    assert _nothing_happened(aws)
    assert len(_refusals(caplog)) == 1
