"""One incident (one request) reconstructed from a local copy of the audit bucket.

Built from the same data the named queries return, run offline by
:class:`breakglass.local.athena.LocalBucket`: the request's own events (the events table), and the
named queries ``approvals``, ``halts``, ``unreviewed_events``, ``emergency_sessions``,
``session_actions`` and ``access_outside_grants``, each narrowed to this request.

Which CloudTrail calls belong to the incident: calls by emergency-role sessions carrying the
requester's source identity, from the request until the requester's next request (or, without
one, one day after the window ended). A call counts as outside the window when
``access_outside_grants`` returns it, i.e. it lies outside every granted window of that person.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from breakglass.cli.errors import BadInput, CliError
from breakglass.contracts import iso
from breakglass.local.athena import LocalBucket, QueryResult
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX
from breakglass.policies.queries import (
    CLOUDTRAIL_TABLE,
    EVENTS_ONCE,
    QueryError,
    sql_literal,
)
from breakglass.validation import ConfigError

REQUEST_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
# Calls after the window still belong to the incident for this long (when no later request exists).
TRAILING_PERIOD = timedelta(days=1)
# How many extensions of one request the report follows (a tier's cap keeps chains far shorter).
MAX_EXTENSIONS = 672


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Vote:
    decision: str  # approval | denial
    approver: str
    at: str
    outcome: str
    self_approval: bool
    reason: str | None = None


@dataclass(frozen=True)
class Call:
    """One CloudTrail record of the incident: an AssumeRole of the emergency role or a session call."""

    kind: str  # assume | call
    at: str
    event_source: str
    event_name: str
    aws_region: str | None
    error_code: str | None
    source_ip: str | None
    event_id: str
    principal_arn: str | None = None
    outside_window: bool = False
    mfa: bool | None = None

    @property
    def service(self) -> str:
        return self.event_source.removesuffix(".amazonaws.com")


@dataclass(frozen=True)
class HaltAction:
    action: str  # halt | resume
    target: str
    mode: str | None
    outcome: str
    actor: str
    at: str
    reason: str | None
    details: str | None


@dataclass(frozen=True)
class Review:
    outcome: str  # opened | accepted | flagged
    actor: str
    at: str
    notes: str | None


@dataclass(frozen=True)
class Finding:
    severity: str  # high | medium | info
    kind: str
    title: str
    at: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Window:
    """A window that extends the incident's: its own request, grant and end."""

    request_id: str
    start: str
    expires_at: str
    end: str  # the expiry, or an earlier revoke or expiry event
    ended_by: str | None = None


@dataclass
class Incident:
    request_id: str
    requester: str | None
    tier: str | None
    status: str
    reason: str | None
    ticket: str | None
    requested_at: str | None
    role_arn: str | None = None
    granted_at: str | None = None
    window_start: str | None = None
    expires_at: str | None = None
    ended_at: str | None = None
    ended_by: str | None = None  # revoke | expiry
    ended_actor: str | None = None
    ended_reason: str | None = None
    votes: list[Vote] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    halts: list[HaltAction] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    period: tuple[str, str] | None = None
    queries: dict[str, int] = field(default_factory=dict)  # named query -> rows it returned
    notes: list[str] = field(default_factory=list)
    extensions: list[Window] = field(default_factory=list)  # later windows, in order

    @property
    def window_end(self) -> str | None:
        """When access really ended: the expiry, cut short by an earlier revoke or expiry event."""
        if self.expires_at and self.ended_at:
            return min(self.expires_at, self.ended_at, key=parse_time)
        return self.expires_at or self.ended_at

    def windows(self) -> list[tuple[str, str]]:
        """Every granted window of the incident (its own, then its extensions'), as (start, end)."""
        own = [(self.window_start, self.window_end)] if self.window_start and self.window_end else []
        return [*own, *((w.start, w.end) for w in self.extensions)]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_end"] = self.window_end
        data["windows"] = self.windows()
        data["period"] = list(self.period) if self.period else None
        return data


def _records(result: QueryResult, **equal: Any) -> list[dict[str, Any]]:
    return [r for r in result.records() if all(r.get(k) == v for k, v in equal.items())]


def _first(events: Sequence[Mapping[str, Any]], event_type: str, **equal: Any) -> Mapping[str, Any] | None:
    for event in events:
        if event.get("event_type") == event_type and all(event.get(k) == v for k, v in equal.items()):
            return event
    return None


def _is_emergency_role(arn: str | None) -> bool:
    return bool(arn) and str(arn).rsplit("/", 1)[-1].startswith(EMERGENCY_ROLE_PREFIX)


