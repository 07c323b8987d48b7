"""Break-glass audit events: a versioned schema and the writer every Lambda uses.

One JSON object per event, one S3 object per event, under a date-partitioned prefix of the
Object Lock bucket (``<prefix>/dt=YYYY-MM-DD/``) so Athena prunes by day. A write that fails
raises :class:`AuditWriteError`: callers must not report success without their audit record.

Nothing is recorded twice. Every object is written with ``If-None-Match: *``: a key is written
once, and a put that finds its key taken (412) means the event is already stored. An event that a
retried step may write again (a grant, a revoke, an expiry, a review opened...) carries an id
derived from what it records (:func:`event_identity`, a name-based UUID, version 5), and such an
id names its object without the time (``dt=<day>/<type>-<id>.json``): every attempt of the step
writes the same key, so the first attempt's record stands and a retry finds it. A retry that
crosses midnight UTC lands in the next day's partition; the readers (the named queries, ``breakglass
audit``, the report) count each event id once, so that copy is never counted twice either.
Object Lock forbids overwriting a version, and a second unconditional put would add one, which is
why existence is checked by the put itself (one call, atomic) and not by a read before it.

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
from typing import Any, Final, Protocol

from breakglass.contracts import (
    EVENT_COLUMNS,
    EVENT_OUTCOMES,
    EVENT_TYPES,
    EVENTS_PREFIX,
    SCHEMA_VERSION,
    iso,
    utc_now,
)
from breakglass.lambdas.runtime import METRIC_ALERT_PUBLISH_FAILURES, count, get_logger, log_fields

# What S3 answers a put with ``If-None-Match: *`` whose key already holds an object.
ALREADY_STORED: Final = "PreconditionFailed"
log = get_logger("breakglass.audit")


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

    @property
    def derived(self) -> bool:
        """Whether the id was derived from what the event records (:func:`event_identity`)."""
        try:
            return uuid.UUID(self.event_id).version == 5
        except ValueError:
            return False

    def object_key(self, prefix: str = EVENTS_PREFIX) -> str:
        day = self.event_time[:10]
        if self.derived:
            # Without the time: a retry of the step that wrote it writes this very key.
            return f"{prefix}/dt={day}/{self.event_type}-{self.event_id}.json"
        stamp = self.event_time.replace(":", "").replace("-", "")
        return f"{prefix}/dt={day}/{stamp}-{self.event_type}-{self.event_id}.json"


def event_identity(*parts: str) -> str:
    """The id of the one event ``parts`` name, the same on every attempt (e.g. ``request id,
    "grant", actor``): what a step that may be retried records, so a retry finds its record
    instead of adding one. Parts must not depend on the attempt (no time, no random value)."""
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise ValueError("parts: name the event with one or more non-empty strings")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


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


def _knows_if_none_match(s3: Any) -> bool:
    """Whether the client's SDK can send PutObject's ``If-None-Match`` (botocore 1.35, Aug 2024).

    The Lambda runtime brings its own boto3, whose version AWS chooses per runtime and region. An
    older one would refuse the parameter and so every record: it puts without the condition
    instead (a retry then adds a version under the same key, the first one still locked, and the
    readers still see one current object per key)."""
    meta = getattr(s3, "meta", None)
    if meta is None:
        return True  # not a botocore client: it receives the parameter as is
    try:
        return "IfNoneMatch" in meta.service_model.operation_model("PutObject").input_shape.members
    except Exception:
        return False


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
        An event whose key is already stored is not stored again (the key is returned).

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
            if _knows_if_none_match(self.s3):
                params["IfNoneMatch"] = "*"  # a key is written once (see the module's docstring)
            if self.kms_key_id:
                params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
            self.s3.put_object(**params)
        except Exception as exc:
            if _error_code(exc) != ALREADY_STORED:
                raise AuditWriteError(
                    f"audit event {event.event_id} ({event.event_type}) not stored: {exc}"
                ) from exc
            # The key is taken: an earlier attempt (or the SDK's retry of a put whose answer was
            # lost) stored this event, and that record stands. Its alert is published again:
            # records are exactly once, alerts at least once (a lost alert is the worse error).
            log.info(
                "audit event already stored",
                extra=log_fields(event_id=event.event_id, event_type=event.event_type, audit_key=key),
            )
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
