"""Every named query, run offline over real-format CloudTrail records and break-glass events.

The fixture bucket tells the story in ``tests/fixtures/audit/scenario.py``; each test asserts the
exact rows an auditor gets.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fixtures.audit.scenario import (
    ACCOUNT_ID,
    AUDIT_BUCKET,
    EMERGENCY_ROLE_ARN,
    EVENTS,
    build_local_bucket,
    write_cloudtrail,
    write_events,
)

from breakglass.contracts import iso, parse_iso
from breakglass.lambdas.audit.events import AuditEvent
from breakglass.local.athena import LocalBucket
from breakglass.policies.queries import NAMED_QUERIES

CLI_UA = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off command/sts.assume-role"
BOTO_UA = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69"
)
ALICE_SESSION = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/breakglass-emergency-ops/alice-req-0001"
MALLORY = f"arn:aws:iam::{ACCOUNT_ID}:user/mallory"


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> LocalBucket:
    return LocalBucket(build_local_bucket(tmp_path_factory.mktemp("audit-bucket")))


def test_emergency_sessions_lists_every_assume_of_an_emergency_role_with_who_where_and_mfa(
    bucket: LocalBucket,
) -> None:
    result = bucket.run_named("emergency_sessions")
    assert result.records() == [
        {
            "event_time": "2025-03-14T09:02:30Z",
            "source_identity": None,
            "caller_arn": MALLORY,
            "role_arn": EMERGENCY_ROLE_ARN,
            "role_session_name": "oops",
            "source_ip": "203.0.113.66",
            "user_agent": CLI_UA,
            "mfa": False,
            "mfa_device": None,
            "aws_region": "us-east-1",
            "error_code": "AccessDenied",
            "event_id": "e1c6b0d4-2f3a-4b5c-8d9e-0a1b2c3d4e02",
        },
        {
            "event_time": "2025-03-14T09:06:10Z",
            "source_identity": "alice",
            "caller_arn": f"arn:aws:iam::{ACCOUNT_ID}:user/alice",
            "role_arn": EMERGENCY_ROLE_ARN,
            "role_session_name": "alice-req-0001",
            "source_ip": "198.51.100.10",
            "user_agent": "breakglass/0.1.0 " + BOTO_UA,
            "mfa": True,
            "mfa_device": f"arn:aws:iam::{ACCOUNT_ID}:mfa/alice",
            "aws_region": "us-east-1",
            "error_code": None,
            "event_id": "e1c6b0d4-2f3a-4b5c-8d9e-0a1b2c3d4e03",
        },
        {
            "event_time": "2025-03-15T15:01:00Z",
            "source_identity": "erin",
            "caller_arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/AWSReservedSSO_Responder_0a1b2c3d4e5f6a7b/erin@example.com",
            "role_arn": EMERGENCY_ROLE_ARN,
            "role_session_name": "erin-req-0003",
            "source_ip": "192.0.2.44",
            "user_agent": "breakglass/0.1.0 " + BOTO_UA,
            "mfa": True,  # from the caller's SSO session, not a device on the request
            "mfa_device": None,
            "aws_region": "us-east-1",
            "error_code": None,
            "event_id": "e1c6b0d4-2f3a-4b5c-8d9e-0a1b2c3d4e16",
        },
    ]


def test_session_actions_returns_every_call_of_that_source_identity_in_the_range_across_regions(
    bucket: LocalBucket,
) -> None:
    result = bucket.run_named(
        "session_actions",
        {"source_identity": "alice", "start": "2025-03-14T09:00:00Z", "end": "2025-03-14T10:00:00Z"},
    )
    rows = result.records()
    assert [(r["event_time"], r["event_source"], r["event_name"], r["aws_region"]) for r in rows] == [
        ("2025-03-14T09:10:00Z", "sagemaker.amazonaws.com", "InvokeEndpoint", "us-east-1"),
        ("2025-03-14T09:21:05Z", "sagemaker.amazonaws.com", "DeleteEndpoint", "us-east-1"),
        ("2025-03-14T09:30:00Z", "bedrock.amazonaws.com", "InvokeModel", "us-west-2"),
        ("2025-03-14T09:50:12Z", "bedrock.amazonaws.com", "InvokeModel", "us-east-1"),
    ]
    assert {r["role_arn"] for r in rows} == {EMERGENCY_ROLE_ARN}
    assert {r["principal_arn"] for r in rows} == {ALICE_SESSION}
    assert {(r["source_ip"], r["user_agent"], r["error_code"]) for r in rows} == {
        ("198.51.100.10", BOTO_UA, None)
    }
    # requestparameters keeps CloudTrail's JSON text, as Athena's string column does.
    assert [json.loads(r["request_parameters"]) for r in rows[:2]] == [
        {"endpointName": "fraud-model", "contentType": "application/json", "accept": "application/json"},
        {"endpointName": "fraud-model"},
    ]
    assert [r["event_id"] for r in rows] == [
        "f2d7c1e5-3a4b-4c5d-9e0f-1b2c3d4e5f04",
        "f2d7c1e5-3a4b-4c5d-9e0f-1b2c3d4e5f05",
        "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d08",
        "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d07",
    ]


def test_session_actions_finds_a_late_evening_call_that_cloudtrail_filed_under_the_next_day(
    bucket: LocalBucket,
) -> None:
    result = bucket.run_named(
        "session_actions",
        {"source_identity": "erin", "start": "2025-03-15T15:00:00Z", "end": "2025-03-15T23:59:59Z"},
    )
    assert [(r["event_time"], r["event_name"], r["error_code"]) for r in result.records()] == [
        ("2025-03-15T15:10:00Z", "UpdateEndpointWeightsAndCapacities", None),
        ("2025-03-15T23:59:30Z", "InvokeEndpoint", "AccessDenied"),
    ]


def test_approvals_lists_each_decision_per_request_and_flags_the_self_approval(bucket: LocalBucket) -> None:
    assert bucket.run_named("approvals").rows == [
        ("req-0001", "alice", "approval", "bob", "2025-03-14T09:02:00Z", "succeeded", "ops", False),
        ("req-0001", "alice", "approval", "alice", "2025-03-14T09:03:00Z", "succeeded", "ops", True),
        ("req-0002", "dave", "denial", "carol", "2025-03-15T14:05:00Z", "succeeded", "ops", False),
        ("req-0003", "erin", "approval", "bob", "2025-03-15T14:58:00Z", "succeeded", "ops", False),
    ]
    assert bucket.run_named("approvals").columns == [
        "request_id",
        "requester",
        "decision",
        "approver",
        "decided_at",
        "outcome",
        "tier",
        "self_approval",
    ]


def test_halts_lists_halts_and_resumes_per_target_including_the_failed_one(bucket: LocalBucket) -> None:
    assert bucket.run_named("halts").records() == [
        {
            "target": "endpoint/fraud-model",
            "action": "halt",
            "mode": "delete-endpoint",
            "outcome": "succeeded",
            "actor": "alice",
            "request_id": "req-0001",
            "event_time": "2025-03-14T09:20:00Z",
            "reason": "stop serving bad scores",
            "details": '{"snapshot": "breakglass-events/snapshots/fraud-model.json"}',
        },
        {
            "target": "endpoint/fraud-model",
            "action": "resume",
            "mode": "delete-endpoint",
            "outcome": "succeeded",
            "actor": "alice",
            "request_id": "req-0001",
            "event_time": "2025-03-14T09:40:00Z",
            "reason": "model fixed",
            "details": "{}",
        },
        {
            "target": "role/chat-invoker",
            "action": "halt",
            "mode": "deny-invoke",
            "outcome": "failed",
            "actor": "alice",
            "request_id": "req-0001",
            "event_time": "2025-03-14T09:20:01Z",
            "reason": "stop serving bad scores",
            "details": '{"error": "NoSuchEntity: role chat-invoker not found"}',
        },
    ]


def test_access_outside_grants_flags_calls_after_revoke_and_without_source_identity_not_refusals(
    bucket: LocalBucket,
) -> None:
    # erin's call after req-0003 expired was refused by IAM (AccessDenied): not access, so not
    # here; session_actions lists it with its error code.
    assert bucket.run_named("access_outside_grants").rows == [
        # 5 minutes after carol revoked req-0001 (the grant itself ran until 10:05)
        (
            "2025-03-14T09:50:12Z",
            "alice",
            EMERGENCY_ROLE_ARN,
            "bedrock.amazonaws.com",
            "InvokeModel",
            "us-east-1",
            "198.51.100.10",
            None,
            "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d07",
        ),
        # a session of the emergency role that carries no source identity at all
        (
            "2025-03-15T04:00:00Z",
            None,
            EMERGENCY_ROLE_ARN,
            "sts.amazonaws.com",
            "GetCallerIdentity",
            "us-east-1",
            "203.0.113.66",
            None,
            "8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c15",
        ),
    ]


def test_access_outside_grants_is_empty_when_every_call_falls_inside_a_window(tmp_path: Path) -> None:
    write_cloudtrail(tmp_path)
    # Without the revoke and the expiry, and with erin's grant running until midnight, only the
    # session without a source identity remains outside.
    events = tuple(e for e in EVENTS if e.event_type not in {"revoke", "expiry"})
    events = tuple(
        replace(e, expires_at="2025-03-16T00:00:00Z")
        if e.request_id == "req-0003" and e.event_type == "grant"
        else e
        for e in events
    )
    write_events(tmp_path, events)
    rows = LocalBucket(tmp_path).run_named("access_outside_grants").records()
    assert [(r["event_time"], r["source_identity"]) for r in rows] == [("2025-03-15T04:00:00Z", None)]


def test_unreviewed_events_lists_only_the_review_never_accepted_or_flagged(bucket: LocalBucket) -> None:
    assert bucket.run_named("unreviewed_events").rows == [
        ("req-0001", "alice", "ops", "INC-4711", "2025-03-14T09:46:00Z", "system"),
    ]


def test_tampering_lists_attempts_on_trail_audit_bucket_guardrail_and_key_but_not_other_buckets(
    bucket: LocalBucket,
) -> None:
    rows = bucket.run_named("tampering", {"audit_bucket": AUDIT_BUCKET}).records()
    assert [(r["event_time"], r["event_name"], r["outcome"], r["error_code"], r["target"]) for r in rows] == [
        (
            "2025-03-15T03:00:00Z",
            "StopLogging",
            "failed",
            "AccessDenied",
            f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/breakglass-trail",
        ),
        ("2025-03-15T03:10:00Z", "PutBucketPolicy", "succeeded", None, AUDIT_BUCKET),
        (
            "2025-03-15T03:12:00Z",
            "DeleteObject",
            "failed",
            "AccessDenied",
            f"{AUDIT_BUCKET}/breakglass-events/dt=2025-03-14/"
            "20250314T090300Z-approval-00000000-0000-4000-8000-000000000003.json",
        ),
        ("2025-03-15T03:13:00Z", "DeleteGuardrail", "failed", "AccessDeniedException", "gr-7h3x4mpl3id"),
        (
            "2025-03-15T03:14:00Z",
            "ScheduleKeyDeletion",
            "failed",
            "AccessDeniedException",
            f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
    ]
    assert [r["principal_arn"] for r in rows] == [
        MALLORY,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/Admin/admin-jdoe",
        MALLORY,
        MALLORY,
        MALLORY,
    ]
    assert {r["event_source"] for r in rows} == {
        "cloudtrail.amazonaws.com",
        "s3.amazonaws.com",
        "bedrock.amazonaws.com",
        "kms.amazonaws.com",
    }


def test_tampering_on_another_bucket_name_finds_only_the_non_bucket_attempts(bucket: LocalBucket) -> None:
    rows = bucket.run_named("tampering", {"audit_bucket": "ml-artifacts-111122223333"}).records()
    assert [r["event_name"] for r in rows] == [
        "StopLogging",
        "PutBucketPolicy",
        "DeleteGuardrail",
        "ScheduleKeyDeletion",
    ]
    assert rows[1]["target"] == "ml-artifacts-111122223333"


def retried_across_midnight(events: tuple[AuditEvent, ...]) -> tuple[AuditEvent, ...]:
    """Every event stored a second time, as a step retried after midnight UTC stores it: the same
    id, a later time, the next day's partition (the writer's key check cannot see across days)."""
    later = tuple(
        replace(e, event_time=iso(parse_iso(e.event_time) + timedelta(days=1, minutes=3)), outcome="noop")
        for e in events
    )
    return events + later


@pytest.mark.parametrize("name", ["approvals", "halts", "access_outside_grants", "unreviewed_events"])
def test_an_event_stored_twice_under_one_id_is_counted_once_by_every_query_of_the_events(
    bucket: LocalBucket, tmp_path: Path, name: str
) -> None:
    write_cloudtrail(tmp_path)
    written = write_events(tmp_path, retried_across_midnight(EVENTS))
    assert len(written) == 2 * len(EVENTS) and len(set(written)) == len(written)
    assert LocalBucket(tmp_path).run_named(name).rows == bucket.run_named(name).rows


def test_every_named_query_has_an_offline_test_above() -> None:
    tested = {
        "emergency_sessions",
        "session_actions",
        "approvals",
        "halts",
        "access_outside_grants",
        "unreviewed_events",
        "tampering",
    }
    assert set(NAMED_QUERIES) == tested


def test_tampering_finds_every_event_the_live_alert_rules_watch(tmp_path: Path) -> None:
    """The query and the alert rules share one list: an alerted attempt is never missing afterwards."""
    import gzip

    from breakglass.policies.audit_trail import (
        BUCKET_TAMPERING_EVENT_NAMES,
        GUARDRAIL_EVENT_NAMES,
        KEY_TAMPERING_EVENT_NAMES,
        TRAIL_TAMPERING_EVENT_NAMES,
    )

    watched = (
        [("cloudtrail.amazonaws.com", n, {"name": "breakglass-audit"}) for n in TRAIL_TAMPERING_EVENT_NAMES]
        + [("s3.amazonaws.com", n, {"bucketName": AUDIT_BUCKET}) for n in BUCKET_TAMPERING_EVENT_NAMES]
        + [("bedrock.amazonaws.com", n, {"guardrailIdentifier": "gr-1"}) for n in GUARDRAIL_EVENT_NAMES]
        + [("kms.amazonaws.com", n, {"keyId": "k-1"}) for n in KEY_TAMPERING_EVENT_NAMES]
    )
    records = [
        {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mallory"},
            "eventTime": f"2025-03-14T10:{i:02d}:00Z",
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.9",
            "requestParameters": params,
            "eventID": f"00000000-0000-0000-0000-{i:012d}",
            "eventType": "AwsApiCall",
            "recipientAccountId": ACCOUNT_ID,
        }
        for i, (source, name, params) in enumerate(watched)
    ]
    day = tmp_path / f"AWSLogs/{ACCOUNT_ID}/CloudTrail/us-east-1/2025/03/14"
    day.mkdir(parents=True)
    (day / "tampering.json.gz").write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    rows = LocalBucket(tmp_path).run_named("tampering", {"audit_bucket": AUDIT_BUCKET}).records()
    assert sorted(r["event_name"] for r in rows) == sorted(name for _, name, _ in watched)
