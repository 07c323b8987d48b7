"""Emergency sessions on the responder's machine: assuming a granted role, and the session cache.

``assume`` asks STS for a session of the tier's role with exactly what the grant's trust demands:
the role session name and source identity are the person's user id, the request-id session tag is
the request, MFA where the tier requires it, and a duration that ends by the window's expiry
(never past it, never over the role's maximum, at least AWS's 15 minutes). The credentials are
cached per deployment and request (mode 0600) so ``credential_process`` can serve them to every
AWS tool without asking for an MFA code again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import boto3

from breakglass.cli.deployment import TierInfo
from breakglass.cli.errors import CliError
from breakglass.contracts import iso, parse_iso
from breakglass.lambdas.access.grants import Tier, WindowTooShortError, session_duration
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG

# A cached session is reused while at least this much of it is left.
REUSE_MARGIN: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    role_arn: str
    request_id: str

    def as_credential_process(self) -> dict[str, Any]:
        """The JSON the AWS CLI and SDKs read from a ``credential_process`` (Version 1)."""
        return {
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": iso(self.expiration),
        }

    def as_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_CREDENTIAL_EXPIRATION": iso(self.expiration),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "role_arn": self.role_arn,
            "expiration": iso(self.expiration),
            **self.as_env(),
        }

    def session(self, region: str | None) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            region_name=region,
        )


def tier_limits(info: TierInfo) -> Tier:
    """The grant module's Tier for the duration rule, from what the deployment published."""
    if not info.role_arn or not info.max_session_seconds or not info.max_window_seconds:
        raise CliError(f"the deployment did not publish tier {info.name!r} completely; redeploy it")
    return Tier(
        name=info.name,
        role_name=info.role_arn.rsplit("/", 1)[-1],
        role_arn=info.role_arn,
        max_session_seconds=info.max_session_seconds,
        max_window_seconds=info.max_window_seconds,
        require_mfa=bool(info.require_mfa),
        allowed_requesters=("arn:aws:iam::000000000000:user/unused",),
    )


def assume(
    sts: Any,
    *,
    request: Mapping[str, Any],
    tier: TierInfo,
    now: datetime,
    mfa_serial: str | None = None,
    mfa_code: str | None = None,
) -> Credentials:
    """Assume the granted role for ``request`` (a request as the access API shows it)."""
    request_id = str(request.get("request_id"))
    if request.get("status") != "granted" or not request.get("expires_at"):
        raise CliError(
            f"request {request_id} is {request.get('status')}, not granted",
            hint=f"breakglass status {request_id} shows where it stands",
        )
    if request.get("starts_at") and parse_iso(str(request["starts_at"])) > now:
        opens = parse_iso(str(request["starts_at"]))
        wait = int((opens - now).total_seconds())
        raise CliError(
            f"the window of request {request_id} opens at {request['starts_at']} "
            f"(in {wait // 3600}h{wait % 3600 // 60:02d}m); IAM refuses the role until then",
            hint=f"run breakglass assume {request_id} again from {request['starts_at']}",
        )
    limits = tier_limits(tier)
    expires_at = parse_iso(str(request["expires_at"]))
    try:
        duration = session_duration(now, expires_at, limits)
    except WindowTooShortError as exc:
        raise CliError(exc.problem, hint="request access again: breakglass request --tier ...") from exc
    user = str(request.get("requester"))
    kwargs: dict[str, Any] = {
        "RoleArn": limits.role_arn,
        # The grant's trust requires both to be the person, and the request tag to be the request.
        "RoleSessionName": user,
        "SourceIdentity": user,
        "Tags": [{"Key": REQUEST_ID_SESSION_TAG, "Value": request_id}],
        "DurationSeconds": duration,
    }
    if limits.require_mfa:
        if not mfa_serial or not mfa_code:
            raise CliError(
                f"tier {limits.name!r} requires MFA",
                hint="pass --mfa-serial ARN (or set mfa_serial in your AWS profile) and --mfa-code",
            )
        kwargs.update(SerialNumber=mfa_serial, TokenCode=mfa_code)
    answer = sts.assume_role(**kwargs)["Credentials"]
    expiration = answer["Expiration"]
    if not isinstance(expiration, datetime):
        expiration = parse_iso(str(expiration).replace("+00:00", "Z"))
    return Credentials(
        access_key_id=answer["AccessKeyId"],
        secret_access_key=answer["SecretAccessKey"],
        session_token=answer["SessionToken"],
        expiration=expiration.astimezone(UTC),
        role_arn=limits.role_arn,
        request_id=request_id,
    )


# -- the cache ----------------------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "breakglass" / "sessions"


def _cache_file(deployment: str, request_id: str) -> Path:
    return cache_dir() / f"{deployment}-{request_id}.json"


def save(deployment: str, credentials: Credentials) -> Path:
    path = _cache_file(deployment, credentials.request_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {**credentials.as_credential_process(), "RoleArn": credentials.role_arn}
    # Created 0600 before anything is written: the credentials are never readable by others.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle)
    return path


def load(deployment: str, request_id: str, *, now: datetime) -> Credentials | None:
    """The cached session, while more than the reuse margin of it is left."""
    path = _cache_file(deployment, request_id)
    try:
        document = json.loads(path.read_text())
        expiration = parse_iso(document["Expiration"])
    except (OSError, ValueError, KeyError):
        return None
    if expiration - now <= REUSE_MARGIN:
        return None
    return Credentials(
        access_key_id=document["AccessKeyId"],
        secret_access_key=document["SecretAccessKey"],
        session_token=document["SessionToken"],
        expiration=expiration,
        role_arn=document.get("RoleArn", ""),
        request_id=request_id,
    )


def forget(deployment: str, request_id: str) -> None:
    _cache_file(deployment, request_id).unlink(missing_ok=True)
