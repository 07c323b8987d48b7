"""The auditor's named queries and the Glue tables they read (pure: no pulumi, no AWS calls).

One definition serves two engines. The :class:`AuditQueries` component stores each query's SQL
as an Athena named query; ``breakglass audit query --local`` runs the very same text offline
(sqlglot trino -> duckdb, DuckDB) over a local copy of the bucket.

Parameters use Athena's own prepared-statement mechanism: the SQL holds positional ``?``
placeholders and each query declares which parameter fills each position
(:attr:`NamedQuery.placeholders`). A parameter may fill several positions (``session_actions``
needs ``start`` for the partition filter and for the event-time filter). In Athena pass
:meth:`NamedQuery.execution_parameters` as ``ExecutionParameters`` (``--execution-parameters``);
offline, :meth:`NamedQuery.bind` substitutes the same values as SQL literals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from breakglass.contracts import EVENT_COLUMNS, EVENTS_PREFIX
from breakglass.policies.audit_trail import (
    BUCKET_TAMPERING_EVENT_NAMES,
    GUARDRAIL_EVENT_NAMES,
    KEY_TAMPERING_EVENT_NAMES,
    TRAIL_TAMPERING_EVENT_NAMES,
)
from breakglass.policies.documents import deny_insecure_transport, document
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX
from breakglass.validation import ConfigError

CLOUDTRAIL_TABLE: Final = "cloudtrail_logs"
EVENTS_TABLE: Final = "breakglass_events"

# Every commercial region CloudTrail can log from. Partition projection only sees the regions it
# enumerates, and activity in an unusual region is exactly what an auditor must not miss.
ALL_REGIONS: Final[tuple[str, ...]] = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)

JSON_SERDE: Final = "org.apache.hive.hcatalog.data.JsonSerDe"
CLOUDTRAIL_INPUT_FORMAT: Final = "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
TEXT_INPUT_FORMAT: Final = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT: Final = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

# The standard Athena CloudTrail table (AWS's documented DDL). Hive type strings, lower-case
# names: the JSON SerDe matches CloudTrail's camelCase keys case-insensitively. Nested objects
# the schema types as ``string`` (requestparameters, ...) hold the raw JSON text.
CLOUDTRAIL_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("eventversion", "string"),
    (
        "useridentity",
        "struct<type:string,principalid:string,arn:string,accountid:string,invokedby:string,"
        "accesskeyid:string,username:string,"
        "onbehalfof:struct<userid:string,identitystorearn:string>,"
        "sessioncontext:struct<attributes:struct<mfaauthenticated:string,creationdate:string>,"
        "sessionissuer:struct<type:string,principalid:string,arn:string,accountid:string,username:string>,"
        "ec2roledelivery:string,"
        "webidfederationdata:struct<federatedprovider:string,attributes:map<string,string>>,"
        "sourceidentity:string>>",
    ),
    ("eventtime", "string"),
    ("eventsource", "string"),
    ("eventname", "string"),
    ("awsregion", "string"),
    ("sourceipaddress", "string"),
    ("useragent", "string"),
    ("errorcode", "string"),
    ("errormessage", "string"),
    ("requestparameters", "string"),
    ("responseelements", "string"),
    ("additionaleventdata", "string"),
    ("requestid", "string"),
    ("eventid", "string"),
    ("resources", "array<struct<arn:string,accountid:string,type:string>>"),
    ("eventtype", "string"),
    ("apiversion", "string"),
    ("readonly", "string"),
    ("recipientaccountid", "string"),
    ("serviceeventdetails", "string"),
    ("sharedeventid", "string"),
    ("vpcendpointid", "string"),
    ("vpcendpointaccountid", "string"),
    ("eventcategory", "string"),
    (
        "addendum",
        "struct<reason:string,updatedfields:string,originalrequestid:string,originaleventid:string>",
    ),
    ("sessioncredentialfromconsole", "string"),
    ("edgedevicedetails", "string"),
    ("tlsdetails", "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>"),
)
CLOUDTRAIL_PARTITIONS: Final[tuple[tuple[str, str], ...]] = (("region", "string"), ("date", "string"))
EVENTS_PARTITIONS: Final[tuple[tuple[str, str], ...]] = (("dt", "string"),)


# Each event once. A step retried across midnight UTC stores its one event (one id) in two days'
# partitions (see breakglass.lambdas.audit.events): every query of the events reads them through
# this, which keeps the first copy of each id (the first attempt's, by time).
_EVENT_NAMES: Final = ", ".join(name for name, _ in (*EVENT_COLUMNS, *EVENTS_PARTITIONS))
EVENTS_ONCE: Final = f"""(
  SELECT {_EVENT_NAMES}
  FROM (
    SELECT e.*, row_number() OVER (PARTITION BY e.event_id ORDER BY e.event_time, e.dt) AS copy_number
    FROM {EVENTS_TABLE} AS e
  ) AS numbered
  WHERE copy_number = 1
)"""


@dataclass(frozen=True)
class TableDefinition:
    """A Glue table as the component registers it and the offline runner mirrors it."""

    name: str
    description: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...]
    location: str
    parameters: Mapping[str, str]
    serde: str
    input_format: str
    output_format: str = TEXT_OUTPUT_FORMAT
    serde_parameters: Mapping[str, str] = field(default_factory=dict)


def _prefix(prefix: str) -> str:
    cleaned = prefix.strip("/")
    return f"{cleaned}/" if cleaned else ""


def cloudtrail_table(
    *,
    bucket: str,
    account_id: str,
    cloudtrail_prefix: str = "",
    regions: tuple[str, ...] = ALL_REGIONS,
    first_day: str = "2024-01-01",
    organization_id: str = "",
) -> TableDefinition:
    """CloudTrail logs, partition projection on ``region`` (enum) and ``date`` (``yyyy/MM/dd``).

    An organization trail delivers each account's logs under ``AWSLogs/<organization id>/<account>/``.
    """
    base = (
        f"s3://{bucket}/{_prefix(cloudtrail_prefix)}AWSLogs/{_prefix(organization_id)}{account_id}/CloudTrail"
    )
    return TableDefinition(
        name=CLOUDTRAIL_TABLE,
        description="CloudTrail management and data events of the break-glass trail",
        columns=CLOUDTRAIL_COLUMNS,
        partition_keys=CLOUDTRAIL_PARTITIONS,
        location=f"{base}/",
        parameters={
            "EXTERNAL": "TRUE",
            "classification": "cloudtrail",
            "projection.enabled": "true",
            "projection.region.type": "enum",
            "projection.region.values": ",".join(regions),
            "projection.date.type": "date",
            "projection.date.format": "yyyy/MM/dd",
            "projection.date.range": f"{first_day.replace('-', '/')},NOW",
            "projection.date.interval": "1",
            "projection.date.interval.unit": "DAYS",
            "storage.location.template": f"{base}/${{region}}/${{date}}",
        },
        serde=JSON_SERDE,
        input_format=CLOUDTRAIL_INPUT_FORMAT,
    )


def events_table(
    *, bucket: str, events_prefix: str = EVENTS_PREFIX, first_day: str = "2024-01-01"
) -> TableDefinition:
    """Break-glass audit events (one JSON object per file), partition projection on ``dt``."""
    base = f"s3://{bucket}/{_prefix(events_prefix)}".rstrip("/")
    return TableDefinition(
        name=EVENTS_TABLE,
        description="Break-glass workflow events (schema v1), one JSON object per S3 object",
        columns=EVENT_COLUMNS,
        partition_keys=EVENTS_PARTITIONS,
        location=f"{base}/",
        parameters={
            "EXTERNAL": "TRUE",
            "classification": "json",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": f"{first_day},NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
            "storage.location.template": f"{base}/dt=${{dt}}/",
        },
        serde=JSON_SERDE,
        input_format=TEXT_INPUT_FORMAT,
        serde_parameters={"ignore.malformed.json": "FALSE"},
    )


# --- parameters -------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?")
_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class QueryParam:
    """A named parameter. ``kind`` is ``timestamp``, ``source_identity`` or ``bucket``."""

    name: str
    description: str
    kind: str

    def check(self, value: str) -> str:
        if self.kind == "timestamp":
            if not _TIMESTAMP.fullmatch(value):
                raise ConfigError(
                    self.name,
                    f"must be an ISO-8601 date or timestamp such as 2025-03-14T09:00:00Z, got {value!r}",
                )
            try:
                _instant(value)
            except ValueError as exc:
                raise ConfigError(self.name, f"{value!r} is not a real date or time ({exc})") from None
        elif self.kind == "source_identity":
            if not _SOURCE_IDENTITY.fullmatch(value):
                raise ConfigError(
                    self.name, f"must be 2-64 characters of letters, digits or +=,.@_- (got {value!r})"
                )
        elif self.kind == "bucket" and not _BUCKET.fullmatch(value):
            raise ConfigError(self.name, f"must be an S3 bucket name, got {value!r}")
        return value


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # Athena sessions run in UTC, so a timestamp without an offset is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class QueryError(ValueError):
    """An unknown query, or a parameter missing or unknown. The message lists what exists."""


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class NamedQuery:
    """One auditor query: Athena (Trino) SQL with positional ``?`` placeholders."""

    name: str
    description: str
    sql: str
    params: tuple[QueryParam, ...] = ()
    placeholders: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Positional binding is only sound if every '?' in the text is a placeholder.
        if self.sql.count("?") != len(self.placeholders):
            raise ValueError(
                f"{self.name}: {self.sql.count('?')} '?' in the SQL, {len(self.placeholders)} named"
            )
        declared = {p.name for p in self.params}
        if set(self.placeholders) != declared:
            raise ValueError(f"{self.name}: placeholders {self.placeholders} do not match params {declared}")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def athena_description(self) -> str:
        """The named query's description in Athena: what it shows and how to pass parameters."""
        text = self.description
        if self.placeholders:
            text += (
                f" Parameters: {', '.join(self.param_names)}. Execution parameters, in order: "
                f"{', '.join(self.placeholders)} (quoted SQL literals, e.g. '2025-03-14T09:00:00Z')."
            )
        return text[:1024]

    def check_params(self, values: Mapping[str, str]) -> dict[str, str]:
        """Validate ``values``: every parameter present and well-formed, no unknown ones."""
        unknown = sorted(set(values) - set(self.param_names))
        if unknown:
            accepted = ", ".join(self.param_names) or "none"
            raise QueryError(f"query {self.name} has no parameter {unknown[0]!r}; it accepts: {accepted}")
        missing = [p for p in self.params if p.name not in values]
        if missing:
            needed = " ".join(f"--param {p.name}=<{p.description}>" for p in missing)
            raise QueryError(f"query {self.name} needs {needed}")
        checked = {p.name: p.check(values[p.name]) for p in self.params}
        if "start" in checked and "end" in checked and _instant(checked["end"]) < _instant(checked["start"]):
            raise ConfigError("end", f"{checked['end']} is before start {checked['start']}")
        return checked

    def execution_parameters(self, values: Mapping[str, str]) -> list[str]:
        """Athena ``ExecutionParameters`` for ``values``, one per ``?``, in order."""
        checked = self.check_params(values)
        return [sql_literal(checked[name]) for name in self.placeholders]

    def bind(self, values: Mapping[str, str]) -> str:
        """The SQL with each ``?`` replaced by its value: what Athena runs for these parameters."""
        literals = iter(self.execution_parameters(values))
        return re.sub(r"\?", lambda _: next(literals), self.sql)


