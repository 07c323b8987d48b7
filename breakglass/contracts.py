"""Every contract between the parts, stated once: names, shapes, statuses and bounds.

The components set what the Lambdas read (environment variables), the Lambdas write what the
queries read (the audit event columns and prefix), and all of them agree on request statuses,
the time format and the bounds of a tier. This module is a leaf: it imports only the standard
library, so components, Lambdas, policies and the emulator can all depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

# -- time --------------------------------------------------------------------------------------


class Clock:
    """Where every part of the package reads the time. In AWS the offset is always zero; the
    embedded emulator moves it forward when it shortens a Wait state, so the Lambdas see the
    moment the workflow was waiting for (a fast-forwarded drill still records ``expiry``)."""

    offset: timedelta = timedelta(0)


CLOCK: Final = Clock()


def utc_now() -> datetime:
    return datetime.now(UTC) + CLOCK.offset


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, seconds precision: the format CloudTrail uses for eventTime."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """The inverse of :func:`iso` (raises ValueError on any other shape)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# -- the audit events' schema (what the writer stores and the Athena table reads) --------------

SCHEMA_VERSION: Final = "1"
EVENTS_PREFIX: Final = "breakglass-events"

EVENT_TYPES: Final = (
    "request",
    "approval",
    "denial",
    "grant",
    "assume",
    "halt",
    "resume",
    "revoke",
    "expiry",
    "review",
    "enrollment",
    "waiver",
    "error",
    "extension",  # a request to extend a granted window (the grant of it is a "grant" event)
    "sealed-use",  # the sealed last resort was used or tried (SealedAccess), outside the workflow
)
# The outcome of one audited event (not of a halt target: see breakglass.lambdas.halt.service).
EVENT_OUTCOMES: Final = ("succeeded", "failed", "noop", "pending", "opened", "accepted", "flagged")

# The Athena/Glue columns of the events table, in order. Every field of AuditEvent is here.
EVENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("schema_version", "string"),
    ("event_id", "string"),
    ("event_type", "string"),
    ("event_time", "string"),
    ("request_id", "string"),
    ("actor", "string"),
    ("requester", "string"),
    ("tier", "string"),
    ("role_arn", "string"),
    ("target", "string"),
    ("mode", "string"),
    ("outcome", "string"),
    ("reason", "string"),
    ("ticket", "string"),
    ("window_start", "string"),
    ("expires_at", "string"),
    ("details", "string"),
)


# -- request statuses ----------------------------------------------------------------------------


