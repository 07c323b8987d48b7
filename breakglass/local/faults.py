"""Faults injected into an emulator's calls: AWS errors and Lambda timeouts, on purpose, by count.

A test (or the drill, or a benchmark) arms faults on one emulator for the length of a ``with``::

    with faults.injected(emulator, Fault("iam", "PutRolePolicy", caller="*access*", times=2)) as armed:
        ...
    assert armed.hits()  # every call that failed, in order

:class:`Fault`: the emulator answers a matching call with the error AWS would send (``Throttling``
from IAM, ``SlowDown`` / 503 from S3, ``ProvisionedThroughputExceededException`` from DynamoDB...),
in the service's own protocol, so the SDK's retries and the handlers' error handling see exactly
what they would see from AWS, and the CloudTrail recorder records the call with its ``errorCode``
(the answer goes through the same request middleware as every other). The call is not performed.

:class:`Timeout`: the Lambda function whose invocation makes a matching call times out just
before sending it (everything before happened, nothing after does); the invocation fails with
``Sandbox.Timedout`` as Lambda reports it, and Step Functions' Retry and Catch do what the state
machine says. The handler cannot catch it (it is not an ``Exception``), as a real timeout kills
the process.

Deterministic: a fault lets its first ``skip`` matching calls through and then fails the next
``times`` (``None``: all of them); no randomness. Matching is by signing name (``iam``, ``sts``,
``s3``, ``sns``, ``ses``, ``dynamodb``, ``sagemaker``, ``states``, ``lambda``...), operation and
caller (the IAM user's or assumed role's name, or for a :class:`Timeout` the function's name;
shell-style patterns), and optionally a text the request must contain (a bucket, key, table or
target name).
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from breakglass.contracts import utc_now
from breakglass.local.cloudtrail import Observed, _boto3_service, parse_call
from breakglass.local.iam_enforcement import principal_for

# What Lambda answers when an invocation runs out of time (Step Functions names the error so).
LAMBDA_TIMEOUT_ERROR: Final = "Sandbox.Timedout"
_CREDENTIAL: Final = re.compile(r"Credential=([^/]+)/\d{8}/[^/]+/([^/]+)/aws4_request")
_QUERY_ACTION: Final = re.compile(r"(?:^|&)Action=([A-Za-z0-9]+)")


@dataclass(frozen=True, eq=False)
class _Match:
    """Which calls a fault applies to, and how many of them it fails."""

    service: str
    operation: str = "*"
    caller: str = "*"
    contains: str | None = None
    skip: int = 0
    times: int | None = 1

    def __post_init__(self) -> None:
        if self.skip < 0:
            raise ValueError("skip: must be 0 or more")
        if self.times is not None and self.times < 1:
            raise ValueError("times: must be 1 or more, or None for every matching call")

    def matches(self, service: str, operation: str, callers: tuple[str, ...], text: str) -> bool:
        return (
            fnmatch.fnmatchcase(service, self.service)
            and fnmatch.fnmatchcase(operation, self.operation)
            and any(fnmatch.fnmatchcase(c, self.caller) for c in callers)
            and (self.contains is None or self.contains in text)
        )


@dataclass(frozen=True, eq=False)
class Fault(_Match):
    """A matching call is answered with AWS error ``error`` (HTTP ``status``) and not performed."""

    error: str = "Throttling"
    status: int = 400
    message: str = "Rate exceeded"


@dataclass(frozen=True, eq=False)
class Timeout(_Match):
    """The Lambda invocation making a matching call times out just before sending it.

    ``caller`` is matched against the function's name."""


class LambdaTimedOut(BaseException):
    """Raised in a handler's thread at a :class:`Timeout`; never caught by handler code."""


@dataclass(frozen=True)
class Hit:
    """One call a fault failed."""

    fault: _Match
    service: str
    operation: str
    caller: str


