"""IAM documents of an emergency role: locked trust, per-grant statements, guards and their capacity.

Pure functions returning dicts (``json.dumps`` happens at the resource or API boundary).

How a window is enforced by IAM itself, not by a Lambda that might fail:

- the trust policy is **locked** (one deny, no allow) while no grant is active;
- a grant adds two trust statements admitting exactly the requester's principal, only with
  ``sts:SourceIdentity`` = the person, ``sts:RoleSessionName`` = the person (so the session ARN
  ``assumed-role/breakglass-emergency-<tier>/<person>`` names them), the request-id session tag,
  MFA where the tier asks for it, and only while ``aws:CurrentTime`` is inside the window;
- the same grant adds **one guard**: a deny-all for the sessions of that grant (source identity +
  request-id session tag) once ``aws:CurrentTime`` passes expiry, so a session issued before
  expiry dies at expiry whatever duration it was issued with;
- an early revoke **rewrites that guard in place** into its revoked form, a deny-all for every
  session of the grant whose ``aws:TokenIssueTime`` is before expiry. Every session the grant could
  ever issue was issued before expiry (the trust's window ends there), so this denies all of them,
  at once, whenever they were issued: a session that slipped through while the trust removal was
  still propagating is denied too, with no margin to tune. Both forms are the same size, so the
  rewrite never needs room, and both stop mattering at expiry + the role's longest session.

Guards are scoped by the request-id session tag as well as by source identity: scoped by
source identity alone, the expiry guard of a person's first grant would keep denying every
session of that person's later grants of the same tier.

Where guards live: the role's inline guard policy first; when it is full, managed policies
``breakglass-emergency-<tier>-guards-<n>`` ("pages", 6,144 characters each) attached to the role
only while they hold a live guard. The boundary already denies every emergency session any change
to ``policy/breakglass-emergency-*``. :func:`guard_capacity` says how many guards that is and how
many grants per hour a tier sustains.

Statement ids are ``<Kind><request id>`` verbatim. Request ids are minted by the system as 1-40
lower-case letters and digits, the kinds start with a capital and none is a prefix of another, so
a Sid names exactly one (kind, request). A Sid alone still proves nothing about who wrote the
statement (an older format, a hand edit): :func:`owns_gate`, :func:`owns_session_statement` and
:func:`owns_guard` check the contents before anything is removed, reused or counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from breakglass.contracts import iso
from breakglass.policies.boundary import MANAGED_POLICY_MAX_CHARS
from breakglass.policies.documents import document, policy_size
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG
from breakglass.validation import REQUEST_ID

VERSION: Final = "2012-10-17"

# AWS quotas (characters, whitespace excluded). The trust quota is adjustable (to 4096), and so is
# the number of managed policies per role (to 20); guard storage assumes the defaults.
TRUST_POLICY_MAX_CHARS: Final = 2048
INLINE_POLICIES_MAX_CHARS: Final = 10240  # all inline policies of one role together
MANAGED_POLICIES_PER_ROLE: Final = 10  # attached managed policies per role, the tier's own included
ROLE_MIN_MAX_SESSION_SECONDS: Final = 3600  # the lowest MaxSessionDuration IAM accepts for a role
# Room the component keeps free in the inline quota for the grant guards (about 13 guards).
GUARD_POLICY_RESERVE_CHARS: Final = 4096

GUARD_POLICY_NAME: Final = "breakglass-grant-guards"
GUARD_PAGE_INFIX: Final = "-guards-"
LOCKED_SID: Final = "LockedNoActiveGrant"
GRANT_SID_PREFIX: Final = "Grant"
GRANT_SESSION_SID_PREFIX: Final = "Session"
GUARD_SID_PREFIX: Final = "Guard"
STATEMENT_KINDS: Final = (GRANT_SID_PREFIX, GRANT_SESSION_SID_PREFIX, GUARD_SID_PREFIX)

# What a requester's AssumeRole call is evaluated for: the role, the source identity it sets and
# the session tag it passes. All three must be allowed.
TRUST_ACTIONS: Final = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
SESSION_ACTIONS: Final = ("sts:SetSourceIdentity", "sts:TagSession")

# A guard is kept this long after the last session it could match has ended: the Lambda's clock
# and AWS's may differ by a little, and a write may take a moment to propagate. Minutes, not hours:
# the margin is paid for in guard storage by every grant (see guard_capacity).
GUARD_PRUNE_MARGIN: Final = timedelta(minutes=5)

# The longest values a guard carries (worst case for capacity): a 40-character request id and a
# 64-character source identity.
MAX_REQUEST_ID_CHARS: Final = 40
MAX_SOURCE_IDENTITY_CHARS: Final = 64

_TIME = "%Y-%m-%dT%H:%M:%S%z"
_SESSION_TAG_KEY: Final = f"aws:PrincipalTag/{REQUEST_ID_SESSION_TAG}"
_REQUEST_TAG_KEY: Final = f"aws:RequestTag/{REQUEST_ID_SESSION_TAG}"


def statement_id(kind: str, request_id: str) -> str:
    """``<Kind><request id>``, unique per (kind, request) because of the id's alphabet."""
    if kind not in STATEMENT_KINDS:
        raise ValueError(f"unknown statement kind {kind!r}; kinds are {', '.join(STATEMENT_KINDS)}")
    if not re.fullmatch(REQUEST_ID, request_id):
        # Anything else could make two requests share a Sid (or be refused by IAM).
        raise ValueError(f"request id {request_id!r} is not 1-40 lower-case letters and digits")
    return f"{kind}{request_id}"