class RequestStatus(StrEnum):
    """Where a request is. ``pending`` waits for votes; the last three are final."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    GRANTED = "granted"
    REVOKED = "revoked"
    EXPIRED = "expired"


STATUSES: Final = tuple(s.value for s in RequestStatus)


# -- tier bounds (EmergencyRole's settings and the Lambdas' Tier check the same numbers) ---------

MIN_SESSION_SECONDS: Final = 900  # AWS's shortest role session
# The default tier `breakglass drill --against` rehearses with (it may only call sts:GetCallerIdentity).
DRILL_TIER: Final = "drill"
# Its window: room for one session of AWS's shortest length (sessions end by the window's expiry).
DRILL_WINDOW_SECONDS: Final = 2 * MIN_SESSION_SECONDS
MAX_SESSION_SECONDS: Final = 43200  # AWS's longest role session
MAX_WINDOW_SECONDS: Final = 7 * 24 * 3600
MAX_MFA_AGE_SECONDS: Final = 129600
MIN_MFA_AGE_SECONDS: Final = 60


# -- environment variables the components set and the Lambdas read -----------------------------

ENV_AUDIT_BUCKET: Final = "BREAKGLASS_AUDIT_BUCKET"
ENV_AUDIT_PREFIX: Final = "BREAKGLASS_AUDIT_PREFIX"
ENV_AUDIT_KMS_KEY: Final = "BREAKGLASS_AUDIT_KMS_KEY_ID"
ENV_ALERT_TOPIC: Final = "BREAKGLASS_ALERT_TOPIC_ARN"
ENV_LOG_LEVEL: Final = "BREAKGLASS_LOG_LEVEL"
ENV_TABLE: Final = "BREAKGLASS_TABLE"
ENV_KMS_KEY: Final = "BREAKGLASS_KMS_KEY_ID"
ENV_LINK_SECRET_ARN: Final = "BREAKGLASS_LINK_SECRET_ARN"  # Secrets Manager secret holding the HMAC key
ENV_APPROVAL_URL: Final = "BREAKGLASS_APPROVAL_URL"  # base URL of the approval API
ENV_SENDER: Final = "BREAKGLASS_SENDER_EMAIL"
# Lambda refuses a function whose environment variables, keys and values together, exceed 4 KB
# ("Function environment variables: 4 KB, for all environment variables associated with the
# function, in aggregate": https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
# So nothing that grows with people or tiers goes there: it ships as a file of the archive.
LAMBDA_ENVIRONMENT_MAX_BYTES: Final = 4096
# The grant Lambdas' tiers ({tier: Tier.to_dict()}, every requester ARN) and the approval policy
# ({tier: TierApproval.to_dict()}, every approver): JSON files at the root of their archive.
TIERS_CONFIG_FILE: Final = "breakglass-tiers.json"
APPROVAL_POLICY_FILE: Final = "breakglass-approval-policy.json"
# The halt and resume functions' declared targets and the tripwires the halt function accepts: a
# JSON file at the root of their archive (fixed per deployment, unlike an environment's 4 KB).
HALT_CONFIG_FILE: Final = "breakglass-halt.json"
ENV_STATE_MACHINE_ARN: Final = "BREAKGLASS_STATE_MACHINE_ARN"
# The workflow functions know their state machine by name (its ARN depends on them).
ENV_STATE_MACHINE_NAME: Final = "BREAKGLASS_STATE_MACHINE_NAME"
ENV_ACCESS_FUNCTION: Final = "BREAKGLASS_ACCESS_FUNCTION"
ENV_HALT_FUNCTION: Final = "BREAKGLASS_HALT_FUNCTION"
ENV_RESUME_FUNCTION: Final = "BREAKGLASS_RESUME_FUNCTION"
# Principal ARNs that may enroll people before any security person is enrolled (bootstrap): a
# JSON list in the access API function's archive (a list of ARNs outgrows 4 KB of environment).
SECURITY_ADMINS_FILE: Final = "breakglass-security-admins.json"
# The sealed last resort (SealedAccess): its role, its users (JSON list of names), who is emailed
# (JSON list) and the home region (its functions run in two regions; the table and topic live here).
ENV_SEALED_ROLE_ARN: Final = "BREAKGLASS_SEALED_ROLE_ARN"
ENV_SEALED_USERS: Final = "BREAKGLASS_SEALED_USERS"
ENV_SEALED_ALERT_EMAILS: Final = "BREAKGLASS_SEALED_ALERT_EMAILS"
# What the sealed check expects of the role (JSON: managed policy ARNs, max session, MFA age, regions).
ENV_SEALED_ROLE_BASELINE: Final = "BREAKGLASS_SEALED_ROLE_BASELINE"
ENV_HOME_REGION: Final = "BREAKGLASS_HOME_REGION"


# -- where a deployment publishes itself (SSM Parameter Store), so the command finds it by name ----

SSM_ROOT: Final = "/breakglass"
# One String parameter each under /breakglass/<deployment>/.
SSM_KEYS: Final = (
    "version",  # the breakglass package version that deployed it
    "region",
    "access_api_url",  # IAM-authorized API: requests, votes, revoke, halt, resume, review
    "approval_url",  # the approval page (email links)
    "state_machine_arn",
    "audit_bucket",
    "audit_events_prefix",
    "athena_workgroup",
    "glue_database",
    "alert_topic_arn",
    "tiers",  # JSON {tier: {role_arn, max_session_seconds, max_window_seconds, require_mfa, quorum, ...}}
    "halt_targets",  # JSON [{id, modes}]
)
# Optional: published only by a deployment with a sealed last resort (JSON; see SealedAccess.published).
SSM_SEALED_ACCESS_KEY: Final = "sealed_access"
# The tier name a sealed use's record and review carry (it is no tier of the workflow's).
SEALED_TIER: Final = "sealed"
DEPLOYMENT_NAME: Final = r"[a-z][a-z0-9-]{0,39}"


def ssm_parameter_name(deployment: str, key: str) -> str:
    return f"{SSM_ROOT}/{deployment}/{key}"


def environment_bytes(variables: Mapping[str, str]) -> int:
    """A Lambda environment's size as the quota counts it: every key and value, UTF-8 encoded."""
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in variables.items())


# What one Standard SSM parameter holds; a longer JSON list is published in pages.
SSM_VALUE_MAX: Final = 4096


def ssm_page_key(key: str, page: int) -> str:
    """The key of page ``page`` (1-based) of a list published in pages: ``key``, ``key.2``, ..."""
    return key if page == 1 else f"{key}.{page}"
