"""The audit writer against an Object Lock bucket in moto: records are stored, locked and kept."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from emf import captured_metrics
from moto import mock_aws

from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    EVENTS_PREFIX,
)
from breakglass.lambdas.audit.events import (
    AuditEvent,
    AuditWriteError,
    AuditWriter,
    event_identity,
    parse_record,
)
from breakglass.lambdas.runtime import (
    DIMENSION_FUNCTION,
    DIMENSION_REASON,
    METRIC_ALERT_PUBLISH_FAILURES,
    METRICS_NAMESPACE,
    audit_writer_from_env,
    count,
)

BUCKET = "breakglass-audit-test"
RETENTION_DAYS = 365

# A client that only sends checksums when an operation strictly requires one (PutObject does
# not, by its API model): it shows what the bucket does with a put that carries none.
NO_AUTOMATIC_CHECKSUMS = Config(request_checksum_calculation="when_required")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", config=NO_AUTOMATIC_CHECKSUMS)
    client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": RETENTION_DAYS}},
        },
    )
    return client


def grant_event(**overrides: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "event_type": "grant",
        "actor": "system",
        "request_id": "req1234",
        "requester": "alice",
        "tier": "ops",
        "role_arn": "arn:aws:iam::123456789012:role/breakglass-emergency-ops",
        "expires_at": "2024-05-01T10:30:00Z",
        "details": {"approvers": ["bob", "carol"]},
        "event_time": "2024-05-01T10:00:00Z",
    }
    values.update(overrides)
    return AuditEvent(**values)


def sent_headers(client: Any) -> list[dict[str, str]]:
    """Record the headers of every PutObject the client sends."""
    seen: list[dict[str, str]] = []

    def remember(request: Any, **_: Any) -> None:
        seen.append(
            {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        )

    client.meta.events.register("before-send.s3.PutObject", remember)
    return seen


def test_an_event_is_stored_once_under_its_date_partition_and_reads_back_identically(s3: Any) -> None:
    event = grant_event()
    key = AuditWriter(s3=s3, bucket=BUCKET).write(event)
    assert key.startswith(f"{EVENTS_PREFIX}/dt=2024-05-01/")
    assert key.endswith(f"-grant-{event.event_id}.json")
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert parse_record(json.loads(body)) == event
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"] for o in listed] == [key]


def test_a_stored_event_is_locked_in_compliance_mode_for_the_default_retention(s3: Any) -> None:
    before = datetime.now(UTC)
    key = AuditWriter(s3=s3, bucket=BUCKET).write(grant_event())
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= before + timedelta(days=RETENTION_DAYS) - timedelta(minutes=1)


def test_the_locked_bucket_refuses_a_put_without_a_checksum(s3: Any) -> None:
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=BUCKET, Key=f"{EVENTS_PREFIX}/dt=2024-05-01/raw.json", Body=b"{}")
    assert refused.value.response["Error"]["Code"] == "MissingUploadObjectWithObjectLockHeaders"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_the_writer_sends_a_sha256_checksum_even_when_the_client_would_not(s3: Any) -> None:
    headers = sent_headers(s3)
    event = grant_event()
    key = AuditWriter(s3=s3, bucket=BUCKET).write(event)
    (put,) = headers
    assert put["x-amz-sdk-checksum-algorithm"] == "SHA256"
    stored = s3.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    body = stored["Body"].read()
    assert stored["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_deleting_the_locked_version_is_refused_even_with_governance_bypass(s3: Any) -> None:
    key = AuditWriter(s3=s3, bucket=BUCKET).write(grant_event())
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    for extra in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError) as refused:
            s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version, **extra)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.head_object(Bucket=BUCKET, Key=key, VersionId=version)["VersionId"] == version


def test_a_plain_delete_only_hides_the_record_behind_a_marker(s3: Any) -> None:
    event = grant_event()
    key = AuditWriter(s3=s3, bucket=BUCKET).write(event)
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    s3.delete_object(Bucket=BUCKET, Key=key)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    assert [m["IsLatest"] for m in versions["DeleteMarkers"]] == [True]
    original = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
    assert parse_record(json.loads(original)) == event


def test_an_overwrite_adds_a_version_and_the_locked_original_survives_unchanged(s3: Any) -> None:
    event = grant_event()
    key = AuditWriter(s3=s3, bucket=BUCKET).write(event)
    original = s3.get_object(Bucket=BUCKET, Key=key)
    original_body, original_version = original["Body"].read(), original["VersionId"]

    forged = json.dumps({**event.to_record(), "requester": "mallory", "outcome": "failed"}).encode()
    digest = base64.b64encode(hashlib.md5(forged).digest()).decode()
    overwrite = s3.put_object(Bucket=BUCKET, Key=key, Body=forged, ContentMD5=digest)

    assert overwrite["VersionId"] != original_version
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted([original_version, overwrite["VersionId"]])
    kept = s3.get_object(Bucket=BUCKET, Key=key, VersionId=original_version)
    assert kept["Body"].read() == original_body
    assert kept["ETag"] == original["ETag"]
    assert kept["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=original_version)


def test_an_event_named_by_what_it_records_is_stored_once_whatever_the_attempt(s3: Any) -> None:
    writer = AuditWriter(s3=s3, bucket=BUCKET)
    identity = event_identity("req1234", "grant", "system")
    first = grant_event(event_id=identity, event_time="2024-05-01T10:00:00Z")
    # A retry minutes later, finding the grant in place: another time, another outcome, same event.
    retry = grant_event(event_id=identity, event_time="2024-05-01T10:04:09Z", outcome="noop")
    key = writer.write(first)
    assert key == f"{EVENTS_PREFIX}/dt=2024-05-01/grant-{identity}.json"
    assert writer.write(retry) == key
    (version,) = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    stored = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])["Body"].read()
    assert parse_record(json.loads(stored)) == first


def test_event_identities_differ_by_every_part_and_refuse_an_empty_part() -> None:
    names = {
        event_identity("req1234", "grant", "system"),
        event_identity("req1234", "revoke", "system"),
        event_identity("req1234", "revoke", "alice"),
        event_identity("req1235", "grant", "system"),
    }
    assert len(names) == 4
    assert event_identity("req1234", "grant", "system") == event_identity("req1234", "grant", "system")
    with pytest.raises(ValueError, match=r"^parts:"):
        event_identity("req1234", "")


def test_every_put_is_conditional_so_a_lost_answer_retried_is_not_a_second_version(s3: Any) -> None:
    headers = sent_headers(s3)
    event = grant_event()  # a random id: the key has the time in it
    writer = AuditWriter(s3=s3, bucket=BUCKET)
    key = writer.write(event)
    assert writer.write(event) == key  # as the SDK's retry of a put whose answer was lost
    assert [h["if-none-match"] for h in headers] == ["*", "*"]
    assert len(s3.list_object_versions(Bucket=BUCKET)["Versions"]) == 1


def test_a_client_whose_sdk_predates_conditional_puts_still_stores_every_record(s3: Any) -> None:
    class OldSdk:
        """The runtime's boto3 before If-None-Match: its PutObject model lacks it and refuses it."""

        meta = SimpleNamespace(
            service_model=SimpleNamespace(
                operation_model=lambda name: SimpleNamespace(input_shape=SimpleNamespace(members={}))
            )
        )

        def put_object(self, **kwargs: Any) -> Any:
            if "IfNoneMatch" in kwargs:
                raise TypeError("Unknown parameter in input: IfNoneMatch")
            return s3.put_object(**kwargs)

    event = grant_event(event_id=event_identity("req1234", "grant", "system"))
    key = AuditWriter(s3=OldSdk(), bucket=BUCKET).write(event)
    assert parse_record(json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) == event


