"""Signed approval links: bound to request and approver, expiring, tamper-evident."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from breakglass.contracts import ENV_LINK_SECRET_ARN
from breakglass.lambdas.approvals.links import LinkRejected, link_key_from_env, sign_link, verify_link

KEY = b"k" * 32
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def _token(**overrides: object) -> str:
    values: dict[str, object] = {"request_id": "req1", "approver": "alice", "expires_at": LATER}
    values.update(overrides)
    return sign_link(KEY, **values)  # type: ignore[arg-type]


def test_a_genuine_link_yields_its_request_approver_expiry_and_a_random_jti() -> None:
    first, second = _token(), _token()
    claims = verify_link(KEY, first, now=NOW)
    assert (claims.request_id, claims.approver, claims.expires_at) == ("req1", "alice", LATER)
    assert claims.jti and claims.jti != verify_link(KEY, second, now=NOW).jti


def test_a_link_signed_with_another_key_is_forged() -> None:
    token = sign_link(b"x" * 32, request_id="req1", approver="alice", expires_at=LATER)
    with pytest.raises(LinkRejected) as err:
        verify_link(KEY, token, now=NOW)
    assert err.value.reason == "forged"


def test_changing_any_claim_breaks_the_signature() -> None:
    payload_b64, signature = _token().split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    for field, value in (("r", "req2"), ("a", "mallory"), ("e", payload["e"] + 86400), ("j", "other")):
        changed = dict(payload, **{field: value})
        encoded = base64.urlsafe_b64encode(json.dumps(changed, separators=(",", ":")).encode()).rstrip(b"=")
        with pytest.raises(LinkRejected) as err:
            verify_link(KEY, f"{encoded.decode()}.{signature}", now=NOW)
        assert err.value.reason == "forged", field


@pytest.mark.parametrize("token", ["", "no-dot", "a.b.c", "abc.!!!", "x" * 3000])
def test_a_truncated_or_garbled_link_is_malformed(token: str) -> None:
    with pytest.raises(LinkRejected) as err:
        verify_link(KEY, token, now=NOW)
    assert err.value.reason == "malformed"


def test_a_link_is_refused_from_its_expiry_on() -> None:
    token = _token()
    verify_link(KEY, token, now=LATER - timedelta(seconds=1))
    with pytest.raises(LinkRejected) as err:
        verify_link(KEY, token, now=LATER)
    assert err.value.reason == "expired"


def test_a_link_for_one_request_cannot_decide_another() -> None:
    with pytest.raises(LinkRejected) as err:
        verify_link(KEY, _token(), now=NOW, request_id="req2")
    assert err.value.reason == "cross-request"


def test_a_link_for_one_approver_cannot_be_used_as_another() -> None:
    with pytest.raises(LinkRejected) as err:
        verify_link(KEY, _token(), now=NOW, approver="bob")
    assert err.value.reason == "wrong-approver"


def test_signing_refuses_short_keys_naive_times_and_odd_ids() -> None:
    with pytest.raises(ValueError, match="key"):
        sign_link(b"short", request_id="r", approver="alice", expires_at=LATER)
    with pytest.raises(ValueError, match="expires_at"):
        sign_link(KEY, request_id="r", approver="alice", expires_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="request_id"):
        sign_link(KEY, request_id="../etc", approver="alice", expires_at=LATER)
    with pytest.raises(ValueError, match="approver"):
        sign_link(KEY, request_id="r", approver="a b", expires_at=LATER)


@mock_aws
def test_the_link_key_comes_from_secrets_manager_as_string_or_binary() -> None:
    sm = boto3.client("secretsmanager")
    text_arn = sm.create_secret(Name="link-text", SecretString="s" * 40)["ARN"]
    binary_arn = sm.create_secret(Name="link-bin", SecretBinary=b"\x01" * 32)["ARN"]
    assert link_key_from_env({ENV_LINK_SECRET_ARN: text_arn}) == b"s" * 40
    assert link_key_from_env({ENV_LINK_SECRET_ARN: binary_arn}) == b"\x01" * 32


@mock_aws
def test_a_short_or_missing_link_key_is_a_misconfiguration() -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="weak", SecretString="short")["ARN"]
    with pytest.raises(RuntimeError, match="shorter than 32 bytes"):
        link_key_from_env({ENV_LINK_SECRET_ARN: arn})
    with pytest.raises(RuntimeError, match=ENV_LINK_SECRET_ARN):
        link_key_from_env({})


@pytest.mark.parametrize("expiry", [10**20, -(10**20), "soon", None])
def test_a_signed_payload_with_an_impossible_expiry_is_refused_as_forged_not_a_crash(expiry: object) -> None:
    from breakglass.lambdas.approvals.links import _b64encode, _mac

    payload = {"v": 1, "r": "req1", "a": "alice", "e": expiry, "j": "x"}
    encoded = _b64encode(json.dumps(payload).encode())
    with pytest.raises(LinkRejected) as err:
        verify_link(KEY, f"{encoded}.{_b64encode(_mac(KEY, encoded))}", now=NOW)
    assert err.value.reason == "forged"