def _document(statements: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return document([dict(s) for s in statements])


def locked_statement() -> dict[str, Any]:
    return {"Sid": LOCKED_SID, "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}


def locked_trust_policy() -> dict[str, Any]:
    """The trust of a role with no active grant: nobody, not even the account root, can assume it."""
    return _document([locked_statement()])


def trust_policy(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The trust for the given statements; locked when none remain (IAM needs at least one)."""
    kept = [s for s in statements if s.get("Sid") != LOCKED_SID]
    return _document(kept) if kept else locked_trust_policy()


def grant_trust_statements(
    *,
    request_id: str,
    requester_arn: str,
    source_identity: str,
    starts_at: datetime,
    expires_at: datetime,
    require_mfa: bool,
    max_mfa_age_seconds: int | None = None,
) -> list[dict[str, Any]]:
    """Admit exactly ``requester_arn`` as ``source_identity`` with the request-id tag, inside the window.

    Two statements, because STS authorizes one AssumeRole call as up to three actions and
    documents different condition keys for each: ``sts:AssumeRole`` (the gate) sees the source
    identity, the session name, the request tags and MFA, so its statement pins all of them and the
    window; ``sts:SetSourceIdentity`` and ``sts:TagSession`` are only ever evaluated inside such an
    AssumeRole call, so the second statement allows them to the same principal without
    conditions (their values are pinned by the gate). A condition on a key an action does not
    document could make AWS refuse every assume of the grant (``sts:RoleSessionName`` is documented
    for AssumeRole only); dropping the window from the second statement keeps two grants inside the
    default 2048-character trust quota.
    """
    window = {
        "DateGreaterThan": {"aws:CurrentTime": iso(starts_at)},
        "DateLessThan": {"aws:CurrentTime": iso(expires_at)},
    }
    gate: dict[str, Any] = {
        "StringEquals": {
            "sts:SourceIdentity": source_identity,
            # The session ARN assumed-role/<role>/<session name> then names the person too, so a
            # caller identified by its ARN (the access API) maps to the person without a lookup.
            "sts:RoleSessionName": source_identity,
            _REQUEST_TAG_KEY: request_id,
        },
        # No other session tags: they would become aws:PrincipalTag values other policies trust.
        "ForAllValues:StringEquals": {"aws:TagKeys": [REQUEST_ID_SESSION_TAG]},
        **window,
    }
    if require_mfa:
        gate["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
        if max_mfa_age_seconds is not None:
            gate["NumericLessThan"] = {"aws:MultiFactorAuthAge": str(max_mfa_age_seconds)}
    principal = {"AWS": requester_arn}
    return [
        {
            "Sid": statement_id(GRANT_SID_PREFIX, request_id),
            "Effect": "Allow",
            "Principal": principal,
            "Action": "sts:AssumeRole",
            "Condition": gate,
        },
        {
            "Sid": statement_id(GRANT_SESSION_SID_PREFIX, request_id),
            "Effect": "Allow",
            "Principal": principal,
            "Action": list(SESSION_ACTIONS),
        },
    ]


def grant_trust_sids(request_id: str) -> tuple[str, str]:
    return statement_id(GRANT_SID_PREFIX, request_id), statement_id(GRANT_SESSION_SID_PREFIX, request_id)


def _grant_sessions(request_id: str, source_identity: str) -> dict[str, str]:
    return {"aws:SourceIdentity": source_identity, _SESSION_TAG_KEY: request_id}


def grant_guard_statement(
    *, request_id: str, source_identity: str, expires_at: datetime, revoked: bool = False
) -> dict[str, Any]:
    """The one guard of a grant: deny everything to its sessions after expiry or, once revoked,
    to every one of its sessions (all were issued before expiry). Same Sid and same size in both
    forms, so revoking rewrites it in place."""
    when = (
        {"DateLessThan": {"aws:TokenIssueTime": iso(expires_at)}}
        if revoked
        else {"DateGreaterThan": {"aws:CurrentTime": iso(expires_at)}}
    )
    return {
        "Sid": statement_id(GUARD_SID_PREFIX, request_id),
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {**when, "StringEquals": _grant_sessions(request_id, source_identity)},
    }


def guard_policy(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A guard document, or None when no guard remains (IAM refuses an empty policy)."""
    return _document(statements) if statements else None


@dataclass(frozen=True)
class GuardScope:
    """What a guard statement says, read back from IAM."""

    request_id: str
    source_identity: str
    expires_at: datetime  # the moment in its date condition
    revoked: bool  # the TokenIssueTime form


def read_guard(statement: Mapping[str, Any]) -> GuardScope | None:
    """The scope of a guard this package writes (or wrote in earlier versions: ``Expire…`` and
    ``Revoke…`` statements have the same shapes), or None for anything else."""
    condition = statement.get("Condition")
    if (
        statement.get("Effect") != "Deny"
        or statement.get("Action") != "*"
        or statement.get("Resource") != "*"
        or not isinstance(condition, Mapping)
        or set(condition) not in ({"DateGreaterThan", "StringEquals"}, {"DateLessThan", "StringEquals"})
    ):
        return None
    scope = condition["StringEquals"]
    if not isinstance(scope, Mapping) or set(scope) != {"aws:SourceIdentity", _SESSION_TAG_KEY}:
        return None
    if "DateGreaterThan" in condition:
        when, key, revoked = condition["DateGreaterThan"], "aws:CurrentTime", False
    else:
        when, key, revoked = condition["DateLessThan"], "aws:TokenIssueTime", True
    if not isinstance(when, Mapping) or set(when) != {key} or not isinstance(when[key], str):
        return None
    request_id, source_identity = scope[_SESSION_TAG_KEY], scope["aws:SourceIdentity"]
    if not isinstance(request_id, str) or not isinstance(source_identity, str):
        return None
    try:
        at = datetime.strptime(when[key], _TIME).astimezone(UTC)
    except ValueError:
        return None
    return GuardScope(request_id, source_identity, at, revoked)


def guard_relevant_until(statement: Mapping[str, Any]) -> datetime | None:
    """The time after which a guard cannot match a live session any more, before adding the
    role's longest session (None for a statement this module did not write).

    Both forms name the grant's expiry (an earlier version's revoke guard named the revoke time
    plus a margin): every session they match was issued before that moment, and a session lasts at
    most the role's maximum, so none is alive after that moment plus the maximum."""
    scope = read_guard(statement)
    return None if scope is None else scope.expires_at


def owns_gate(
    statement: Mapping[str, Any], *, request_id: str, requester_arn: str, source_identity: str
) -> bool:
    """Is this the AssumeRole statement of exactly this grant (Sid, principal, identity, request tag)?"""
    condition = statement.get("Condition")
    equals = condition.get("StringEquals") if isinstance(condition, Mapping) else None
    return (
        statement.get("Sid") == statement_id(GRANT_SID_PREFIX, request_id)
        and statement.get("Effect") == "Allow"
        and statement.get("Principal") == {"AWS": requester_arn}
        and statement.get("Action") == "sts:AssumeRole"
        and isinstance(equals, Mapping)
        and equals.get("sts:SourceIdentity") == source_identity
        and equals.get(_REQUEST_TAG_KEY) == request_id
    )


def owns_session_statement(statement: Mapping[str, Any], *, request_id: str, requester_arn: str) -> bool:
    """Is this the SetSourceIdentity/TagSession statement this grant writes? It has no condition to
    name the request (see grant_trust_statements), so the caller must also check that the gate of
    the same request id is this grant's or absent: a Session statement beside another request's
    gate belongs to that request."""
    actions = statement.get("Action")
    return (
        statement.get("Sid") == statement_id(GRANT_SESSION_SID_PREFIX, request_id)
        and statement.get("Effect") == "Allow"
        and statement.get("Principal") == {"AWS": requester_arn}
        and isinstance(actions, list)
        and sorted(actions) == sorted(SESSION_ACTIONS)
        and "Condition" not in statement
    )


def owns_guard(statement: Mapping[str, Any], *, request_id: str, source_identity: str) -> bool:
    """Is this the guard of exactly this grant (Sid and the scope it denies)?"""
    scope = read_guard(statement)
    return (
        statement.get("Sid") == statement_id(GUARD_SID_PREFIX, request_id)
        and scope is not None
        and scope.request_id == request_id
        and scope.source_identity == source_identity
    )


# --- guard pages (managed policies) ----------------------------------------------------------------

_ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]+)"
)