def test_an_event_found_already_stored_is_alerted_again_not_lost(s3: Any) -> None:
    sns, queue = topic_with_queue()
    event = grant_event(event_id=event_identity("req1234", "grant", "system"))
    AuditWriter(s3=s3, bucket=BUCKET).write(event)  # the attempt that died before its alert
    AuditWriter(s3=s3, bucket=BUCKET, sns=sns, topic_arn=queue.topic_arn).write(event)
    (notification,) = queue.messages()
    assert parse_record(json.loads(notification["Message"])) == event


def test_a_write_to_a_missing_bucket_raises_and_publishes_nothing(s3: Any) -> None:
    sns, queue = topic_with_queue()
    event = grant_event()
    writer = AuditWriter(s3=s3, bucket="no-such-audit-bucket", sns=sns, topic_arn=queue.topic_arn)
    with pytest.raises(AuditWriteError, match=event.event_id) as raised:
        writer.write(event)
    assert isinstance(raised.value.__cause__, ClientError)
    assert raised.value.__cause__.response["Error"]["Code"] == "NoSuchBucket"
    assert queue.messages() == []


def test_a_write_the_bucket_refuses_is_an_error_not_a_silent_drop(s3: Any) -> None:
    class RefusingS3:
        """An S3 client that drops the checksum: what a misconfigured writer would send."""

        def put_object(self, **kwargs: Any) -> Any:
            kwargs.pop("ChecksumAlgorithm")
            return s3.put_object(**kwargs)

    with pytest.raises(AuditWriteError, match="MissingUploadObjectWithObjectLockHeaders"):
        AuditWriter(s3=RefusingS3(), bucket=BUCKET).write(grant_event())
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


class Queue:
    def __init__(self, topic_arn: str, url: str) -> None:
        self.topic_arn = topic_arn
        self.url = url

    def messages(self) -> list[dict[str, Any]]:
        received = boto3.client("sqs").receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def topic_with_queue() -> tuple[Any, Queue]:
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name="breakglass-alerts")["TopicArn"]
    url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return sns, Queue(topic_arn, url)


