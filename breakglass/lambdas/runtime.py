"""What every handler shares: structured JSON logs, counted metrics and the audit writer built from
its environment.

Handlers stay thin: parse the event into a typed object, call a service function with boto3
clients passed in, return an explicit result. Clients are created per invocation (never at
import time) so tests and the emulator decide where they point.

Metrics are CloudWatch Embedded Metric Format (EMF): :func:`count` writes one JSON log line that
is both the structured log record and, read by CloudWatch Logs, a metric data point. No API call,
no extra IAM right, nothing that can fail the action being counted. Every metric the package
emits is named here (:data:`METRICS`), so the component's alarms and this code cannot drift apart.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import boto3

from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    EVENTS_PREFIX,
)

if TYPE_CHECKING:  # events.py counts failed alerts with count(): imported lazily below, no cycle
    from breakglass.lambdas.audit.events import AuditWriter


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, sort_keys=True)


_LOG_STREAM = threading.local()


def log_stream() -> TextIO:
    """Where this thread's log lines go: stdout (Lambda sends it to the function's log group), or
    the stream :func:`logs_to` set (the emulator keeps each invocation's lines with its function)."""
    stream: TextIO | None = getattr(_LOG_STREAM, "stream", None)
    return stream if stream is not None else sys.stdout


@contextmanager
def logs_to(stream: TextIO) -> Iterator[None]:
    previous = getattr(_LOG_STREAM, "stream", None)
    _LOG_STREAM.stream = stream
    try:
        yield
    finally:
        _LOG_STREAM.stream = previous


class _ThreadStreamHandler(logging.StreamHandler):
    """A stream handler that finds its stream at each line (see :func:`log_stream`)."""

    @property
    def stream(self) -> TextIO:
        return log_stream()

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current thread's stream


def get_logger(name: str) -> logging.Logger:
    """A logger that writes one JSON object per line (CloudWatch Logs Insights reads the fields)."""
    logger = logging.getLogger(name)
    if not any(isinstance(h.formatter, _JsonFormatter) for h in logger.handlers):
        handler = _ThreadStreamHandler()
        handler.setFormatter(_JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(os.environ.get("BREAKGLASS_LOG_LEVEL", "INFO"))
    return logger


def log_fields(**fields: Any) -> dict[str, Any]:
    """``logger.info("msg", extra=log_fields(request_id=...))`` puts the fields in the JSON line."""
    return {"fields": fields}


# -- metrics (CloudWatch Embedded Metric Format) ------------------------------------------------

METRICS_NAMESPACE: Final = "Breakglass"
# Dimensions: every metric is emitted per function and per (function, reason), so an alarm can
# watch the total of one function and a dashboard can split it by reason.
DIMENSION_FUNCTION: Final = "FunctionName"
DIMENSION_REASON: Final = "Reason"
# POSTs/GETs to the approval API refused before any genuine signed link was seen (junk, forged or
# expired tokens, cross-site posts without a genuine link, malformed events, unknown routes).
# Counted only: never an audit object, never an alert each. Alarm on its rate.
METRIC_UNAUTHENTICATED_REFUSALS: Final = "UnauthenticatedRefusals"
# Decisions refused although they carried a genuine link (used, wrong code, self-approval...).
# Every attempt is counted; each (link, reason) is audited once.
METRIC_LINK_REFUSALS: Final = "LinkRefusals"
# An audit event was stored in the locked bucket but its alert could not be published. The action
# stands (the record is the truth); the alert is lost and this count says so.
METRIC_ALERT_PUBLISH_FAILURES: Final = "AlertPublishFailures"
# A finding of the sealed check about a sealed user (Reason: the finding, e.g. access-key).
METRIC_SEALED_ACCESS_FINDINGS: Final = "SealedAccessFindings"
METRICS: Final = (
    METRIC_UNAUTHENTICATED_REFUSALS,
    METRIC_LINK_REFUSALS,
    METRIC_ALERT_PUBLISH_FAILURES,
    METRIC_SEALED_ACCESS_FINDINGS,
)
# What the dimension says outside Lambda (tests, the emulator run handlers in-process).
LOCAL_FUNCTION_NAME: Final = "local"
_REASON_MAX: Final = 64

_metrics_log = get_logger("breakglass.metrics")


def function_name(environ: Mapping[str, str] | None = None) -> str:
    """The running Lambda's name (set by the Lambda runtime): the component knows it too."""
    env = os.environ if environ is None else environ
    return env.get("AWS_LAMBDA_FUNCTION_NAME") or LOCAL_FUNCTION_NAME


def emf(metric: str, reason: str, *, value: int = 1, now_ms: int | None = None) -> dict[str, Any]:
    """The EMF members of one count: ``_aws`` metadata, the dimensions and the value."""
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {', '.join(METRICS)}, got {metric!r}")
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if now_ms is None else now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [[DIMENSION_FUNCTION], [DIMENSION_FUNCTION, DIMENSION_REASON]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }
            ],
        },
        DIMENSION_FUNCTION: function_name(),
        # Reasons are this package's own vocabulary; bounded anyway (a dimension value is an index).
        DIMENSION_REASON: str(reason)[:_REASON_MAX] or "unknown",
        metric: value,
    }


def count(metric: str, reason: str, message: str, *, level: int = logging.WARNING, **fields: Any) -> None:
    """Count one occurrence of ``metric`` for ``reason``: one structured JSON log line that is also
    an EMF metric data point. ``fields`` add context to the log line (never to the dimensions)."""
    _metrics_log.log(level, message, extra=log_fields(**fields, **emf(metric, reason)))


# Where Lambda unpacks the function's archive (set by the runtime; the emulator sets it too).
TASK_ROOT_VARIABLE: Final = "LAMBDA_TASK_ROOT"


def archive_json(file_name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The JSON file ``file_name`` the component shipped in the function's own archive: what may
    outgrow Lambda's 4 KB environment travels this way. A function without it fails loudly."""
    path = Path(required_env(TASK_ROOT_VARIABLE, environ)) / file_name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RuntimeError(f"{file_name} is not in the function's archive ({path})") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"{file_name} in the function's archive is not JSON: {exc}") from exc


def required_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    if not value:
        raise RuntimeError(f"environment variable {name} is not set: the function is misconfigured")
    return value


def audit_writer_from_env(environ: Mapping[str, str] | None = None, *, session: Any = None) -> AuditWriter:
    """The writer a deployed function uses, configured by the component through its environment."""
    from breakglass.lambdas.audit.events import AuditWriter

    env = os.environ if environ is None else environ
    boto = session or boto3
    topic = env.get(ENV_ALERT_TOPIC) or None
    return AuditWriter(
        s3=boto.client("s3"),
        bucket=required_env(ENV_AUDIT_BUCKET, env),
        prefix=env.get(ENV_AUDIT_PREFIX) or EVENTS_PREFIX,
        kms_key_id=env.get(ENV_AUDIT_KMS_KEY) or None,
        sns=boto.client("sns") if topic else None,
        topic_arn=topic,
    )
