"""Grant and revoke time-bound access to an emergency role (service code; imports no pulumi).

A grant edits the tier's role: two statements in the trust policy (who may assume, as whom, until
when) and one guard (that grant's sessions die at expiry). Each grant has its own statements, with
ids ``<Kind><request id>``, so two responders can hold one tier with different windows and revoking
one never touches the other. See :mod:`breakglass.policies.emergency_role` for the documents.

Ownership: a Sid alone proves nothing. Before a statement is removed, rewritten, reused or counted
as this grant's, its contents must name this grant (principal, source identity, request tag; for a
guard the scope it denies). A statement with this request's Sid and another owner is never touched:
a grant is refused (nothing changed, :class:`GrantError`), a revoke does its own part and lists it.

Guard storage: one guard per grant, in the role's inline guard policy or, when that is full, in a
guard page (a managed policy ``breakglass-emergency-<tier>-guards-<n>``) attached only while it
holds a live guard. Guards that can no longer match a live session are pruned before every write.
An early revoke rewrites the grant's guard in place (same size), so a revoke never needs room; only
a grant can be refused for room, when the inline policy and every page the role's managed-policy
quota allows are full of live guards (see :func:`~breakglass.policies.emergency_role.guard_capacity`).

Order of writes: the guard before the trust on grant (no session can exist without its guard),
the trust removal first on revoke (unconditional: the trust only shrinks). The audit event is
written before success is reported; if it cannot be written, a grant is rolled back (access without
a record must not exist) and a revoke is not (undoing a revoke would restore access); both raise.

IAM has no conditional writes: two grant or revoke calls on the same role at the same instant can
lose one's edit. Callers serialize per role (the workflow runs grant and revoke one at a time per
tier); a lost edit would show as a missing statement when the result is checked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

from breakglass.contracts import (
    MAX_SESSION_SECONDS,
    MAX_WINDOW_SECONDS,
    MIN_SESSION_SECONDS,
    TIERS_CONFIG_FILE,
    iso,
)
from breakglass.lambdas.audit.events import AuditEvent, AuditWriteError, AuditWriter, event_identity
from breakglass.lambdas.runtime import archive_json
from breakglass.policies.boundary import MANAGED_POLICY_MAX_CHARS
from breakglass.policies.documents import PolicySizeError, check_size, document, policy_size
from breakglass.policies.emergency_role import (
    GRANT_SESSION_SID_PREFIX,
    GRANT_SID_PREFIX,
    GUARD_POLICY_NAME,
    GUARD_PRUNE_MARGIN,
    GUARD_SID_PREFIX,
    INLINE_POLICIES_MAX_CHARS,
    LOCKED_SID,
    MANAGED_POLICIES_PER_ROLE,
    TRUST_POLICY_MAX_CHARS,
    GuardScope,
    grant_guard_statement,
    grant_trust_sids,
    grant_trust_statements,
    guard_page_arn,
    guard_page_name,
    guard_page_number,
    guard_policy,
    guard_relevant_until,
    locked_trust_policy,
    owns_gate,
    owns_guard,
    owns_session_statement,
    read_guard,
    statement_id,
    trust_policy,
)
from breakglass.policies.naming import (
    EMERGENCY_ROLE_TAG,
    PROTECTED_TAG,
    REQUEST_ID_SESSION_TAG,
    emergency_role_name,
)
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
    """The tiers a grant Lambda serves, from ``breakglass-tiers.json`` (``TIERS_CONFIG_FILE``,
    ``{name: Tier.to_dict()}``) in its archive: every requester ARN is too much for 4 KB."""
    data = require_mapping(TIERS_CONFIG_FILE, archive_json(TIERS_CONFIG_FILE, environ))
    tiers: dict[str, Tier] = {}
    for key, value in data.items():
        try:
            tier = Tier.from_dict(value)
        except ConfigError as exc:
            raise ConfigError(f"{TIERS_CONFIG_FILE}.{key}.{exc.field}", exc.problem) from exc
        if tier.name != key:
            raise ConfigError(
                f"{TIERS_CONFIG_FILE}.{key}.name", f"must equal its key {key!r}, got {tier.name!r}"
            )
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


# --- reading the role ----------------------------------------------------------------------------

Statement = dict[str, Any]
INLINE: Final = 0  # the number of the inline guard policy among the guard documents; pages are 1..


def _as_document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        text = value if value.lstrip().startswith("{") else unquote(value)
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    return dict(value)


def _statements(document: Mapping[str, Any]) -> list[Statement]:
    raw = document.get("Statement", [])
    return [dict(s) for s in (raw if isinstance(raw, list) else [raw])]


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


def _is_no_such_entity(exc: Exception) -> bool:
    return _error_code(exc) == "NoSuchEntity"


@dataclass
class GuardStore:
    """Every guard document of a role: the inline guard policy (number 0) and the guard pages
    (managed policies, numbers 1..) attached to it, with what else shares their quotas."""

    documents: dict[int, list[Statement]]
    other_inline_chars: int  # the tier's own inline policies (they share the inline quota)
    other_managed: int  # managed policies attached that are not guard pages (they share the 10)
    inline_exists: bool = False

    def copy(self) -> GuardStore:
        return GuardStore(
            {n: [dict(s) for s in statements] for n, statements in self.documents.items()},
            self.other_inline_chars,
            self.other_managed,
            self.inline_exists,
        )

    def all(self) -> list[tuple[int, Statement]]:
        return [(n, s) for n in sorted(self.documents) for s in self.documents[n]]

    def count(self) -> int:
        return sum(len(statements) for statements in self.documents.values())

    def pages(self) -> list[int]:
        return sorted(n for n in self.documents if n != INLINE)

    def fits(self, number: int, statements: Sequence[Statement]) -> bool:
        size = policy_size(document(list(statements)))
        if number == INLINE:
            return self.other_inline_chars + size <= INLINE_POLICIES_MAX_CHARS
        return size <= MANAGED_POLICY_MAX_CHARS

    def place(self, statement: Statement) -> int | None:
        """Add ``statement`` where it fits: the inline policy, an attached page, or a new page while
        the role has a managed-policy slot left; never beside a statement with the same Sid (IAM
        refuses duplicate Sids in one document). The number it went to, or None when full."""
        sid = statement.get("Sid")
        for number in [INLINE, *self.pages()]:
            current = self.documents.get(number, [])
            if any(s.get("Sid") == sid for s in current) or not self.fits(number, [*current, statement]):
                continue
            self.documents[number] = [*current, statement]
            return number
        if self.other_managed + len(self.pages()) >= MANAGED_POLICIES_PER_ROLE:
            return None
        number = next(n for n in range(1, MANAGED_POLICIES_PER_ROLE + 1) if n not in self.documents)
        self.documents[number] = [statement]
        return number

    def pruned(self, now: datetime, max_session_seconds: int) -> GuardStore:
        """Without the guards that can no longer match a live session: every session such a guard
        matches was issued before the moment it names and lasts at most the role's longest session.
        Statements this module did not write are kept. Pages left empty are dropped."""
        kept = self.copy()
        horizon = timedelta(seconds=max_session_seconds) + GUARD_PRUNE_MARGIN
        for number, statements in list(kept.documents.items()):
            live = [
                s for s in statements if (until := guard_relevant_until(s)) is None or until + horizon >= now
            ]
            if live or number == INLINE:
                kept.documents[number] = live
            else:
                del kept.documents[number]
        return kept

    def find(self, predicate: Any) -> tuple[int, int] | None:
        """(document number, index) of the first statement ``predicate`` accepts."""
        for number in sorted(self.documents):
            for index, statement in enumerate(self.documents[number]):
                if predicate(statement):
                    return number, index
        return None

    def oldest_relevance(self) -> datetime | None:
        times = [t for _, s in self.all() if (t := guard_relevant_until(s)) is not None]
        return min(times, default=None)


def _read_trust(iam: Any, tier: Tier) -> tuple[list[Statement], int]:
    """The trust statements, and the session length to prune by: the longer of the tier's setting
    and the role's (a role changed outside the stack must not get its guards pruned early)."""
    role = iam.get_role(RoleName=tier.role_name)["Role"]
    trust = _statements(_as_document(role["AssumeRolePolicyDocument"]))
    role_max = role.get("MaxSessionDuration")
    longest = max(tier.max_session_seconds, role_max if isinstance(role_max, int) else 0)
    return trust, longest


