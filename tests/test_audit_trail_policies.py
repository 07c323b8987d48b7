"""The audit trail's policy documents and alert patterns: structure, lint, and routing of real events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from parliament import analyze_policy_string

from breakglass.policies import audit_trail as policies
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX

ACCOUNT = "123456789012"
PARTITION = "aws"
REGION = "us-east-1"
BUCKET = "breakglass-audit-1234"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TRAIL = policies.trail_arn(
    partition=PARTITION, region=REGION, account_id=ACCOUNT, trail_name="breakglass-audit"
)
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:breakglass-alerts"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:breakglass-alerts-dlq"


def statements_by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids)), f"duplicate Sids: {sids}"
    return {s["Sid"]: s for s in document["Statement"]}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def bucket_policy(trail: str | None = TRAIL) -> dict[str, Any]:
    return policies.audit_bucket_policy(bucket_arn=BUCKET_ARN, account_id=ACCOUNT, trail_arn=trail)


def key_policy(trail: str | None = TRAIL) -> dict[str, Any]:
    return policies.audit_key_policy(partition=PARTITION, region=REGION, account_id=ACCOUNT, trail_arn=trail)


def topic_policy() -> dict[str, Any]:
    return policies.alert_topic_policy(topic_arn=TOPIC_ARN, partition=PARTITION, account_id=ACCOUNT)


RULE_ARNS = [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/breakglass-{c}" for c in policies.ALERT_CLASSES]


def dlq_policy() -> dict[str, Any]:
    return policies.dead_letter_queue_policy(queue_arn=QUEUE_ARN, rule_arns=RULE_ARNS)


def writer_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": policies.audit_writer_statements(
            bucket_arn=BUCKET_ARN, prefix="breakglass-events", kms_key_arn=KEY_ARN, topic_arn=TOPIC_ARN
        ),
    }


# --- bucket policy ---------------------------------------------------------------------------


def test_bucket_policy_denies_every_request_without_tls_on_bucket_and_objects() -> None:
    deny = statements_by_sid(bucket_policy())["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert sorted(deny["Resource"]) == [BUCKET_ARN, f"{BUCKET_ARN}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_policy_denies_deleting_records_to_everyone_unconditionally() -> None:
    deny = statements_by_sid(bucket_policy())["DenyDeletingAuditRecords"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert "Condition" not in deny
    assert deny["Resource"] == f"{BUCKET_ARN}/*"
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} <= set(
        deny["Action"]
    )


def test_bucket_policy_denies_deleting_the_bucket_and_changing_its_lock_to_everyone() -> None:
    deny = statements_by_sid(bucket_policy())["DenyDeletingOrUnlockingTheBucket"]
    assert (deny["Effect"], deny["Principal"], deny["Resource"]) == ("Deny", "*", BUCKET_ARN)
    assert "Condition" not in deny
    assert set(deny["Action"]) == {"s3:DeleteBucket", "s3:PutBucketObjectLockConfiguration"}


def test_bucket_policy_lets_only_the_named_trail_deliver_with_owner_full_control() -> None:
    sids = statements_by_sid(bucket_policy())
    acl, write = sids["AWSCloudTrailAclCheck"], sids["AWSCloudTrailWrite"]
    for statement in (acl, write):
        assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL
    assert (acl["Action"], acl["Resource"]) == ("s3:GetBucketAcl", BUCKET_ARN)
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"{BUCKET_ARN}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"


def test_bucket_policy_without_a_trail_grants_cloudtrail_nothing() -> None:
    document = bucket_policy(trail=None)
    assert "cloudtrail" not in json.dumps(document)
    assert {s["Effect"] for s in document["Statement"]} == {"Deny"}


def test_no_bucket_policy_statement_allows_anything_to_everyone() -> None:
    for statement in bucket_policy()["Statement"]:
        if statement["Effect"] == "Allow":
            assert statement["Principal"] != "*"
            assert "Condition" in statement


# --- key policy ------------------------------------------------------------------------------


def test_key_policy_keeps_the_key_manageable_by_the_account() -> None:
    admin = statements_by_sid(key_policy())["EnableIamPoliciesOfThisAccount"]
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert admin["Action"] == "kms:*"


def test_key_policy_lets_cloudtrail_encrypt_only_for_this_trail() -> None:
    sids = statements_by_sid(key_policy())
    encrypt = sids["AllowCloudTrailToEncryptLogs"]
    assert encrypt["Action"] == "kms:GenerateDataKey*"
    assert encrypt["Condition"]["StringEquals"] == {"aws:SourceArn": TRAIL}
    assert encrypt["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"
    }
    assert sids["AllowCloudTrailToDescribeKey"]["Condition"] == {"StringEquals": {"aws:SourceArn": TRAIL}}


def test_key_policy_lets_eventbridge_and_alarms_of_this_account_publish_encrypted_alerts() -> None:
    publishers = statements_by_sid(key_policy())["AllowAlertPublishersToUseEncryptedTopic"]
    assert set(publishers["Principal"]["Service"]) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    assert set(publishers["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_key_policy_without_a_trail_grants_cloudtrail_nothing() -> None:
    assert "cloudtrail.amazonaws.com" not in json.dumps(key_policy(trail=None))


def test_every_service_grant_in_the_key_policy_is_conditioned() -> None:
    for statement in key_policy()["Statement"]:
        if "Service" in statement["Principal"]:
            assert statement.get("Condition"), statement["Sid"]


# --- topic, queue, writer --------------------------------------------------------------------


def test_topic_policy_lets_this_accounts_rules_and_alarms_publish_and_denies_plain_http() -> None:
    sids = statements_by_sid(topic_policy())
    for sid, service in (
        ("AllowEventBridgeRulesOfThisAccountToPublish", "events.amazonaws.com"),
        ("AllowCloudWatchAlarmsOfThisAccountToPublish", "cloudwatch.amazonaws.com"),
    ):
        assert sids[sid]["Principal"] == {"Service": service}
        assert sids[sid]["Action"] == "sns:Publish"
        assert sids[sid]["Resource"] == TOPIC_ARN
        assert sids[sid]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    deny = sids["DenyInsecureTransport"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dead_letter_queue_accepts_only_the_alert_rules() -> None:
    statement = dlq_policy()["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": sorted(RULE_ARNS)}}


def test_writer_may_only_put_under_the_events_prefix_and_use_the_key_and_topic() -> None:
    sids = statements_by_sid(writer_policy())
    assert sids["WriteAuditEvents"]["Action"] == "s3:PutObject"
    assert sids["WriteAuditEvents"]["Resource"] == f"{BUCKET_ARN}/breakglass-events/*"
    assert sids["UseAuditKey"]["Resource"] == KEY_ARN
    assert sids["PublishAuditAlerts"] == {
        "Sid": "PublishAuditAlerts",
        "Effect": "Allow",
        "Action": "sns:Publish",
        "Resource": TOPIC_ARN,
    }
    actions = {a for s in writer_policy()["Statement"] for a in as_list(s["Action"])}
    assert not any("Delete" in a for a in actions)


def test_writer_without_alerts_gets_no_publish_permission() -> None:
    statements = policies.audit_writer_statements(
        bucket_arn=BUCKET_ARN, prefix="breakglass-events", kms_key_arn=KEY_ARN, topic_arn=None
    )
    assert "sns:Publish" not in json.dumps(statements)


# --- parliament ------------------------------------------------------------------------------


def findings(document: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(f.issue, f.detail) for f in analyze_policy_string(json.dumps(document)).findings]


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(bucket_policy, id="bucket"),
        pytest.param(lambda: bucket_policy(trail=None), id="bucket-without-trail"),
        pytest.param(topic_policy, id="topic"),
        pytest.param(dlq_policy, id="dead-letter-queue"),
        pytest.param(writer_policy, id="writer"),
    ],
)
def test_parliament_finds_nothing_in(build: Any) -> None:
    assert findings(build()) == []


@pytest.mark.parametrize("trail", [TRAIL, None], ids=["with-trail", "without-trail"])
def test_parliament_finds_only_resource_star_in_the_key_policy(trail: str | None) -> None:
    # Justified suppression: in a key policy "Resource": "*" means "this key" and is the only
    # value KMS accepts, so parliament's RESOURCE_STAR is expected on every statement, and
    # nothing else may be reported.
    document = key_policy(trail)
    assert {s["Resource"] for s in document["Statement"]} == {"*"}
    reported = findings(document)
    assert [issue for issue, _ in reported] == ["RESOURCE_STAR"] * len(document["Statement"])


# --- alert patterns --------------------------------------------------------------------------


def test_one_pattern_per_alert_class_all_on_cloudtrail_api_calls() -> None:
    patterns = policies.alert_event_patterns(bucket_name=BUCKET, kms_key_arn=KEY_ARN)
    assert list(patterns) == list(policies.ALERT_CLASSES)
    for pattern in patterns.values():
        assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
        assert "errorCode" not in pattern["detail"]  # failed attempts alert too


def test_emergency_role_pattern_uses_the_shared_prefix_with_and_without_a_path() -> None:
    pattern = policies.alert_event_patterns(bucket_name=BUCKET, kms_key_arn=None)["emergency-assume"]
    assert pattern["detail"]["requestParameters"]["roleArn"] == [
        {"wildcard": f"arn:*:iam::*:role/{EMERGENCY_ROLE_PREFIX}*"},
        {"wildcard": f"arn:*:iam::*:role/*/{EMERGENCY_ROLE_PREFIX}*"},
    ]


def test_key_pattern_watches_the_audit_key_by_arn_and_is_absent_without_a_key() -> None:
    with_key = policies.alert_event_patterns(bucket_name=BUCKET, kms_key_arn=KEY_ARN)
    assert with_key["key-tampering"]["detail"]["resources"] == {"ARN": [KEY_ARN]}
    assert set(with_key["key-tampering"]["detail"]["eventName"]) >= {"ScheduleKeyDeletion", "DisableKey"}
    assert "key-tampering" not in policies.alert_event_patterns(bucket_name=BUCKET, kms_key_arn=None)


def cloudtrail_event(source: str, name: str, request: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An EventBridge entry shaped like the ones CloudTrail emits (detail = the CloudTrail record)."""
    service = source.removeprefix("aws.")
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:alice",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/alice",
            "accountId": ACCOUNT,
        },
        "eventTime": "2024-05-01T10:00:00Z",
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": None,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        **extra,
    }
    return {"Source": source, "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}


def assume(role_arn: str) -> dict[str, Any]:
    return cloudtrail_event(
        "aws.sts",
        "AssumeRole",
        {"roleArn": role_arn, "roleSessionName": "alice", "sourceIdentity": "alice", "durationSeconds": 900},
    )


ROUTED = [
    pytest.param(
        assume(f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-ops"), "emergency-assume", id="assume"
    ),
    pytest.param(
        assume(f"arn:aws:iam::{ACCOUNT}:role/teams/breakglass-emergency-ml"),
        "emergency-assume",
        id="assume-path",
    ),
    pytest.param(assume(f"arn:aws:iam::{ACCOUNT}:role/ordinary-ops"), None, id="assume-other-role"),
    pytest.param(
        cloudtrail_event("aws.cloudtrail", "StopLogging", {"name": TRAIL}), "trail-tampering", id="stop"
    ),
    pytest.param(
        cloudtrail_event("aws.cloudtrail", "DeleteTrail", {"name": TRAIL}), "trail-tampering", id="delete"
    ),
    pytest.param(
        cloudtrail_event("aws.cloudtrail", "UpdateTrail", {"name": TRAIL}), "trail-tampering", id="update"
    ),
    pytest.param(cloudtrail_event("aws.cloudtrail", "LookupEvents", {}), None, id="trail-read"),
    pytest.param(
        cloudtrail_event("aws.s3", "PutBucketPolicy", {"bucketName": BUCKET, "policy": "{}"}),
        "bucket-tampering",
        id="bucket-policy",
    ),
    pytest.param(
        cloudtrail_event("aws.s3", "PutBucketLifecycle", {"bucketName": BUCKET}),
        "bucket-tampering",
        id="bucket-lifecycle",
    ),
    pytest.param(
        cloudtrail_event("aws.s3", "PutObjectLockConfiguration", {"bucketName": BUCKET}),
        "bucket-tampering",
        id="bucket-lock",
    ),
    pytest.param(
        cloudtrail_event("aws.s3", "PutBucketPolicy", {"bucketName": "someone-elses-bucket"}),
        None,
        id="other-bucket",
    ),
    pytest.param(
        cloudtrail_event("aws.bedrock", "DeleteGuardrail", {"guardrailIdentifier": "gr-1"}),
        "guardrail-deletion",
        id="guardrail",
    ),
    pytest.param(
        cloudtrail_event("aws.bedrock", "UpdateGuardrail", {"guardrailIdentifier": "gr-1"}),
        None,
        id="guardrail-update",
    ),
]


@pytest.fixture
def routed_queues() -> Iterator[tuple[Any, dict[str, str]]]:
    """Each alert pattern installed as an EventBridge rule (moto) with its own queue as target."""
    # moto's pattern matcher does not descend into arrays of objects (the key rule's
    # detail.resources.ARN), so the key class is checked structurally above instead.
    patterns = policies.alert_event_patterns(bucket_name=BUCKET, kms_key_arn=None)
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        queues: dict[str, str] = {}
        for alert_class, pattern in patterns.items():
            url = sqs.create_queue(QueueName=alert_class)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            events.put_rule(Name=alert_class, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=alert_class, Targets=[{"Id": "queue", "Arn": arn}])
            queues[alert_class] = url
        yield events, queues


@pytest.mark.parametrize(("entry", "expected"), ROUTED)
def test_cloudtrail_events_reach_exactly_their_alert_class(
    routed_queues: tuple[Any, dict[str, str]], entry: dict[str, Any], expected: str | None
) -> None:
    events, queues = routed_queues
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    sqs = boto3.client("sqs")
    fired = sorted(
        alert_class
        for alert_class, url in queues.items()
        if sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages")
    )
    assert fired == ([expected] if expected else [])