@dataclass
class Armed:
    """The faults armed on one emulator, with their counts (thread-safe)."""

    faults: tuple[_Match, ...]
    _seen: dict[int, int] = field(default_factory=dict)
    _hits: list[Hit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(
        self, kind: type[_Match], service: str, operation: str, callers: tuple[str, ...], text: str
    ) -> _Match | None:
        """The fault that fails this call now (counting it), or None."""
        with self._lock:
            for index, fault in enumerate(self.faults):
                if not isinstance(fault, kind) or not fault.matches(service, operation, callers, text):
                    continue
                seen = self._seen.get(index, 0)
                self._seen[index] = seen + 1
                if seen >= fault.skip and (fault.times is None or seen < fault.skip + fault.times):
                    self._hits.append(Hit(fault, service, operation, callers[0] if callers else ""))
                    return fault
            return None

    def hits(self, fault: _Match | None = None) -> list[Hit]:
        with self._lock:
            return [h for h in self._hits if fault is None or h.fault is fault]

    def seen(self, fault: _Match) -> int:
        """How many calls matched ``fault`` (failed or let through)."""
        with self._lock:
            return self._seen.get(self.faults.index(fault), 0)


_ARMED: dict[str, list[Armed]] = {}
_ARMED_LOCK = threading.Lock()
# Read without the lock on every call a handler makes: nothing to do while no fault is armed.
_ANY_ARMED = False


@contextmanager
def injected(emulator: Any, *faults: _Match) -> Iterator[Armed]:
    """Arm ``faults`` on ``emulator`` (anything with an ``account_id``) while inside."""
    armed = Armed(tuple(faults))
    account = str(emulator.account_id)
    global _ANY_ARMED
    with _ARMED_LOCK:
        _ARMED.setdefault(account, []).append(armed)
        _ANY_ARMED = True
    try:
        yield armed
    finally:
        with _ARMED_LOCK:
            _ARMED[account].remove(armed)
            if not _ARMED[account]:
                del _ARMED[account]
            _ANY_ARMED = bool(_ARMED)


def _armed(account_id: str) -> list[Armed]:
    with _ARMED_LOCK:
        return list(_ARMED.get(account_id, ()))


def _take(
    account_id: str, kind: type[_Match], service: str, operation: str, callers: tuple[str, ...], text: str
) -> _Match | None:
    for armed in _armed(account_id):
        fault = armed.take(kind, service, operation, callers, text)
        if fault is not None:
            return fault
    return None


# -- the server side: a call answered with an error ------------------------------------------------


def _operation(environ: Mapping[str, Any], body: bytes, service: str) -> str:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target.rsplit(".", 1)[-1]
    found = _QUERY_ACTION.search(str(environ.get("QUERY_STRING", ""))) or _QUERY_ACTION.search(
        body.decode("utf-8", errors="replace")
    )
    if found:
        return found.group(1)
    # REST APIs (S3, Lambda...): moto's router names the operation, as the CloudTrail recorder does.
    headers = {
        key[5:].replace("_", "-").title(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = str(environ["CONTENT_TYPE"])
    observed = Observed(
        time=utc_now(),
        method=str(environ.get("REQUEST_METHOD", "GET")),
        path=str(environ.get("RAW_URI") or environ.get("PATH_INFO") or "/").split("?", 1)[0],
        query=str(environ.get("QUERY_STRING", "")),
        headers=headers,
        body=body,
        status=0,
        response_headers={},
        response=b"",
        source_ip="",
    )
    try:
        model, _ = parse_call(observed, _boto3_service(service, observed.path))
    except Exception:
        return "Unknown"
    return str(model.name)


def _error_answer(service: str, fault: Fault) -> tuple[str, list[tuple[str, str]], bytes]:
    """The error as the service's protocol carries it (botocore parses each differently)."""
    from moto.core.utils import get_service_model

    request_id = str(uuid.uuid4())
    status = f"{fault.status} Fault"
    try:
        protocol = str(get_service_model(_boto3_service(service, "/")).metadata.get("protocol", "query"))
    except Exception:
        protocol = "query"
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": fault.error, "message": fault.message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-ErrorType", fault.error),
            ("x-amzn-RequestId", request_id),
        ]
        return status, headers, body
    if protocol == "rest-xml":
        text = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{fault.error}</Code>"
            f"<Message>{fault.message}</Message><RequestId>{request_id}</RequestId></Error>"
        )
        return status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], text.encode()
    kind = "Receiver" if fault.status >= 500 else "Sender"
    text = (
        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{fault.error}</Code>"
        f"<Message>{fault.message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], text.encode()


def answer(
    account_id: str, environ: Mapping[str, Any], body: bytes
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """The error to answer this request with instead of serving it, or None to serve it.

    Called by the emulator's request middleware for every call; costs a dict lookup when no fault
    is armed on the emulator."""
    if not _armed(account_id):
        return None
    match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if not match:
        return None
    access_key, service = match.groups()
    principal = principal_for(access_key)
    callers = tuple(
        name
        for name in (getattr(principal, "role_name", None), getattr(principal, "user_name", None))
        if name
    )
    operation = _operation(environ, body, service)
    text = f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')} " + body.decode(
        "utf-8", errors="replace"
    )
    fault = _take(account_id, Fault, service, operation, callers or ("",), text)
    return _error_answer(service, fault) if isinstance(fault, Fault) else None


# -- the Lambda side: an invocation that runs out of time -------------------------------------------


def before_call(model: Any = None, params: Any = None, request_signer: Any = None, **_: Any) -> None:
    """botocore ``before-call`` hook on the sessions Lambda handlers use (see
    :mod:`breakglass.local.lambda_runner`): raise :class:`LambdaTimedOut` if the invocation making
    this call is to time out before it. The function is told by the call's credentials (its role
    session is named after it), so calls from a handler's worker threads count too."""
    if not _ANY_ARMED or model is None or request_signer is None:
        return
    credentials = getattr(request_signer, "_credentials", None)
    principal = principal_for(str(getattr(credentials, "access_key", "")))
    if principal is None or not principal.session_name:
        return
    service = str(model.service_model.signing_name)
    operation = str(model.name)
    text = json.dumps(params, default=str) if params else ""
    fault = _take(principal.account_id, Timeout, service, operation, (principal.session_name,), text)
    if fault is not None:
        raise LambdaTimedOut(
            f"Task timed out: {principal.session_name} ran out of time before calling {service}:{operation}"
        )


__all__ = [
    "LAMBDA_TIMEOUT_ERROR",
    "Armed",
    "Fault",
    "Hit",
    "LambdaTimedOut",
    "Timeout",
    "answer",
    "before_call",
    "injected",
]