# --- the queries ------------------------------------------------------------------------------

_START = QueryParam("start", "ISO-8601 start of the range, inclusive", "timestamp")
_END = QueryParam("end", "ISO-8601 end of the range, inclusive", "timestamp")
_SOURCE = QueryParam("source_identity", "the responder's source identity", "source_identity")
_AUDIT_BUCKET = QueryParam("audit_bucket", "name of the audit bucket", "bucket")

_ROLE_LIKE = sql_literal(EMERGENCY_ROLE_PREFIX + "%")
# The error codes of a call IAM refused: the call reached nothing, so it is not access.
_REFUSED_CODES = ", ".join(
    sql_literal(code)
    for code in (
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "Client.UnauthorizedOperation",
    )
)
_ASSUMED_ROLE_ARN = "json_extract_scalar(requestparameters, '$.roleArn')"

EMERGENCY_SESSIONS = NamedQuery(
    name="emergency_sessions",
    description=(
        "Every AssumeRole of an emergency role (successful or refused): who by source identity, "
        "when, from where (IP, user agent) and whether MFA was used."
    ),
    sql=f"""\
SELECT
  eventtime AS event_time,
  coalesce(
    json_extract_scalar(requestparameters, '$.sourceIdentity'),
    json_extract_scalar(responseelements, '$.sourceIdentity')
  ) AS source_identity,
  useridentity.arn AS caller_arn,
  {_ASSUMED_ROLE_ARN} AS role_arn,
  json_extract_scalar(requestparameters, '$.roleSessionName') AS role_session_name,
  sourceipaddress AS source_ip,
  useragent AS user_agent,
  (
    coalesce(useridentity.sessioncontext.attributes.mfaauthenticated, 'false') = 'true'
    OR json_extract_scalar(requestparameters, '$.serialNumber') IS NOT NULL
  ) AS mfa,
  json_extract_scalar(requestparameters, '$.serialNumber') AS mfa_device,
  awsregion AS aws_region,
  errorcode AS error_code,
  eventid AS event_id
FROM {CLOUDTRAIL_TABLE}
WHERE eventsource = 'sts.amazonaws.com'
  AND eventname = 'AssumeRole'
  AND element_at(split({_ASSUMED_ROLE_ARN}, '/'), -1) LIKE {_ROLE_LIKE}
ORDER BY eventtime, eventid
""",
)

