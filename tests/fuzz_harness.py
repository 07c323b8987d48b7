"""Property-based fuzzing of every handler's event parsing, the approval API and the access API
(finding 12).

Each :class:`Target` pairs a hypothesis strategy of hostile inputs with a check that feeds one
input to the real parsing code and names what happened: ``accepted`` or the refusal it gave
(``ConfigError:duration``, ``403 forged``...). Anything else (an exception the code does not
document as its refusal) propagates, so hypothesis shrinks it and reports the smallest input.

Two profiles share these targets: ``tests/test_fuzz_handlers.py`` runs a few hundred examples in
``make test``; ``benchmarks/fuzz_handlers.py`` runs at least 10,000 per target and prints the
counts. Inputs are JSON values (what Lambda hands a handler) except where noted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pyotp
from emf import captured_metrics
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from moto import mock_aws

from breakglass.contracts import iso
from breakglass.lambdas.access import early_revoke, grants
from breakglass.lambdas.approvals import access_api, requests
from breakglass.lambdas.approvals.admission import Admission, IndexEntry
from breakglass.lambdas.approvals.api import ApprovalDeps, make_handler
from breakglass.lambdas.approvals.identity import NotAuthenticated, caller_from_event
from breakglass.lambdas.approvals.links import LinkRejected, sign_link, verify_link
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, Store, create_table
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.halt import handler as halt_handler
from breakglass.lambdas.sealed import use as sealed_use
from breakglass.policies.halt import parse_targets
from breakglass.validation import ConfigError

NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
KEY = b"f" * 32
HOST = "approvals.example.com"
ORIGIN = f"https://{HOST}"


@dataclass
class Tally:
    """What one run saw: examples, outcomes by kind, and the invariants measured at its end."""

    examples: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    invariants: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    # Opens whatever the check needs (e.g. an emulated account) and yields the check.
    session: Callable[[Tally], AbstractContextManager[Callable[[Any], str]]]
    # Inputs always tried first (hypothesis's explicit phase), whatever the generator finds.
    examples: tuple[Any, ...] = ()


def run(target: Target, *, examples: int, random_seed: int | None = None) -> Tally:
    """Feed ``examples`` generated inputs to ``target``; deterministic unless ``random_seed``."""
    tally = Tally()
    with target.session(tally) as check:

        @settings(
            max_examples=examples,
            derandomize=random_seed is None,
            database=None,  # no example database: runs are reproducible from the seed alone
            deadline=None,  # moto calls vary in time; time is not what is checked
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
        )
        @given(target.strategy)
        def prop(value: Any) -> None:
            tally.examples += 1
            tally.outcomes[check(value)] += 1

        for value in target.examples:
            prop = example(value)(prop)
        if random_seed is not None:
            prop = seed(random_seed)(prop)
        prop()
    return tally


_FIELD_LABEL = re.compile(r"[a-z_][a-z0-9_.<>\[\]-]{0,60}")


def refusal(exc: BaseException) -> str:
    """``<error class>:<field>``, with the parts the input named itself (unknown keys, tier names)
    replaced by placeholders so the counts group by kind."""
    kind = type(exc).__name__
    name = getattr(exc, "field", None) or getattr(exc, "reason", None)
    if not name:
        return kind
    if "unknown setting" in str(getattr(exc, "problem", "")):
        return f"{kind}:(unknown key)"
    if isinstance(name, str) and name.startswith("tiers."):
        rest = name[len("tiers.") :].split(".", 1)
        name = "tiers.<tier>" + (f".{rest[1]}" if len(rest) > 1 else "")
    label = name if isinstance(name, str) and _FIELD_LABEL.fullmatch(name) else "(a key from the input)"
    return f"{kind}:{label}"


@contextmanager
def _pure(check: Callable[[Any], str]) -> Iterator[Callable[[Any], str]]:
    yield check


# -- values ------------------------------------------------------------------------------------------

# Text that breaks naive parsers: non-ASCII digits, line and bidi controls, huge numbers.
_NASTY = st.sampled_from(
    [
        "²",
        "①",
        "\u0661\u0662\u0663",
        "1h²",
        "\u202e",
        "\r\nBcc: x@evil.example",
        "\x00",
        "-1",
        "0",
        "1e9",
        "NaN",
        "all",
        "aws:x",
        "http://[::1",
        "%ff",
        "\ud800",
    ]
)
_LONG = st.sampled_from([5000, 2049, 8193]).map(lambda n: "9" * n)  # built lazily: short reprs
text = st.one_of(st.text(max_size=40), _NASTY, _LONG, st.text(max_size=3000))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    # Huge integers, up to the longest json.loads accepts (4300 digits): what a Lambda event can hold.
    st.builds(lambda sign, digits: sign * 10**digits, st.sampled_from([1, -1]), st.integers(18, 4299)),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(text, st.sampled_from(["a", "b"])), inner, max_size=5),
    ),
    max_leaves=20,
)


def events_with(
    keys: list[str], values: st.SearchStrategy[Any] = json_values, *, valid: dict[str, Any] | None = None
) -> st.SearchStrategy[Any]:
    """Mappings over the keys a parser knows (some missing, some extra), or any JSON value; with
    ``valid``, also that valid event with one field replaced or dropped (the deep paths)."""
    known = st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))
    extra = st.dictionaries(text, values, max_size=2)
    options = [json_values, known, st.builds(lambda a, b: {**b, **a}, known, extra)]
    if valid is not None:
        base = dict(valid)
        options += [
            st.builds(lambda k, v: {**base, k: v}, st.sampled_from(keys), values),
            st.builds(lambda k: {n: v for n, v in base.items() if n != k}, st.sampled_from(keys)),
            st.just(base),
        ]
    return st.one_of(*options)


# -- pure parsers ------------------------------------------------------------------------------------


def _check_duration(value: Any) -> str:
    try:
        seconds = requests.parse_duration("duration", value)
    except ConfigError as exc:
        return refusal(exc)
    assert requests.MIN_DURATION_SECONDS <= seconds <= requests.MAX_WINDOW_SECONDS
    return "accepted"


durations = st.one_of(
    scalars,
    st.from_regex(r"\A[0-9]{0,12}[hms]?\Z"),
    st.from_regex(r"\A([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?\Z"),
    st.text(alphabet="0123456789hms²①\u0661\u0662\u0663 \t", max_size=40),
)


def _check_access_request(pair: tuple[Any, Any]) -> str:
    data, request_id = pair
    try:
        requests.AccessRequest.from_input(data, request_id=request_id, requester="rita")
    except ConfigError as exc:
        return refusal(exc)
    return "accepted"


request_fields = list(requests.REQUEST_FIELDS)
access_requests = st.tuples(
    events_with(
        request_fields,
        st.one_of(json_values, durations),
        valid={
            "tier": "ops",
            "reason": "the model leaks data",
            "duration": "30m",
            "totp": "123456",
        },
    ),
    st.one_of(st.sampled_from(["req1", "a" * 40, "a" * 41, "REQ1", ""]), scalars),
)


def _check_tier_approval(value: Any) -> str:
    try:
        requests.TierApproval.from_dict("tiers.t", value)
    except ConfigError as exc:
        return refusal(exc)
    return "accepted"


tier_keys = [
    "approval",
    "approvers",
    "backup_approvers",
    "ticket_required",
    "ticket_pattern",
    "approval_timeout_seconds",
]
tier_values = st.one_of(
    json_values,
    st.just("auto"),
    st.integers(min_value=-2, max_value=12),
    st.lists(st.sampled_from(["ann", "bob", "cat", "Ann", "aws:x", "a"]), max_size=4),
    st.sampled_from(["INC-[0-9]+", "(", "[", "a**", ".*" * 100]),
)
tier_approvals = events_with(
    tier_keys,
    tier_values,
    valid={
        "approval": 2,
        "approvers": ["ann", "cat"],
        "backup_approvers": ["dan"],
        "ticket_pattern": "INC-[0-9]+",
    },
)


def _check_policy(value: Any) -> str:
    try:
        requests.parse_policy(value)
    except ConfigError as exc:
        return refusal(exc)
    return "accepted"


policies = st.one_of(json_values, st.dictionaries(text, tier_approvals, max_size=3))


def _catalog() -> dict[str, Any]:
    specs = [
        {
            "id": "chat",
            "endpoint_name": "chat-endpoint",
            "invoker_roles": ["chat-invoker"],
            "modes": ["deny-invoke"],
        },
        {"id": "batch", "endpoint_name": "batch-endpoint", "modes": ["delete-endpoint"]},
    ]
    return {t.id: t for t in parse_targets("targets", specs)}


CATALOG = _catalog()


def _check_halt_request(value: Any) -> str:
    try:
        halt_handler.parse_request(value, CATALOG)
    except ConfigError as exc:
        return refusal(exc)
    return "accepted"


halt_keys = ["targets", "mode", "actor", "reason", "request_id"]
halt_values = st.one_of(
    json_values,
    st.sampled_from(["all", "deny-invoke", "delete-endpoint", "scp", "alice", "req1", "tripwire:x"]),
    st.lists(st.sampled_from(["chat", "batch", "other", ""]), max_size=3),
)
halt_requests = events_with(
    halt_keys,
    halt_values,
    valid={
        "targets": ["chat"],
        "mode": "deny-invoke",
        "actor": "alice",
        "reason": "leak",
        "request_id": "req1",
    },
)


ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:errors"
TRIPWIRES = {ALARM_ARN: "errors"}


def _check_tripwire(value: Any) -> str:
    try:
        halt_handler.parse_tripwire(value, CATALOG, TRIPWIRES)
    except halt_handler.TripwireRefused:
        return "TripwireRefused"
    except ConfigError as exc:
        return refusal(exc)
    return "accepted"


alarm_events = st.fixed_dictionaries(
    {},
    optional={
        "source": st.one_of(st.just("aws.cloudwatch"), text),
        "detail-type": st.one_of(st.just("CloudWatch Alarm State Change"), text),
        "resources": st.one_of(
            json_values,
            st.lists(st.one_of(st.just(ALARM_ARN), st.just(ALARM_ARN + "x"), text), max_size=2),
        ),
        "detail": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "alarmName": st.one_of(st.just("errors"), text),
                    "state": st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {"value": st.sampled_from(["ALARM", "OK", 1])}, optional={"reason": text}
                        ),
                    ),
                },
            ),
        ),
    },
)
VALID_ALARM = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "resources": [ALARM_ARN],
    "detail": {"alarmName": "errors", "state": {"value": "ALARM", "reason": "threshold crossed"}},
}
tripwires = st.one_of(
    events_with(
        ["source", "tripwire", "mode", "targets", "alarm"],
        st.one_of(halt_values, alarm_events),
        valid={
            "source": "breakglass.tripwire",
            "tripwire": "errors",
            "mode": "deny-invoke",
            "targets": ["chat"],
            "alarm": VALID_ALARM,
        },
    ),
    st.fixed_dictionaries(
        {
            "source": st.sampled_from(["breakglass.tripwire", "x"]),
            "tripwire": st.one_of(st.just("errors"), text),
            "mode": st.sampled_from(["deny-invoke", "delete-endpoint", "nope"]),
            "targets": st.one_of(
                st.just("all"), st.lists(st.sampled_from(["chat", "batch", "x"]), max_size=2)
            ),
            "alarm": alarm_events,
        }
    ),
)


def _check_grant(value: Any) -> str:
    try:
        grants.Grant.from_event(value)
    except ConfigError as exc:
        return refusal(exc)
    return "accepted"


grant_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "req1",
            "ops",
            "alice",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:sts::123456789012:assumed-role/r/alice",
            "2025-03-01T12:00:00Z",
            "2025-02-30T12:00:00Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
        ]
    ),
)
grant_events = events_with(
    ["request_id", "tier", "requester_arn", "source_identity", "starts_at", "expires_at"],
    grant_values,
    valid={
        "request_id": "req1",
        "tier": "ops",
        "requester_arn": "arn:aws:iam::123456789012:user/alice",
        "source_identity": "alice",
        "starts_at": "2025-03-01T12:00:00Z",
        "expires_at": "2025-03-01T13:00:00Z",
    },
)


def _check_early_revoke(value: Any) -> str:
    try:
        early_revoke.EarlyRevokeRequest.parse(value)
    except ConfigError as exc:
        return refusal(exc)
    return "accepted"


revoke_events = events_with(
    list(early_revoke.EVENT_FIELDS),
    st.one_of(json_values, st.sampled_from(["req1", "alice", "123456", "early_revoke"])),
    valid={
        "action": "early_revoke",
        "request_id": "req1",
        "actor": "alice",
        "totp": "123456",
        "reason": "done",
    },
)


# -- signed links ----------------------------------------------------------------------------------


def _genuine_tokens() -> list[str]:
    later, earlier = NOW + timedelta(hours=1), NOW - timedelta(seconds=1)
    return [
        sign_link(KEY, request_id="req1", approver="alice", expires_at=later, jti="fuzz-alice"),
        sign_link(KEY, request_id="req1", approver="carol", expires_at=later, jti="fuzz-carol"),
        sign_link(KEY, request_id="req1", approver="bob", expires_at=later, jti="fuzz-bob"),
        sign_link(KEY, request_id="req1", approver="erin", expires_at=later, jti="fuzz-erin"),
        sign_link(KEY, request_id="req2", approver="alice", expires_at=later, jti="fuzz-req2"),
        sign_link(KEY, request_id="req404", approver="alice", expires_at=later, jti="fuzz-404"),
        sign_link(KEY, request_id="req1", approver="alice", expires_at=earlier, jti="fuzz-expired"),
        sign_link(b"z" * 32, request_id="req1", approver="alice", expires_at=later, jti="fuzz-forged"),
    ]


GENUINE = _genuine_tokens()


def _mutate(token: str, position: int, replacement: str, cut: bool) -> str:
    at = position % (len(token) + 1)
    return token[:at] if cut else token[:at] + replacement + token[at + 1 :]


tokens = st.one_of(
    st.sampled_from(GENUINE),
    st.builds(
        _mutate,
        st.sampled_from(GENUINE),
        st.integers(0, 400),
        st.sampled_from(["A", ".", "-", "=", "é"]),
        st.booleans(),
    ),
    st.builds(
        lambda a, b: f"{a}.{b}",
        st.text(alphabet="ABCabc012-_", max_size=80),
        st.text(alphabet="ABCabc012-_=", max_size=60),
    ),
    text,
)


def _check_link(value: Any) -> str:
    try:
        claims = verify_link(KEY, value, now=NOW, request_id="req1")
    except LinkRejected as exc:
        return refusal(exc)
    assert claims.request_id == "req1" and claims.expires_at > NOW
    return "accepted"


# -- the approval API -----------------------------------------------------------------------------


RECORD = RequestRecord(
    request_id="req1",
    requester="bob",
    requester_arn="arn:aws:iam::123456789012:user/bob",
    tier="sagemaker-halt",
    reason="endpoint is leaking PII & must stop",
    ticket="INC-1",
    duration_seconds=1800,
    requested_at="2025-03-01T11:59:00Z",
    status="pending",
    quorum=2,
    approvers=("alice", "carol", "dave"),
)


class CountingSfn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_task_success(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return {}


@contextmanager
def approval_api_session(tally: Tally) -> Iterator[Callable[[Any], str]]:
    """One emulated account for the whole run: state (spent codes, lockouts) carries over."""
    with mock_aws(), captured_metrics() as metrics:
        aws = boto3.session.Session(region_name="us-east-1")
        ddb, kms, s3, sns = (aws.client(name) for name in ("dynamodb", "kms", "s3", "sns"))
        create_table(ddb, "bg")
        s3.create_bucket(Bucket="audit")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        store = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])
        for user in ("alice", "carol", "dave", "erin", "bob"):
            roles = ("responder",) if user == "bob" else ("approver",)
            arn = f"arn:aws:iam::123456789012:user/{user}"
            store.put_enrollment(Enrollment(user, arn, f"{user}@example.com", roles), pyotp.random_base32())
        store.put_request(RECORD)
        store.put_request(
            RequestRecord(**{**RECORD.to_dict(), "request_id": "req2", "approvers": ("alice",)})
        )
        store.set_waiting("req1", "task-token-1", RECORD.approvers)
        sfn = CountingSfn()
        deps = ApprovalDeps(
            store=store,
            link_key=KEY,
            sfn=sfn,
            audit=AuditWriter(s3=s3, bucket="audit", sns=sns, topic_arn=topic),
            approval_url=ORIGIN,
            clock=lambda: NOW,
        )
        handler = make_handler(deps)

        def check(event: Any) -> str:
            response = handler(event, None)
            assert isinstance(response, dict) and response["statusCode"] in (
                200,
                400,
                403,
                404,
                405,
                409,
                410,
                429,
            )
            assert "default-src 'none'" in response["headers"]["content-security-policy"]
            assert isinstance(response["body"], str) and "<script" not in response["body"]
            return str(response["statusCode"])

        yield check

        objects = s3.list_objects_v2(Bucket="audit").get("Contents", [])
        records = [json.loads(s3.get_object(Bucket="audit", Key=o["Key"])["Body"].read()) for o in objects]
        markers = [
            item
            for item in ddb.scan(TableName="bg")["Items"]
            if item["sk"]["S"].startswith("REFUSED#") and not item.get("released", {}).get("BOOL")
        ]
        for request_id in ("req1", "req2"):
            record = store.get_request(request_id)
            assert record is not None
            tally.invariants[f"votes counted on {request_id}"] = len(record.approvals) + len(record.denials)
        tally.invariants["grants (workflow resumed with approved)"] = sum(
            json.loads(c["output"])["decision"] == "approved" for c in sfn.calls
        )
        tally.invariants["audit records written"] = len(records)
        # Each refusal the store says was audited has its record: none was lost.
        tally.invariants["audit records lost"] = len(markers) - len(records)
        tally.invariants["records naming a request id no link was signed for"] = sum(
            r["request_id"] not in ("req1", "req2", "req404") for r in records
        )
        for kind, n in metrics.counts().items():
            tally.outcomes[f"{kind[0]}:{kind[1]}"] += n


def _form(values: dict[str, str]) -> str:
    return urlencode(values, encoding="utf-8", errors="surrogatepass")


form_fields = st.fixed_dictionaries(
    {},
    optional={
        "token": tokens,
        "totp": st.one_of(st.from_regex(r"\A[0-9]{6}\Z"), text),
        "decision": st.one_of(st.sampled_from(["approve", "deny"]), text),
    },
)
# The page's own form: a link (mostly genuine), a decision and a code.
page_forms = st.fixed_dictionaries(
    {
        "token": st.one_of(st.sampled_from(GENUINE), st.sampled_from(GENUINE), tokens),
        "decision": st.sampled_from(["approve", "deny"]),
    },
    optional={"totp": st.one_of(st.from_regex(r"\A[0-9]{6}\Z"), text)},
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "host": st.one_of(st.just(HOST), text),
        "origin": st.one_of(
            st.sampled_from([ORIGIN, "null", "https://evil.example.net", "http://[::1"]), text
        ),
        "sec-fetch-site": st.one_of(st.sampled_from(["same-origin", "cross-site", "none"]), text),
        "content-type": st.one_of(
            st.sampled_from(
                ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"]
            ),
            text,
        ),
        "user-agent": text,
    },
).flatmap(lambda h: st.builds(lambda extra: {**extra, **h}, st.dictionaries(text, text, max_size=2)))
paths = st.one_of(
    st.sampled_from(
        ["/requests/req1", "/prod/requests/req1", "/requests/req1/", "/requests/req2", "/requests/req404"]
    ),
    st.builds(lambda t: "/requests/" + quote(t, safe="/", errors="surrogatepass"), text),
    text,
)


def _event(method: str, path: str, query: Any, head: dict[str, str], body: str, b64: bool) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "203.0.113.9", "userAgent": "fuzz"}
        },
        "headers": head,
        "isBase64Encoded": b64,
    }
    if query is not None:
        event["queryStringParameters"] = query
    if body:
        event["body"] = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if b64 else body
    return event


methods = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "post", "PUT", "DELETE", "OPTIONS", ""]), text)
queries = st.one_of(
    st.none(), st.fixed_dictionaries({}, optional={"token": tokens}), st.dictionaries(text, text, max_size=2)
)
# Any request at all: every part may be hostile.
any_request = st.builds(
    _event, methods, paths, queries, headers, st.one_of(st.builds(_form, form_fields), text), st.booleans()
)
# What a browser on the approval page (or someone replaying its form) sends, with genuine,
# near-genuine or junk links: the deep paths (link checks, identity, TOTP, votes).
page_requests = st.one_of(
    st.builds(
        _event,
        st.just("POST"),
        st.sampled_from(["/requests/req1", "/requests/req2", "/requests/req404"]),
        st.none(),
        st.just({"host": HOST, "origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}),
        st.builds(_form, page_forms),
        st.booleans(),
    ),
    st.builds(
        _event,
        st.sampled_from(["GET", "HEAD"]),
        st.sampled_from(["/requests/req1", "/requests/req2"]),
        st.fixed_dictionaries({"token": tokens}),
        st.just({"host": HOST}),
        st.just(""),
        st.just(False),
    ),
)
# Not even the shape of an API Gateway event.
malformed_events = events_with(
    ["version", "rawPath", "requestContext", "headers", "body", "isBase64Encoded", "queryStringParameters"]
)
# Weighted toward the deep paths: 6 in 10 page requests, 3 any request, 1 malformed event.
api_events = st.sampled_from([page_requests] * 6 + [any_request] * 3 + [malformed_events]).flatmap(
    lambda chosen: chosen
)


_PAGE = {"host": HOST, "origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}
# Every genuine link, opened and posted as the page would (with a wrong code): each refusal path.
API_EXAMPLES = tuple(
    _event(
        method,
        "/requests/req1",
        {"token": token} if method == "GET" else None,
        _PAGE if method == "POST" else {"host": HOST},
        _form({"token": token, "totp": "000000", "decision": "approve"}) if method == "POST" else "",
        False,
    )
    for token in GENUINE
    for method in ("GET", "POST")
)


# -- the access API ----------------------------------------------------------------------------------

# The IAM-authorized routes a terminal calls (breakglass.lambdas.approvals.access_api). API Gateway
# verified a SigV4 signature and names the caller in requestContext.authorizer.iam; everything else
# in the event is the caller's. No generated request carries a correct TOTP code (the check swaps
# the rare accidental one for a wrong one), so nothing that needs a code may happen: no request
# stored or started, no vote, no grant, no early revoke, no review, no enrollment by a person.

ACCOUNT = "123456789012"
ONCALL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/oncall-ml"
BOOTSTRAP_ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/cloud-admin"
HALT_FUNCTION, RESUME_FUNCTION, ACCESS_FUNCTION = "ai-halt", "ai-resume", "breakglass-access"
# Each example moves the clock on: TOTP lockout windows and hourly rate limits open and close,
# so the run reaches the code check again and again (a fixed clock locks everyone out early).
ACCESS_STEP = timedelta(seconds=10)


def _user_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def _session_arn(role: str, session: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


PEOPLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "rita": (_user_arn("rita"), ("responder",)),
    "mallory": (_user_arn("mallory"), ("responder",)),
    "ann": (_user_arn("ann"), ("responder", "approver")),
    "bob": (_user_arn("bob"), ("approver",)),
    "sec": (_user_arn("sec"), ("security",)),
    "sam": (ONCALL_ROLE, ("responder",)),  # a shared role: the session name is the person
}
# Fixed secrets: a run is reproducible from its seed, and the check knows every correct code.
SECRETS = {
    user: base64.b32encode(hashlib.sha256(f"fuzz:{user}".encode()).digest()[:20]).decode() for user in PEOPLE
}


def _tier(name: str) -> grants.Tier:
    return grants.Tier(
        name=name,
        role_name=f"breakglass-emergency-{name}",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-{name}",
        max_session_seconds=3600,
        max_window_seconds=7200,
        require_mfa=False,
        allowed_requesters=(_user_arn("rita"), _user_arn("mallory"), _user_arn("ann"), ONCALL_ROLE),
    )


ACCESS_POLICY = requests.parse_policy(
    {
        "halt": {"approval": "auto", "approvers": ["ann"], "max_requests_per_person_per_hour": 3},
        "operator": {
            "approval": 1,
            "approvers": ["ann", "bob"],
            "max_requests_per_hour": 20,
            "review_gate": True,
        },
    }
)


def _seeded(request_id: str, requester: str, tier: str, status: str, **more: Any) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        requester=requester,
        requester_arn=PEOPLE[requester][0],
        tier=tier,
        reason="the chat model leaks customer data",
        ticket=None,
        duration_seconds=1800,
        requested_at=iso(NOW - timedelta(minutes=5)),
        status=status,
        quorum=0 if tier == "halt" else 1,
        approvers=tuple(a for a in ("ann", "bob") if a != requester),
        **more,
    )


_FOREVER = {"starts_at": iso(NOW - timedelta(minutes=5)), "expires_at": iso(NOW + timedelta(days=30))}
SEEDED = (
    _seeded("pending1", "rita", "operator", "pending"),  # waits for votes (a task token is set)
    _seeded("granted1", "rita", "halt", "granted", **_FOREVER),  # rita's live halt grant
    _seeded("granted2", "ann", "operator", "granted", **_FOREVER),  # ann's live operator grant
    _seeded(
        "expired1",
        "mallory",
        "halt",
        "granted",
        starts_at=iso(NOW - timedelta(hours=2)),
        expires_at=iso(NOW - timedelta(hours=1)),
    ),
    _seeded("denied1", "mallory", "operator", "denied"),
)
# Who may halt or resume, and through which request: an emergency session of a live grant.
LIVE_GRANTS = {("granted1", "rita"): "halt", ("granted2", "ann"): "operator"}


class RecordingWriter(AuditWriter):
    """The real writer, remembering every record it reported stored (key and event)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        super().__init__(s3=s3, bucket=bucket)
        self.written: list[tuple[str, AuditEvent]] = []

    def write(self, event: AuditEvent, *, alert: bool = True) -> str:
        key = super().write(event, alert=alert)
        self.written.append((key, event))
        return key


