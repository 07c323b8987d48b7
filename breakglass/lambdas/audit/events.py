"""Break-glass audit events: a versioned schema and the writer every Lambda uses.

One JSON object per event, one S3 object per event, under a date-partitioned prefix of the
Object Lock bucket (``<prefix>/dt=YYYY-MM-DD/``) so Athena prunes by day. A write that fails
raises :class:`AuditWriteError`: callers must not report success without their audit record.

The stored record is the truth; the alert published after it is a notification. Once the record
is stored, :meth:`AuditWriter.write` returns normally whatever happens to the alert: a failed
publish is logged and counted (``AlertPublishFailures``), never raised, so no caller undoes an
action whose record is already locked (the record and the state never disagree).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from breakglass.contracts import (
    EVENT_COLUMNS,
    EVENT_OUTCOMES,
    EVENT_TYPES,
    EVENTS_PREFIX,
    SCHEMA_VERSION,
    iso,
    utc_now,
)
from breakglass.lambdas.runtime import METRIC_ALERT_PUBLISH_FAILURES, count


class AuditWriteError(RuntimeError):
    """The event was not stored. The action it records must not be reported as done."""


@dataclass(frozen=True)
class AuditEvent:
    """One break-glass event (schema version 1).

    ``actor`` is who did it (a source identity, an approver, ``system``, ``tripwire:<alarm>``);
    ``requester`` is whose request it belongs to, so self-approval shows as actor == requester.
    ``details`` holds event-specific data and is stored as a JSON string.
    """

    event_type: str
    actor: str
    outcome: str = "succeeded"
    request_id: str | None = None
    requester: str | None = None
    tier: str | None = None
    role_arn: str | None = None
    target: str | None = None
    mode: str | None = None
    reason: str | None = None
    ticket: str | None = None
    window_start: str | None = None
    expires_at: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    event_time: str = field(default_factory=lambda: iso(utc_now()))
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"event_type: must be one of {', '.join(EVENT_TYPES)}, got {self.event_type!r}")
        if self.outcome not in EVENT_OUTCOMES:
            raise ValueError(f"outcome: must be one of {', '.join(EVENT_OUTCOMES)}, got {self.outcome!r}")
        if not self.actor:
            raise ValueError("actor: every event needs the identity that caused it")
        datetime.strptime(self.event_time, "%Y-%m-%dT%H:%M:%SZ")  # raises on a malformed time

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["details"] = json.dumps(dict(self.details), sort_keys=True, default=str)
        return {name: record[name] for name, _ in EVENT_COLUMNS}

    def object_key(self, prefix: str = EVENTS_PREFIX) -> str:
        day = self.event_time[:10]
        stamp = self.event_time.replace(":", "").replace("-", "")
        return f"{prefix}/dt={day}/{stamp}-{self.event_type}-{self.event_id}.json"


def parse_record(record: Mapping[str, Any]) -> AuditEvent:
    """The inverse of :meth:`AuditEvent.to_record` (for readers and tests)."""
    values = dict(record)
    details = values.pop("details", "{}") or "{}"
    known = {name for name, _ in EVENT_COLUMNS}
    return AuditEvent(**{k: v for k, v in values.items() if k in known}, details=json.loads(details))


class S3Putter(Protocol):
    def put_object(self, **kwargs: Any) -> Any: ...


class SnsPublisher(Protocol):
    def publish(self, **kwargs: Any) -> Any: ...


def _error_code(exc: Exception) -> str:
    """A bounded name for a failure (the AWS error code, else the exception's class)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return type(exc).__name__


@dataclass
class AuditWriter:
    """Writes events to the locked bucket; optionally also publishes each to the alert topic.

    Object Lock buckets refuse writes without a content checksum, so every put carries a
    SHA-256 checksum (boto3 computes it from the body).

    ``write(event, alert=False)`` stores the record without publishing it: for events that are
    alerted in aggregate (a metric alarm on their rate) rather than one message each, such as
    the approval API's refusals (see ``breakglass.lambdas.approvals.api.IMMEDIATE_ALERT_REASONS``).
    """

    s3: S3Putter
    bucket: str
    prefix: str = EVENTS_PREFIX
    kms_key_id: str | None = None
    sns: SnsPublisher | None = None
    topic_arn: str | None = None

    def write(self, event: AuditEvent, *, alert: bool = True) -> str:
        """Store ``event``; return its key. Raises :class:`AuditWriteError` if it was not stored.

        Then, with ``alert`` and a topic configured, publish it. A failed publish never raises:
        the record is stored, so the action it records stands; the failure is logged and counted.
        """
        key = event.object_key(self.prefix)
        try:
            body = (json.dumps(event.to_record(), sort_keys=True) + "\n").encode()
            params: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": key,
                "Body": body,
                "ContentType": "application/json",
                "ChecksumAlgorithm": "SHA256",
            }
            if self.kms_key_id:
                params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
            self.s3.put_object(**params)
        except Exception as exc:
            raise AuditWriteError(
                f"audit event {event.event_id} ({event.event_type}) not stored: {exc}"
            ) from exc
        if alert and self.sns is not None and self.topic_arn:
            self._publish(self.sns, self.topic_arn, event, key)
        return key

    @staticmethod
    def _publish(sns: SnsPublisher, topic_arn: str, event: AuditEvent, key: str) -> None:
        try:
            sns.publish(
                TopicArn=topic_arn,
                # Only the package's own vocabulary (validated event type and outcome), never
                # text a caller or an attacker supplied.
                Subject=f"break-glass {event.event_type}: {event.outcome}",
                Message=json.dumps(event.to_record(), sort_keys=True),
            )
        except Exception as exc:
            # Not raised: the record is locked, so undoing or failing the action would make the
            # state contradict it. The alarm on this count tells someone the alert was lost.
            count(
                METRIC_ALERT_PUBLISH_FAILURES,
                _error_code(exc),
                "audit event stored but its alert was not published",
                level=logging.ERROR,
                event_id=event.event_id,
                event_type=event.event_type,
                outcome=event.outcome,
                request_id=event.request_id,
                audit_key=key,
                error=str(exc)[:500],
            )
