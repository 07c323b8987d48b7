"""A CloudTrail recorder for the emulator: every call it serves, as a real-format record, in the
trail's bucket, in the layout and file format CloudTrail delivers.

moto's CloudTrail keeps trails but writes no log files. The emulator's request middleware shows
each call to :meth:`CloudTrailRecorder.observe`, which only keeps the raw request and answer (a
list append; the server must stay fast). :meth:`CloudTrailRecorder.flush` turns what was observed
into records and writes them, per trail that was logging at the time of each call:

- records: ``eventVersion``, ``userIdentity`` (IAM user, or assumed role with ``sessionContext``:
  ``sessionIssuer``, ``attributes.mfaAuthenticated`` and ``creationDate``, ``sourceIdentity``),
  ``eventTime`` (the package's clock, so fast-forwarded time shows), ``eventSource``,
  ``eventName``, ``awsRegion``, ``sourceIPAddress``, ``userAgent``, ``requestParameters``
  (the API's parameters in CloudTrail's camelCase, secrets hidden), ``responseElements`` (for
  AssumeRole, the credentials' id, session and source identity; else null), ``errorCode`` /
  ``errorMessage`` on refusal, ``requestID``, ``eventID``, ``readOnly``, ``eventType``,
  ``managementEvent``, ``recipientAccountId``, ``eventCategory`` (and ``resources`` for AssumeRole);
- which calls: signed by a principal of the recorder's account (unsigned and unknown-key calls
  are not recorded); management events when the trail's selectors include them (read, write or
  both), data events (S3 objects, Lambda invocations, DynamoDB items...) only for the data
  resources its selectors name; a single-region trail only its region's (and global) events;
- files: ``[<prefix>/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
  <account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<16 characters>.json.gz``, one per region and
  five-minute window, gzipped ``{"Records": [...]}``, dated by delivery (the end of the window, as
  CloudTrail files a late-evening event under the next day), written into moto's S3 directly (the
  delivery is CloudTrail's, not a call of anyone's);
- events: each management record, when it is built (:meth:`CloudTrailRecorder.flush`,
  :meth:`~CloudTrailRecorder.records`), is also put on the default event bus of its ``awsRegion``
  as an ``AWS API Call via CloudTrail`` event from ``aws.<service>``, as CloudTrail does, so rules
  on those events fire (delivered by :mod:`breakglass.local.eventbridge`). Like AWS, read-only
  calls whose names start with Get, List or Describe are not put (rules must opt in to those, which
  the emulator does not model); AssumeRole, ConsoleLogin and the like are.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from breakglass.contracts import iso, utc_now
from breakglass.local import calls
from breakglass.local.iam_conditions import wildcard_match
from breakglass.local.iam_enforcement import Principal, principal_for

EVENT_VERSION: Final = "1.09"
API_CALL_DETAIL_TYPE: Final = "AWS API Call via CloudTrail"
# Read-only management events EventBridge delivers only to rules that opt in to all of them.
_OPT_IN_READ_ONLY: Final = re.compile(r"(Get|List|Describe).*")
WINDOW: Final = timedelta(minutes=5)
HIDDEN: Final = "HIDDEN_DUE_TO_SECURITY_REASONS"
# Parameters CloudTrail never logs in clear.
_SECRET_PARAMETERS: Final = frozenset(
    {
        "SecretString",
        "SecretBinary",
        "Plaintext",
        "Password",
        "NewPassword",
        "OldPassword",
        "ZipFile",
        "TokenCode",
    }
)
# Signing names whose API (boto3 service) differs; "apigateway" and "ses" are told apart by path.
_SERVICES_BY_SIGNING_NAME: Final = {"states": "stepfunctions", "monitoring": "cloudwatch"}
# Data events: object- and item-level operations (by service), recorded only when a trail's data
# selectors ask for them.
_DATA_OPERATIONS: Final = {
    "s3": re.compile(
        r"(Get|Put|Delete|Head|Copy|Restore|Select)Object.*|DeleteObjects|"
        r"(Create|Complete|Abort|UploadPart|ListParts).*Multipart.*|UploadPart.*"
    ),
    "lambda": re.compile(r"Invoke.*"),
    "dynamodb": re.compile(
        r"(Get|Put|Update|Delete)Item|Query|Scan|Batch(Get|Write)Item|Transact(Get|Write)Items|ExecuteStatement"
    ),
    "sagemaker": re.compile(r"InvokeEndpoint.*"),
    "bedrock": re.compile(r"InvokeModel.*|Converse.*|InvokeAgent|ApplyGuardrail"),
}
_DATA_RESOURCE_TYPES: Final = {
    "s3": "AWS::S3::Object",
    "lambda": "AWS::Lambda::Function",
    "dynamodb": "AWS::DynamoDB::Table",
}
_READ_ONLY: Final = re.compile(
    r"(Get|List|Describe|Head|Lookup|Search|Query|Scan|BatchGet|Select|Check|Test).*"
)
# STS's read-only answers by CloudTrail's classification.
_READ_ONLY_NAMES: Final = frozenset(
    {"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "Decrypt"}
)


@dataclass(frozen=True)
class Observed:
    """One call as the server saw it; turned into a record only when flushed."""

    time: datetime
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    status: int
    response_headers: Mapping[str, str]
    response: bytes
    source_ip: str


@dataclass
class _TrailLog:
    """When a trail was logging, by the StartLogging / StopLogging calls the recorder saw."""

    switches: list[tuple[datetime, bool]] = field(default_factory=list)

    def logging_at(self, moment: datetime, logging_now: bool) -> bool:
        state: bool | None = None
        for when, on in self.switches:
            # StartLogging is the first call logged and StopLogging the last (it is the tampering
            # an auditor looks for): a switch off takes effect only after its own call.
            if when < moment or (on and when == moment):
                state = on
        if state is None:
            # Before the first switch seen: on only if no switch was seen and it logs now.
            return not self.switches and logging_now
        return state


class CloudTrailRecorder:
    """Records the calls one emulator serves and delivers them to its account's trails."""

    def __init__(
        self, account_id: str, region: str, *, scope: Callable[[], calls.CallScope] | None = None
    ) -> None:
        self.account_id = account_id
        self.region = region
        # The emulator's scope, for the rules' targets the events reach (they run as its work);
        # None: records are not put on the event buses.
        self._scope = scope
        self._observed: list[Observed] = []
        # (when, record): the exact moment orders calls within one second of eventTime.
        self._records: list[tuple[datetime, dict[str, Any]]] = []
        self._delivered = 0
        self._trail_logs: dict[str, _TrailLog] = {}
        self._lock = threading.Lock()

    # -- observing (on the server's request threads) ----------------------------------------------

    def observe(
        self,
        environ: Mapping[str, Any],
        body: bytes,
        status: int,
        response_headers: Sequence[tuple[str, str]],
        response: bytes,
    ) -> None:
        """Keep one served call (cheap: the work happens in :meth:`flush`)."""
        headers = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = str(environ["CONTENT_TYPE"])
        if "Authorization" not in headers:
            return  # CloudTrail records only authenticated calls
        observed = Observed(
            time=utc_now(),
            method=str(environ.get("REQUEST_METHOD", "GET")),
            # As it arrived (S3 keys may hold encoded characters the decoded path loses).
            path=str(environ.get("RAW_URI") or environ.get("PATH_INFO") or "/").split("?", 1)[0],
            query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            body=body,
            status=status,
            response_headers={k.lower(): v for k, v in response_headers},
            response=response if status >= 400 or b"AssumeRole" in response[:200] else b"",
            source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1")),
        )
        with self._lock:
            self._observed.append(observed)

    # -- records ---------------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every record so far (delivered or not), oldest first."""
        self._build()
        with self._lock:
            return [record for _, record in self._records]

    def _build(self) -> None:
        with self._lock:
            pending, self._observed = self._observed, []
        built = []
        for observed in pending:
            record = build_record(observed, self.account_id)
            if record is not None:
                built.append((observed.time, record))
                self._note_trail_switch(observed.time, record)
        with self._lock:
            self._records.extend(built)
        self._put_events([record for _, record in built])

    def _put_events(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Each management record as CloudTrail's event on its region's default bus."""
        if self._scope is None:
            return
        from moto.events.models import events_backends

        chosen = [r for r in records if r.get("managementEvent") and not _opt_in_only(r)]
        if not chosen:
            return
        with calls.working_for(self._scope()):
            for record in chosen:
                service = str(record["eventSource"]).split(".", 1)[0]
                events_backends[self.account_id][str(record["awsRegion"])].put_events(
                    [
                        {
                            "Source": f"aws.{service}",
                            "DetailType": API_CALL_DETAIL_TYPE,
                            "Detail": json.dumps(record),
                            "Resources": [],
                            "Time": record["eventTime"],
                        }
                    ]
                )

    def _note_trail_switch(self, moment: datetime, record: Mapping[str, Any]) -> None:
        if record.get("eventSource") != "cloudtrail.amazonaws.com" or record.get("errorCode"):
            return
        name = str((record.get("requestParameters") or {}).get("name") or "")
        if record.get("eventName") in ("StartLogging", "StopLogging") and name:
            trail = name.rsplit("/", 1)[-1]
            self._trail_logs.setdefault(trail, _TrailLog()).switches.append(
                (moment, record["eventName"] == "StartLogging")
            )

    # -- delivery --------------------------------------------------------------------------------

    def flush(self) -> list[str]:
        """Write every record not yet delivered into the trails' buckets; return the keys written."""
        from moto.cloudtrail.models import cloudtrail_backends

        self._build()
        with self._lock:
            fresh = self._records[self._delivered :]
            self._delivered = len(self._records)
        if not fresh:
            return []
        trails = [
            trail
            for region_backend in list(cloudtrail_backends[self.account_id].values())
            for trail in list(region_backend.trails.values())
        ]
        written: list[str] = []
        for trail in {t.arn: t for t in trails}.values():
            log = self._trail_logs.get(trail.trail_name, _TrailLog())
            chosen = [(when, r) for when, r in fresh if _trail_takes(trail, when, r, log)]
            written.extend(self._deliver(trail, chosen))
        return written

    def _deliver(self, trail: Any, records: Iterable[tuple[datetime, Mapping[str, Any]]]) -> list[str]:
        from moto.s3.models import s3_backends

        batches: dict[tuple[str, datetime], list[Mapping[str, Any]]] = {}
        for moment, record in sorted(records, key=lambda item: item[0]):
            window = moment - timedelta(
                minutes=moment.minute % 5, seconds=moment.second, microseconds=moment.microsecond
            )
            batches.setdefault((str(record["awsRegion"]), window), []).append(record)
        backend = s3_backends[self.account_id]["aws"]
        written = []
        for (region, window), batch in sorted(batches.items(), key=lambda item: (item[0][1], item[0][0])):
            key = log_file_key(self.account_id, region, window + WINDOW, trail.s3_key_prefix)
            body = gzip.compress(json.dumps({"Records": list(batch)}, separators=(",", ":")).encode())
            backend.put_object(
                trail.bucket_name,
                key,
                body,
                encryption="aws:kms" if trail.kms_key_id else None,
                kms_key_id=trail.kms_key_id or None,
            )
            written.append(key)
        return written


def _opt_in_only(record: Mapping[str, Any]) -> bool:
    return bool(record.get("readOnly")) and bool(
        _OPT_IN_READ_ONLY.fullmatch(str(record.get("eventName", "")))
    )


def log_file_key(account_id: str, region: str, delivered: datetime, prefix: str | None = None) -> str:
    """Where CloudTrail puts a log file delivered at ``delivered`` (UTC)."""
    unique = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
    stamp = delivered.astimezone(UTC)
    name = f"{account_id}_CloudTrail_{region}_{stamp:%Y%m%dT%H%MZ}_{unique}.json.gz"
    folder = f"AWSLogs/{account_id}/CloudTrail/{region}/{stamp:%Y/%m/%d}"
    return f"{prefix.strip('/')}/{folder}/{name}" if prefix else f"{folder}/{name}"


def _trail_takes(trail: Any, moment: datetime, record: Mapping[str, Any], log: _TrailLog) -> bool:
    """Whether ``trail`` records ``record`` (made at ``moment``): logging then, in its regions, by
    its selectors."""
    if not log.logging_at(moment, bool(trail.status.is_logging)):
        return False
    if not trail.is_multi_region and record["awsRegion"] != trail.region_name:
        return False
    selectors = list(trail.event_selectors or []) or [
        {"ReadWriteType": "All", "IncludeManagementEvents": True}
    ]
    for selector in selectors:
        read_write = str(selector.get("ReadWriteType", "All"))
        if read_write == "ReadOnly" and not record["readOnly"]:
            continue
        if read_write == "WriteOnly" and record["readOnly"]:
            continue
        if record["managementEvent"]:
            if selector.get("IncludeManagementEvents", True):
                return True
            continue
        for resource in selector.get("DataResources") or []:
            if _data_resource_matches(resource, record):
                return True
    return False


def _data_resource_matches(resource: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    arns = [str(r.get("ARN")) for r in record.get("resources") or [] if r.get("type") == resource.get("Type")]
    for value in resource.get("Values") or []:
        value = str(value)
        if value in ("arn:aws:s3", "arn:aws:lambda", "arn:aws:dynamodb") or value.endswith(":::"):
            if any(a.startswith(value) for a in arns):
                return True
        elif any(a.startswith(value) or wildcard_match(value, a) for a in arns):
            return True
    return False


# -- one record ------------------------------------------------------------------------------------


_CREDENTIAL: Final = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def _boto3_service(signing_name: str, path: str) -> str:
    if signing_name == "apigateway":
        return "apigatewayv2" if path.startswith("/v2/") else "apigateway"
    if signing_name == "ses":
        return "sesv2" if path.startswith("/v2/") else "ses"
    return _SERVICES_BY_SIGNING_NAME.get(signing_name, signing_name)


def _camel(value: Any, shape: Any = None) -> Any:
    """The API's parameters as CloudTrail writes them: member names in camelCase (map keys and
    values as given), secrets hidden, no blobs."""
    kind = getattr(shape, "type_name", None)
    if isinstance(value, Mapping):
        if kind == "map":
            return {str(k): _camel(v, shape.value) for k, v in value.items()}
        members = getattr(shape, "members", {}) if kind == "structure" else {}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            camel = name[:1].lower() + name[1:]
            if name in _SECRET_PARAMETERS:
                out[camel] = HIDDEN
            elif not isinstance(item, bytes | bytearray):
                out[camel] = _camel(item, members.get(name))
        return out
    if isinstance(value, list | tuple):
        member = shape.member if kind == "list" else None
        return [_camel(v, member) for v in value if not isinstance(v, bytes | bytearray)]
    if isinstance(value, datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=UTC))
    return value


def parse_call(observed: Observed, service: str) -> tuple[Any, dict[str, Any]]:
    """(operation model, parameters) of a call, by moto's routers and request parsers."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request, determine_request_protocol
    from moto.core.routing import get_service_router
    from moto.core.utils import get_service_model

    host = observed.headers.get("Host", "127.0.0.1")
    url = f"http://{host}{observed.path}" + (f"?{observed.query}" if observed.query else "")
    request = Request.from_primitives(observed.method, url, dict(observed.headers), observed.body)
    operation, uri_params = get_service_router(service).match(request)
    model = get_service_model(service)
    protocol = determine_request_protocol(model, request.content_type)
    parser = PROTOCOL_PARSERS[protocol](operation)
    parsed = parser.parse(
        {
            "method": request.method,
            "values": request.values,
            "headers": request.headers,
            "body": request.get_data(),
            "url_path": request.path,
            "url_params": uri_params,
        }
    )
    return operation, dict(parsed)


def _error(observed: Observed) -> tuple[str, str]:
    text = observed.response.decode("utf-8", errors="replace")
    code = observed.response_headers.get("x-amzn-errortype", "").split(":")[0]
    message = ""
    match = re.search(r"<Code>([^<]+)</Code>", text)
    if match:
        code = code or match.group(1)
    match = re.search(r"<Message>([^<]*)</Message>", text)
    if match:
        message = match.group(1)
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = {}
        code = code or str(loaded.get("__type", "")).split("#")[-1]
        message = message or str(loaded.get("message") or loaded.get("Message") or "")
    return code or f"HTTP{observed.status}", message


def _user_identity(principal: Principal) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "type": principal.type,
        "principalId": principal.principal_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
    }
    if principal.type == "IAMUser":
        identity["userName"] = principal.user_name
        return identity
    facts = principal.facts
    context: dict[str, Any] = {
        "sessionIssuer": {
            "type": "Role",
            "principalId": principal.role_id,
            "arn": principal.role_arn,
            "accountId": principal.account_id,
            "userName": principal.role_name,
        },
        "webIdFederationData": {},
        "attributes": {
            "creationDate": iso(facts.issued_at) if facts else None,
            "mfaAuthenticated": "true" if facts and facts.mfa_authenticated else "false",
        },
    }
    if facts and facts.source_identity:
        context["sourceIdentity"] = facts.source_identity
    identity["sessionContext"] = context
    return identity


def _assume_role_response(observed: Observed) -> dict[str, Any] | None:
    text = observed.response.decode("utf-8", errors="replace")

    def tag(name: str) -> str | None:
        match = re.search(rf"<{name}>([^<]*)</{name}>", text)
        return match.group(1) if match else None

    if tag("AccessKeyId") is None:
        return None
    response: dict[str, Any] = {
        "credentials": {
            "accessKeyId": tag("AccessKeyId"),
            "sessionToken": HIDDEN,
            "expiration": tag("Expiration"),
        },
        "assumedRoleUser": {"assumedRoleId": tag("AssumedRoleId"), "arn": tag("Arn")},
    }
    if tag("SourceIdentity"):
        response["sourceIdentity"] = tag("SourceIdentity")
    return response


def build_record(observed: Observed, account_id: str) -> dict[str, Any] | None:
    """The CloudTrail record of one call, or None for a call CloudTrail would not record here."""
    match = _CREDENTIAL.search(observed.headers.get("Authorization", ""))
    if not match:
        return None
    access_key, region, signing_name = match.groups()
    if signing_name == "execute-api":
        return None
    principal = principal_for(access_key)
    if principal is None or principal.account_id != account_id:
        return None
    service = _boto3_service(signing_name, observed.path)
    shape = None
    try:
        model, parameters = parse_call(observed, service)
        operation, shape = str(model.name), model.input_shape
    except Exception:
        operation, parameters = observed.headers.get("X-Amz-Target", "").split(".")[-1] or "Unknown", {}
    if operation == "AssumeRole" and principal.facts and principal.facts.source_identity:
        parameters.setdefault("SourceIdentity", principal.facts.source_identity)
    data_event = bool(_DATA_OPERATIONS.get(service, re.compile("$^")).fullmatch(operation))
    read_only = operation in _READ_ONLY_NAMES or bool(_READ_ONLY.fullmatch(operation))
    facts = principal.facts
    via_service = (
        facts.caller_arn if facts and facts.caller_arn and not facts.caller_arn.startswith("arn:") else None
    )
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": _user_identity(principal),
        "eventTime": iso(observed.time),
        "eventSource": f"{signing_name}.amazonaws.com",
        "eventName": operation,
        "awsRegion": region,
        # A service acting under its role (Step Functions calling Lambda) is named as the source.
        "sourceIPAddress": via_service if via_service == "states.amazonaws.com" else observed.source_ip,
        "userAgent": observed.headers.get("User-Agent", ""),
        "requestParameters": _camel(parameters, shape) or None,
        "responseElements": None,
        "requestID": observed.response_headers.get("x-amzn-requestid")
        or observed.response_headers.get("x-amz-request-id")
        or str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": not data_event,
        "recipientAccountId": account_id,
        "eventCategory": "Data" if data_event else "Management",
    }
    if observed.status >= 400:
        record["errorCode"], record["errorMessage"] = _error(observed)
    elif operation == "AssumeRole":
        record["responseElements"] = _assume_role_response(observed)
    resources = _resources(service, operation, parameters, account_id, region)
    if resources:
        record["resources"] = resources
    return record


def _resources(
    service: str, operation: str, parameters: Mapping[str, Any], account_id: str, region: str
) -> list[dict[str, str]]:
    if operation == "AssumeRole" and parameters.get("RoleArn"):
        return [{"accountId": account_id, "type": "AWS::IAM::Role", "ARN": str(parameters["RoleArn"])}]
    if service == "s3" and parameters.get("Bucket"):
        bucket = str(parameters["Bucket"])
        found = [{"accountId": account_id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        if parameters.get("Key"):
            found.append({"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{parameters['Key']}"})
        return found
    if service == "lambda" and parameters.get("FunctionName"):
        name = str(parameters["FunctionName"])
        arn = name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account_id}:function:{name}"
        return [{"accountId": account_id, "type": "AWS::Lambda::Function", "ARN": arn}]
    if service == "dynamodb" and parameters.get("TableName"):
        arn = f"arn:aws:dynamodb:{region}:{account_id}:table/{parameters['TableName']}"
        return [{"accountId": account_id, "type": "AWS::DynamoDB::Table", "ARN": arn}]
    return []


def read_log_files(objects: Iterable[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """The records in CloudTrail log files given as (key, gzipped body) pairs."""
    records: list[dict[str, Any]] = []
    for _, body in objects:
        with gzip.open(io.BytesIO(body), "rt", encoding="utf-8") as handle:
            records.extend(json.load(handle)["Records"])
    return records


__all__ = [
    "EVENT_VERSION",
    "CloudTrailRecorder",
    "Observed",
    "build_record",
    "log_file_key",
    "read_log_files",
]