class RecordingFunctions:
    """Step Functions and Lambda as the access API calls them. The halt and resume functions
    parse their payload with the real parser (a bad one is their ConfigError); a reason of
    ``audit-down`` or ``crash`` makes them fail the two other ways the API maps."""

    def __init__(self) -> None:
        self.executions: list[dict[str, Any]] = []
        self.task_successes: list[dict[str, Any]] = []
        self.invocations: list[tuple[str, Any]] = []

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.executions.append(kwargs)
        return {"executionArn": f"arn:aws:states:us-east-1:{ACCOUNT}:execution:wf:{kwargs['name']}"}

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        self.task_successes.append(kwargs)
        return {}

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        payload = json.loads(kwargs["Payload"])
        self.invocations.append((kwargs["FunctionName"], payload))
        answer: Any = {"ok": True}
        failed = False
        if kwargs["FunctionName"] in (HALT_FUNCTION, RESUME_FUNCTION):
            try:
                halt_handler.parse_request(payload, CATALOG)
            except ConfigError as exc:
                answer, failed = {"errorType": "ConfigError", "errorMessage": str(exc)}, True
            else:
                if payload["reason"] == "audit-down":
                    detail = json.dumps({"halted": ["chat"], "not_recorded": True})
                    answer, failed = {"errorType": "HaltAuditError", "errorMessage": detail}, True
                elif payload["reason"] == "crash":
                    answer, failed = {"errorType": "RuntimeError", "errorMessage": "boom"}, True
                else:
                    answer = {"halted": payload["targets"], "mode": payload["mode"]}
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(answer).encode())}
        if failed:
            response["FunctionError"] = "Unhandled"
        return response