def _read_store(iam: Any, tier: Tier) -> GuardStore:
    store = GuardStore(documents={INLINE: []}, other_inline_chars=0, other_managed=0)
    for name in _list_inline_policies(iam, tier.role_name):
        document_ = _as_document(
            iam.get_role_policy(RoleName=tier.role_name, PolicyName=name)["PolicyDocument"]
        )
        if name == GUARD_POLICY_NAME:
            store.documents[INLINE] = _statements(document_)
            store.inline_exists = True
        else:
            store.other_inline_chars += policy_size(document_)
    for arn in _list_attached_policies(iam, tier.role_name):
        number = guard_page_number(tier.role_arn, arn)
        if number is None:
            store.other_managed += 1
            continue
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        page = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        store.documents[number] = _statements(_as_document(page))
    return store


def _list_inline_policies(iam: Any, role_name: str) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {"RoleName": role_name}
    while True:
        page = iam.list_role_policies(**kwargs)
        names.extend(page.get("PolicyNames", []))
        if not page.get("IsTruncated"):
            return names
        kwargs["Marker"] = page["Marker"]


def _list_attached_policies(iam: Any, role_name: str) -> list[str]:
    arns: list[str] = []
    kwargs: dict[str, Any] = {"RoleName": role_name}
    while True:
        page = iam.list_attached_role_policies(**kwargs)
        arns.extend(p["PolicyArn"] for p in page.get("AttachedPolicies", []))
        if not page.get("IsTruncated"):
            return arns
        kwargs["Marker"] = page["Marker"]


