"""IAM documents of an emergency role: locked trust, per-grant statements, guards and the boundary.

Pure functions returning dicts (``json.dumps`` happens at the resource or API boundary).

How a window is enforced by IAM itself, not by a Lambda that might fail:

- the trust policy is **locked** (one deny, no allow) while no grant is active;
- a grant adds one trust statement admitting exactly the requester's principal, only with
  ``sts:SourceIdentity`` = the person, the request-id session tag, MFA where the tier asks for
  it, and only while ``aws:CurrentTime`` is inside the window;
- the same grant adds a deny-all *guard* to the role's inline guard policy for sessions of that
  grant (source identity + request-id session tag) once ``aws:CurrentTime`` passes expiry, so a
  session issued before expiry dies at expiry whatever duration it was issued with;
- an early revoke adds the ``aws:TokenIssueTime`` revoke-older-sessions deny for that grant.

Guards are scoped by the request-id session tag as well as by source identity: scoped by
source identity alone, the expiry guard of a person's first grant would keep denying every
session of that person's later grants of the same tier.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from breakglass.contracts import iso
from breakglass.policies.naming import (
    REQUEST_ID_SESSION_TAG,
)

VERSION: Final = "2012-10-17"

# AWS quotas (characters, whitespace excluded). The trust quota is adjustable (to 4096).
TRUST_POLICY_MAX_CHARS: Final = 2048
INLINE_POLICIES_MAX_CHARS: Final = 10240  # all inline policies of one role together
# Room the component keeps free in the inline quota for the grant guards (about 13 guards).
GUARD_POLICY_RESERVE_CHARS: Final = 4096

GUARD_POLICY_NAME: Final = "breakglass-grant-guards"
LOCKED_SID: Final = "LockedNoActiveGrant"
GRANT_SID_PREFIX: Final = "Grant"
GRANT_SESSION_SID_PREFIX: Final = "Session"
EXPIRY_SID_PREFIX: Final = "Expire"
REVOKE_SID_PREFIX: Final = "Revoke"

# What a requester's AssumeRole call is evaluated for: the role, the source identity it sets and
# the session tag it passes. All three must be allowed.
TRUST_ACTIONS: Final = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")

# Early revoke denies sessions issued up to this long after the revoke call: the grant's trust
# statement is already gone, so a session of that grant issued later can only come from IAM's
# eventual consistency and must die too.
REVOKE_PROPAGATION_MARGIN: Final = timedelta(seconds=60)


def statement_id(kind: str, request_id: str) -> str:
    """A Sid unique per (kind, request): readable request-id letters plus a digest against collisions."""
    letters = re.sub(r"[^A-Za-z0-9]", "", request_id)[:12]
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:8]
    return f"{kind}{letters}{digest}"


def _document(statements: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": [dict(s) for s in statements]}


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
    identity, the request tags and MFA, so its statement pins all of them and the window;
    ``sts:SetSourceIdentity`` and ``sts:TagSession`` are only ever evaluated inside such an
    AssumeRole call, so the second statement allows them to the same principal without
    conditions (their values are pinned by the gate). A condition on a key an action does not
    document could make AWS refuse every assume of the grant; dropping the window from the
    second statement keeps two grants inside the default 2048-character trust quota.
    """
    window = {
        "DateGreaterThan": {"aws:CurrentTime": iso(starts_at)},
        "DateLessThan": {"aws:CurrentTime": iso(expires_at)},
    }
    gate: dict[str, Any] = {
        "StringEquals": {
            "sts:SourceIdentity": source_identity,
            f"aws:RequestTag/{REQUEST_ID_SESSION_TAG}": request_id,
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
            "Action": ["sts:SetSourceIdentity", "sts:TagSession"],
        },
    ]


def grant_trust_sids(request_id: str) -> tuple[str, str]:
    return statement_id(GRANT_SID_PREFIX, request_id), statement_id(GRANT_SESSION_SID_PREFIX, request_id)


def _grant_sessions(request_id: str, source_identity: str) -> dict[str, str]:
    return {"aws:SourceIdentity": source_identity, f"aws:PrincipalTag/{REQUEST_ID_SESSION_TAG}": request_id}


def expiry_deny_statement(*, request_id: str, source_identity: str, expires_at: datetime) -> dict[str, Any]:
    """Deny everything to that grant's sessions once the window has closed."""
    return {
        "Sid": statement_id(EXPIRY_SID_PREFIX, request_id),
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "DateGreaterThan": {"aws:CurrentTime": iso(expires_at)},
            "StringEquals": _grant_sessions(request_id, source_identity),
        },
    }


def early_revoke_deny_statement(
    *, request_id: str, source_identity: str, revoked_at: datetime
) -> dict[str, Any]:
    """Deny everything to that grant's sessions issued before the revoke (plus the propagation margin)."""
    return {
        "Sid": statement_id(REVOKE_SID_PREFIX, request_id),
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "DateLessThan": {"aws:TokenIssueTime": iso(revoked_at + REVOKE_PROPAGATION_MARGIN)},
            "StringEquals": _grant_sessions(request_id, source_identity),
        },
    }


def guard_policy(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The inline guard policy, or None when no guard remains (IAM refuses an empty policy)."""
    return _document(statements) if statements else None


def guard_relevant_until(statement: Mapping[str, Any]) -> datetime | None:
    """The time after which a guard cannot match a live session any more, before adding the
    role's session length (None for a statement this module did not write)."""
    condition = statement.get("Condition", {})
    sid = str(statement.get("Sid", ""))
    raw: str | None = None
    if sid.startswith(EXPIRY_SID_PREFIX):
        raw = condition.get("DateGreaterThan", {}).get("aws:CurrentTime")
    elif sid.startswith(REVOKE_SID_PREFIX):
        raw = condition.get("DateLessThan", {}).get("aws:TokenIssueTime")
    if not isinstance(raw, str):
        return None
    return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S%z")


def grant_function_statements(role_arns: Sequence[str]) -> list[dict[str, Any]]:
    """What the grant/revoke Lambda's own role needs on the emergency roles, and nothing else."""
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
            ],
            "Resource": list(role_arns),
        }
    ]
