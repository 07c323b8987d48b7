"""Grant and revoke time-bound access to an emergency role (service code; imports no pulumi).

A grant edits two documents of the tier's role: one statement in the trust policy (who may assume,
as whom, until when) and one expiry guard in the role's inline guard policy (that grant's
sessions die at expiry). Each grant has its own statements, with ids derived from the request id,
so two responders can hold one tier with different windows and revoking one never touches the
other. See :mod:`breakglass.policies.emergency_role` for the documents themselves.

Order of writes: the guard before the trust on grant (no session can exist without its expiry
guard), trust removal before the early-revoke guard is relied on (the guard covers sessions
issued up to a margin after the revoke). The audit event is written before success is reported;
if it cannot be written, a grant is rolled back (access without a record must not exist) and a
revoke is not (undoing a revoke would restore access); both raise.

IAM has no conditional writes: two grant or revoke calls on the same role at the same instant can
lose one's edit. Callers serialize per role (the workflow runs grant and revoke one at a time per
tier); a lost edit would show as a missing statement when the result is checked.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

from breakglass.contracts import ENV_TIERS, MAX_SESSION_SECONDS, MAX_WINDOW_SECONDS, MIN_SESSION_SECONDS, iso
from breakglass.lambdas.audit.events import AuditEvent, AuditWriteError, AuditWriter
from breakglass.policies.documents import PolicySizeError, check_size, policy_size
from breakglass.policies.emergency_role import (
    EXPIRY_SID_PREFIX,
    GRANT_SID_PREFIX,
    GUARD_POLICY_NAME,
    INLINE_POLICIES_MAX_CHARS,
    LOCKED_SID,
    REVOKE_SID_PREFIX,
    TRUST_POLICY_MAX_CHARS,
    early_revoke_deny_statement,
    expiry_deny_statement,
    grant_trust_sids,
    grant_trust_statements,
    guard_policy,
    guard_relevant_until,
    statement_id,
    trust_policy,
)
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG, emergency_role_name
from breakglass.validation import (
    IAM_ROLE_OR_USER_ARN,
    REQUEST_ID,
    REQUEST_ID_HINT,
    RESOURCE_NAME,
    RESOURCE_NAME_HINT,
    USER_ID,
    USER_ID_HINT,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
)

MAX_TRUST_POLICY_CHARS: Final = 4096  # the highest quota AWS grants
# Guards are kept this long after they could last match a session (clock skew, IAM propagation).
GUARD_PRUNE_MARGIN: Final = timedelta(hours=1)
ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+"
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


class GrantError(ConfigError):
    """Bad input for a grant or revoke; the message names the field; nothing was changed."""


class WindowTooShortError(GrantError):
    """Less than the shortest AWS session remains of the window: no session can be issued."""


@dataclass(frozen=True)
class Tier:
    """One emergency role's runtime settings (what grant, revoke and assume need to know)."""

    name: str
    role_name: str
    role_arn: str
    max_session_seconds: int
    max_window_seconds: int
    require_mfa: bool
    allowed_requesters: tuple[str, ...]
    max_mfa_age_seconds: int | None = None
    # The account's role trust policy quota (2048 by default; AWS raises it to 4096 on request).
    trust_policy_max_chars: int = TRUST_POLICY_MAX_CHARS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_requesters"] = list(self.allowed_requesters)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tier:
        data = require_mapping("tier", data)
        reject_unknown_keys("", data, [f.name for f in fields(cls)])
        name = require_str("name", data.get("name"), pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT)
        role_name = require_str("role_name", data.get("role_name"))
        if role_name != emergency_role_name(name):
            raise ConfigError("role_name", f"must be {emergency_role_name(name)!r} for tier {name!r}")
        role_arn = require_str(
            "role_arn", data.get("role_arn"), pattern=ROLE_ARN, hint="must be an IAM role ARN"
        )
        if not role_arn.endswith(f"/{role_name}"):
            raise ConfigError("role_arn", f"{role_arn!r} is not the ARN of role {role_name!r}")
        mfa_age = data.get("max_mfa_age_seconds")
        trust_quota = data.get("trust_policy_max_chars", TRUST_POLICY_MAX_CHARS)
        return cls(
            name=name,
            role_name=role_name,
            role_arn=role_arn,
            max_session_seconds=require_int(
                "max_session_seconds",
                data.get("max_session_seconds"),
                minimum=MIN_SESSION_SECONDS,
                maximum=MAX_SESSION_SECONDS,
            ),
            max_window_seconds=require_int(
                "max_window_seconds",
                data.get("max_window_seconds"),
                minimum=MIN_SESSION_SECONDS,
                maximum=MAX_WINDOW_SECONDS,
            ),
            require_mfa=require_bool("require_mfa", data.get("require_mfa")),
            allowed_requesters=require_str_list(
                "allowed_requesters",
                data.get("allowed_requesters"),
                pattern=IAM_ROLE_OR_USER_ARN,
                allow_empty=False,
                hint="must be an IAM role or user ARN (or an assumed-role session ARN)",
            ),
            max_mfa_age_seconds=None
            if mfa_age is None
            else require_int("max_mfa_age_seconds", mfa_age, minimum=60, maximum=129600),
            trust_policy_max_chars=require_int(
                "trust_policy_max_chars",
                trust_quota,
                minimum=TRUST_POLICY_MAX_CHARS,
                maximum=MAX_TRUST_POLICY_CHARS,
            ),
        )