def build_incident(bucket: LocalBucket, request_id: str) -> Incident:
    """The incident of ``request_id`` in the local copy (:class:`CliError` if it has no events).

    An incident is a whole chain of windows: asked for an extension, the report walks back to the
    chain's first window and shows every window from there."""
    if not re.fullmatch(REQUEST_ID_PATTERN, request_id):
        raise BadInput(
            f"{request_id!r} is not a request id", hint="use the id break-glass printed, e.g. req-0001"
        )
    rows = _chain_rows(bucket)
    first = _first_window(rows, request_id)
    incident = _incident(bucket, first, rows)
    if first != request_id:
        incident.notes.append(
            f"{request_id} extends an earlier window: the report covers its whole chain, from {first}"
        )
    return incident


def _incident(bucket: LocalBucket, request_id: str, chain_rows: Sequence[Mapping[str, Any]]) -> Incident:
    literal = sql_literal(request_id)
    events_result = bucket.run_sql(
        f"SELECT * FROM {EVENTS_ONCE} AS events WHERE request_id = {literal} ORDER BY event_time, event_id",
        name="request_events",
    )
    events = events_result.records()
    if not events:
        raise CliError(
            f"no events for request {request_id!r} in {bucket.root}",
            hint="check the id (`breakglass audit query approvals --local DIR` lists requests) "
            "or sync the days of the incident",
        )
    request = _first(events, "request")
    base = request or events[0]
    incident = Incident(
        request_id=request_id,
        requester=base.get("requester") or next((e["requester"] for e in events if e.get("requester")), None),
        tier=base.get("tier") or next((e["tier"] for e in events if e.get("tier")), None),
        status="pending",
        reason=request.get("reason") if request else None,
        ticket=(request.get("ticket") if request else None)
        or next((e["ticket"] for e in events if e.get("ticket")), None),
        requested_at=request.get("event_time") if request else None,
        events=[{k: v for k, v in e.items() if k != "dt"} for e in events],
    )
    incident.queries["request_events"] = len(events)

    grant = _first(events, "grant", outcome="succeeded") or _first(events, "grant", outcome="noop")
    if grant:
        incident.granted_at = grant.get("event_time")
        incident.window_start = grant.get("window_start") or grant.get("event_time")
        incident.expires_at = grant.get("expires_at")
        incident.role_arn = grant.get("role_arn")
    ends = [e for e in events if e.get("event_type") in ("revoke", "expiry")]
    if ends:
        end = min(ends, key=lambda e: parse_time(str(e["event_time"])))
        incident.ended_at = end.get("event_time")
        incident.ended_by = end.get("event_type")
        incident.ended_actor = end.get("actor")
        incident.ended_reason = end.get("reason")

    approvals = bucket.run_named("approvals")
    rows = _records(approvals, request_id=request_id)
    incident.queries["approvals"] = len(rows)
    reasons = {(e.get("actor"), e.get("event_time")): e.get("reason") for e in events}
    incident.votes = [
        Vote(
            decision=r["decision"],
            approver=r["approver"],
            at=r["decided_at"],
            outcome=r["outcome"],
            self_approval=bool(r["self_approval"]),
            reason=reasons.get((r["approver"], r["decided_at"])),
        )
        for r in rows
    ]

    incident.extensions = _extensions(chain_rows, request_id)
    # A halt is recorded under the request whose window holds the moment: any window of the chain.
    chain = {request_id, *(w.request_id for w in incident.extensions)}
    halts = bucket.run_named("halts")
    rows = [r for r in halts.records() if r.get("request_id") in chain]
    incident.queries["halts"] = len(rows)
    incident.halts = sorted(
        (
            HaltAction(
                action=r["action"],
                target=r["target"],
                mode=r["mode"],
                outcome=r["outcome"],
                actor=r["actor"],
                at=r["event_time"],
                reason=r["reason"],
                details=r["details"] if r["details"] not in (None, "{}") else None,
            )
            for r in rows
        ),
        key=lambda h: (parse_time(h.at), h.target),
    )

    incident.reviews = [
        Review(e["outcome"], e["actor"], e["event_time"], e.get("reason"))
        for e in events
        if e.get("event_type") == "review"
    ]
    unreviewed = _records(bucket.run_named("unreviewed_events"), request_id=request_id)
    incident.queries["unreviewed_events"] = len(unreviewed)

    incident.status = _status(incident, events)
    _add_cloudtrail(bucket, incident, events)
    incident.findings = _findings(incident, unreviewed)
    return incident