# --- writing the role ----------------------------------------------------------------------------


def _write_trust(iam: Any, tier: Tier, statements: list[Statement]) -> None:
    iam.update_assume_role_policy(
        RoleName=tier.role_name, PolicyDocument=json.dumps(trust_policy(statements))
    )


def _write_store(iam: Any, tier: Tier, before: GuardStore, after: GuardStore) -> None:
    """Make the role's guard documents ``after``. Documents that gain or change statements are
    written first and pages left empty are detached and deleted last; a guard never moves between
    documents, so no live guard is ever absent while this runs."""
    for number in sorted(after.documents):
        statements = after.documents[number]
        if statements == before.documents.get(number):
            continue
        if number == INLINE:
            _write_inline(iam, tier, statements, exists=before.inline_exists)
        else:
            _write_page(iam, tier, number, statements, attached=number in before.documents)
    for number in before.pages():
        if number not in after.documents:
            _delete_page(iam, tier, number)


def _write_inline(iam: Any, tier: Tier, statements: list[Statement], *, exists: bool) -> None:
    document_ = guard_policy(statements)
    if document_ is not None:
        iam.put_role_policy(
            RoleName=tier.role_name, PolicyName=GUARD_POLICY_NAME, PolicyDocument=json.dumps(document_)
        )
        return
    if exists:
        try:
            iam.delete_role_policy(RoleName=tier.role_name, PolicyName=GUARD_POLICY_NAME)
        except Exception as exc:
            if not _is_no_such_entity(exc):
                raise


