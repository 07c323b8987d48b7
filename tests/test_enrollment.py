"""Enrollment: validated identity, an encrypted fresh secret, and a scannable otpauth URI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pyotp
import pytest
from moto import mock_aws

from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.approvals.store import Enrollment, Store, create_table
from breakglass.lambdas.approvals.totp import verify_totp
from breakglass.validation import ConfigError

ARN = "arn:aws:iam::123456789012:user/alice"


@pytest.fixture
def store() -> Iterator[Store]:
    with mock_aws():
        ddb, kms = boto3.client("dynamodb"), boto3.client("kms")
        create_table(ddb, "bg")
        yield Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])


def test_enroll_stores_the_person_and_returns_an_otpauth_uri_for_their_secret(store: Store) -> None:
    uri = enroll(
        store, "alice", ARN, "alice@example.com", ["approver", "responder"], issuer="Acme break-glass"
    )
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert query["issuer"] == ["Acme break-glass"]
    assert store.get_enrollment("alice") == Enrollment(
        "alice", ARN, "alice@example.com", ("approver", "responder")
    )
    assert query["secret"] == [store.totp_secret("alice")]


def test_the_uri_secret_produces_codes_the_service_accepts(store: Store) -> None:
    uri = enroll(store, "alice", ARN, "alice@example.com", ["approver"])
    totp = pyotp.parse_uri(uri)
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    verify_totp(store, "alice", totp.at(now), now=now)


def test_each_enrollment_gets_a_new_secret(store: Store) -> None:
    first = enroll(store, "alice", ARN, "alice@example.com", ["approver"])
    second = enroll(store, "alice", ARN, "alice@example.com", ["approver"])
    assert parse_qs(urlsplit(first).query)["secret"] != parse_qs(urlsplit(second).query)["secret"]
    assert parse_qs(urlsplit(second).query)["secret"] == [store.totp_secret("alice")]


def test_an_assumed_role_principal_is_accepted(store: Store) -> None:
    arn = "arn:aws:sts::123456789012:assumed-role/Responders/alice"
    enroll(store, "alice", arn, "alice@example.com", ["responder"])
    enrollment = store.get_enrollment("alice")
    assert enrollment is not None and enrollment.principal_arn == arn


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("a", ARN, "alice@example.com", ["approver"]), "user"),
        (("alice smith", ARN, "alice@example.com", ["approver"]), "user"),
        (("älice", ARN, "alice@example.com", ["approver"]), "user"),
        (("x" * 65, ARN, "alice@example.com", ["approver"]), "user"),
        (("alice", "alice", "alice@example.com", ["approver"]), "principal_arn"),
        (("alice", "arn:aws:s3:::bucket", "alice@example.com", ["approver"]), "principal_arn"),
        (("alice", ARN, "alice", ["approver"]), "email"),
        (("alice", ARN, "alice@example.com\nBcc: x@y.z", ["approver"]), "email"),
        (("alice", ARN, "alice@example.com", []), "roles"),
        (("alice", ARN, "alice@example.com", "approver"), "roles"),
        (("alice", ARN, "alice@example.com", ["admin"]), "roles[0]"),
        (("alice", ARN, "alice@example.com", ["approver", "approver"]), "roles[1]"),
    ],
)
def test_bad_enrollment_input_is_refused_naming_the_field(
    store: Store, args: tuple[Any, ...], field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        enroll(store, *args)
    assert err.value.field == field
    assert store.get_enrollment("alice") is None


def test_a_bad_issuer_is_refused_before_anything_is_stored(store: Store) -> None:
    with pytest.raises(ConfigError) as err:
        enroll(store, "alice", ARN, "alice@example.com", ["approver"], issuer="evil:issuer")
    assert err.value.field == "issuer"
    assert store.get_enrollment("alice") is None