def _chain_rows(bucket: LocalBucket) -> list[Mapping[str, Any]]:
    """Every grant, revoke and expiry event, with the request each successful grant extends
    (``extends``, from its details; None for a first window)."""
    rows = bucket.run_sql(
        f"SELECT request_id, event_type, event_time, window_start, expires_at, outcome, details "
        f"FROM {EVENTS_ONCE} AS events WHERE event_type IN ('grant', 'revoke', 'expiry') "
        "ORDER BY event_time, event_id",
        name="extension_windows",
    ).records()
    found: list[Mapping[str, Any]] = []
    for row in rows:
        try:
            details = json.loads(str(row.get("details") or "{}"))
        except ValueError:
            details = {}
        parent = details.get("extends") if isinstance(details, dict) else None
        found.append({**row, "extends": parent if isinstance(parent, str) else None})
    return found


def _granted(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The first successful grant of each request."""
    grants: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if row["event_type"] == "grant" and row["outcome"] in ("succeeded", "noop"):
            grants.setdefault(str(row["request_id"]), row)
    return grants


def _first_window(rows: Sequence[Mapping[str, Any]], request_id: str) -> str:
    """The request whose window opened ``request_id``'s chain (itself for a first window)."""
    grants = _granted(rows)
    current, seen = request_id, {request_id}
    while (parent := (grants.get(current) or {}).get("extends")) and parent not in seen:
        if len(seen) > MAX_EXTENSIONS:
            break
        seen.add(parent)
        current = parent
    return current


def _extensions(rows: Sequence[Mapping[str, Any]], request_id: str) -> list[Window]:
    """Every window granted after ``request_id``'s in its chain, by start: each successful grant
    naming a request of the chain, recursively. Not only the first one naming it: an extension
    revoked before it opened may be followed by another extension of the same window."""
    grants = _granted(rows)
    children: dict[str, list[str]] = {}
    for child, grant in grants.items():
        if grant["extends"]:
            children.setdefault(str(grant["extends"]), []).append(child)
    chain: list[str] = []
    todo = list(children.get(request_id, []))
    while todo and len(chain) < MAX_EXTENSIONS:
        current = todo.pop(0)
        if current in chain or current == request_id:
            continue
        chain.append(current)
        todo.extend(children.get(current, []))
    windows: list[Window] = []
    for current in chain:
        grant = grants[current]
        ends = [r for r in rows if r["request_id"] == current and r["event_type"] in ("revoke", "expiry")]
        end = min(ends, key=lambda r: parse_time(str(r["event_time"])), default=None)
        start, expires = str(grant["window_start"]), str(grant["expires_at"])
        # Revoked before it opened: an empty window at its start, never one that ends before it.
        closed = (
            max(start, min(expires, str(end["event_time"]), key=parse_time), key=parse_time)
            if end
            else expires
        )
        windows.append(
            Window(
                request_id=current,
                start=start,
                expires_at=expires,
                end=closed,
                ended_by=str(end["event_type"]) if end else None,
            )
        )
    return sorted(windows, key=lambda w: (parse_time(w.start), parse_time(w.end)))


def _status(incident: Incident, events: Sequence[Mapping[str, Any]]) -> str:
    if _first(events, "denial"):
        return "denied"
    if incident.ended_by == "revoke":
        return "revoked"
    if incident.ended_by == "expiry":
        return "expired"
    if incident.granted_at:
        return "granted"
    return "pending"


def _period(bucket: LocalBucket, incident: Incident) -> tuple[str, str] | None:
    times = [parse_time(str(e["event_time"])) for e in incident.events]
    if not times or not incident.requester:
        return None
    start = parse_time(incident.requested_at) if incident.requested_at else min(times)
    later = bucket.run_sql(
        f"SELECT min(event_time) AS next_request FROM {EVENTS_ONCE} AS events "
        f"WHERE event_type = 'request' AND requester = {sql_literal(incident.requester)} "
        f"AND event_time > {sql_literal(iso(start))}",
        name="next_request",
    ).rows
    next_request = later[0][0] if later and later[0][0] else None
    if next_request:
        end = parse_time(next_request) - timedelta(seconds=1)
    else:
        ends = [parse_time(end) for _, end in incident.windows()]
        anchor = max(ends) if ends else max(times)
        end = anchor + TRAILING_PERIOD
    return iso(start), iso(end)


def _add_cloudtrail(bucket: LocalBucket, incident: Incident, events: Sequence[Mapping[str, Any]]) -> None:
    if not bucket.tables[CLOUDTRAIL_TABLE].files:
        incident.notes.append("the local copy holds no CloudTrail logs: no API calls are shown")
        return
    period = _period(bucket, incident)
    if period is None or incident.requester is None:
        return
    incident.period = period
    start, end = (parse_time(t) for t in period)

    def in_period(value: str | None) -> bool:
        return value is not None and start <= parse_time(value) <= end

    sessions = [
        r
        for r in bucket.run_named("emergency_sessions").records()
        if r.get("source_identity") == incident.requester and in_period(r.get("event_time"))
    ]
    incident.queries["emergency_sessions"] = len(sessions)
    outside_rows = [
        r
        for r in bucket.run_named("access_outside_grants").records()
        if r.get("source_identity") == incident.requester and in_period(r.get("event_time"))
    ]
    incident.queries["access_outside_grants"] = len(outside_rows)
    outside = {r["event_id"] for r in outside_rows}
    try:
        actions = bucket.run_named(
            "session_actions", {"source_identity": incident.requester, "start": period[0], "end": period[1]}
        ).records()
    except (QueryError, ConfigError) as exc:
        incident.notes.append(f"session calls not shown: {exc}")
        actions = []
    actions = [a for a in actions if _is_emergency_role(a.get("role_arn"))]
    incident.queries["session_actions"] = len(actions)
    calls = [
        Call(
            kind="assume",
            at=r["event_time"],
            event_source="sts.amazonaws.com",
            event_name="AssumeRole",
            aws_region=r.get("aws_region"),
            error_code=r.get("error_code"),
            source_ip=r.get("source_ip"),
            event_id=r["event_id"],
            principal_arn=r.get("caller_arn"),
            mfa=r.get("mfa"),
        )
        for r in sessions
    ]
    calls += [
        Call(
            kind="call",
            at=a["event_time"],
            event_source=a["event_source"],
            event_name=a["event_name"],
            aws_region=a.get("aws_region"),
            error_code=a.get("error_code"),
            source_ip=a.get("source_ip"),
            event_id=a["event_id"],
            principal_arn=a.get("principal_arn"),
            outside_window=a["event_id"] in outside or _after_the_window(incident, a["event_time"]),
        )
        for a in actions
    ]
    incident.calls = sorted(calls, key=lambda c: (parse_time(c.at), c.event_id))


def _after_the_window(incident: Incident, at: str) -> bool:
    """A call outside this incident's window, refused or not: access_outside_grants lists only
    the calls that got through; an attempt after the end belongs in the report too."""
    windows = incident.windows()
    if not windows:
        return False
    moment = parse_time(at)
    return not any(parse_time(start) <= moment < parse_time(end) for start, end in windows)


def _findings(incident: Incident, unreviewed: Sequence[Mapping[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    for vote in incident.votes:
        if vote.self_approval:
            findings.append(
                Finding(
                    "high",
                    "self-approval",
                    f"{vote.approver} approved their own request",
                    vote.at,
                    f"recorded outcome: {vote.outcome}; the requester can never decide their own request, "
                    "so confirm this vote was not counted",
                )
            )
    for call in incident.calls:
        if call.outside_window:
            findings.append(
                Finding(
                    "high",
                    "outside-window",
                    f"{call.event_name} ({call.service}) outside the granted window",
                    call.at,
                    f"window {incident.window_start or '?'} to {incident.window_end or '?'}; "
                    f"result: {call.error_code or 'succeeded'}",
                )
            )
    for call in incident.calls:
        if call.error_code:
            what = (
                "AssumeRole of the emergency role"
                if call.kind == "assume"
                else f"{call.event_name} ({call.service})"
            )
            findings.append(Finding("medium", "failed-call", f"{what} failed: {call.error_code}", call.at))
    for halt in incident.halts:
        if halt.outcome == "failed":
            findings.append(
                Finding(
                    "medium", "failed-halt", f"{halt.action} of {halt.target} failed", halt.at, halt.details
                )
            )
    for row in unreviewed:
        findings.append(
            Finding(
                "medium",
                "unreviewed",
                "the post-event review was opened and never signed off",
                row.get("review_opened_at"),
                "an auditor signs it off with a verdict (accepted or flagged)",
            )
        )
    for review in incident.reviews:
        if review.outcome == "flagged":
            findings.append(
                Finding(
                    "high", "flagged", f"the review was flagged by {review.actor}", review.at, review.notes
                )
            )
    if incident.granted_at and not incident.ended_at:
        findings.append(
            Finding(
                "info",
                "open",
                "no revoke or expiry in this copy: the grant is still active or the copy is incomplete",
                incident.expires_at,
            )
        )
    order = {"high": 0, "medium": 1, "info": 2}
    return sorted(
        findings,
        key=lambda f: (order[f.severity], parse_time(f.at) if f.at else datetime.max.replace(tzinfo=UTC)),
    )