SESSION_ACTIONS = NamedQuery(
    name="session_actions",
    description=(
        "Every API call made by sessions carrying a source identity in a time range (inclusive). "
        "Reads only the date partitions of the range (plus the next day: CloudTrail files a "
        "late-evening event under the day it delivers it)."
    ),
    sql=f"""\
SELECT
  eventtime AS event_time,
  eventsource AS event_source,
  eventname AS event_name,
  awsregion AS aws_region,
  useridentity.sessioncontext.sessionissuer.arn AS role_arn,
  useridentity.arn AS principal_arn,
  sourceipaddress AS source_ip,
  useragent AS user_agent,
  errorcode AS error_code,
  requestparameters AS request_parameters,
  eventid AS event_id
FROM {CLOUDTRAIL_TABLE}
WHERE "date" BETWEEN date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y/%m/%d')
    AND date_format((from_iso8601_timestamp(?) + INTERVAL '1' DAY) AT TIME ZONE 'UTC', '%Y/%m/%d')
  AND from_iso8601_timestamp(eventtime) BETWEEN from_iso8601_timestamp(?) AND from_iso8601_timestamp(?)
  AND useridentity.sessioncontext.sourceidentity = ?
ORDER BY eventtime, eventid
""",
    params=(_SOURCE, _START, _END),
    placeholders=("start", "end", "start", "end", "source_identity"),
)

