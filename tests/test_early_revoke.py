"""Early revoke refuses, and audits, every attempt that has no access to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pyotp
import pytest
from moto import mock_aws

from breakglass.lambdas.access.early_revoke import RevokeRefused, authorize, may_revoke
from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.approvals.store import RequestRecord, Store, create_table
from breakglass.lambdas.approvals.totp import verify_totp
from breakglass.lambdas.audit.events import AuditWriter, parse_record

NOW = datetime(2026, 11, 22, 2, 13, tzinfo=UTC)
ARN = "arn:aws:iam::123456789012:user/rita"


@pytest.fixture
def world() -> Iterator[tuple[Store, AuditWriter, Any, str]]:
    with mock_aws():
        ddb, kms, s3 = boto3.client("dynamodb"), boto3.client("kms"), boto3.client("s3")
        create_table(ddb, "bg")
        s3.create_bucket(Bucket="audit")
        store = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])
        secret = pyotp.parse_uri(enroll(store, "rita", ARN, "rita@example.com", ["responder"])).secret
        yield store, AuditWriter(s3=s3, bucket="audit"), s3, secret


def record(status: str) -> RequestRecord:
    return RequestRecord(
        request_id="req7",
        requester="rita",
        requester_arn=ARN,
        tier="halt",
        reason="model is leaking data",
        ticket=None,
        duration_seconds=1800,
        requested_at="2026-11-22T02:10:00Z",
        status=status,
        quorum=0,
        approvers=("ann",),
    )


@pytest.mark.parametrize("status", ["pending", "denied", "expired"])
def test_a_request_without_access_is_refused_audited_and_the_code_is_not_spent(
    world: tuple[Store, AuditWriter, Any, str], status: str
) -> None:
    store, writer, s3, secret = world
    store.put_request(record(status))
    code = pyotp.TOTP(secret).at(NOW)
    with pytest.raises(RevokeRefused, match=f"req7 is {status}: there is no access to revoke"):
        authorize(store, writer, "req7", "rita", code, now=NOW)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="audit")["Contents"]]
    [event] = [parse_record(json.loads(s3.get_object(Bucket="audit", Key=k)["Body"].read())) for k in keys]
    assert (event.event_type, event.actor, event.outcome) == ("revoke", "rita", "failed")
    assert "no access to revoke" in event.details["refused"]
    verify_totp(store, "rita", code, now=NOW)  # still usable: the refusal came before the code check


def test_the_requester_is_recognised_whatever_the_case_of_their_id(
    world: tuple[Store, AuditWriter, Any, str],
) -> None:
    store, writer, _, secret = world
    store.put_request(record("pending"))
    with pytest.raises(RevokeRefused, match="no access to revoke"):  # past the who-may check
        authorize(store, writer, "req7", "RITA", pyotp.TOTP(secret).at(NOW), now=NOW)


def test_someone_who_is_neither_requester_approver_nor_security_is_refused_and_audited(
    world: tuple[Store, AuditWriter, Any, str],
) -> None:
    store, writer, s3, _ = world
    store.put_request(record("granted"))
    with pytest.raises(RevokeRefused, match="'mallory' may not revoke req7"):
        authorize(store, writer, "req7", "mallory", "123456", now=NOW)
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket="audit")["Contents"]]
    assert parse_record(json.loads(s3.get_object(Bucket="audit", Key=key)["Body"].read())).actor == "mallory"


def test_the_requester_under_a_second_enrollment_revokes_as_the_requester_not_as_security(
    world: tuple[Store, AuditWriter, Any, str],
) -> None:
    store, _, _, _ = world
    store.put_request(record("granted"))
    enroll(store, "rita-admin", "arn:aws:iam::123456789012:user/rita-admin", "rita@example.com", ["security"])
    enroll(store, "sec", "arn:aws:iam::123456789012:user/sec", "sec@example.com", ["security"])
    assert may_revoke(store, store.get_request("req7"), "rita-admin") == "requester"  # type: ignore[arg-type]
    assert may_revoke(store, store.get_request("req7"), "sec") == "security"  # type: ignore[arg-type]