def test_with_a_topic_configured_the_event_is_also_published(s3: Any) -> None:
    sns, queue = topic_with_queue()
    event = grant_event()
    key = AuditWriter(s3=s3, bucket=BUCKET, sns=sns, topic_arn=queue.topic_arn).write(event)
    (notification,) = queue.messages()
    assert notification["Subject"] == "break-glass grant: succeeded"
    assert parse_record(json.loads(notification["Message"])) == event
    assert s3.head_object(Bucket=BUCKET, Key=key)["ObjectLockMode"] == "COMPLIANCE"


def test_a_failed_alert_is_logged_and_counted_and_never_fails_a_write_whose_record_is_locked(
    s3: Any,
) -> None:
    sns = boto3.client("sns")
    missing_topic = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    event = grant_event()
    with captured_metrics() as metrics:
        key = AuditWriter(s3=s3, bucket=BUCKET, sns=sns, topic_arn=missing_topic).write(event)
    assert s3.head_object(Bucket=BUCKET, Key=key)["ObjectLockMode"] == "COMPLIANCE"
    assert metrics.counts() == {(METRIC_ALERT_PUBLISH_FAILURES, "NotFound"): 1}
    (line,) = metrics.lines
    assert line["level"] == "ERROR" and line["event_id"] == event.event_id and line["audit_key"] == key


def test_any_failure_of_the_alert_client_is_counted_not_raised(s3: Any) -> None:
    class BrokenSns:
        def publish(self, **kwargs: Any) -> Any:
            raise ConnectionError("endpoint unreachable")

    with captured_metrics() as metrics:
        AuditWriter(s3=s3, bucket=BUCKET, sns=BrokenSns(), topic_arn="arn:aws:sns:x").write(grant_event())
    assert metrics.counts() == {(METRIC_ALERT_PUBLISH_FAILURES, "ConnectionError"): 1}


def test_an_event_written_without_an_alert_is_stored_and_not_published(s3: Any) -> None:
    sns, queue = topic_with_queue()
    key = AuditWriter(s3=s3, bucket=BUCKET, sns=sns, topic_arn=queue.topic_arn).write(
        grant_event(), alert=False
    )
    assert s3.head_object(Bucket=BUCKET, Key=key)["ObjectLockMode"] == "COMPLIANCE"
    assert queue.messages() == []


def test_the_alert_subject_holds_only_the_event_type_and_outcome(s3: Any) -> None:
    sns, queue = topic_with_queue()
    hostile = grant_event(
        request_id="req1", requester="x\nBcc: evil@example.com", reason="IGNORE\r\nSubject: pwned"
    )
    AuditWriter(s3=s3, bucket=BUCKET, sns=sns, topic_arn=queue.topic_arn).write(hostile)
    (notification,) = queue.messages()
    assert notification["Subject"] == "break-glass grant: succeeded"


def test_every_metric_line_is_an_embedded_metric_format_document(s3: Any) -> None:
    with captured_metrics() as metrics:
        count(METRIC_ALERT_PUBLISH_FAILURES, "NotFound", "a test line", request_id="req1")
    (line,) = metrics.lines
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive == {
        "Namespace": METRICS_NAMESPACE,
        "Dimensions": [[DIMENSION_FUNCTION], [DIMENSION_FUNCTION, DIMENSION_REASON]],
        "Metrics": [{"Name": METRIC_ALERT_PUBLISH_FAILURES, "Unit": "Count"}],
    }
    assert isinstance(line["_aws"]["Timestamp"], int)
    assert line[DIMENSION_FUNCTION] == "local" and line[DIMENSION_REASON] == "NotFound"
    assert line[METRIC_ALERT_PUBLISH_FAILURES] == 1 and line["request_id"] == "req1"
    with pytest.raises(ValueError, match="metric"):
        count("SomethingElse", "x", "no such metric")


def test_events_are_encrypted_with_the_audit_key_when_one_is_configured(s3: Any) -> None:
    key_arn = boto3.client("kms").create_key(Description="audit")["KeyMetadata"]["Arn"]
    key = AuditWriter(s3=s3, bucket=BUCKET, kms_key_id=key_arn).write(grant_event())
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn


def test_the_writer_built_from_the_component_environment_writes_and_alerts(s3: Any) -> None:
    _, queue = topic_with_queue()
    key_arn = boto3.client("kms").create_key(Description="audit")["KeyMetadata"]["Arn"]
    environment = {
        ENV_AUDIT_BUCKET: BUCKET,
        ENV_AUDIT_PREFIX: EVENTS_PREFIX,
        ENV_AUDIT_KMS_KEY: key_arn,
        ENV_ALERT_TOPIC: queue.topic_arn,
    }
    writer = audit_writer_from_env(environment)
    event = grant_event(event_type="halt", target="endpoint/fraud-model", mode="deny-invoke")
    key = writer.write(event)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert (head["ObjectLockMode"], head["SSEKMSKeyId"]) == ("COMPLIANCE", key_arn)
    assert [parse_record(json.loads(m["Message"])).event_id for m in queue.messages()] == [event.event_id]