APPROVALS = NamedQuery(
    name="approvals",
    description=(
        "Per request, every approval and denial: approver, requester, when, outcome. "
        "self_approval is true where the approver is the requester."
    ),
    sql=f"""\
SELECT
  request_id,
  requester,
  event_type AS decision,
  actor AS approver,
  event_time AS decided_at,
  outcome,
  tier,
  coalesce(event_type = 'approval' AND lower(actor) = lower(requester), false) AS self_approval
FROM {EVENTS_ONCE} AS events
WHERE event_type IN ('approval', 'denial')
ORDER BY request_id, event_time, event_id
""",
)

HALTS = NamedQuery(
    name="halts",
    description="Halt and resume actions per target, with mode, outcome, who and when.",
    sql=f"""\
SELECT
  target,
  event_type AS action,
  mode,
  outcome,
  actor,
  request_id,
  event_time,
  reason,
  details
FROM {EVENTS_ONCE} AS events
WHERE event_type IN ('halt', 'resume')
ORDER BY target, event_time, event_id
""",
)

ACCESS_OUTSIDE_GRANTS = NamedQuery(
    name="access_outside_grants",
    description=(
        "API calls made with an emergency role outside every granted window (grant window_start "
        "until expires_at, cut short by the first revoke or expiry of the request), matched on "
        "the session's source identity. Calls IAM refused are not access (session_actions lists "
        "them). Should return no rows."
    ),
    sql=f"""\
WITH grants AS (
  SELECT
    request_id,
    requester,
    role_arn,
    from_iso8601_timestamp(window_start) AS window_start,
    from_iso8601_timestamp(expires_at) AS expires_at
  FROM {EVENTS_ONCE} AS events
  WHERE event_type = 'grant' AND outcome = 'succeeded'
),
ends AS (
  SELECT request_id, min(from_iso8601_timestamp(event_time)) AS ended_at
  FROM {EVENTS_ONCE} AS events
  WHERE event_type IN ('revoke', 'expiry')
  GROUP BY request_id
),
windows AS (
  SELECT
    g.requester,
    g.role_arn,
    g.window_start,
    CASE WHEN e.ended_at < g.expires_at THEN e.ended_at ELSE g.expires_at END AS window_end
  FROM grants AS g
  LEFT JOIN ends AS e ON e.request_id = g.request_id
),
emergency_calls AS (
  SELECT
    eventtime,
    from_iso8601_timestamp(eventtime) AS called_at,
    useridentity.sessioncontext.sourceidentity AS source_identity,
    useridentity.sessioncontext.sessionissuer.arn AS role_arn,
    eventsource,
    eventname,
    awsregion,
    sourceipaddress,
    errorcode,
    eventid
  FROM {CLOUDTRAIL_TABLE}
  WHERE useridentity.sessioncontext.sessionissuer.username LIKE {_ROLE_LIKE}
)
SELECT
  c.eventtime AS event_time,
  c.source_identity,
  c.role_arn,
  c.eventsource AS event_source,
  c.eventname AS event_name,
  c.awsregion AS aws_region,
  c.sourceipaddress AS source_ip,
  c.errorcode AS error_code,
  c.eventid AS event_id
FROM emergency_calls AS c
WHERE (c.errorcode IS NULL OR c.errorcode NOT IN ({_REFUSED_CODES}))
  AND NOT EXISTS (
  SELECT 1
  FROM windows AS w
  WHERE w.requester = c.source_identity
    AND (w.role_arn IS NULL OR w.role_arn = c.role_arn)
    AND c.called_at >= w.window_start
    AND c.called_at < w.window_end
)
ORDER BY c.eventtime, c.eventid
""",
)