def _codes_at(moment: datetime) -> frozenset[str]:
    """Every code some enrolled person's authenticator accepts at ``moment`` (one step of drift)."""
    return frozenset(
        pyotp.TOTP(secret).at(moment + timedelta(seconds=30 * drift))
        for secret in SECRETS.values()
        for drift in (-1, 0, 1)
    )


def _body_as_parsed(event: Any) -> Any:
    """The JSON body the access API will see, or None when it sees none (or cannot parse one)."""
    if not isinstance(event, Mapping):
        return None
    raw = event.get("body") or ""
    try:
        if isinstance(raw, str) and event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8")
        return json.loads(raw) if isinstance(raw, str) and raw.strip() else None
    except (ValueError, RecursionError):
        return None


def _without_correct_codes(event: Any, valid: frozenset[str]) -> tuple[Any, bool]:
    """``event``, with a body ``totp`` that happens to be a correct code replaced by a wrong one.

    The routes read the code as text, or (revoke) as ``str()`` of any value, without spaces.
    """
    body = _body_as_parsed(event)
    if not isinstance(body, dict) or str(body.get("totp")).replace(" ", "") not in valid:
        return event, False
    body["totp"] = next(code for n in range(10**6) if (code := f"{n:06d}") not in valid)
    raw = json.dumps(body)
    if event.get("isBase64Encoded"):
        raw = base64.b64encode(raw.encode("utf-8", "surrogatepass")).decode()
    return {**event, "body": raw}, True