def _write_page(iam: Any, tier: Tier, number: int, statements: list[Statement], *, attached: bool) -> None:
    arn = guard_page_arn(tier.role_arn, number)
    text = json.dumps(document(statements))
    if attached:
        _new_default_version(iam, arn, text)
        return
    try:
        iam.create_policy(
            PolicyName=guard_page_name(tier.role_name, number),
            PolicyDocument=text,
            Description=f"Break-glass grant guards of tier {tier.name} (written by the access function)",
            Tags=[
                {"Key": PROTECTED_TAG, "Value": "true"},
                {"Key": EMERGENCY_ROLE_TAG, "Value": tier.name},
            ],
        )
    except Exception as exc:
        if _error_code(exc) != "EntityAlreadyExists":
            raise
        # Left behind detached (a crash between create and attach, or between detach and
        # delete): its statements guard nothing while detached, so it is simply rewritten.
        _new_default_version(iam, arn, text)
    # Attached only now that it holds the new guard, and before the trust admits anyone.
    iam.attach_role_policy(RoleName=tier.role_name, PolicyArn=arn)


def _new_default_version(iam: Any, arn: str, text: str) -> None:
    # A managed policy keeps at most 5 versions: deleting every old one first (there is one, the
    # previous default) means the new version always fits, and a page never holds more than two.
    for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)