UNREVIEWED_EVENTS = NamedQuery(
    name="unreviewed_events",
    description=(
        "Requests whose post-event review was opened and has no review accepted or flagged at or "
        "after the opening."
    ),
    sql=f"""\
SELECT
  o.request_id,
  o.requester,
  o.tier,
  o.ticket,
  o.event_time AS review_opened_at,
  o.actor AS opened_by
FROM {EVENTS_ONCE} AS o
WHERE o.event_type = 'review'
  AND o.outcome = 'opened'
  AND NOT EXISTS (
    SELECT 1
    FROM {EVENTS_ONCE} AS c
    WHERE c.request_id = o.request_id
      AND c.event_type = 'review'
      AND c.outcome IN ('accepted', 'flagged')
      AND from_iso8601_timestamp(c.event_time) >= from_iso8601_timestamp(o.event_time)
  )
ORDER BY o.event_time, o.request_id
""",
)

# The query looks for at least what the live alert rules alert on (one list for both), plus
# object-level erase attempts, which CloudTrail records when S3 data events are on.
_OBJECT_TAMPERING_EVENT_NAMES: Final = (
    "DeleteObject",
    "DeleteObjects",
    "PutObjectRetention",
    "PutObjectLegalHold",
)
_GUARDRAIL_TAMPERING_EVENT_NAMES: Final = (*GUARDRAIL_EVENT_NAMES, "UpdateGuardrail")