def _verified_name(event: Any) -> str | None:
    """The caller name AWS verified for ``event`` (what every audit record must name), if any."""
    try:
        return caller_from_event(event).name if isinstance(event, Mapping) else None
    except NotAuthenticated:
        return None


_ACCESS_ROUTES = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"[^/]+", pattern) + "/?$"), f"{method} {pattern}")
    for method, pattern in (key.split(" ", 1) for key in access_api.route_keys())
]


def _route_of(event: Any) -> str:
    """The route key ``event`` is for, or "?" (what the access API matches on)."""
    if not isinstance(event, Mapping):
        return "?"
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    http = http if isinstance(http, Mapping) else {}
    path = str(event.get("rawPath") or http.get("path") or "/")
    method = str(http.get("method") or "GET").upper()
    return next((key for m, p, key in _ACCESS_ROUTES if m == method and p.match(path)), "?")


ACCESS_STATUSES = frozenset({200, 201, 400, 401, 403, 404, 405, 409, 413, 429, 502})
# The refusals of a verified person each route audits (by error code), and the record it writes.
AUDITED_REFUSALS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "POST /requests": (frozenset({"rejected", "totp", "not-admitted"}), ("request",)),
    # (not "not-found": an id that is no request id is refused before any vote is cast)
    "POST /requests/{id}/votes": (
        frozenset(access_api._VOTE_STATUS) - {"not-found", "bad-decision"},
        ("approval", "denial"),
    ),
    "POST /requests/{id}/revoke": (frozenset({"totp", "forbidden"}), ("revoke",)),
    "POST /requests/{id}/review": (frozenset({"forbidden"}), ("review",)),
    "POST /waivers": (frozenset({"forbidden"}), ("waiver",)),
    "POST /enrollments": (frozenset({"forbidden"}), ("enrollment",)),
    "DELETE /enrollments/{user}": (frozenset({"forbidden"}), ("enrollment",)),
}


