"""Signed approval links: HMAC-SHA256 tokens bound to one request and one approver.

Token: ``base64url(payload) "." base64url(mac)`` where the payload is compact JSON
``{"v":1,"r":request_id,"a":approver,"e":expiry_epoch,"j":jti}`` and the MAC covers a domain
tag plus the encoded payload. Verification is constant-time and checks the signature before
reading anything from the payload. A link is single-use: the approval API spends its ``jti``
(``Store.claim_link``) when a decision is POSTed, never when the link is merely opened.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import boto3

from breakglass.contracts import ENV_LINK_SECRET_ARN
from breakglass.validation import REQUEST_ID, USER_ID

VERSION: Final = 1
MIN_KEY_BYTES: Final = 32
MAX_TOKEN_CHARS: Final = 2048
_DOMAIN: Final = b"breakglass-approval-link.v1."

REASONS: Final = ("malformed", "forged", "expired", "cross-request", "wrong-approver")


class LinkRejected(ValueError):
    """The link does not count. ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


@dataclass(frozen=True)
class LinkClaims:
    request_id: str
    approver: str
    expires_at: datetime
    jti: str

    @property
    def expires_epoch(self) -> int:
        return int(self.expires_at.timestamp())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key: the link key must be at least {MIN_KEY_BYTES} bytes")


def _mac(key: bytes, encoded_payload: str) -> bytes:
    return hmac.new(bytes(key), _DOMAIN + encoded_payload.encode(), hashlib.sha256).digest()


def sign_link(
    key: bytes, *, request_id: str, approver: str, expires_at: datetime, jti: str | None = None
) -> str:
    """A token for ``approver`` to decide ``request_id`` until ``expires_at``."""
    _check_key(key)
    if not re.fullmatch(REQUEST_ID, request_id or ""):
        raise ValueError(f"request_id: {request_id!r} is not a request id")
    if not re.fullmatch(USER_ID, approver or ""):
        raise ValueError(f"approver: {approver!r} is not a user id")
    if expires_at.tzinfo is None:
        raise ValueError("expires_at: must be timezone-aware")
    payload = {
        "v": VERSION,
        "r": request_id,
        "a": approver,
        "e": int(expires_at.timestamp()),
        "j": jti or secrets.token_urlsafe(16),
    }
    encoded = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{encoded}.{_b64encode(_mac(key, encoded))}"


def verify_link(
    key: bytes,
    token: str,
    *,
    now: datetime,
    request_id: str | None = None,
    approver: str | None = None,
) -> LinkClaims:
    """The claims of a genuine, unexpired token; raises :class:`LinkRejected` otherwise.

    With ``request_id`` / ``approver``, also refuses a genuine link used for another request
    (``cross-request``) or by another approver (``wrong-approver``). Spending the link is the
    caller's job (``Store.claim_link``).
    """
    _check_key(key)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise LinkRejected("malformed", "the link is incomplete: open it again from the email")
    encoded, signature = token.split(".")
    try:
        given = _b64decode(signature)
    except (ValueError, binascii.Error) as exc:
        raise LinkRejected("malformed", "the link is incomplete: open it again from the email") from exc
    if not hmac.compare_digest(given, _mac(key, encoded)):
        raise LinkRejected("forged", "the link's signature is not valid")
    try:
        payload: Any = json.loads(_b64decode(encoded))
        claims = LinkClaims(
            request_id=str(payload["r"]),
            approver=str(payload["a"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), UTC),
            jti=str(payload["j"]),
        )
        if payload.get("v") != VERSION:
            raise ValueError("unknown version")
    except (ValueError, KeyError, TypeError, OverflowError, OSError, binascii.Error) as exc:
        # Signed by our key but unreadable: never issued by this code, so treat as forged.
        raise LinkRejected("forged", "the link's contents are not valid") from exc
    if now >= claims.expires_at:
        raise LinkRejected("expired", f"the link expired at {claims.expires_at:%Y-%m-%d %H:%M} UTC")
    if request_id is not None and claims.request_id != request_id:
        raise LinkRejected("cross-request", "the link belongs to another request")
    if approver is not None and claims.approver != approver:
        raise LinkRejected("wrong-approver", "the link was issued to another approver")
    return claims


def link_key_from_env(environ: Mapping[str, str] | None = None, *, session: Any = None) -> bytes:
    """The HMAC key from the Secrets Manager secret the component names in the environment.

    A binary secret is used as is; a string secret as its UTF-8 bytes. Either must hold at
    least 32 bytes.
    """
    env = os.environ if environ is None else environ
    arn = env.get(ENV_LINK_SECRET_ARN, "")
    if not arn:
        raise RuntimeError(
            f"environment variable {ENV_LINK_SECRET_ARN} is not set: the function is misconfigured"
        )
    client = (session or boto3).client("secretsmanager")
    secret = client.get_secret_value(SecretId=arn)
    key = (
        bytes(secret["SecretBinary"])
        if secret.get("SecretBinary")
        else str(secret.get("SecretString", "")).encode()
    )
    if len(key) < MIN_KEY_BYTES:
        raise RuntimeError(
            f"the link key in {arn} is shorter than {MIN_KEY_BYTES} bytes: rotate it to a longer one"
        )
    return key