def _role_parts(role_arn: str) -> tuple[str, str, str]:
    found = _ROLE_ARN.fullmatch(role_arn)
    if found is None:
        raise ValueError(f"{role_arn!r} is not the ARN of an IAM role")
    return found["partition"], found["account"], found["name"]


def guard_page_name(role_name: str, number: int) -> str:
    """``breakglass-emergency-<tier>-guards-<n>``: under the boundary's ``breakglass-emergency-*``."""
    if number < 1:
        raise ValueError(f"guard pages are numbered from 1, got {number}")
    return f"{role_name}{GUARD_PAGE_INFIX}{number}"


def guard_page_arn(role_arn: str, number: int) -> str:
    partition, account, name = _role_parts(role_arn)
    return f"arn:{partition}:iam::{account}:policy/{guard_page_name(name, number)}"


def guard_pages_pattern(role_arn: str) -> str:
    """Every guard page of that role (for IAM permissions)."""
    partition, account, name = _role_parts(role_arn)
    return f"arn:{partition}:iam::{account}:policy/{name}{GUARD_PAGE_INFIX}*"


def guard_page_number(role_arn: str, policy_arn: str) -> int | None:
    """The page number of ``policy_arn`` if it is one of that role's guard pages, else None."""
    prefix = guard_pages_pattern(role_arn)[:-1]
    tail = policy_arn[len(prefix) :] if policy_arn.startswith(prefix) else ""
    return int(tail) if re.fullmatch(r"[1-9]\d{0,2}", tail) else None