@contextmanager
def access_api_session(tally: Tally) -> Iterator[Callable[[Any], str]]:
    """One emulated account for the whole run, as ``tests/test_access_api.py`` builds it: six
    enrolled people, two tiers, a pending request waiting for votes, two live grants, an expired
    one and a denied one. State (spent codes, lockouts, rate counters) carries over."""
    with mock_aws():
        aws = boto3.session.Session(region_name="us-east-1")
        ddb, kms, s3 = (aws.client(name) for name in ("dynamodb", "kms", "s3"))
        create_table(ddb, "bg")
        s3.create_bucket(Bucket="audit")
        store = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])

        def enroll_people() -> None:
            for user, (principal, roles) in PEOPLE.items():
                store.put_enrollment(Enrollment(user, principal, f"{user}@example.com", roles), SECRETS[user])

        enroll_people()
        admission = Admission(ddb, "bg")
        for record in SEEDED:
            store.put_request(record)
            admission.claim_live(
                record.tier, record.requester, record.request_id, lookup=lambda _: None, now=NOW
            )
            admission.index(
                IndexEntry(record.request_id, record.requested_at, record.requester, record.tier), now=NOW
            )
        store.set_waiting("pending1", "task-token-1", ("ann", "bob"))
        clock = [NOW]
        functions = RecordingFunctions()
        writer = RecordingWriter(s3, "audit")
        deps = access_api.AccessDeps(
            store=store,
            admission=admission,
            audit=writer,
            sfn=functions,
            lambda_client=functions,
            state_machine_arn=f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:wf",
            access_function=ACCESS_FUNCTION,
            halt_function=HALT_FUNCTION,
            resume_function=RESUME_FUNCTION,
            tiers={"halt": _tier("halt"), "operator": _tier("operator")},
            policy=ACCESS_POLICY,
            security_admins=(BOOTSTRAP_ADMIN_ROLE,),
            clock=lambda: clock[0],
        )
        swapped, unrecorded = [0], [0]

        def check(event: Any) -> str:
            clock[0] += ACCESS_STEP
            event, swap = _without_correct_codes(event, _codes_at(clock[0]))
            swapped[0] += swap
            audited, invoked = len(writer.written), len(functions.invocations)
            response = access_api.handle(deps, event)
            assert isinstance(response, dict) and response["statusCode"] in ACCESS_STATUSES, response
            assert response["headers"]["content-type"] == "application/json"
            status, answer = response["statusCode"], json.loads(response["body"])
            # Nothing that needs a correct code happened.
            assert functions.executions == [] and functions.task_successes == [], (
                "started or decided without a code"
            )
            name = _verified_name(event)
            for function, payload in functions.invocations[invoked:]:
                assert function != ACCESS_FUNCTION, "an early revoke without a correct code"
                tier = LIVE_GRANTS.get((payload["request_id"], payload["actor"]))
                assert tier is not None and payload["actor"] == name, payload  # a live grant, the caller's
                assert function == HALT_FUNCTION or ACCESS_POLICY[tier].may_resume
            # Every record names the person AWS verified (or the bootstrap admin), never the body's.
            for _, written in writer.written[audited:]:
                assert name is not None and written.actor in (name, f"admin:{name}"), written
                assert written.event_type != "review" or written.outcome == "failed"
                assert written.event_type != "waiver" or written.outcome == "failed"
                assert written.event_type != "enrollment" or (
                    written.outcome == "failed" or written.actor.startswith("admin:")
                )
            route = _route_of(event)
            if status >= 400:
                error = answer["error"]
                assert set(error) == {"code", "field", "message"} and isinstance(error["code"], str)
                outcome = f"{status} {error['code']}"
                # A refusal the route audits left its record.
                codes, kinds = AUDITED_REFUSALS.get(route, (frozenset(), ()))
                if error["code"] in codes and not any(
                    e.event_type in kinds and e.outcome == "failed" for _, e in writer.written[audited:]
                ):
                    unrecorded[0] += 1
                    raise AssertionError(f"{outcome} on {route}: no audit record")
            else:
                outcome = f"{status} {route}"
            if status < 300 and "/enrollments" in outcome:
                # The bootstrap admin enrolled or removed someone: put the six people back as
                # they were (their secrets are the ones the check knows) and nobody else.
                if answer["user"] not in PEOPLE:
                    store.delete_enrollment(answer["user"])
                enroll_people()
            return outcome

        yield check

        keys: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="audit"):
            keys.update(o["Key"] for o in page.get("Contents", []))
        items: list[dict[str, Any]] = []
        for page in ddb.get_paginator("scan").paginate(TableName="bg"):
            items += [i for i in page["Items"] if i["pk"]["S"].startswith("REQUEST#")]
        records = [store.get_request(i["pk"]["S"][len("REQUEST#") :]) for i in items]
        seeded = {r.request_id: r for r in SEEDED}
        events = [e for _, e in writer.written]
        tally.invariants["requests stored besides the seeded ones"] = len(items) - len(SEEDED)
        tally.invariants["requests whose status changed"] = sum(
            r is None or r.request_id not in seeded or r.status != seeded[r.request_id].status
            for r in records
        )
        tally.invariants["votes counted"] = sum(len(r.approvals) + len(r.denials) for r in records if r)
        tally.invariants["workflow executions started"] = len(functions.executions)
        tally.invariants["grants (workflow resumed with approved)"] = sum(
            json.loads(c["output"])["decision"] == "approved" for c in functions.task_successes
        )
        tally.invariants["early revokes invoked"] = sum(
            f == ACCESS_FUNCTION for f, _ in functions.invocations
        )
        tally.invariants["review verdicts recorded"] = sum(
            e.event_type == "review" and e.outcome != "failed" for e in events
        )
        tally.invariants["enrollments by a person (each needs a code)"] = sum(
            e.event_type == "enrollment" and e.outcome != "failed" and not e.actor.startswith("admin:")
            for e in events
        )
        tally.invariants["halts and resumes invoked by a live emergency session"] = sum(
            f != ACCESS_FUNCTION for f, _ in functions.invocations
        )
        tally.invariants["enrollment changes by the bootstrap admin (undone)"] = sum(
            e.event_type == "enrollment" and e.outcome != "failed" and e.actor.startswith("admin:")
            for e in events
        )
        tally.invariants["correct codes generated (swapped for wrong ones)"] = swapped[0]
        tally.invariants["audit records written"] = len(keys)
        # Every record the writer reported stored is in the bucket: none was lost.
        tally.invariants["audit records lost"] = sum(key not in keys for key, _ in writer.written)
        tally.invariants["audited refusals without their record"] = unrecorded[0]


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each ``(weight, strategy)`` drawn that much more often (``st.one_of``
    alone leans toward whichever branch makes the smallest example)."""
    expanded = [s for weight, s in choices for _ in range(weight)]
    # Drawn by index: a list of strategies would repeat each one's repr, nested, weight times.
    return st.sampled_from(range(len(expanded))).flatmap(lambda i: expanded[i])


# What each route reads from a body, and a well-formed body of it (with a wrong code).
ACCESS_BODIES: dict[str, list[dict[str, Any]]] = {
    "POST /requests": [
        {"tier": "halt", "reason": "the chat model leaks customer data", "duration": "30m", "totp": "000000"},
        {
            "tier": "operator",
            "reason": "rotate the leaked key",
            "duration": "1h",
            "ticket": "INC-1",
            "totp": "000000",
        },
    ],
    "POST /requests/{id}/votes": [
        {"decision": "approve", "totp": "000000"},
        {"decision": "deny", "totp": "000000"},
    ],
    "POST /requests/{id}/revoke": [{"totp": "000000", "reason": "done"}],
    "POST /requests/{id}/review": [
        {"verdict": "accepted", "notes": "", "totp": "000000"},
        {"verdict": "flagged", "notes": "the session listed buckets", "totp": "000000"},
    ],
    "POST /waivers": [
        {"user": "rita", "tier": "operator", "reason": "second incident, review booked", "totp": "000000"},
        {"user": "sec", "tier": "operator", "reason": "my own gate, please", "totp": "000000"},
    ],
    "POST /halts": [{"targets": ["chat"], "mode": "deny-invoke", "reason": "leaking data"}],
    "POST /resumes": [{"targets": "all", "mode": "deny-invoke", "reason": "fixed"}],
    "POST /enrollments": [
        {"user": "una", "principal_arn": _user_arn("una"), "email": "una@example.com", "roles": ["approver"]},
        {
            "user": "ann",
            "principal_arn": _user_arn("mallory"),
            "email": "ann@example.com",
            "roles": ["security"],
            "totp": "000000",
        },
    ],
    "DELETE /enrollments/{user}": [{"totp": "000000"}],
}
totp_codes = st.one_of(
    st.from_regex(r"\A[0-9]{6}\Z"),
    st.integers(0, 999999),
    st.sampled_from(
        ["000000", "12345", "1234567", "123 456", "\u0661\u0662\u0663\u0664\u0665\u0666", "12345\n"]
    ),
)
field_values = st.one_of(
    json_values,
    totp_codes,
    durations,
    st.sampled_from(
        [
            "halt",
            "operator",
            "admin",
            "HALT",
            "approve",
            "deny",
            "Approve",
            "accepted",
            "flagged",
            "rejected",
            "deny-invoke",
            "delete-endpoint",
            "scp",
            "all",
            "audit-down",
            "crash",
            "rita",
            "ann",
            "Ann",
            "aws:x",
            "una",
            "una@example.com",
            "a@b",
            "INC-1",
            _user_arn("una"),
            _user_arn("ann"),
            _session_arn("oncall-ml", "una"),
            ONCALL_ROLE,
        ]
    ),
    st.lists(
        st.sampled_from(["chat", "batch", "other", "responder", "approver", "security", "root"]), max_size=3
    ),
)


def _shaped_bodies(route_key: str) -> st.SearchStrategy[Any]:
    """Bodies for ``route_key``: its well-formed ones, each field replaced or dropped, unknown keys."""
    templates = ACCESS_BODIES.get(route_key)
    if not templates:
        return st.one_of(st.none(), st.just({}), json_values)
    keys = sorted({key for body in templates for key in body})
    return st.one_of(*(events_with([*keys, "requester"], field_values, valid=body) for body in templates))


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()


def _sent(raw: str, b64: bool) -> tuple[str, bool]:
    """``raw`` as API Gateway passes it on: as is, or base64-encoded with the flag set."""
    return (_b64(raw), True) if b64 else (raw, False)


def _nested(depth: int, opener: str) -> str:
    """Valid JSON nested ``depth`` deep (a short repr for a long text)."""
    return opener * depth + "1" + ("]" if opener == "[" else "}") * depth


def _repeated(char: str, times: int) -> str:
    return char * times


# A body as API Gateway hands it over: (body, isBase64Encoded). JSON (plain or base64, as HTTP APIs
# send a binary content type), and what is not JSON: text, bytes that are not UTF-8, nesting
# deeper than a parser recurses, more than the size limit, numbers too long to convert.
raw_bodies = st.one_of(
    st.builds(_sent, text, st.booleans()),
    st.tuples(st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()), st.just(True)),
    st.tuples(text, st.just(True)),  # not base64 at all
    st.builds(
        _sent, st.builds(_nested, st.integers(1, 8000), st.sampled_from(["[", '{"a":'])), st.booleans()
    ),
    st.builds(
        _sent,
        st.builds(_repeated, st.sampled_from(["1", "x", " "]), st.sampled_from([5000, 16385])),
        st.booleans(),
    ),
    st.builds(_sent, st.sampled_from(["NaN", "-Infinity", "null", "[]", '"x"', " ", "{}"]), st.booleans()),
)


def _json_body(value: Any, b64: bool) -> tuple[str, bool]:
    return _sent(json.dumps(value), b64)


def _body_for(route_key: str) -> st.SearchStrategy[tuple[Any, bool]]:
    shaped = st.builds(_json_body, _shaped_bodies(route_key), st.sampled_from([False, False, False, True]))
    return _weighted((6, shaped), (2, raw_bodies), (1, st.tuples(st.none(), st.booleans())))


ACCESS_IDS = [r.request_id for r in SEEDED] + [
    "nosuchreq",
    "a" * 40,
    "a" * 41,
    "Pending1",
    "pending1 ",
    "..%2Fetc",
    "%70ending1",
    "pending1%00",
    "\u0440ending1",  # a Cyrillic er
]
path_ids = _weighted(
    (6, st.sampled_from([r.request_id for r in SEEDED])),
    (2, st.sampled_from(ACCESS_IDS)),
    (1, st.from_regex(r"\A[a-z0-9]{1,40}\Z")),
    (1, text.map(lambda t: quote(t, safe="", errors="surrogatepass"))),
    (1, text),
)
path_users = st.one_of(
    st.sampled_from([*PEOPLE, "una", "Ann", "aws:x", "a", "x" * 65, "ann%00", "..", "\u0430nn"]),
    st.from_regex(r"\A[A-Za-z0-9_+=,.@-]{2,64}\Z"),
    text,
)


def _route_path(route_key: str, request_id: str, user: str, slash: bool) -> tuple[str, str, str]:
    method, pattern = route_key.split(" ", 1)
    path = pattern.replace("{id}", request_id).replace("{user}", user)
    return method, path + ("/" if slash else ""), pattern


JUNK_PATHS = [
    "/",
    "",
    "/prod/whoami",
    "/whoami/x",
    "/requests/pending1/votes/x",
    "/requests//votes",
    "/requests/pending1/approve",
    "/halts/all",
    "/enrollments/",
    "//requests",
    "/REQUESTS",
]
access_methods = st.one_of(
    st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "get", "post", ""]), text
)

# Who AWS says is calling: enrolled people, people nobody enrolled or under another principal,
# emergency sessions of live, expired or unknown grants, the bootstrap admin, junk.
enrolled_callers = st.sampled_from(
    [_user_arn(u) for u in ("rita", "mallory", "ann", "bob", "sec")] + [_session_arn("oncall-ml", "sam")]
)
other_callers = st.one_of(
    st.sampled_from(
        [
            _user_arn("nobody"),
            _user_arn("Ann"),
            _user_arn("team/ann"),
            _user_arn("ann", "210987654321"),
            f"arn:aws-cn:iam::{ACCOUNT}:user/ann",
            _session_arn("oncall-ml", "rita"),
            _session_arn("oncall-ml", "sam", "210987654321"),
            _session_arn("some-role", "ann"),
            _session_arn("AWSReservedSSO_Oncall_0123", "sec"),
            _session_arn("cloud-admin", "ann"),
        ]
    ),
    st.builds(_user_arn, st.from_regex(r"\A[\w+=,.@-]{1,64}\Z")),
    st.builds(_session_arn, st.sampled_from(["oncall-ml", "app"]), st.from_regex(r"\A[\w+=,.@-]{1,64}\Z")),
)
emergency_callers = st.builds(
    _session_arn,
    st.sampled_from(
        [
            "breakglass-emergency-halt",
            "breakglass-emergency-halt",
            "breakglass-emergency-operator",
            "breakglass-emergency-admin",
            "breakglass-emergency-",
            "breakglass-emergency-halt-x",
        ]
    ),
    st.one_of(
        st.sampled_from(["rita", "rita", "ann", "mallory", "sam", "bob", "Rita", "nobody", "aws:x", "a"]),
        st.from_regex(r"\A[\w+=,.@-]{1,64}\Z"),
    ),
)
admin_callers = st.sampled_from(
    [_session_arn("cloud-admin", "jo"), _session_arn("cloud-admin", "aws:x"), BOOTSTRAP_ADMIN_ROLE]
)
malformed_callers = st.one_of(
    st.sampled_from(
        [
            "",
            "*",
            f"arn:aws:iam::{ACCOUNT}:root",
            f"arn:aws:iam::{ACCOUNT}:role/oncall-ml",
            "arn:aws:iam::123:user/ann",
            f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall-ml",
            f"arn:aws:sts::{ACCOUNT}:federated-user/ann",
            _user_arn("ann") + "\n",
            _user_arn("ann") + "/",
            _session_arn("breakglass-emergency-halt", "rita/x"),
        ]
    ),
    _LONG.map(lambda digits: f"arn:aws:iam::{digits}:user/ann"),
    text,
    scalars,
)
callers = _weighted(
    (4, enrolled_callers),
    (3, emergency_callers),
    (2, other_callers),
    (1, admin_callers),
    (1, malformed_callers),
)
# requestContext.authorizer: the IAM context (with noise a caller cannot set but the handler must
# ignore: a source identity naming someone else), or none, or another authorizer's shape.


def _iam_context(arns: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda arn, extra: {"iam": {"userArn": arn, "accountId": ACCOUNT, **extra}},
        arns,
        st.fixed_dictionaries(
            {},
            optional={
                "sourceIdentity": st.sampled_from(["ann", "sec", "rita", ""]),
                "userId": st.sampled_from(["AIDAEXAMPLE", "AROAEXAMPLE:ann"]),
                "callerId": text,
                "principalOrgId": st.none(),
            },
        ),
    )


authorizers = _weighted(
    (8, _iam_context(callers)),
    (1, st.none()),
    (1, st.fixed_dictionaries({}, optional={"iam": json_values, "jwt": json_values, "lambda": json_values})),
    (1, json_values),
)
scope_queries = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"scope": st.one_of(st.sampled_from([*access_api.SCOPES, "everything", "", "ALL"]), text)}
    ),
    st.dictionaries(text, text, max_size=2),
)


def _access_event(
    route: tuple[str, str, str], authorizer: Any, body: tuple[Any, bool], query: Any, request_id: str
) -> dict[str, Any]:
    method, path, pattern = route
    context: dict[str, Any] = {
        "accountId": ACCOUNT,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
        "requestId": "fuzz",
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {pattern}",
        "rawPath": path,
        "requestContext": context,
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": body[1],
    }
    if "{id}" in pattern:
        event["pathParameters"] = {"id": request_id}
    if body[0] is not None:
        event["body"] = body[0]
    if query is not None:
        event["queryStringParameters"] = query
    return event


# Who each route is for (the deep paths): whoever it serves, and those it must refuse.
ROUTE_CALLERS: dict[str, list[str]] = {
    "POST /requests": [
        _user_arn("rita"),
        _user_arn("mallory"),
        _user_arn("ann"),
        _session_arn("oncall-ml", "sam"),
    ],
    "POST /requests/{id}/votes": [_user_arn("ann"), _user_arn("bob"), _user_arn("rita"), _user_arn("sec")],
    "POST /requests/{id}/revoke": [
        _user_arn("rita"),
        _user_arn("ann"),
        _user_arn("sec"),
        _user_arn("mallory"),
    ],
    "POST /requests/{id}/review": [_user_arn("sec"), _user_arn("ann"), _user_arn("rita")],
    "POST /waivers": [_user_arn("sec"), _user_arn("ann"), _user_arn("rita")],
    "POST /halts": [
        _session_arn("breakglass-emergency-halt", "rita"),
        _session_arn("breakglass-emergency-operator", "ann"),
        _session_arn("breakglass-emergency-halt", "mallory"),
        _session_arn("breakglass-emergency-halt", "ann"),
    ],
    "POST /resumes": [
        _session_arn("breakglass-emergency-operator", "ann"),
        _session_arn("breakglass-emergency-halt", "rita"),
        _session_arn("breakglass-emergency-operator", "rita"),
    ],
    "POST /enrollments": [_user_arn("sec"), _session_arn("cloud-admin", "jo"), _user_arn("ann")],
    "DELETE /enrollments/{user}": [_user_arn("sec"), _session_arn("cloud-admin", "jo"), _user_arn("bob")],
}


# The requests each route can act on: votes wait on pending1; revoke and review need a grant.
ROUTE_IDS: dict[str, list[str]] = {
    "POST /requests/{id}/votes": ["pending1"],
    "POST /requests/{id}/revoke": ["granted1", "granted2", "expired1"],
    "POST /requests/{id}/review": ["granted1", "granted2", "expired1"],
}


def _route_request(route_key: str) -> st.SearchStrategy[dict[str, Any]]:
    """A request on ``route_key``, by a caller it is for (or must refuse) or any caller at all."""
    meant_for = ROUTE_CALLERS.get(route_key)
    return st.builds(
        _access_event,
        st.builds(
            _route_path,
            st.just(route_key),
            _weighted((1, st.sampled_from(ROUTE_IDS[route_key])), (1, path_ids))
            if route_key in ROUTE_IDS
            else path_ids,
            path_users,
            st.sampled_from([False] * 7 + [True]),
        ),
        _weighted((1, _iam_context(st.sampled_from(meant_for))), (1, authorizers))
        if meant_for
        else authorizers,
        _body_for(route_key),
        scope_queries,
        st.sampled_from(ACCESS_IDS),
    )


routed_requests = st.sampled_from(access_api.route_keys()).flatmap(_route_request)
# The route's own body under another method or path: method handling and junk routes.
misrouted_requests = st.builds(
    _access_event,
    st.builds(lambda m, p: (m, p, p), access_methods, st.one_of(st.sampled_from(JUNK_PATHS), text)),
    authorizers,
    st.sampled_from(sorted(ACCESS_BODIES)).flatmap(_body_for),
    scope_queries,
    st.sampled_from(ACCESS_IDS),
)
# Not the shape API Gateway sends: any part missing or of the wrong type.
malformed_access_events = events_with(
    ["version", "routeKey", "rawPath", "requestContext", "body", "isBase64Encoded", "queryStringParameters"],
    valid={
        "version": "2.0",
        "rawPath": "/whoami",
        "requestContext": {
            "http": {"method": "GET", "path": "/whoami"},
            "authorizer": {"iam": {"userArn": _user_arn("ann")}},
        },
        "body": '{"totp": "000000"}',
        "isBase64Encoded": False,
    },
)
# Weighted toward the routes: 8 in 10 routed requests, 1 misrouted, 1 malformed event.
access_events = _weighted((8, routed_requests), (1, misrouted_requests), (1, malformed_access_events))


def _access_request(route_key: str, caller: str, request_id: str = "pending1", n: int = 0) -> dict[str, Any]:
    method, path, pattern = _route_path(route_key, request_id, "ann", False)
    body = ACCESS_BODIES[route_key][n] if route_key in ACCESS_BODIES else {}
    return _access_event(
        (method, path, pattern), {"iam": {"userArn": caller}}, _json_body(body, False), None, request_id
    )


# Each route's well-formed body from the caller it is meant for (with wrong codes), tried first.
ACCESS_EXAMPLES = (
    _access_request("GET /whoami", _user_arn("ann")),
    _access_request("POST /requests", _user_arn("rita"), n=1),
    _access_request("POST /requests", _user_arn("mallory")),
    _access_request("GET /requests/{id}", _user_arn("bob")),
    _access_request("POST /requests/{id}/votes", _user_arn("ann")),
    _access_request("POST /requests/{id}/votes", _user_arn("rita")),
    _access_request("POST /requests/{id}/revoke", _user_arn("rita"), "granted1"),
    _access_request("POST /requests/{id}/review", _user_arn("sec"), "granted1"),
    _access_request("POST /waivers", _user_arn("sec")),
    _access_request("POST /waivers", _user_arn("sec"), n=1),
    _access_request("POST /waivers", _user_arn("ann")),
    _access_request("POST /halts", _session_arn("breakglass-emergency-halt", "rita")),
    _access_request("POST /resumes", _session_arn("breakglass-emergency-operator", "ann")),
    _access_request("POST /resumes", _session_arn("breakglass-emergency-halt", "rita")),
    _access_request("POST /enrollments", _user_arn("sec"), n=1),
    _access_request("POST /enrollments", _session_arn("cloud-admin", "jo")),
    _access_request("DELETE /enrollments/{user}", _user_arn("sec")),
)


SEALED_ROLE = "arn:aws:iam::123456789012:role/breakglass-sealed"


def _check_sealed_event(value: Any) -> str:
    try:
        use = sealed_use.parse_event(value, role_arn=SEALED_ROLE)
    except ConfigError as exc:
        return refusal(exc)
    assert use.request_id.startswith("s") and use.outcome in ("succeeded", "failed")
    return "accepted"


SEALED_DETAIL = {
    "eventName": "AssumeRole",
    "eventTime": "2026-12-01T02:13:00Z",
    "eventID": "0b8a3c1e",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/bg", "userName": "bg"},
    "requestParameters": {"roleArn": SEALED_ROLE, "roleSessionName": "bg"},
    "responseElements": {"credentials": {"expiration": "Dec 1, 2026, 3:13:00 AM"}},
    "errorCode": "AccessDenied",
    "additionalEventData": {"MFAUsed": "Yes"},
}
sealed_details = events_with(list(SEALED_DETAIL), valid=SEALED_DETAIL)
sealed_events = events_with(
    ["detail-type", "detail", "id"],
    st.one_of(sealed_details, json_values, st.sampled_from(["AWS Console Sign In via CloudTrail"])),
    valid={"detail-type": "AWS API Call via CloudTrail", "detail": SEALED_DETAIL, "id": "e1"},
)
# The valid event with one field of its detail replaced or dropped (the deepest paths).
sealed_events = st.one_of(
    sealed_events,
    st.builds(
        lambda d: {"detail-type": "AWS API Call via CloudTrail", "detail": d, "id": "e1"}, sealed_details
    ),
)


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("approval API (make_handler)", api_events, approval_api_session, API_EXAMPLES),
        Target("access API (handle)", access_events, access_api_session, ACCESS_EXAMPLES),
        Target("parse_duration", durations, lambda _: _pure(_check_duration)),
        Target("AccessRequest.from_input", access_requests, lambda _: _pure(_check_access_request)),
        Target("TierApproval.from_dict", tier_approvals, lambda _: _pure(_check_tier_approval)),
        Target("parse_policy", policies, lambda _: _pure(_check_policy)),
        Target("halt parse_request", halt_requests, lambda _: _pure(_check_halt_request)),
        Target("halt parse_tripwire", tripwires, lambda _: _pure(_check_tripwire)),
        Target("grants.Grant.from_event", grant_events, lambda _: _pure(_check_grant)),
        Target("EarlyRevokeRequest.parse", revoke_events, lambda _: _pure(_check_early_revoke)),
        Target("links.verify_link", tokens, lambda _: _pure(_check_link)),
        Target("sealed parse_event", sealed_events, lambda _: _pure(_check_sealed_event)),
    )
}