def _delete_page(iam: Any, tier: Tier, number: int) -> None:
    """Detach, then delete (AWS refuses to delete a policy that is attached or has old versions)."""
    arn = guard_page_arn(tier.role_arn, number)
    try:
        iam.detach_role_policy(RoleName=tier.role_name, PolicyArn=arn)
        for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not version["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        iam.delete_policy(PolicyArn=arn)
    except Exception as exc:
        if not _is_no_such_entity(exc):
            raise


# --- whose statements these are --------------------------------------------------------------------


@dataclass(frozen=True)
class TrustShare:
    """The trust statements carrying this request's Sids, split into this grant's and others'."""

    owned: list[Statement]
    foreign: list[Statement]


def _trust_share(trust: list[Statement], g: Grant) -> TrustShare:
    gate_sid, session_sid = grant_trust_sids(g.request_id)
    gate = next((s for s in trust if s.get("Sid") == gate_sid), None)
    gate_owned = gate is not None and owns_gate(
        gate, request_id=g.request_id, requester_arn=g.requester_arn, source_identity=g.source_identity
    )
    owned: list[Statement] = []
    foreign: list[Statement] = []
    for statement in trust:
        sid = statement.get("Sid")
        if sid == gate_sid:
            (owned if gate_owned else foreign).append(statement)
        elif sid == session_sid:
            # Written with its gate: beside another request's gate it is that request's.
            mine = (gate is None or gate_owned) and owns_session_statement(
                statement, request_id=g.request_id, requester_arn=g.requester_arn
            )
            (owned if mine else foreign).append(statement)
    return TrustShare(owned, foreign)


def _foreign_guards(store: GuardStore, g: Grant) -> list[Statement]:
    sid = statement_id(GUARD_SID_PREFIX, g.request_id)
    return [
        s
        for _, s in store.all()
        if s.get("Sid") == sid
        and not owns_guard(s, request_id=g.request_id, source_identity=g.source_identity)
    ]


def _own_guard(store: GuardStore, g: Grant) -> tuple[int, int] | None:
    return store.find(lambda s: owns_guard(s, request_id=g.request_id, source_identity=g.source_identity))


def _describe(statements: Sequence[Statement]) -> list[str]:
    return sorted(str(s.get("Sid")) for s in statements)


def _foreign_error(tier: Tier, g: Grant, foreign: Sequence[Statement]) -> GrantError:
    return GrantError(
        "request_id",
        f"{', '.join(_describe(foreign))} on {tier.role_name} carry the statement ids of request "
        f"{g.request_id} but not its principal, source identity or request tag: they are not this "
        "grant's, so nothing was changed. Inspect them (an edit outside break-glass or a statement "
        "of an older version) and remove them by hand before granting this request again",
    )


def _closed_grants(trust: list[Statement], now: datetime) -> list[Statement]:
    """Trust statements of grants whose window has closed (they can never admit again): each gate
    whose ``DateLessThan aws:CurrentTime`` has passed and the Session statement written with it
    (same Sid after the kind, same principal; also for the Sids of earlier versions)."""
    closed: list[Statement] = []
    for gate in trust:
        sid = str(gate.get("Sid", ""))
        condition = gate.get("Condition")
        end = (
            condition.get("DateLessThan", {}).get("aws:CurrentTime")
            if isinstance(condition, Mapping)
            else None
        )
        if gate.get("Effect") != "Allow" or not sid.startswith(GRANT_SID_PREFIX) or not isinstance(end, str):
            continue
        try:
            ended = datetime.strptime(end, "%Y-%m-%dT%H:%M:%S%z") <= now
        except ValueError:
            continue
        if not ended:
            continue
        closed.append(gate)
        companion = GRANT_SESSION_SID_PREFIX + sid[len(GRANT_SID_PREFIX) :]
        closed.extend(
            s for s in trust if s.get("Sid") == companion and s.get("Principal") == gate.get("Principal")
        )
    return closed


def _opens_at(gate: Statement) -> datetime | None:
    """When a grant's gate starts admitting (its ``DateGreaterThan aws:CurrentTime``)."""
    condition = gate.get("Condition")
    start = (
        condition.get("DateGreaterThan", {}).get("aws:CurrentTime")
        if isinstance(condition, Mapping)
        else None
    )
    try:
        return datetime.strptime(start, "%Y-%m-%dT%H:%M:%S%z") if isinstance(start, str) else None
    except ValueError:
        return None


def _check_one_waiting(tier: Tier, trust: list[Statement], g: Grant, now: datetime) -> None:
    """At most one window waiting to open per person and tier. A grant ahead (a scheduled start,
    an extension granted before its window) takes room in the tier's trust policy from the moment
    it is written: one person holding several would fill the quota hours ahead and lock the tier
    for everyone else. The person is the source identity (a principal, e.g. an Identity Center
    role, may be shared by many people)."""
    if g.starts_at <= now:
        return
    own = grant_trust_sids(g.request_id)[0]
    for gate in trust:
        sid = str(gate.get("Sid", ""))
        condition = gate.get("Condition")
        person = (
            condition.get("StringEquals", {}).get("sts:SourceIdentity")
            if isinstance(condition, Mapping)
            else None
        )
        opens = _opens_at(gate)
        if (
            sid.startswith(GRANT_SID_PREFIX)
            and sid != own
            and isinstance(person, str)
            and person.casefold() == g.source_identity.casefold()
            and opens is not None
            and opens > now
        ):
            raise GrantError(
                "starts_at",
                f"{g.source_identity} already has a window of tier {tier.name!r} waiting to open at "
                f"{iso(opens)} ({sid}): one window waiting per person and tier, so that no one fills "
                "the tier's trust policy ahead of time; ask again once it has opened",
            )


def _without(statements: list[Statement], removed: Sequence[Statement]) -> list[Statement]:
    return [s for s in statements if not any(s is r for r in removed)]


def granted_window(iam: Any, tier: Tier, request_id: str) -> tuple[datetime, datetime] | None:
    """The window the role's trust holds for ``request_id`` (None when it holds none). A retried
    grant reuses it: a new window would differ from the statement already written and be refused.
    Only a gate whose request tag is this request's counts; :func:`grant` checks the rest."""
    trust, _ = _read_trust(iam, tier)
    gate_sid = grant_trust_sids(request_id)[0]
    for gate in trust:
        condition = gate.get("Condition", {})
        if (
            gate.get("Sid") == gate_sid
            and condition.get("StringEquals", {}).get(f"aws:RequestTag/{REQUEST_ID_SESSION_TAG}")
            == request_id
        ):
            return (
                parse_timestamp("starts_at", condition.get("DateGreaterThan", {}).get("aws:CurrentTime")),
                parse_timestamp("expires_at", condition.get("DateLessThan", {}).get("aws:CurrentTime")),
            )
    return None


def guarded_expiry(iam: Any, tier: Tier, request_id: str, source_identity: str) -> datetime | None:
    """The expiry in the unrevoked guard of ``request_id`` for ``source_identity``, if the role has
    one: a grant call wrote it (guard before trust) and died before the trust, so a retry must reuse
    that window (:func:`granted_window` finds none) instead of being refused for a different guard."""
    for _, statement in _read_store(iam, tier).all():
        scope = read_guard(statement)
        if (
            scope is not None
            and not scope.revoked
            and scope.request_id == request_id
            and scope.source_identity == source_identity
        ):
            return scope.expires_at
    return None


def _check_trust_size(tier: Tier, trust: list[Statement]) -> None:
    active = sum(1 for s in trust if str(s.get("Sid", "")).startswith(GRANT_SID_PREFIX))
    try:
        check_size(
            "trust_policy",
            policy_size(trust_policy(trust)),
            tier.trust_policy_max_chars,
            f"the trust policy of {tier.role_name} ({active} active grants)",
            "revoke a grant first, or raise the account's role trust policy quota "
            "(up to 4096) and the tier's trust_policy_max_chars",
        )
    except PolicySizeError as exc:
        raise GrantError(exc.field, exc.problem) from exc


def _full_error(tier: Tier, store: GuardStore, max_session_seconds: int) -> GrantError:
    oldest = store.oldest_relevance()
    horizon = timedelta(seconds=max_session_seconds) + GUARD_PRUNE_MARGIN
    lapses = f"; the oldest can be pruned after {iso(oldest + horizon)}" if oldest is not None else ""
    return GrantError(
        "guards",
        f"no room for this grant's guard on {tier.role_name}: {store.count()} live guards fill its "
        f"inline guard policy and {len(store.pages())} guard pages (with the tier's "
        f"{store.other_managed} own managed policies, all {MANAGED_POLICIES_PER_ROLE} attachment slots "
        f"are used){lapses}. Nothing was changed: retry then, and keep the tier's request rate "
        "under its sustainable rate (see guard_capacity)",
    )


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
        # One record per request, kind and actor, whatever the attempt: a retried grant or revoke
        # (Step Functions' Retry, a second click) finds its record instead of adding one.
        event_id=event_identity(g.request_id, event_type, actor),
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
    context: Mapping[str, Any] | None = None,
    recorded: bool = True,
) -> dict[str, Any]:
    """Open ``g``'s window on its tier's role; idempotent. ``context`` goes into the event's
    details as is (e.g. the request an extension extends, a scheduled start). Raises :class:`GrantError` (nothing
    changed) on bad input, on a statement that carries this request's id but is not this grant's,
    and when the role has no room left for the grant's guard; :class:`AuditWriteError` (grant
    rolled back) if it cannot be recorded.

    ``recorded=False`` says no earlier call has recorded this grant (the caller's own state says
    so): a call that finds the grant already in place (an earlier one wrote it and died before its
    record) records it as ``succeeded``, not ``noop``, so the trail never lacks the grant."""
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

    wanted_trust = grant_trust_statements(
        request_id=g.request_id,
        requester_arn=g.requester_arn,
        source_identity=g.source_identity,
        starts_at=g.starts_at,
        expires_at=g.expires_at,
        require_mfa=tier.require_mfa,
        max_mfa_age_seconds=tier.max_mfa_age_seconds,
    )
    guard = grant_guard_statement(
        request_id=g.request_id, source_identity=g.source_identity, expires_at=g.expires_at
    )

    trust, max_session = _read_trust(iam, tier)
    store = _read_store(iam, tier)
    share = _trust_share(trust, g)
    foreign = [*share.foreign, *_foreign_guards(store, g)]
    if foreign:
        raise _foreign_error(tier, g, foreign)
    located = _own_guard(store, g)
    own_guard = store.documents[located[0]][located[1]] if located else None
    if own_guard is not None and own_guard != guard:
        scope = read_guard(own_guard)
        if scope is not None and scope.revoked:
            raise GrantError(
                "request_id", f"request {g.request_id} was revoked early; it cannot be granted again"
            )
    for found, wanted, what in (
        *(
            (next((s for s in share.owned if s["Sid"] == w["Sid"]), None), w, "trust statement")
            for w in wanted_trust
        ),
        (own_guard, guard, "expiry guard"),
    ):
        if found is not None and found != wanted:
            raise GrantError(
                "request_id",
                f"request {g.request_id} already has a different {what} on {tier.role_name} "
                "(another window or settings); revoke it before granting again",
            )

    added_trust = [w for w in wanted_trust if not any(s["Sid"] == w["Sid"] for s in share.owned)]
    if added_trust:
        _check_one_waiting(tier, trust, g, now)
    new_trust = [s for s in trust if s.get("Sid") != LOCKED_SID] + added_trust
    try:
        _check_trust_size(tier, new_trust)
    except GrantError:
        # Statements of closed windows can never admit again: make room with them before refusing.
        new_trust = _without(new_trust, _closed_grants(new_trust, now))
        _check_trust_size(tier, new_trust)
    new_store = store.pruned(now, max_session)
    location = _own_guard(new_store, g)
    guard_added = location is None
    if guard_added:
        number = new_store.place(guard)
        if number is None:
            raise _full_error(tier, new_store, max_session)
    else:
        number = location[0] if location else INLINE

    # The guard before the trust: no session of this grant can exist without it.
    _write_store(iam, tier, store, new_store)
    if trust_policy(new_trust) != trust_policy(trust):
        try:
            _write_trust(iam, tier, new_trust)
        except Exception:
            if guard_added:
                _remove_after_failure(iam, tier, g, trust_added=False, guard_added=True, now=now)
            raise

    outcome = "succeeded" if (added_trust or guard_added or not recorded) else "noop"
    details = {
        "trust_statements": [s["Sid"] for s in wanted_trust],
        "guard": guard["Sid"],
        "guard_policy": GUARD_POLICY_NAME if number == INLINE else guard_page_name(tier.role_name, number),
        "require_mfa": tier.require_mfa,
        "session_tag": REQUEST_ID_SESSION_TAG,
        # Found in place: an earlier call wrote it (a retry); with outcome noop, it also recorded it.
        "already_granted": not (added_trust or guard_added),
        **(context or {}),
    }
    try:
        key = writer.write(_event("grant", g, tier, actor, outcome, details, now))
    except AuditWriteError:
        # Access without its record must not exist: take back what this call added, then raise.
        _remove_after_failure(iam, tier, g, trust_added=bool(added_trust), guard_added=guard_added, now=now)
        raise
    return _result(
        g, tier, outcome, key, trust_statements=details["trust_statements"], guard_statements=[guard["Sid"]]
    )


