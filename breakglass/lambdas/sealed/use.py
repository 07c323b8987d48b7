"""A sealed use, as EventBridge delivers it: record it, open its mandatory review, email people.

The ``SealedAccess`` rules in the home region and in us-east-1 deliver CloudTrail's event of an
``AssumeRole`` of the sealed role or a ``ConsoleLogin`` of a sealed user to this function (one copy
in each region). It writes a ``sealed-use`` event to the Object Lock bucket (published to the alert
topic), and for a successful assume also opens the post-event review (a ``review``/``opened`` event
and, when the deployment has the workflow's table, a final request record, so
``breakglass audit review ID`` and the auditor's report see it like any request), then emails every
alert address through SES when a sender is configured.

The SNS topics in both regions have already alerted by then: this function is the record, not
the alarm. Its ids derive from CloudTrail's ``eventID``, so a redelivery, or the same event seen by
both regions' rules when the home region is us-east-1, rewrites the same objects (one more version
each) and finds the request record there already: no second email once the record says
``mailed``, which is set only after SES accepted the email (a failed send is retried). Any
successful assume opens the review, whoever took the session; one by someone who is not a sealed
user says so in the record, the review, the email and an error log.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import boto3

from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    ENV_HOME_REGION,
    ENV_KMS_KEY,
    ENV_SEALED_ALERT_EMAILS,
    ENV_SEALED_ROLE_ARN,
    ENV_SEALED_USERS,
    ENV_SENDER,
    ENV_TABLE,
    EVENTS_PREFIX,
    SEALED_TIER,
    RequestStatus,
    iso,
    parse_iso,
)
from breakglass.lambdas.approvals.mail import sealed_use_notice, send_notice
from breakglass.lambdas.approvals.store import RequestRecord, Store, StoreError
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter, event_identity
from breakglass.lambdas.runtime import get_logger, log_fields, required_env
from breakglass.policies.sealed_access import (
    CLOUDTRAIL_API_CALL,
    CONSOLE_SIGN_IN,
    SIGN_IN_EVENTS,
    SWITCH_ROLE,
)
from breakglass.validation import ConfigError, require_mapping

log = get_logger(__name__)
REASON_MAX: Final = 500
# Fields of CloudTrail's record kept in the audit event's details (nothing the caller can make long).
_DETAIL_LIMIT: Final = 200


@dataclass(frozen=True)
class SealedUse:
    """What CloudTrail says happened, reduced to what the record needs."""

    event_id: str
    event_name: str
    event_time: str
    user: str
    user_arn: str
    role_arn: str
    session_name: str
    source_identity: str
    source_ip: str
    region: str
    error_code: str
    mfa: str
    expires_at: str

    @property
    def succeeded(self) -> bool:
        return not self.error_code and (self.event_name != "ConsoleLogin" or self.mfa != "failure")

    @property
    def outcome(self) -> str:
        return "succeeded" if self.succeeded else "failed"

    @property
    def opens_review(self) -> bool:
        """Only a session of the sealed role is access to review (an AssumeRole, or the console's
        SwitchRole to it); a sign-in alone grants nothing."""
        return self.succeeded and self.event_name in ("AssumeRole", SWITCH_ROLE) and bool(self.role_arn)

    @property
    def request_id(self) -> str:
        """``s`` + the event's UTC time + 10 hex of its CloudTrail id: unique, stable, sortable."""
        moment = parse_iso(self.event_time)
        digest = hashlib.sha256(self.event_id.encode()).hexdigest()[:10]
        return f"s{moment:%y%m%d%H%M%S}{digest}"