def load_tiers(environ: Mapping[str, str] | None = None) -> dict[str, Tier]:
    """The tiers a grant Lambda serves, from ``BREAKGLASS_TIERS`` (``{name: Tier.to_dict()}``)."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_TIERS, "")
    if not raw:
        raise ConfigError(ENV_TIERS, "is not set: the function is misconfigured")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(ENV_TIERS, f"is not valid JSON: {exc}") from exc
    data = require_mapping(ENV_TIERS, data)
    tiers: dict[str, Tier] = {}
    for key, value in data.items():
        try:
            tier = Tier.from_dict(value)
        except ConfigError as exc:
            raise ConfigError(f"{ENV_TIERS}.{key}.{exc.field}", exc.problem) from exc
        if tier.name != key:
            raise ConfigError(f"{ENV_TIERS}.{key}.name", f"must equal its key {key!r}, got {tier.name!r}")
        tiers[key] = tier
    return tiers


def parse_timestamp(field_name: str, value: Any) -> datetime:
    text = require_str(field_name, value)
    if not _TIMESTAMP.fullmatch(text):
        raise GrantError(
            field_name, f"must be an ISO 8601 UTC time such as 2025-01-31T09:30:00Z, got {text!r}"
        )
    try:
        return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise GrantError(field_name, f"is not a real date and time: {text!r}") from exc


@dataclass(frozen=True)
class Grant:
    """Time-bound access to one tier for one person through one principal."""

    request_id: str
    tier: str
    requester_arn: str  # the principal that will call sts:AssumeRole
    source_identity: str  # the person (sts:SourceIdentity), e.g. "alice"
    starts_at: datetime  # tz-aware UTC
    expires_at: datetime

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Grant:
        """Parse the Grant fields of a workflow event (other keys, e.g. ``reason``, are ignored)."""
        event = require_mapping("event", event)
        try:
            g = cls(
                request_id=require_str(
                    "request_id", event.get("request_id"), pattern=REQUEST_ID, hint=REQUEST_ID_HINT
                ),
                tier=require_str("tier", event.get("tier"), pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT),
                requester_arn=require_str(
                    "requester_arn",
                    event.get("requester_arn"),
                    pattern=IAM_ROLE_OR_USER_ARN,
                    hint="must be an IAM role or user ARN",
                ),
                source_identity=require_str(
                    "source_identity",
                    event.get("source_identity"),
                    pattern=USER_ID,
                    hint=USER_ID_HINT,
                ),
                starts_at=parse_timestamp("starts_at", event.get("starts_at")),
                expires_at=parse_timestamp("expires_at", event.get("expires_at")),
            )
        except GrantError:
            raise
        except ConfigError as exc:
            raise GrantError(exc.field, exc.problem) from exc
        _check_shape(g)
        return g

    def to_event(self) -> dict[str, str]:
        return {
            "request_id": self.request_id,
            "tier": self.tier,
            "requester_arn": self.requester_arn,
            "source_identity": self.source_identity,
            "starts_at": iso(self.starts_at),
            "expires_at": iso(self.expires_at),
        }


def _check_shape(g: Grant) -> None:
    """What every grant must satisfy whatever the tier or the time."""
    checks: Sequence[tuple[str, Any, str, str]] = (
        ("request_id", g.request_id, REQUEST_ID, REQUEST_ID_HINT),
        ("source_identity", g.source_identity, USER_ID, USER_ID_HINT),
        ("requester_arn", g.requester_arn, IAM_ROLE_OR_USER_ARN, "must be an IAM role or user ARN"),
    )
    for name, value, pattern, hint in checks:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise GrantError(name, hint)
    for name, moment in (("starts_at", g.starts_at), ("expires_at", g.expires_at)):
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise GrantError(name, "must be a timezone-aware UTC time")
    if g.starts_at >= g.expires_at:
        raise GrantError(
            "starts_at", f"must be before expires_at ({iso(g.starts_at)} >= {iso(g.expires_at)})"
        )


def _tier_of(tiers: Mapping[str, Tier], g: Grant) -> Tier:
    tier = tiers.get(g.tier)
    if tier is None:
        known = ", ".join(sorted(tiers)) or "none"
        raise GrantError("tier", f"unknown tier {g.tier!r}; known tiers: {known}")
    return tier


def session_duration(now: datetime, expires_at: datetime, tier: Tier) -> int:
    """The ``DurationSeconds`` that ``assume`` must ask for: never past expiry, never over the role's
    maximum. Raises :class:`WindowTooShortError` when under 900 s remain (AWS's shortest session),
    instead of issuing a session that would outlive the window."""
    remaining = math.floor((expires_at - now).total_seconds())
    if remaining < MIN_SESSION_SECONDS:
        left = "the window has closed" if remaining <= 0 else f"only {remaining} s of the window remain"
        raise WindowTooShortError(
            "expires_at",
            f"{left}; an AWS session lasts at least {MIN_SESSION_SECONDS} s, so no session can be "
            "issued that ends by expiry: request a new window",
        )
    return min(remaining, tier.max_session_seconds)


# --- reading and writing the role's documents -------------------------------------------------


@dataclass
class RoleDocuments:
    trust: list[dict[str, Any]]
    guards: list[dict[str, Any]]
    other_inline_chars: int = 0
    guard_exists: bool = False
    snapshot: dict[str, Any] = field(default_factory=dict)


def _as_document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        text = value if value.lstrip().startswith("{") else unquote(value)
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    return dict(value)


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = document.get("Statement", [])
    return [dict(s) for s in (raw if isinstance(raw, list) else [raw])]


def _is_no_such_entity(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, Mapping) and response.get("Error", {}).get("Code") == "NoSuchEntity"


def read_documents(iam: Any, tier: Tier) -> RoleDocuments:
    role = iam.get_role(RoleName=tier.role_name)["Role"]
    trust = _statements(_as_document(role["AssumeRolePolicyDocument"]))
    guards: list[dict[str, Any]] = []
    guard_exists = False
    other = 0
    for name in _list_inline_policies(iam, tier.role_name):
        document = _as_document(
            iam.get_role_policy(RoleName=tier.role_name, PolicyName=name)["PolicyDocument"]
        )
        if name == GUARD_POLICY_NAME:
            guards = _statements(document)
            guard_exists = True
        else:
            other += policy_size(document)
    return RoleDocuments(trust=trust, guards=guards, other_inline_chars=other, guard_exists=guard_exists)


def _list_inline_policies(iam: Any, role_name: str) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {"RoleName": role_name}
    while True:
        page = iam.list_role_policies(**kwargs)
        names.extend(page.get("PolicyNames", []))
        if not page.get("IsTruncated"):
            return names
        kwargs["Marker"] = page["Marker"]


def _write_trust(iam: Any, tier: Tier, statements: list[dict[str, Any]]) -> None:
    iam.update_assume_role_policy(
        RoleName=tier.role_name, PolicyDocument=json.dumps(trust_policy(statements))
    )


def _write_guards(iam: Any, tier: Tier, statements: list[dict[str, Any]]) -> None:
    document = guard_policy(statements)
    if document is None:
        try:
            iam.delete_role_policy(RoleName=tier.role_name, PolicyName=GUARD_POLICY_NAME)
        except Exception as exc:
            if not _is_no_such_entity(exc):
                raise
        return
    iam.put_role_policy(
        RoleName=tier.role_name, PolicyName=GUARD_POLICY_NAME, PolicyDocument=json.dumps(document)
    )


def _without(statements: list[dict[str, Any]], sids: set[str]) -> list[dict[str, Any]]:
    return [s for s in statements if s.get("Sid") not in sids]


def _find(statements: list[dict[str, Any]], sid: str) -> dict[str, Any] | None:
    return next((s for s in statements if s.get("Sid") == sid), None)


def _live_guards(guards: list[dict[str, Any]], tier: Tier, now: datetime) -> list[dict[str, Any]]:
    """Drop guards that can no longer match a live session: every session of that grant has
    ended (issued at the latest at the guard's time, lasting at most the role's maximum)."""
    keep = []
    for statement in guards:
        until = guard_relevant_until(statement)
        if (
            until is not None
            and until + timedelta(seconds=tier.max_session_seconds) + GUARD_PRUNE_MARGIN < now
        ):
            continue
        keep.append(statement)
    return keep


def _expired_grant_sids(trust: list[dict[str, Any]], now: datetime) -> set[str]:
    """Both trust statements of every grant whose window has closed (they can never admit again)."""
    sids: set[str] = set()
    for statement in trust:
        condition = statement.get("Condition", {})
        end = condition.get("DateLessThan", {}).get("aws:CurrentTime")
        request_id = condition.get("StringEquals", {}).get(f"aws:RequestTag/{REQUEST_ID_SESSION_TAG}")
        if (
            str(statement.get("Sid", "")).startswith(GRANT_SID_PREFIX)
            and isinstance(end, str)
            and isinstance(request_id, str)
            and datetime.strptime(end, "%Y-%m-%dT%H:%M:%S%z") <= now
        ):
            sids.update(grant_trust_sids(request_id))
    return sids


def granted_window(iam: Any, tier: Tier, request_id: str) -> tuple[datetime, datetime] | None:
    """The window the role's trust holds for ``request_id`` (None when it holds none). A retried
    grant reuses it: a new window would differ from the statement already written and be refused."""
    gate = _find(read_documents(iam, tier).trust, grant_trust_sids(request_id)[0])
    if gate is None:
        return None
    condition = gate.get("Condition", {})
    return (
        parse_timestamp("starts_at", condition.get("DateGreaterThan", {}).get("aws:CurrentTime")),
        parse_timestamp("expires_at", condition.get("DateLessThan", {}).get("aws:CurrentTime")),
    )


def _check_sizes(
    tier: Tier, trust: list[dict[str, Any]], guards: list[dict[str, Any]], docs: RoleDocuments, active: int
) -> None:
    try:
        check_size(
            "trust_policy",
            policy_size(trust_policy(trust)),
            tier.trust_policy_max_chars,
            f"the trust policy of {tier.role_name} ({active} active grants)",
            "revoke a grant first, or raise the account's role trust policy quota "
            "(up to 4096) and the tier's trust_policy_max_chars",
        )
        guard_document = guard_policy(guards)
        check_size(
            "inline_policies",
            docs.other_inline_chars + (policy_size(guard_document) if guard_document else 0),
            INLINE_POLICIES_MAX_CHARS,
            f"the inline policies of {tier.role_name} (grant guards included)",
            "move the role's inline permissions to managed policies, or wait for old guards to lapse",
        )
    except PolicySizeError as exc:
        raise GrantError(exc.field, exc.problem) from exc


def _event(
    event_type: str, g: Grant, tier: Tier, actor: str, outcome: str, details: Mapping[str, Any], now: datetime
) -> AuditEvent:
    return AuditEvent(
        event_type=event_type,
        actor=actor,
        outcome=outcome,
        request_id=g.request_id,
        requester=g.source_identity,
        tier=tier.name,
        role_arn=tier.role_arn,
        window_start=iso(g.starts_at),
        expires_at=iso(g.expires_at),
        details={"requester_arn": g.requester_arn, **details},
        event_time=iso(now),
    )


def _result(g: Grant, tier: Tier, outcome: str, audit_key: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": g.request_id,
        "tier": tier.name,
        "role_arn": tier.role_arn,
        "role_name": tier.role_name,
        "requester_arn": g.requester_arn,
        "source_identity": g.source_identity,
        "starts_at": iso(g.starts_at),
        "expires_at": iso(g.expires_at),
        "session_tags": {REQUEST_ID_SESSION_TAG: g.request_id},
        "outcome": outcome,
        "audit_key": audit_key,
        **extra,
    }


# --- grant ---------------------------------------------------------------------------------------


def grant(
    iam: Any,
    writer: AuditWriter,
    tiers: Mapping[str, Tier],
    g: Grant,
    *,
    now: datetime,
    actor: str = "system",
) -> dict[str, Any]:
    """Open ``g``'s window on its tier's role; idempotent. Raises :class:`GrantError` (nothing
    changed) on bad input, :class:`AuditWriteError` (grant rolled back) if it cannot be recorded."""
    _check_shape(g)
    tier = _tier_of(tiers, g)
    if g.requester_arn not in tier.allowed_requesters:
        raise GrantError(
            "requester_arn",
            f"{g.requester_arn} may not be granted tier {tier.name!r}; its allowed requesters are: "
            + ", ".join(tier.allowed_requesters),
        )
    if g.expires_at <= now:
        raise GrantError("expires_at", f"{iso(g.expires_at)} is in the past (now {iso(now)})")
    window = int((g.expires_at - g.starts_at).total_seconds())
    if window > tier.max_window_seconds:
        raise GrantError(
            "expires_at",
            f"the window from {iso(g.starts_at)} is {window} s, over tier {tier.name!r}'s maximum "
            f"of {tier.max_window_seconds} s",
        )

    trust_statements = grant_trust_statements(
        request_id=g.request_id,
        requester_arn=g.requester_arn,
        source_identity=g.source_identity,
        starts_at=g.starts_at,
        expires_at=g.expires_at,
        require_mfa=tier.require_mfa,
        max_mfa_age_seconds=tier.max_mfa_age_seconds,
    )
    guard_statement = expiry_deny_statement(
        request_id=g.request_id, source_identity=g.source_identity, expires_at=g.expires_at
    )
    trust_sids = [s["Sid"] for s in trust_statements]
    guard_sid = guard_statement["Sid"]
    revoke_sid = statement_id(REVOKE_SID_PREFIX, g.request_id)

    docs = read_documents(iam, tier)
    if _find(docs.guards, revoke_sid) is not None:
        raise GrantError(
            "request_id", f"request {g.request_id} was revoked early; it cannot be granted again"
        )
    for found, wanted, what in (
        *((_find(docs.trust, s["Sid"]), s, "trust statement") for s in trust_statements),
        (_find(docs.guards, guard_sid), guard_statement, "expiry guard"),
    ):
        if found is not None and found != wanted:
            raise GrantError(
                "request_id",
                f"request {g.request_id} already has a different {what} on {tier.role_name} "
                "(another principal, identity or window); revoke it before granting again",
            )

    added_trust = [s for s in trust_statements if _find(docs.trust, s["Sid"]) is None]
    guard_added = _find(docs.guards, guard_sid) is None
    new_trust = [s for s in docs.trust if s.get("Sid") != LOCKED_SID] + added_trust
    new_guards = _live_guards(docs.guards, tier, now) + ([guard_statement] if guard_added else [])
    try:
        _check_sizes(tier, new_trust, new_guards, docs, _count_grants(new_trust))
    except GrantError:
        # Statements of closed windows can never admit again: make room with them before refusing.
        new_trust = _without(new_trust, _expired_grant_sids(new_trust, now) - set(trust_sids))
        _check_sizes(tier, new_trust, new_guards, docs, _count_grants(new_trust))

    if new_guards != docs.guards:
        _write_guards(iam, tier, new_guards)
    if trust_policy(new_trust) != trust_policy(docs.trust):
        try:
            _write_trust(iam, tier, new_trust)
        except Exception:
            if guard_added:
                _remove_after_failure(iam, tier, set(), {guard_sid})
            raise

    outcome = "succeeded" if (added_trust or guard_added) else "noop"
    details = {
        "trust_statements": trust_sids,
        "expiry_guard": guard_sid,
        "require_mfa": tier.require_mfa,
        "session_tag": REQUEST_ID_SESSION_TAG,
        "already_granted": outcome == "noop",
    }
    try:
        key = writer.write(_event("grant", g, tier, actor, outcome, details, now))
    except AuditWriteError:
        # Access without its record must not exist: take back what this call added, then raise.
        _remove_after_failure(
            iam, tier, {s["Sid"] for s in added_trust}, {guard_sid} if guard_added else set()
        )
        raise
    return _result(g, tier, outcome, key, trust_statements=trust_sids, guard_statements=[guard_sid])


def _count_grants(trust: list[dict[str, Any]]) -> int:
    return sum(1 for s in trust if str(s.get("Sid", "")).startswith(GRANT_SID_PREFIX))


def _remove_after_failure(iam: Any, tier: Tier, trust_sids: set[str], guard_sids: set[str]) -> None:
    """Undo this call's additions from the current documents (re-read: others may have changed them).
    The trust goes first: it is what lets a session be issued."""
    docs = read_documents(iam, tier)
    if trust_sids and any(s.get("Sid") in trust_sids for s in docs.trust):
        _write_trust(iam, tier, _without(docs.trust, trust_sids))
    if guard_sids and any(s.get("Sid") in guard_sids for s in docs.guards):
        _write_guards(iam, tier, _without(docs.guards, guard_sids))


# --- revoke --------------------------------------------------------------------------------------


def revoke(
    iam: Any,
    writer: AuditWriter,
    tiers: Mapping[str, Tier],
    g: Grant,
    *,
    early: bool,
    actor: str,
    now: datetime,
    at_expiry: bool = False,
) -> dict[str, Any]:
    """Close ``g``'s window; idempotent; other grants of the tier are untouched.

    Removes the grant's trust statement. The expiry guard stays until no session it covers can
    still exist (later grants and revokes prune it), so a session issued with a long duration still
    dies at expiry. ``early`` also adds the ``aws:TokenIssueTime`` deny, ending that grant's
    sessions now. Recorded as ``expiry`` when it runs at or after expiry and not early, or when
    the caller says it is the end-of-window revoke (``at_expiry``: the workflow's, after its Wait
    until expiry, whose clock may read a moment earlier), else ``revoke``. If the audit write
    fails the revoke stays in place and the error is raised.
    """
    _check_shape(g)
    tier = _tier_of(tiers, g)
    for name, flag in (("early", early), ("at_expiry", at_expiry)):
        if not isinstance(flag, bool):
            raise GrantError(name, f"must be true or false, got {flag!r}")
    actor = require_str("actor", actor)

    trust_sids = set(grant_trust_sids(g.request_id))
    revoke_statement = early_revoke_deny_statement(
        request_id=g.request_id, source_identity=g.source_identity, revoked_at=now
    )
    docs = read_documents(iam, tier)
    removed = sorted(str(s["Sid"]) for s in docs.trust if s.get("Sid") in trust_sids)
    trust_removed = bool(removed)
    new_trust = _without(docs.trust, trust_sids | {LOCKED_SID})
    new_guards = _live_guards(docs.guards, tier, now)
    revoke_added = early and _find(new_guards, revoke_statement["Sid"]) is None
    if revoke_added:
        new_guards.append(revoke_statement)
    try:
        check_size(
            "inline_policies",
            docs.other_inline_chars + policy_size(guard_policy(new_guards) or {}),
            INLINE_POLICIES_MAX_CHARS,
            f"the inline policies of {tier.role_name} (grant guards included)",
            "move the role's inline permissions to managed policies",
        )
    except PolicySizeError as exc:
        raise GrantError(exc.field, exc.problem) from exc

    # New sessions stop first; then the guard ends the ones already issued.
    if trust_removed:
        _write_trust(iam, tier, new_trust)
    if new_guards != docs.guards:
        _write_guards(iam, tier, new_guards)

    outcome = "succeeded" if (trust_removed or revoke_added) else "noop"
    event_type = "expiry" if not early and (at_expiry or now >= g.expires_at) else "revoke"
    details = {
        "early": early,
        "trust_statements_removed": removed,
        "revoke_guard_added": revoke_statement["Sid"] if revoke_added else None,
        "sessions_issued_before": revoke_statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        if early
        else None,
        "role_locked": not any(str(s.get("Sid", "")).startswith(GRANT_SID_PREFIX) for s in new_trust),
    }
    key = writer.write(_event(event_type, g, tier, actor, outcome, details, now))
    return _result(
        g,
        tier,
        outcome,
        key,
        event_type=event_type,
        early=early,
        role_locked=details["role_locked"],
        guard_statements=[s["Sid"] for s in new_guards if _belongs_to(s, g.request_id)],
    )


def _belongs_to(statement: Mapping[str, Any], request_id: str) -> bool:
    sid = statement.get("Sid")
    return sid in {statement_id(EXPIRY_SID_PREFIX, request_id), statement_id(REVOKE_SID_PREFIX, request_id)}