def _remove_after_failure(
    iam: Any, tier: Tier, g: Grant, *, trust_added: bool, guard_added: bool, now: datetime
) -> None:
    """Undo this call's additions from the current documents (re-read: others may have changed them).
    The trust goes first: it is what lets a session be issued. Only this grant's statements go."""
    if trust_added:
        trust, _ = _read_trust(iam, tier)
        owned = _trust_share(trust, g).owned
        if owned:
            _write_trust(iam, tier, _without(trust, owned))
    if guard_added:
        store = _read_store(iam, tier)
        located = _own_guard(store, g)
        if located is not None:
            after = store.copy()
            del after.documents[located[0]][located[1]]
            if not after.documents[located[0]] and located[0] != INLINE:
                del after.documents[located[0]]
            _write_store(iam, tier, store, after)


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
) -> dict[str, Any]:
    """Close ``g``'s window; idempotent; other grants of the tier are untouched. Never fails for
    lack of room.

    1. This grant's trust statements go first, unconditionally (the trust only shrinks, so it
       always fits): no new session.
    2. Then the guard. ``early`` rewrites the grant's guard in place into its revoked form (every
       session of the grant is denied from now on; no new statement, no room needed). Otherwise the
       expiry guard stays until no session it covers can still exist (a session issued with a long
       duration still dies at expiry); pruning removes it later.

    Statements that carry this request's ids but are not this grant's (another principal, source
    identity or request tag) are never removed or rewritten; they are listed in the event's
    ``foreign_statements`` and in the result. Recorded as ``expiry`` only when not early and
    ``now`` is at or after ``g.expires_at``, else ``revoke``. If the audit write fails the revoke
    stays in place and the error is raised.
    """
    _check_shape(g)
    tier = _tier_of(tiers, g)
    if not isinstance(early, bool):
        raise GrantError("early", f"must be true or false, got {early!r}")
    actor = require_str("actor", actor)

    trust, max_session = _read_trust(iam, tier)
    share = _trust_share(trust, g)
    new_trust = _without(trust, share.owned)
    if share.owned:
        _write_trust(iam, tier, new_trust)

    store = _read_store(iam, tier)
    new_store = store.pruned(now, max_session)
    foreign = [*share.foreign, *_foreign_guards(store, g)]
    located = _own_guard(new_store, g)
    guard_change: str | None = None
    guard_scope: GuardScope | None = None
    if located is not None:
        number, index = located
        guard_scope = read_guard(new_store.documents[number][index])
        if early and guard_scope is not None and not guard_scope.revoked:
            guard_scope = GuardScope(g.request_id, g.source_identity, guard_scope.expires_at, True)
            new_store.documents[number][index] = grant_guard_statement(
                request_id=g.request_id,
                source_identity=g.source_identity,
                expires_at=guard_scope.expires_at,
                revoked=True,
            )
            guard_change = "rewritten"
    elif share.owned:
        # The grant was live but its guard is gone (changed outside break-glass): put one back.
        expires_at = _gate_expiry(share.owned) or g.expires_at
        guard_scope = GuardScope(g.request_id, g.source_identity, expires_at, early)
        placed = new_store.place(
            grant_guard_statement(
                request_id=g.request_id,
                source_identity=g.source_identity,
                expires_at=expires_at,
                revoked=early,
            )
        )
        guard_change = "restored" if placed is not None else "missing"
    if guard_change != "missing":
        _write_store(iam, tier, store, new_store)

    outcome = "succeeded" if (share.owned or guard_change in ("rewritten", "restored")) else "noop"
    if guard_change == "missing":
        outcome = "failed"
    event_type = "expiry" if not early and now >= g.expires_at else "revoke"
    role_locked = trust_policy(new_trust) == locked_trust_policy()
    details = {
        "early": early,
        "trust_statements_removed": _describe(share.owned),
        "guard": statement_id(GUARD_SID_PREFIX, g.request_id) if guard_scope is not None else None,
        "guard_change": guard_change,
        "sessions_issued_before": iso(guard_scope.expires_at)
        if guard_scope is not None and guard_scope.revoked
        else None,
        "role_locked": role_locked,
        "foreign_statements": _describe(foreign),
    }
    key = writer.write(_event(event_type, g, tier, actor, outcome, details, now))
    if guard_change == "missing":
        raise GrantError(
            "guards",
            f"request {g.request_id}'s trust statements were removed from {tier.role_name} (no new "
            "session), but its guard was missing (changed outside break-glass) and there is no room "
            "to put it back: sessions already issued may work until they end. Revoke them in the "
            "console (Revoke active sessions) and free guard room",
        )
    return _result(
        g,
        tier,
        outcome,
        key,
        event_type=event_type,
        early=early,
        role_locked=role_locked,
        guard_statements=[details["guard"]] if details["guard"] else [],
        foreign_statements=details["foreign_statements"],
    )


def _gate_expiry(owned: Sequence[Statement]) -> datetime | None:
    for statement in owned:
        end = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:CurrentTime")
        if isinstance(end, str):
            return parse_timestamp("expires_at", end)
    return None