def _sql_names(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in dict.fromkeys(names))


TAMPERING = NamedQuery(
    name="tampering",
    description=(
        "Attempts, successful or failed, to stop or alter the trail (StopLogging, DeleteTrail, "
        "UpdateTrail, PutEventSelectors), the audit bucket (policy, lifecycle, lock, versioning, "
        "public access block, encryption, object deletes, retention and legal holds), guardrails "
        "(DeleteGuardrail, UpdateGuardrail) or keys (DisableKey, ScheduleKeyDeletion, PutKeyPolicy, "
        "DisableKeyRotation)."
    ),
    sql=f"""\
SELECT
  eventtime AS event_time,
  eventsource AS event_source,
  eventname AS event_name,
  CASE WHEN errorcode IS NULL THEN 'succeeded' ELSE 'failed' END AS outcome,
  errorcode AS error_code,
  useridentity.arn AS principal_arn,
  useridentity.sessioncontext.sourceidentity AS source_identity,
  sourceipaddress AS source_ip,
  awsregion AS aws_region,
  coalesce(
    CASE WHEN eventname IN ('DeleteObject', 'PutObjectRetention', 'PutObjectLegalHold') THEN
      json_extract_scalar(requestparameters, '$.bucketName') || '/'
        || json_extract_scalar(requestparameters, '$.key')
    END,
    json_extract_scalar(requestparameters, '$.bucketName'),
    json_extract_scalar(requestparameters, '$.name'),
    json_extract_scalar(requestparameters, '$.trailName'),
    json_extract_scalar(requestparameters, '$.guardrailIdentifier'),
    json_extract_scalar(requestparameters, '$.keyId')
  ) AS target,
  eventid AS event_id
FROM {CLOUDTRAIL_TABLE}
WHERE (
    eventsource = 'cloudtrail.amazonaws.com'
    AND eventname IN ({_sql_names(TRAIL_TAMPERING_EVENT_NAMES)})
  )
  OR (
    eventsource = 's3.amazonaws.com'
    AND eventname IN ({_sql_names(BUCKET_TAMPERING_EVENT_NAMES + _OBJECT_TAMPERING_EVENT_NAMES)})
    AND json_extract_scalar(requestparameters, '$.bucketName') = ?
  )
  OR (
    eventsource = 'bedrock.amazonaws.com'
    AND eventname IN ({_sql_names(_GUARDRAIL_TAMPERING_EVENT_NAMES)})
  )
  OR (eventsource = 'kms.amazonaws.com' AND eventname IN ({_sql_names(KEY_TAMPERING_EVENT_NAMES)}))
ORDER BY eventtime, eventid
""",
    params=(_AUDIT_BUCKET,),
    placeholders=("audit_bucket",),
)

NAMED_QUERIES: Final[Mapping[str, NamedQuery]] = {
    q.name: q
    for q in (
        EMERGENCY_SESSIONS,
        SESSION_ACTIONS,
        APPROVALS,
        HALTS,
        ACCESS_OUTSIDE_GRANTS,
        UNREVIEWED_EVENTS,
        TAMPERING,
    )
}


def get_query(name: str) -> NamedQuery:
    """The named query ``name``; an unknown name raises :class:`QueryError` listing the names."""
    try:
        return NAMED_QUERIES[name]
    except KeyError:
        raise QueryError(f"unknown query {name!r}; named queries: {', '.join(NAMED_QUERIES)}") from None


def results_bucket_policy(bucket_arn: str) -> dict[str, object]:
    """Athena results bucket: refuse any request not made over TLS."""
    return document([deny_insecure_transport("s3:*", [bucket_arn, f"{bucket_arn}/*"])])