def grant_function_statements(role_arns: Sequence[str]) -> list[dict[str, Any]]:
    """What the grant/revoke Lambda's own role needs on the emergency roles, and nothing else:
    edit their trust and inline guard policy, and create, rewrite, attach, detach and delete their
    guard pages (attaching only guard pages: the function cannot give a role other policies)."""
    roles = list(role_arns)
    pages = [guard_pages_pattern(arn) for arn in roles]
    return [
        {
            "Sid": "ManageEmergencyRoleGrants",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListAttachedRolePolicies",
            ],
            "Resource": roles,
        },
        {
            "Sid": "AttachGuardPages",
            "Effect": "Allow",
            "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            "Resource": roles,
            "Condition": {"ArnLike": {"iam:PolicyARN": pages}},
        },
        {
            "Sid": "ManageGuardPages",
            "Effect": "Allow",
            "Action": [
                "iam:CreatePolicy",
                "iam:TagPolicy",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
                "iam:CreatePolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:DeletePolicy",
            ],
            "Resource": pages,
        },
    ]


# --- capacity --------------------------------------------------------------------------------------


def guard_max_chars(
    *, request_id_chars: int = MAX_REQUEST_ID_CHARS, source_identity_chars: int = MAX_SOURCE_IDENTITY_CHARS
) -> int:
    """Characters one guard takes in a document (its comma included) with ids of these lengths."""
    statement = grant_guard_statement(
        request_id="r" * request_id_chars,
        source_identity="u" * source_identity_chars,
        expires_at=datetime(2000, 1, 1, tzinfo=UTC),
    )
    return policy_size(statement) + 1