def _text(value: Any) -> str:
    return value[:_DETAIL_LIMIT] if isinstance(value, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_event(event: Mapping[str, Any], *, role_arn: str) -> SealedUse:
    """The CloudTrail record inside an EventBridge event of one of the sealed rules."""
    values = require_mapping("event", event)
    kind = values.get("detail-type")
    if kind not in (CLOUDTRAIL_API_CALL, CONSOLE_SIGN_IN):
        raise ConfigError("detail-type", f"must be {CLOUDTRAIL_API_CALL!r} or {CONSOLE_SIGN_IN!r}")
    detail = require_mapping("detail", values.get("detail"))
    name = detail.get("eventName")
    if name not in ("AssumeRole", *SIGN_IN_EVENTS):
        raise ConfigError("detail.eventName", f"must be AssumeRole, ConsoleLogin or SwitchRole, got {name!r}")
    identity = require_mapping("detail.userIdentity", detail.get("userIdentity") or {})
    user_arn = _text(identity.get("arn"))
    user = _text(identity.get("userName")) or user_arn.rsplit("/", 1)[-1] or "unknown"
    parameters = _mapping(detail.get("requestParameters"))
    response = _mapping(detail.get("responseElements"))
    credentials = _mapping(response.get("credentials"))
    extra = _mapping(detail.get("additionalEventData"))
    assumed = _text(parameters.get("roleArn"))
    if name == "AssumeRole" and assumed != role_arn:
        raise ConfigError("detail.requestParameters.roleArn", "is not the sealed role")
    when = _text(detail.get("eventTime"))
    try:
        parse_iso(when)
    except ValueError:
        raise ConfigError("detail.eventTime", "must be CloudTrail's YYYY-MM-DDTHH:MM:SSZ") from None
    event_id = _text(detail.get("eventID")) or _text(values.get("id"))
    if not event_id:
        raise ConfigError("detail.eventID", "is required (it makes the record idempotent)")
    login = response.get("ConsoleLogin") or response.get(SWITCH_ROLE)
    error = _text(detail.get("errorCode")) or ("Failure" if login == "Failure" else "")
    if name == SWITCH_ROLE:
        # Sign-in names the role switched to here; only the sealed role is a sealed session.
        switched = _text(extra.get("SwitchTo"))
        assumed = switched if switched == role_arn else ""
    return SealedUse(
        event_id=event_id,
        event_name=str(name),
        event_time=when,
        user=user,
        user_arn=user_arn,
        role_arn=assumed if name in ("AssumeRole", SWITCH_ROLE) else "",
        session_name=_text(parameters.get("roleSessionName")),
        source_identity=_text(parameters.get("sourceIdentity")),
        source_ip=_text(detail.get("sourceIPAddress")),
        region=_text(detail.get("awsRegion")),
        error_code=error,
        mfa=_text(extra.get("MFAUsed")) or ("yes" if parameters.get("serialNumber") else ""),
        expires_at=_expiry(credentials.get("expiration")),
    )


def _expiry(value: Any) -> str:
    """CloudTrail writes the session's expiry like ``Dec 1, 2026, 2:13:00 AM`` or as ISO 8601."""
    if not isinstance(value, str):
        return ""
    for shape in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%b %d, %Y, %I:%M:%S %p"):
        try:
            return iso(datetime.strptime(value, shape).replace(tzinfo=UTC))
        except ValueError:
            continue
    return ""


@dataclass(frozen=True)
class SealedDeps:
    audit: AuditWriter
    role_arn: str
    users: tuple[str, ...]
    alert_emails: tuple[str, ...] = ()
    sender: str = ""
    ses: Any = None
    store: Store | None = None


def record_use(deps: SealedDeps, use: SealedUse) -> dict[str, Any]:
    """Write the record (and open the review), then email; return what was done.

    Every successful assume of the sealed role opens the mandatory review, whoever took it: a
    session by someone not configured as a sealed user means the trust was widened outside
    break-glass, which is louder, not quieter. The email is sent until it is known to have been
    sent (the request record's ``mailed``), so an SES failure is retried by EventBridge's retry.
    """
    known = use.user in deps.users
    request_id = use.request_id if use.opens_review else ""
    details = {
        "event_name": use.event_name,
        "cloudtrail_event_id": use.event_id,
        "aws_region": use.region,
        "source_ip": use.source_ip,
        "session_name": use.session_name,
        "source_identity": use.source_identity,
        "mfa": use.mfa,
        "error_code": use.error_code,
        "sealed_user": known,
    }
    who = use.user if known else f"{use.user} ({use.user_arn}), NOT A SEALED USER"
    reason = f"sealed access: {use.event_name} by {who} ({use.outcome})"[:REASON_MAX]
    # The stored record first (never lose it); ids from CloudTrail's so a redelivery rewrites it.
    key = deps.audit.write(
        AuditEvent(
            event_type="sealed-use",
            actor=use.user,
            outcome=use.outcome,
            request_id=request_id or None,
            requester=use.user,
            tier=SEALED_TIER,
            role_arn=use.role_arn or None,
            reason=reason,
            window_start=use.event_time if request_id else None,
            expires_at=use.expires_at or None,
            details=details,
            event_time=use.event_time,
            event_id=event_identity("sealed-use", use.event_id),
        )
    )
    done: dict[str, Any] = {"audit_key": key, "request_id": request_id or None, "outcome": use.outcome}
    if not known:
        log.error("sealed role used by someone who is not a sealed user", extra=log_fields(**details, **done))
    if request_id:
        done["review_key"] = deps.audit.write(
            AuditEvent(
                event_type="review",
                actor="system",
                outcome="opened",
                request_id=request_id,
                requester=use.user,
                tier=SEALED_TIER,
                role_arn=use.role_arn,
                reason=reason,
                details={"mandatory": True, "cloudtrail_event_id": use.event_id, "sealed_user": known},
                event_time=use.event_time,
                event_id=event_identity("sealed-review", use.event_id),
            )
        )
        if deps.store is not None and _already_mailed(deps.store, use, request_id, reason):
            done["duplicate"] = True
            log.info("sealed use already recorded and mailed", extra=log_fields(**done))
            return done
    if deps.ses is not None and deps.sender and deps.alert_emails:
        notice = sealed_use_notice(
            user=who,
            event_name=use.event_name,
            role_arn=use.role_arn,
            at=use.event_time,
            source_ip=use.source_ip,
            outcome=use.outcome,
            request_id=request_id,
        )
        done["message_id"] = send_notice(
            deps.ses,
            sender=deps.sender,
            to=list(deps.alert_emails),
            subject=notice.subject,
            text=notice.text,
            html=notice.html,
        )
        if request_id and deps.store is not None:
            deps.store.mark_mailed(request_id)
    log.warning("sealed use", extra=log_fields(user=use.user, **details, **done))
    return done


def _already_mailed(store: Store, use: SealedUse, request_id: str, reason: str) -> bool:
    """Store the request record; True only when it existed already (the conditional put failed:
    a redelivery) and its email was sent."""
    if _store_request(store, use, request_id, reason):
        return False
    existing = store.get_request(request_id)
    return existing is not None and existing.mailed


def _store_request(store: Store, use: SealedUse, request_id: str, reason: str) -> bool:
    """A final request record, so the review route and the report find the sealed use; False when
    it exists already (a redelivery). Final (``expired``): nothing of the workflow acts on it."""
    record = RequestRecord(
        request_id=request_id,
        requester=use.user,
        requester_arn=use.user_arn,
        tier=SEALED_TIER,
        reason=reason,
        ticket=None,
        duration_seconds=max(0, int((parse_iso(use.expires_at) - parse_iso(use.event_time)).total_seconds()))
        if use.expires_at
        else 0,
        requested_at=use.event_time,
        status=RequestStatus.EXPIRED.value,
        quorum=0,
        approvers=(),
        starts_at=use.event_time,
        expires_at=use.expires_at or use.event_time,
        review_opened=True,
    )
    try:
        store.put_request(record)
    except StoreError:
        return False
    return True


def env_json_list(name: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = environ.get(name) or "[]"
    values = json.loads(raw)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RuntimeError(f"environment variable {name} must hold a JSON list of strings")
    return tuple(values)


def deps_from_env(environ: Mapping[str, str] | None = None, *, session: Any = None) -> SealedDeps:
    """Clients in the home region (table, topic, SES): this function also runs in us-east-1."""
    env = os.environ if environ is None else environ
    boto = session or boto3
    home = env.get(ENV_HOME_REGION) or None
    topic = env.get(ENV_ALERT_TOPIC) or None
    sender = env.get(ENV_SENDER, "")
    table = env.get(ENV_TABLE, "")
    return SealedDeps(
        audit=AuditWriter(
            s3=boto.client("s3"),
            bucket=required_env(ENV_AUDIT_BUCKET, env),
            prefix=env.get(ENV_AUDIT_PREFIX) or EVENTS_PREFIX,
            kms_key_id=env.get(ENV_AUDIT_KMS_KEY) or None,
            sns=boto.client("sns", region_name=topic.split(":")[3]) if topic else None,
            topic_arn=topic,
        ),
        role_arn=required_env(ENV_SEALED_ROLE_ARN, env),
        users=env_json_list(ENV_SEALED_USERS, env),
        alert_emails=env_json_list(ENV_SEALED_ALERT_EMAILS, env),
        sender=sender,
        ses=boto.client("ses", region_name=home) if sender else None,
        store=Store(
            boto.client("dynamodb", region_name=home),
            table,
            boto.client("kms", region_name=home),
            required_env(ENV_KMS_KEY, env),
        )
        if table
        else None,
    )


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    deps = deps_from_env()
    return record_use(deps, parse_event(event, role_arn=deps.role_arn))


__all__: Sequence[str] = ["SealedDeps", "SealedUse", "deps_from_env", "handler", "parse_event", "record_use"]
