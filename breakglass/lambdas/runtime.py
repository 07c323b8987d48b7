"""What every handler shares: structured JSON logs and the audit writer built from its environment.

Handlers stay thin: parse the event into a typed object, call a service function with boto3
clients passed in, return an explicit result. Clients are created per invocation (never at
import time) so tests and the emulator decide where they point.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import boto3

from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    EVENTS_PREFIX,
)
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


def get_logger(name: str) -> logging.Logger:
    """A logger that writes one JSON object per line (CloudWatch Logs Insights reads the fields)."""
    logger = logging.getLogger(name)
    if not any(isinstance(h.formatter, _JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(os.environ.get("BREAKGLASS_LOG_LEVEL", "INFO"))
    return logger


def log_fields(**fields: Any) -> dict[str, Any]:
    """``logger.info("msg", extra=log_fields(request_id=...))`` puts the fields in the JSON line."""
    return {"fields": fields}


def required_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    if not value:
        raise RuntimeError(f"environment variable {name} is not set: the function is misconfigured")
    return value


def audit_writer_from_env(environ: Mapping[str, str] | None = None, *, session: Any = None) -> AuditWriter:
    """The writer a deployed function uses, configured by the component through its environment."""
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
