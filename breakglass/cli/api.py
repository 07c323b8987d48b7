"""A client for the deployment's IAM-authorized access API: JSON requests signed with SigV4.

The access API (API Gateway HTTP API, every route ``AWS_IAM``) learns who calls from the
signature, never from the body, so every request is signed for ``execute-api`` with the
session's credentials (``--profile``, SSO, environment...). Answers map onto the command's exit
codes: a request the API rejects as malformed is bad input (2); a refusal, a missing request, a
conflict, throttling or a server failure is a failure (1); each is one line, with the API's own
message. Commands get one from :meth:`breakglass.cli.context.CliContext.access_api`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import NoCredentialsError

from breakglass.cli.errors import BadInput, CliError

SERVICE: Final = "execute-api"
TIMEOUT_SECONDS: Final = 30.0
USER_AGENT: Final = "breakglass-cli"


class ApiError(CliError):
    """The access API answered with an error status; ``status`` and ``body`` are kept for callers."""

    def __init__(
        self, message: str, *, status: int, body: Any, hint: str | None = None, code: int | None = None
    ) -> None:
        super().__init__(message, hint=hint, code=code)
        self.status = status
        self.body = body


def _message(body: Any, fallback: str) -> tuple[str, str | None]:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            # The access API's own refusals: {"error": {"code", "field", "message"}}.
            field = error.get("field")
            message = str(error["message"])
            if isinstance(field, str) and field and not message.startswith(f"{field}:"):
                message = f"{field}: {message}"
            return message, None
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                hint = body.get("hint")
                return value, hint if isinstance(hint, str) else None
    return fallback, None


@dataclass
class AccessApi:
    session: boto3.Session
    base_url: str
    region: str
    timeout: float = TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise CliError(f"the deployment's access API URL is not a URL: {self.base_url!r}")
        self.base_url = self.base_url.rstrip("/")

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body or {})

    def delete(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, body=body)

    def signed(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> AWSRequest:
        """The request as it goes on the wire, signed for execute-api in the deployment's region."""
        credentials = self.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        url = self.base_url + "/" + path.lstrip("/")
        if query:
            url += "?" + urlencode(sorted(query.items()))
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        return request

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        signed = self.signed(method, path, body=body, query=query)
        # Send exactly the bytes that were signed; the scheme was checked (https/http only).
        body_bytes = signed.body if isinstance(signed.body, bytes) else None
        wire = urllib.request.Request(
            str(signed.url), data=body_bytes or None, headers=dict(signed.headers.items()), method=method
        )
        try:
            with urllib.request.urlopen(wire, timeout=self.timeout) as response:
                return _parse(response.read())
        except urllib.error.HTTPError as exc:
            raise _error(exc.code, _parse(exc.read()), method, path) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"cannot reach the access API at {self.base_url}: {reason}",
                hint="check the network (and --endpoint-url / the deployment's region)",
            ) from None


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _error(status: int, body: Any, method: str, path: str) -> ApiError:
    message, hint = _message(body, f"{method} {path} failed with HTTP {status}")
    if status in (400, 422):
        return ApiError(message, status=status, body=body, hint=hint, code=BadInput.exit_code)
    if status in (401, 403):
        error = body.get("error") if isinstance(body, Mapping) else None
        code = error.get("code") if isinstance(error, Mapping) else None
        # API Gateway's own refusals ({"message": "Forbidden"}) and an unknown caller are about
        # identity; any other refusal (a wrong code, a self-approval) its message explains.
        about_identity = code in (None, "not-authenticated", "unknown-caller")
        return ApiError(
            message,
            status=status,
            body=body,
            hint=hint
            or ("AWS did not accept your identity for this; check --profile" if about_identity else None),
        )
    if status == 429:
        return ApiError(
            message, status=status, body=body, hint=hint or "too many requests; wait a minute and retry"
        )
    if status >= 500:
        return ApiError(
            f"the access API failed (HTTP {status}): {message}",
            status=status,
            body=body,
            hint=hint or "retry; if it persists, the deployment's logs have the cause",
        )
    return ApiError(message, status=status, body=body, hint=hint)
