"""TOTP: right code once, within one step of drift; wrong, replayed and unenrolled refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pyotp
import pytest
from moto import mock_aws

from breakglass.lambdas.approvals.store import Enrollment, Store, create_table
from breakglass.lambdas.approvals.totp import LOCKOUT_SECONDS, MAX_FAILURES, TotpRejected, verify_totp

SECRET = pyotp.random_base32()
NOW = datetime(2025, 3, 1, 12, 0, 10, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with mock_aws():
        ddb, kms = boto3.client("dynamodb"), boto3.client("kms")
        create_table(ddb, "bg")
        s = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])
        s.put_enrollment(
            Enrollment("alice", "arn:aws:iam::123456789012:user/alice", "a@example.com", ("approver",)),
            SECRET,
        )
        yield s


def code_at(moment: datetime) -> str:
    return pyotp.TOTP(SECRET).at(moment)


def _reason(store: Store, code: str, now: datetime = NOW, user: str = "alice") -> str:
    with pytest.raises(TotpRejected) as err:
        verify_totp(store, user, code, now=now)
    return err.value.reason


def test_the_current_code_is_accepted_once_and_then_refused_as_replayed(store: Store) -> None:
    verify_totp(store, "alice", code_at(NOW), now=NOW)
    assert _reason(store, code_at(NOW)) == "replayed"


def test_a_code_from_one_step_either_side_is_accepted_for_clock_drift(store: Store) -> None:
    verify_totp(store, "alice", code_at(NOW - timedelta(seconds=30)), now=NOW)
    verify_totp(store, "alice", code_at(NOW + timedelta(seconds=30)), now=NOW)


def test_a_code_two_steps_away_is_wrong(store: Store) -> None:
    assert _reason(store, code_at(NOW - timedelta(seconds=60))) == "wrong"
    assert _reason(store, code_at(NOW + timedelta(seconds=60))) == "wrong"


def test_an_older_code_is_refused_after_a_newer_one_was_used(store: Store) -> None:
    verify_totp(store, "alice", code_at(NOW), now=NOW)
    # Still inside the drift window, but its step is not after the last one used.
    assert _reason(store, code_at(NOW - timedelta(seconds=30))) == "replayed"


def test_the_next_step_code_is_accepted_after_the_current_one(store: Store) -> None:
    verify_totp(store, "alice", code_at(NOW), now=NOW)
    later = NOW + timedelta(seconds=30)
    verify_totp(store, "alice", code_at(later), now=later)


def test_a_wrong_code_does_not_burn_the_right_one(store: Store) -> None:
    right = code_at(NOW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert _reason(store, wrong) == "wrong"
    verify_totp(store, "alice", right, now=NOW)


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "abcdef", "12 34 5x", "\u0661\u0662\u0663\u0664\u0665\u0666"]
)
def test_a_code_that_is_not_six_digits_is_malformed(store: Store, code: str) -> None:
    assert _reason(store, code) == "malformed"


def test_spaces_inside_a_code_are_tolerated(store: Store) -> None:
    code = code_at(NOW)
    verify_totp(store, "alice", f"{code[:3]} {code[3:]}", now=NOW)


def test_a_person_who_is_not_enrolled_is_told_so(store: Store) -> None:
    assert _reason(store, code_at(NOW), user="mallory") == "not-enrolled"


def test_a_naive_time_is_a_programming_error(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify_totp(store, "alice", code_at(NOW), now=datetime(2025, 3, 1, 12, 0))


def _wrong(moment: datetime = NOW) -> str:
    return f"{(int(code_at(moment)) + 500_000) % 1_000_000:06d}"


def test_wrong_codes_are_rate_limited_and_then_even_the_right_code_waits(store: Store) -> None:
    for _ in range(MAX_FAILURES):
        assert _reason(store, _wrong()) == "wrong"
    assert _reason(store, code_at(NOW)) == "rate-limited"
    # The next lockout window starts afresh.
    later = NOW + timedelta(seconds=LOCKOUT_SECONDS)
    verify_totp(store, "alice", code_at(later), now=later)


def test_right_codes_do_not_count_towards_the_limit(store: Store) -> None:
    for i in range(MAX_FAILURES + 2):
        moment = NOW + timedelta(seconds=30 * i)
        verify_totp(store, "alice", code_at(moment), now=moment)