def guards_per_document(room: int, guard_chars: int) -> int:
    """How many guards of ``guard_chars`` fit in a document of at most ``room`` characters."""
    overhead = policy_size(_document([])) - 1  # the document around its statements, comma excluded
    return max(0, (room - overhead) // guard_chars)


@dataclass(frozen=True)
class GuardCapacity:
    """How many guards a tier's role can hold, and how long each one is kept."""

    inline: int  # in the inline guard policy
    per_page: int  # in one managed guard page
    pages: int  # guard pages the role can still have attached
    lifetime_seconds: int  # from its write to when pruning may remove it, at most

    @property
    def total(self) -> int:
        return self.inline + self.pages * self.per_page

    @property
    def sustainable_grants_per_hour(self) -> int:
        """Evenly spaced grants (each may be revoked early: that costs nothing) that are never
        refused: a grant is refused only when ``total`` guards are live, and evenly spaced grants
        at r per hour keep ``floor(r * lifetime / 3600) + 1`` live. So r < total * 3600 / lifetime."""
        return max(0, math.ceil(self.total * 3600 / self.lifetime_seconds) - 1)

    @property
    def safe_grants_per_hour(self) -> int:
        """A limit of this many grants in any sliding hour is never refused, however the grants
        are bunched: a guard's lifetime overlaps at most ``floor(lifetime / 3600) + 1`` such hours.
        This is the figure for a per-tier request rate limit."""
        return self.total // (self.lifetime_seconds // 3600 + 1)


def guard_lifetime_seconds(*, max_window_seconds: int, max_session_seconds: int) -> int:
    """How long a guard is kept at most: from its write (at the earliest, the window's start) to
    expiry, then the role's longest session, then the prune margin. A role's maximum session is
    never under an hour in AWS, whatever the tier's own limit (``assume`` asks for less, but a
    direct AssumeRole may ask for the role's maximum), so pruning waits at least that long."""
    session = max(max_session_seconds, ROLE_MIN_MAX_SESSION_SECONDS)
    return max_window_seconds + session + int(GUARD_PRUNE_MARGIN.total_seconds())


def guard_capacity(
    *,
    max_window_seconds: int,
    max_session_seconds: int,
    other_inline_chars: int = 0,
    tier_managed_policies: int = 0,
    managed_policies_per_role: int = MANAGED_POLICIES_PER_ROLE,
    request_id_chars: int = MAX_REQUEST_ID_CHARS,
    source_identity_chars: int = MAX_SOURCE_IDENTITY_CHARS,
) -> GuardCapacity:
    """The guard storage of one tier's role, worst case (longest ids) unless told otherwise.

    ``other_inline_chars``: the tier's own inline policies (they share the 10,240 quota);
    ``tier_managed_policies``: the managed policies the tier attaches (they share the quota of 10).
    """
    size = guard_max_chars(request_id_chars=request_id_chars, source_identity_chars=source_identity_chars)
    return GuardCapacity(
        inline=guards_per_document(INLINE_POLICIES_MAX_CHARS - other_inline_chars, size),
        per_page=guards_per_document(MANAGED_POLICY_MAX_CHARS, size),
        pages=max(0, managed_policies_per_role - tier_managed_policies),
        lifetime_seconds=guard_lifetime_seconds(
            max_window_seconds=max_window_seconds, max_session_seconds=max_session_seconds
        ),
    )
