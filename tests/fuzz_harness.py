"""Property-based fuzzing of every handler's event parsing and of the approval API (finding 12).

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
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
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

from breakglass.lambdas.access import early_revoke, grants
from breakglass.lambdas.approvals import requests
from breakglass.lambdas.approvals.api import ApprovalDeps, make_handler
from breakglass.lambdas.approvals.links import LinkRejected, sign_link, verify_link
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, Store, create_table
from breakglass.lambdas.audit.events import AuditWriter
from breakglass.lambdas.halt import handler as halt_handler
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
        requests.AccessRequest.from_input(data, request_id=request_id)
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
            "requester": "alice",
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

TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("approval API (make_handler)", api_events, approval_api_session, API_EXAMPLES),
        Target("parse_duration", durations, lambda _: _pure(_check_duration)),
        Target("AccessRequest.from_input", access_requests, lambda _: _pure(_check_access_request)),
        Target("TierApproval.from_dict", tier_approvals, lambda _: _pure(_check_tier_approval)),
        Target("parse_policy", policies, lambda _: _pure(_check_policy)),
        Target("halt parse_request", halt_requests, lambda _: _pure(_check_halt_request)),
        Target("halt parse_tripwire", tripwires, lambda _: _pure(_check_tripwire)),
        Target("grants.Grant.from_event", grant_events, lambda _: _pure(_check_grant)),
        Target("EarlyRevokeRequest.parse", revoke_events, lambda _: _pure(_check_early_revoke)),
        Target("links.verify_link", tokens, lambda _: _pure(_check_link)),
    )
}
