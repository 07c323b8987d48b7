"""Grant and revoke on real (moto) roles: round trips, idempotency, overlap, bad input, audit,
guard storage (in place rewrite, overflow pages, pruning, capacity) and statement ownership."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from iam_eval import ADMIN_POLICY, assume_context, can_assume, session_allowed, session_context
from iam_quotas import QuotaIam
from moto import mock_aws

from breakglass.contracts import TIERS_CONFIG_FILE, iso
from breakglass.lambdas.access.grants import (
    Grant,
    GrantError,
    Tier,
    WindowTooShortError,
    grant,
    load_tiers,
    revoke,
    session_duration,
)
from breakglass.lambdas.audit.events import AuditWriteError, AuditWriter, parse_record
from breakglass.lambdas.runtime import TASK_ROOT_VARIABLE
from breakglass.policies.boundary import permission_boundary
from breakglass.policies.documents import policy_size
from breakglass.policies.emergency_role import (
    GUARD_POLICY_NAME,
    GUARD_PRUNE_MARGIN,
    MANAGED_POLICIES_PER_ROLE,
    grant_guard_statement,
    guard_capacity,
    guard_page_arn,
    locked_trust_policy,
    statement_id,
)
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG, emergency_role_name
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:role/oncall-bob"
MALLORY = f"arn:aws:iam::{ACCOUNT}:user/mallory"
BUCKET = "bg-audit"
NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PERMISSIONS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}],
}


def make_tier(name: str = "admin", **overrides: Any) -> Tier:
    role_name = emergency_role_name(name)
    values: dict[str, Any] = {
        "name": name,
        "role_name": role_name,
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/{role_name}",
        "max_session_seconds": 3600,
        "max_window_seconds": 4 * 3600,
        "require_mfa": True,
        "allowed_requesters": (ALICE, BOB),
    }
    values.update(overrides)
    return Tier(**values)


TIERS = {"admin": make_tier("admin"), "halt": make_tier("halt", require_mfa=False, allowed_requesters=(BOB,))}


def alice_grant(**overrides: Any) -> Grant:
    values: dict[str, Any] = {
        "request_id": "reqalice1",
        "tier": "admin",
        "requester_arn": ALICE,
        "source_identity": "alice",
        "starts_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    }
    values.update(overrides)
    return Grant(**values)


BOB_GRANT = Grant(
    request_id="reqbob1",
    tier="admin",
    requester_arn=BOB,
    source_identity="bob",
    starts_at=NOW + timedelta(minutes=20),
    expires_at=NOW + timedelta(hours=2),
)


class Env:
    """Two tier roles in moto, behind :class:`QuotaIam` (AWS's quotas and delete rules)."""

    def __init__(self) -> None:
        self.moto_iam = boto3.client("iam", region_name="us-east-1")
        self.iam = QuotaIam(self.moto_iam)
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.s3.create_bucket(Bucket=BUCKET)
        self.writer = AuditWriter(s3=self.s3, bucket=BUCKET)
        for tier in TIERS.values():
            self.iam.create_role(
                RoleName=tier.role_name,
                AssumeRolePolicyDocument=json.dumps(locked_trust_policy()),
                MaxSessionDuration=tier.max_session_seconds,
            )
            self.iam.put_role_policy(
                RoleName=tier.role_name, PolicyName="permissions", PolicyDocument=json.dumps(PERMISSIONS)
            )

    def trust(self, tier: str = "admin") -> dict[str, Any]:
        document: dict[str, Any] = self.iam.get_role(RoleName=TIERS[tier].role_name)["Role"][
            "AssumeRolePolicyDocument"
        ]
        return document

    def inline(self, tier: str = "admin") -> dict[str, Any]:
        role = TIERS[tier].role_name
        names = self.iam.list_role_policies(RoleName=role)["PolicyNames"]
        return {n: self.iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names}

    def attached(self, tier: str = "admin") -> list[str]:
        return self.iam.attached(TIERS[tier].role_name)

    def pages(self, tier: str = "admin") -> dict[str, list[dict[str, Any]]]:
        """The guard pages attached to the role: ARN -> statements."""
        prefix = guard_page_arn(TIERS[tier].role_arn, 1)[:-1]
        return {
            arn: list(self.iam.managed_document(arn)["Statement"])
            for arn in self.attached(tier)
            if arn.startswith(prefix)
        }

    def guards(self, tier: str = "admin") -> list[dict[str, Any]]:
        """Every guard of the role: the inline guard policy's, then each attached page's."""
        statements: list[dict[str, Any]] = list(
            self.inline(tier).get(GUARD_POLICY_NAME, {}).get("Statement", [])
        )
        for page in self.pages(tier).values():
            statements.extend(page)
        return statements

    def guard_documents(self, tier: str = "admin") -> list[dict[str, Any]]:
        """The guard documents in force on the role (what a session is evaluated against)."""
        inline = self.inline(tier).get(GUARD_POLICY_NAME)
        pages = [{"Version": "2012-10-17", "Statement": s} for s in self.pages(tier).values()]
        return ([inline] if inline else []) + pages

    def local_policies(self) -> list[str]:
        return sorted(p["PolicyName"] for p in self.iam.list_policies(Scope="Local")["Policies"])

    def state(self) -> Any:
        return {t: (self.trust(t), self.inline(t), self.attached(t), self.pages(t)) for t in TIERS} | {
            "policies": self.local_policies()
        }

    def events(self) -> list[Any]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        records = [
            parse_record(json.loads(self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()))
            for o in listing
        ]
        return sorted(records, key=lambda e: (e.event_time, e.event_type, e.request_id or ""))

    def grant(self, g: Grant, now: datetime = NOW, **kwargs: Any) -> dict[str, Any]:
        return grant(self.iam, self.writer, TIERS, g, now=now, **kwargs)

    def revoke(self, g: Grant, now: datetime, *, early: bool, actor: str = "security") -> dict[str, Any]:
        return revoke(self.iam, self.writer, TIERS, g, early=early, actor=actor, now=now)

    def works(self, g: Grant, *, issued_at: datetime, at: datetime, tier: str = "admin") -> bool:
        """Would a session of ``g`` issued at ``issued_at`` be allowed an API call at ``at``?"""
        context = session_context(
            now=at, source_identity=g.source_identity, request_id=g.request_id, issued_at=issued_at
        )
        return session_allowed(
            TIERS[tier].role_arn,
            "sagemaker:DeleteEndpoint",
            f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/m",
            policies=[ADMIN_POLICY, *self.guard_documents(tier)],
            boundary=permission_boundary(),
            context=context,
        )


@pytest.fixture
def env() -> Iterator[Env]:
    with mock_aws():
        yield Env()


def sids(document: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    statements = document["Statement"] if isinstance(document, dict) else document
    return [s["Sid"] for s in statements]


def assumes(trust: dict[str, Any], g: Grant, at: datetime, *, mfa: bool = True) -> bool:
    context = assume_context(now=at, source_identity=g.source_identity, request_id=g.request_id, mfa=mfa)
    return can_assume(trust, TIERS[g.tier].role_arn, g.requester_arn, context)


# --- round trips ---------------------------------------------------------------------------------


def test_grant_opens_the_window_for_exactly_that_requester_and_revoke_locks_the_role_again(env: Env) -> None:
    g = alice_grant()
    result = env.grant(g, actor="approver:carol")
    assert result["outcome"] == "succeeded"
    assert result["session_tags"] == {REQUEST_ID_SESSION_TAG: "reqalice1"}
    trust = env.trust()
    assert LOCKED not in sids(trust)
    assert assumes(trust, g, NOW + timedelta(minutes=5))
    assert not assumes(trust, g, NOW + timedelta(minutes=5), mfa=False)
    assert not can_assume(
        trust,
        TIERS["admin"].role_arn,
        MALLORY,
        assume_context(now=NOW, source_identity="alice", request_id="reqalice1", mfa=True),
    )
    assert sids(env.guards()) == [statement_id("Guard", "reqalice1")]
    assert env.inline()["permissions"] == PERMISSIONS  # the tier's own permissions are untouched

    result = env.revoke(g, NOW + timedelta(hours=1), early=False, actor="system")
    assert result["outcome"] == "succeeded" and result["event_type"] == "expiry" and result["role_locked"]
    assert env.trust() == locked_trust_policy()
    # The expiry guard stays: a session issued before expiry still dies at expiry.
    assert sids(env.guards()) == [statement_id("Guard", "reqalice1")]


LOCKED = "LockedNoActiveGrant"


def test_grant_and_revoke_write_their_audit_events_to_the_bucket(env: Env) -> None:
    g = alice_grant()
    granted = env.grant(g, actor="approver:carol")
    revoked = env.revoke(g, NOW + timedelta(minutes=30), early=True, actor="alice")
    events = env.events()
    assert [(e.event_type, e.outcome, e.actor) for e in events] == [
        ("grant", "succeeded", "approver:carol"),
        ("revoke", "succeeded", "alice"),
    ]
    first, second = events
    assert first.request_id == second.request_id == "reqalice1"
    assert first.requester == "alice" and first.tier == "admin" and first.role_arn == TIERS["admin"].role_arn
    assert first.window_start == iso(NOW) and first.expires_at == iso(NOW + timedelta(hours=1))
    assert first.details["requester_arn"] == ALICE
    assert second.details["early"] is True
    assert granted["audit_key"].endswith(f"{first.event_id}.json")
    assert revoked["audit_key"].endswith(f"{second.event_id}.json")


def test_grant_and_revoke_are_idempotent_and_a_repeat_by_the_same_actor_is_recorded_once(env: Env) -> None:
    g = alice_grant()
    first = env.grant(g)
    after_first = env.state()
    again = env.grant(g, now=NOW + timedelta(minutes=1))
    assert again["outcome"] == "noop" and again["audit_key"] == first["audit_key"]
    assert env.state() == after_first

    revoked = env.revoke(g, NOW + timedelta(minutes=10), early=True)
    after_revoke = env.state()
    again = env.revoke(g, NOW + timedelta(minutes=11), early=True)
    assert again["outcome"] == "noop" and again["audit_key"] == revoked["audit_key"]
    assert env.state() == after_revoke
    # A repeat (a retried step, a second click) finds the first record: it is not added.
    assert [(e.event_type, e.outcome) for e in env.events()] == [
        ("grant", "succeeded"),
        ("revoke", "succeeded"),
    ]


def test_two_overlapping_grants_of_one_tier_are_independent(env: Env) -> None:
    alice = alice_grant()
    env.grant(alice)
    env.grant(BOB_GRANT, now=NOW + timedelta(minutes=5))
    trust = env.trust()
    overlap = NOW + timedelta(minutes=30)
    assert assumes(trust, alice, overlap) and assumes(trust, BOB_GRANT, overlap, mfa=True)
    assert len(env.guards()) == 2

    env.revoke(alice, NOW + timedelta(minutes=40), early=True, actor="security")
    trust = env.trust()
    assert not assumes(trust, alice, NOW + timedelta(minutes=41))
    assert assumes(trust, BOB_GRANT, NOW + timedelta(minutes=41))
    # Bob's session keeps working; Alice's (issued before the revoke) is dead.
    guards = {"Version": "2012-10-17", "Statement": env.guards()}
    boundary = permission_boundary()
    policies = [ADMIN_POLICY, guards]
    later = NOW + timedelta(minutes=45)

    def works(g: Grant, issued_at: datetime, at: datetime) -> bool:
        context = session_context(
            now=at, source_identity=g.source_identity, request_id=g.request_id, issued_at=issued_at
        )
        resource = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/m"
        return session_allowed(
            TIERS["admin"].role_arn,
            "sagemaker:DeleteEndpoint",
            resource,
            policies=policies,
            boundary=boundary,
            context=context,
        )

    assert not works(alice, NOW + timedelta(minutes=10), later)
    assert works(BOB_GRANT, NOW + timedelta(minutes=30), later)
    # After Bob's expiry, his session dies too.
    assert not works(BOB_GRANT, NOW + timedelta(minutes=30), BOB_GRANT.expires_at + timedelta(seconds=1))

    env.revoke(BOB_GRANT, BOB_GRANT.expires_at, early=False, actor="system")
    assert env.trust() == locked_trust_policy()


def test_an_early_revoked_request_cannot_be_granted_again(env: Env) -> None:
    g = alice_grant()
    env.grant(g)
    env.revoke(g, NOW + timedelta(minutes=5), early=True)
    before = env.state()
    with pytest.raises(GrantError, match=r"request_id: .*revoked early"):
        env.grant(g, now=NOW + timedelta(minutes=6))
    assert env.state() == before


def test_revoking_a_grant_that_never_happened_is_a_recorded_noop(env: Env) -> None:
    before = env.state()
    result = env.revoke(alice_grant(), NOW, early=False)
    assert result["outcome"] == "noop" and result["event_type"] == "revoke"
    assert env.state() == before
    assert [(e.event_type, e.outcome) for e in env.events()] == [("revoke", "noop")]


def test_guards_of_long_ended_grants_are_pruned_by_later_grants(env: Env) -> None:
    env.grant(alice_grant())
    env.revoke(alice_grant(), NOW + timedelta(hours=1), early=False, actor="system")
    next_day = NOW + timedelta(days=1)
    later = alice_grant(request_id="reqalice2", starts_at=next_day, expires_at=next_day + timedelta(hours=1))
    env.grant(later, now=next_day)
    assert sids(env.guards()) == [statement_id("Guard", "reqalice2")]


def test_a_grant_beyond_the_trust_quota_is_refused_with_a_clear_error_and_changes_nothing(env: Env) -> None:
    many = ALICE, BOB, MALLORY
    roomy = replace(TIERS["admin"], allowed_requesters=many)
    tiers = {"admin": roomy}
    for i, who in enumerate(many[:2]):
        g = alice_grant(request_id=f"{UUID}{i}", requester_arn=who, source_identity=f"person{i}@example.com")
        grant(env.iam, env.writer, tiers, g, now=NOW)
    before = env.state()
    third = alice_grant(request_id=f"{UUID}2", requester_arn=MALLORY, source_identity="person2@example.com")
    with pytest.raises(GrantError, match=r"trust_policy: .* over the 2048 quota"):
        grant(env.iam, env.writer, tiers, third, now=NOW)
    assert env.state() == before
    # With the account's quota raised (and said so in the tier), the third grant fits.
    env.iam.trust_policy_max_chars = 4096
    raised = {"admin": replace(roomy, trust_policy_max_chars=4096)}
    assert grant(env.iam, env.writer, raised, third, now=NOW)["outcome"] == "succeeded"


UUID = "3f2c9a1e7b4d4c6e9a8b00000000000"


def test_closed_windows_make_room_before_a_grant_is_refused_for_size(env: Env) -> None:
    roomy = {"admin": replace(TIERS["admin"], allowed_requesters=(ALICE, BOB, MALLORY))}
    for i, who in enumerate((ALICE, BOB)):
        g = alice_grant(request_id=f"{UUID}{i}", requester_arn=who, source_identity=f"person{i}@example.com")
        grant(env.iam, env.writer, roomy, g, now=NOW)
    # Their revokes never ran (the workflow failed): the windows closed anyway.
    later = NOW + timedelta(hours=2)
    g = alice_grant(
        request_id="new", requester_arn=MALLORY, starts_at=later, expires_at=later + timedelta(hours=1)
    )
    grant(env.iam, env.writer, roomy, g, now=later)
    assert sids(env.trust()) == [statement_id("Grant", "new"), statement_id("Session", "new")]


# --- bad input changes nothing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grant_overrides", "now", "message"),
    [
        ({"tier": "superuser"}, NOW, r"tier: unknown tier 'superuser'; known tiers: admin, halt"),
        ({"requester_arn": MALLORY}, NOW, r"requester_arn: .*mallory may not be granted tier 'admin'"),
        ({"tier": "halt"}, NOW, r"requester_arn: .*alice may not be granted tier 'halt'"),
        ({}, NOW + timedelta(hours=2), r"expires_at: 2025-03-01T10:00:00Z is in the past"),
        (
            {"expires_at": NOW + timedelta(hours=5)},
            NOW,
            r"expires_at: .* 18000 s, over tier 'admin'.* 14400 s",
        ),
        ({"starts_at": NOW + timedelta(hours=2)}, NOW, r"starts_at: must be before expires_at"),
        ({"source_identity": "aws:alice"}, NOW, r"source_identity: use 2-64"),
        ({"request_id": "req 1"}, NOW, r"request_id: a request id is 1-40"),
        ({"starts_at": datetime(2025, 3, 1, 9, 0)}, NOW, r"starts_at: must be a timezone-aware"),
    ],
)
def test_bad_input_is_refused_with_an_error_naming_the_field_and_changes_nothing(
    env: Env, grant_overrides: dict[str, Any], now: datetime, message: str
) -> None:
    env.grant(BOB_GRANT)  # an unrelated active grant must survive untouched
    before = env.state()
    with pytest.raises(GrantError, match=message):
        env.grant(alice_grant(**grant_overrides), now=now)
    assert env.state() == before
    assert [e.event_type for e in env.events()] == ["grant"]


def test_a_different_grant_under_an_existing_request_id_is_refused(env: Env) -> None:
    env.grant(alice_grant())
    before = env.state()
    with pytest.raises(GrantError, match=r"request_id: .* already has a different trust statement"):
        env.grant(alice_grant(expires_at=NOW + timedelta(hours=2)))
    assert env.state() == before


def test_revoke_with_an_unknown_tier_is_refused_and_changes_nothing(env: Env) -> None:
    env.grant(alice_grant())
    before = env.state()
    with pytest.raises(GrantError, match="tier: unknown tier"):
        env.revoke(alice_grant(tier="nope"), NOW, early=True)
    assert env.state() == before


# --- audit failures --------------------------------------------------------------------------------


class BrokenS3:
    def put_object(self, **kwargs: Any) -> Any:
        raise RuntimeError("AccessDenied: bucket policy")


def test_a_grant_whose_audit_event_cannot_be_written_is_rolled_back_and_raises(env: Env) -> None:
    env.grant(BOB_GRANT)
    before = env.state()
    broken = AuditWriter(s3=BrokenS3(), bucket=BUCKET)
    with pytest.raises(AuditWriteError, match="not stored"):
        grant(env.iam, broken, TIERS, alice_grant(), now=NOW)
    assert env.state() == before


def test_a_revoke_whose_audit_event_cannot_be_written_stays_revoked_and_raises(env: Env) -> None:
    g = alice_grant()
    env.grant(g)
    broken = AuditWriter(s3=BrokenS3(), bucket=BUCKET)
    with pytest.raises(AuditWriteError):
        revoke(env.iam, broken, TIERS, g, early=True, actor="security", now=NOW + timedelta(minutes=5))
    assert env.trust() == locked_trust_policy()
    assert env.guards() == [revoked_guard(g)]
    # The retry records the event (as a noop: the revoke is already in place).
    result = env.revoke(g, NOW + timedelta(minutes=6), early=True)
    assert result["outcome"] == "noop"
    assert [(e.event_type, e.outcome) for e in env.events()] == [("grant", "succeeded"), ("revoke", "noop")]


class FailingTrustIam:
    """The real (moto) client, except that changing the trust fails."""

    def __init__(self, iam: Any) -> None:
        self._iam = iam

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iam, name)

    def update_assume_role_policy(self, **kwargs: Any) -> Any:
        raise RuntimeError("Throttling: rate exceeded")


def test_a_grant_whose_trust_update_fails_leaves_no_guard_behind(env: Env) -> None:
    before = env.state()
    with pytest.raises(RuntimeError, match="Throttling"):
        grant(FailingTrustIam(env.iam), env.writer, TIERS, alice_grant(), now=NOW)
    assert env.state() == before
    assert env.events() == []


# --- session length ---------------------------------------------------------------------------------


def test_session_duration_never_passes_expiry_nor_the_role_maximum() -> None:
    tier = TIERS["admin"]
    assert session_duration(NOW, NOW + timedelta(hours=3), tier) == 3600
    assert session_duration(NOW, NOW + timedelta(minutes=20), tier) == 1200
    assert session_duration(NOW, NOW + timedelta(seconds=900), tier) == 900


def test_session_duration_says_so_when_less_than_the_shortest_session_remains() -> None:
    with pytest.raises(WindowTooShortError, match=r"expires_at: only 899 s of the window remain"):
        session_duration(NOW, NOW + timedelta(seconds=899), TIERS["admin"])
    with pytest.raises(WindowTooShortError, match="the window has closed"):
        session_duration(NOW, NOW - timedelta(seconds=1), TIERS["admin"])


# --- tiers and events -------------------------------------------------------------------------------


def shipped(tmp_path: Path, text: str) -> dict[str, str]:
    """A task root whose archive holds the tiers file ``text``, as the environment names it."""
    (tmp_path / TIERS_CONFIG_FILE).write_text(text)
    return {TASK_ROOT_VARIABLE: str(tmp_path)}


def test_tiers_round_trip_through_the_archive_file(tmp_path: Path) -> None:
    environ = shipped(tmp_path, json.dumps({name: t.to_dict() for name, t in TIERS.items()}))
    assert load_tiers(environ) == TIERS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_session_seconds": 60}, r"max_session_seconds: must be at least 900"),
        ({"max_session_seconds": 50000}, r"max_session_seconds: must be at most 43200"),
        ({"allowed_requesters": []}, r"allowed_requesters: must not be empty"),
        ({"allowed_requesters": ["alice"]}, r"allowed_requesters\[0\]: must be an IAM role or user ARN"),
        ({"role_name": "admin"}, r"role_name: must be 'breakglass-emergency-admin'"),
        ({"require_mfa": "yes"}, r"require_mfa: must be true or false"),
        ({"colour": "red"}, r"colour: unknown setting"),
        ({"trust_policy_max_chars": 9000}, r"trust_policy_max_chars: must be at most 4096"),
    ],
)
def test_a_bad_tier_setting_is_named(change: dict[str, Any], message: str, tmp_path: Path) -> None:
    data = {**TIERS["admin"].to_dict(), **change}
    with pytest.raises(ConfigError, match=message):
        Tier.from_dict(data)
    with pytest.raises(ConfigError, match=f"{TIERS_CONFIG_FILE}.admin.{message}"):
        load_tiers(shipped(tmp_path, json.dumps({"admin": data})))


def test_missing_or_malformed_tier_configuration_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=f"environment variable {TASK_ROOT_VARIABLE} is not set"):
        load_tiers({})
    with pytest.raises(RuntimeError, match=f"{TIERS_CONFIG_FILE} is not in the function's archive"):
        load_tiers({TASK_ROOT_VARIABLE: str(tmp_path)})
    with pytest.raises(RuntimeError, match=f"{TIERS_CONFIG_FILE} in the function's archive is not JSON"):
        load_tiers(shipped(tmp_path, "{"))
    with pytest.raises(ConfigError, match=f"{TIERS_CONFIG_FILE}: must be"):
        load_tiers(shipped(tmp_path, "[]"))
    with pytest.raises(ConfigError, match=rf"{TIERS_CONFIG_FILE}.ops.name: must equal its key"):
        load_tiers(shipped(tmp_path, json.dumps({"ops": TIERS["admin"].to_dict()})))


def test_grant_events_parse_and_round_trip() -> None:
    g = alice_grant()
    assert Grant.from_event({**g.to_event(), "reason": "model leaking data"}) == g


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expires_at": "2025-03-01 10:00"}, r"expires_at: must be an ISO 8601 UTC time"),
        ({"expires_at": "2025-02-30T10:00:00Z"}, r"expires_at: is not a real date"),
        ({"starts_at": None}, r"starts_at: must be a string"),
        ({"requester_arn": "alice"}, r"requester_arn: must be an IAM role or user ARN"),
        ({"tier": "Admin!"}, r"tier: use 1-40 lower-case"),
        ({"starts_at": "2025-03-01T11:00:00Z"}, r"starts_at: must be before expires_at"),
    ],
)
def test_a_bad_event_field_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(GrantError, match=message):
        Grant.from_event({**alice_grant().to_event(), **change})


# --- helpers for guard storage ---------------------------------------------------------------------


def expiry_guard(g: Grant) -> dict[str, Any]:
    return grant_guard_statement(
        request_id=g.request_id, source_identity=g.source_identity, expires_at=g.expires_at
    )


def revoked_guard(g: Grant) -> dict[str, Any]:
    return grant_guard_statement(
        request_id=g.request_id, source_identity=g.source_identity, expires_at=g.expires_at, revoked=True
    )


def attack(i: int, at: datetime, window: timedelta = timedelta(hours=4)) -> Grant:
    """Bob's i-th request on the admin tier; ids of one length so every guard has one size."""
    return Grant(
        request_id=f"attack{i:03d}",
        tier="admin",
        requester_arn=BOB,
        source_identity="bob",
        starts_at=at,
        expires_at=at + window,
    )


def cycle(env: Env, g: Grant, at: datetime) -> None:
    """Request, auto-grant, revoke early: what one responder can repeat on an auto-approved tier."""
    env.grant(g, now=at)
    env.revoke(g, at + timedelta(seconds=5), early=True, actor="bob")


def fill_inline(env: Env, chars: int, tier: str = "admin") -> None:
    """Make the tier's own inline policy exactly ``chars`` characters (as IAM counts them)."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ""}],
    }
    document["Statement"][0]["Resource"] = "arn:aws:s3:::" + "x" * (chars - policy_size(document) - 13)
    assert policy_size(document) == chars
    env.iam.put_role_policy(
        RoleName=TIERS[tier].role_name, PolicyName="permissions", PolicyDocument=json.dumps(document)
    )


def attach_own_policies(env: Env, count: int, tier: str = "admin") -> None:
    """The tier's own managed policies (they share the role's quota of 10 with guard pages)."""
    for i in range(count):
        arn = env.iam.create_policy(
            PolicyName=f"tier-permissions-{i}",
            PolicyDocument=json.dumps(PERMISSIONS),
        )["Policy"]["Arn"]
        env.iam.attach_role_policy(RoleName=TIERS[tier].role_name, PolicyArn=arn)


def inline_chars(env: Env, tier: str = "admin") -> int:
    return sum(policy_size(d) for d in env.inline(tier).values())


# --- finding 1: early revoke cannot be made impossible; guard storage cannot be exhausted -------


def test_a_responder_cycling_request_grant_and_early_revoke_blocks_neither_later_grants_nor_their_revoke(
    env: Env,
) -> None:
    """Issue 8, finding 1: about 19 such cycles used to fill the inline quota, after which nobody
    could be granted the tier and nobody on it could be revoked."""
    t = NOW
    for i in range(45):
        cycle(env, attack(i, t), t)
        t += timedelta(minutes=1)
    victim = alice_grant(request_id="victim", starts_at=t, expires_at=t + timedelta(hours=1))
    assert env.grant(victim, now=t)["outcome"] == "succeeded"
    assert env.works(victim, issued_at=t, at=t + timedelta(minutes=1))

    result = env.revoke(victim, t + timedelta(minutes=2), early=True)
    assert result["outcome"] == "succeeded" and result["role_locked"]
    assert env.trust() == locked_trust_policy()
    assert not env.works(victim, issued_at=t, at=t + timedelta(minutes=3))
    # One guard per request: each early revoke rewrote its grant's guard instead of adding one.
    assert len(env.guards()) == 46
    assert len(env.attached()) <= MANAGED_POLICIES_PER_ROLE


def test_an_early_revoke_succeeds_when_the_inline_quota_is_already_full(env: Env) -> None:
    g = alice_grant()
    env.grant(g)
    guard_chars = policy_size(env.inline()[GUARD_POLICY_NAME])
    fill_inline(env, 10240 - guard_chars)  # not one character of the 10,240 left
    assert inline_chars(env) == 10240

    result = env.revoke(g, NOW + timedelta(minutes=5), early=True)
    assert result["outcome"] == "succeeded"
    assert env.trust() == locked_trust_policy()
    assert env.guards() == [revoked_guard(g)]
    assert not env.works(g, issued_at=NOW + timedelta(minutes=1), at=NOW + timedelta(minutes=6))


def test_an_early_revoke_rewrites_the_grant_s_guard_in_place_and_adds_no_statement(env: Env) -> None:
    alice = alice_grant()
    env.grant(alice)
    env.grant(BOB_GRANT, now=NOW + timedelta(minutes=5))
    before = env.guards()
    assert before == [expiry_guard(alice), expiry_guard(BOB_GRANT)]

    env.revoke(alice, NOW + timedelta(minutes=10), early=True)
    after = env.guards()
    assert after == [revoked_guard(alice), expiry_guard(BOB_GRANT)]
    # Same Sid, same place, same size: the rewrite can never need room.
    assert policy_size(after[0]) == policy_size(before[0])
    assert policy_size(env.inline()[GUARD_POLICY_NAME]) == policy_size(
        {"Version": "2012-10-17", "Statement": before}
    )


def test_a_revoked_grant_s_sessions_are_denied_whenever_they_were_issued_and_other_grants_keep_working(
    env: Env,
) -> None:
    alice = alice_grant()
    env.grant(alice)
    env.grant(BOB_GRANT, now=NOW + timedelta(minutes=20))
    revoked_at = NOW + timedelta(minutes=30)
    assert env.works(alice, issued_at=NOW + timedelta(minutes=1), at=revoked_at - timedelta(seconds=1))

    env.revoke(alice, revoked_at, early=True)
    # Issued before the revoke, or after it while the trust removal was still propagating (the old
    # revoke guard covered 60 s of that; this one covers every session of the grant).
    for issued_at in (
        NOW + timedelta(minutes=1),
        revoked_at - timedelta(seconds=1),
        revoked_at + timedelta(minutes=5),
        alice.expires_at - timedelta(seconds=1),
    ):
        assert not env.works(
            alice, issued_at=issued_at, at=max(issued_at, revoked_at) + timedelta(seconds=30)
        )
    # Bob's grant of the same tier is untouched, and still ends at its own expiry.
    assert env.works(BOB_GRANT, issued_at=revoked_at, at=revoked_at + timedelta(minutes=1))
    assert not env.works(BOB_GRANT, issued_at=revoked_at, at=BOB_GRANT.expires_at + timedelta(seconds=1))
    trust = env.trust()
    assert not assumes(trust, alice, revoked_at + timedelta(minutes=1))
    assert assumes(trust, BOB_GRANT, revoked_at + timedelta(minutes=1))


def test_guards_overflow_into_managed_pages_that_are_attached_only_while_they_hold_live_guards(
    env: Env,
) -> None:
    t = NOW
    granted = []
    for i in range(75):
        g = attack(i, t, window=timedelta(hours=1))
        cycle(env, g, t)
        granted.append(g)
        t += timedelta(minutes=1)
    pages = env.pages()
    assert [arn.rsplit("/", 1)[1] for arn in pages] == [
        "breakglass-emergency-admin-guards-1",
        "breakglass-emergency-admin-guards-2",
    ]
    assert sorted(sids(env.guards())) == sorted(statement_id("Guard", g.request_id) for g in granted)
    assert inline_chars(env) <= 10240
    for arn, statements in pages.items():
        assert policy_size({"Version": "2012-10-17", "Statement": statements}) <= 6144
        # Every rewrite leaves at most the new version and the one before (AWS keeps at most five).
        assert len(env.iam.list_policy_versions(PolicyArn=arn)["Versions"]) <= 2
        tags = {t["Key"]: t["Value"] for t in env.iam.get_policy(PolicyArn=arn)["Policy"].get("Tags", [])}
        assert tags == {"breakglass:protected": "true", "breakglass:emergency-tier": "admin"}
    # Every session of every revoked grant is denied, wherever its guard lives.
    for g in (granted[0], granted[50], granted[-1]):
        assert not env.works(g, issued_at=g.starts_at, at=g.starts_at + timedelta(minutes=1))

    # Once every guard has lapsed, the next write prunes them: pages detached and deleted.
    last_relevant = granted[-1].expires_at + timedelta(hours=1) + GUARD_PRUNE_MARGIN
    later = last_relevant + timedelta(seconds=1)
    fresh = alice_grant(request_id="fresh", starts_at=later, expires_at=later + timedelta(hours=1))
    env.grant(fresh, now=later)
    assert env.pages() == {} and env.attached() == []
    assert env.local_policies() == []
    assert env.guards() == [expiry_guard(fresh)]


def test_the_tier_s_own_managed_policies_leave_fewer_pages_and_a_full_role_refuses_a_grant_changing_nothing(
    env: Env,
) -> None:
    attach_own_policies(env, 9)  # one attachment slot left for guard pages
    victim = attack(999, NOW, window=timedelta(hours=2))
    env.grant(victim, now=NOW)  # a live grant, made before the role filled up
    t = NOW
    i = 0
    with pytest.raises(GrantError) as refused:
        while i < 500:
            cycle(env, attack(i, t), t)
            i += 1
            t += timedelta(seconds=10)
    message = str(refused.value)
    assert message.startswith("guards: no room for this grant's guard on breakglass-emergency-admin")
    assert "Nothing was changed" in message
    assert len(env.attached()) == MANAGED_POLICIES_PER_ROLE
    # What the role held when it refused is what the capacity function says (same id lengths).
    capacity = guard_capacity(
        max_window_seconds=4 * 3600,
        max_session_seconds=3600,
        other_inline_chars=policy_size(PERMISSIONS),
        tier_managed_policies=9,
        request_id_chars=len("attack000"),
        source_identity_chars=len("bob"),
    )
    assert len(env.guards()) == capacity.total == i + 1
    # The refused grant changed nothing.
    before = env.state()
    with pytest.raises(GrantError, match="guards: no room"):
        env.grant(attack(i, t), now=t)
    assert env.state() == before

    # A live grant on a full role can still be revoked early, and its sessions end.
    result = env.revoke(victim, t, early=True)
    assert result["outcome"] == "succeeded" and result["role_locked"]
    assert not env.works(victim, issued_at=NOW, at=t + timedelta(seconds=1))
    assert len(env.guards()) == capacity.total


def test_a_guard_is_kept_until_expiry_plus_the_longest_session_and_pruned_after(env: Env) -> None:
    g = alice_grant()
    env.grant(g)
    env.revoke(g, NOW + timedelta(minutes=10), early=True)
    last_session_end = g.expires_at + timedelta(seconds=TIERS["admin"].max_session_seconds)

    def probe(n: int, at: datetime) -> None:  # any write prunes; a grant is one
        env.grant(
            alice_grant(request_id=f"probe{n}", starts_at=at, expires_at=at + timedelta(hours=1)), now=at
        )

    probe(1, last_session_end + GUARD_PRUNE_MARGIN)
    assert revoked_guard(g) in env.guards()
    probe(2, last_session_end + GUARD_PRUNE_MARGIN + timedelta(seconds=1))
    assert revoked_guard(g) not in env.guards()


def test_pruning_waits_for_the_role_s_longest_session_when_it_is_longer_than_the_tier_says(env: Env) -> None:
    # The role's maximum was raised outside the stack: sessions may last four hours.
    env.iam.update_role(RoleName=TIERS["admin"].role_name, MaxSessionDuration=4 * 3600)
    g = alice_grant()
    env.grant(g)
    env.revoke(g, NOW + timedelta(minutes=10), early=True)
    at = g.expires_at + timedelta(hours=1) + GUARD_PRUNE_MARGIN + timedelta(seconds=1)
    cycle(env, alice_grant(request_id="probe1", starts_at=at, expires_at=at + timedelta(hours=1)), at)
    assert revoked_guard(g) in env.guards()
    at = g.expires_at + timedelta(hours=4) + GUARD_PRUNE_MARGIN + timedelta(seconds=1)
    cycle(env, alice_grant(request_id="probe2", starts_at=at, expires_at=at + timedelta(hours=1)), at)
    assert revoked_guard(g) not in env.guards()


def test_a_guard_page_left_behind_detached_is_taken_over_not_an_error(env: Env) -> None:
    # A crash between creating a page and attaching it leaves it detached (it guards nothing).
    stale = {"Version": "2012-10-17", "Statement": [expiry_guard(alice_grant(request_id="stale"))]}
    env.iam.create_policy(PolicyName="breakglass-emergency-admin-guards-1", PolicyDocument=json.dumps(stale))
    fill_inline(env, 10240 - 100)  # no room inline: the next guard needs a page
    g = alice_grant()
    assert env.grant(g)["outcome"] == "succeeded"
    assert list(env.pages().values()) == [[expiry_guard(g)]]
    env.revoke(g, NOW + timedelta(minutes=1), early=True)
    assert list(env.pages().values()) == [[revoked_guard(g)]]


def small_role(env: Env) -> tuple[dict[str, Tier], Any]:
    """A role with little guard room (one page, a few guards inline) and 15-minute windows."""
    tiers = {"admin": replace(TIERS["admin"], max_window_seconds=900)}
    fill_inline(env, 9000)
    attach_own_policies(env, 9)
    capacity = guard_capacity(
        max_window_seconds=900,
        max_session_seconds=3600,
        other_inline_chars=9000,
        tier_managed_policies=9,
        request_id_chars=len("attack000"),
        source_identity_chars=len("bob"),
    )
    return tiers, capacity


def run_cycles(env: Env, tiers: dict[str, Tier], times: list[datetime], first: int = 0) -> int:
    """Grant and revoke early one request at each time; how many grants were refused."""
    refused = 0
    for k, at in enumerate(times, start=first):
        g = attack(k, at, window=timedelta(seconds=900))
        try:
            grant(env.iam, env.writer, tiers, g, now=at)
        except GrantError:
            refused += 1
            continue
        revoke(env.iam, env.writer, tiers, g, early=True, actor="bob", now=at)
    return refused


def test_grants_at_the_sustainable_rate_are_never_refused_and_one_more_per_hour_is(env: Env) -> None:
    """The measured side of guard_capacity: grants and early revokes, evenly spaced on a simulated
    clock for two guard lifetimes (benchmarks/grant_capacity.py does this for real tier sizes)."""
    tiers, capacity = small_role(env)
    rate = capacity.sustainable_grants_per_hour
    assert rate > 0

    def evenly(per_hour: int, start: datetime) -> list[datetime]:
        count = 2 * capacity.lifetime_seconds * per_hour // 3600
        return [start + timedelta(seconds=k * 3600 / per_hour) for k in range(count)]

    assert run_cycles(env, tiers, evenly(rate, NOW)) == 0
    later = NOW + timedelta(days=1)  # every guard of the first run has lapsed by then
    assert run_cycles(env, tiers, evenly(rate + 1, later), first=500) > 0


def test_a_safe_hourly_limit_is_never_refused_however_its_grants_are_bunched(env: Env) -> None:
    """The worst timing a sliding one-hour limit allows: the whole allowance at one instant, every
    hour on the hour. ``safe_grants_per_hour`` of them is never refused; one more is."""
    tiers, capacity = small_role(env)
    limit = capacity.safe_grants_per_hour
    assert limit > 0

    def bunched(per_hour: int, start: datetime) -> list[datetime]:
        return [start + timedelta(hours=h) for h in range(4) for _ in range(per_hour)]

    assert run_cycles(env, tiers, bunched(limit, NOW)) == 0
    assert run_cycles(env, tiers, bunched(limit + 1, NOW + timedelta(days=1)), first=500) > 0


# --- finding 2: a statement with this request's Sid and another owner is never touched ------------


def relabelled_trust(env: Env, owner: Grant, as_request: str) -> dict[str, Any]:
    """``owner``'s live trust statements under ``as_request``'s Sids (a hand edit, or an older
    version's Sid that equals a new request's)."""
    trust = env.trust()
    renames = {
        statement_id("Grant", owner.request_id): statement_id("Grant", as_request),
        statement_id("Session", owner.request_id): statement_id("Session", as_request),
    }
    for statement in trust["Statement"]:
        statement["Sid"] = renames.get(statement["Sid"], statement["Sid"])
    env.iam.update_assume_role_policy(RoleName=TIERS["admin"].role_name, PolicyDocument=json.dumps(trust))
    return trust


def test_a_foreign_trust_statement_with_this_request_s_sid_is_neither_removed_by_revoke_nor_reused_by_grant(
    env: Env,
) -> None:
    other = alice_grant(request_id="other", requester_arn=BOB, source_identity="bob")
    env.grant(other)
    trust = relabelled_trust(env, other, as_request="reqalice1")

    result = env.revoke(alice_grant(), NOW + timedelta(minutes=5), early=True)
    assert env.trust() == trust  # not removed
    assert result["outcome"] == "noop"  # and not counted as this grant's
    assert result["foreign_statements"] == ["Grantreqalice1", "Sessionreqalice1"]
    assert env.events()[-1].details["foreign_statements"] == ["Grantreqalice1", "Sessionreqalice1"]
    assert assumes(env.trust(), other, NOW + timedelta(minutes=6), mfa=True)  # bob still gets in

    before = env.state()
    with pytest.raises(
        GrantError, match=r"request_id: Grantreqalice1, Sessionreqalice1 on .* not this grant's"
    ):
        env.grant(alice_grant(), now=NOW + timedelta(minutes=6))
    assert env.state() == before


def test_a_foreign_guard_with_this_request_s_sid_is_never_rewritten_removed_or_counted(env: Env) -> None:
    foreign = expiry_guard(alice_grant(request_id="other", source_identity="bob"))
    foreign["Sid"] = statement_id("Guard", "reqalice1")
    env.iam.put_role_policy(
        RoleName=TIERS["admin"].role_name,
        PolicyName=GUARD_POLICY_NAME,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}),
    )
    before = env.state()
    with pytest.raises(GrantError, match=r"request_id: Guardreqalice1 on .* not this grant's"):
        env.grant(alice_grant())
    assert env.state() == before

    result = env.revoke(alice_grant(), NOW + timedelta(minutes=5), early=True)
    assert result["outcome"] == "noop" and result["foreign_statements"] == ["Guardreqalice1"]
    assert env.guards() == [foreign]


def legacy_statement_id(kind: str, request_id: str) -> str:
    """How statement ids were made before request ids were minted (12 letters + 32 bits of SHA-256)."""
    letters = "".join(c for c in request_id if c.isalnum())[:12]
    return f"{kind}{letters}{hashlib.sha256(request_id.encode()).hexdigest()[:8]}"


def test_an_older_version_s_statement_whose_sid_equals_a_new_request_s_is_not_that_request_s(
    env: Env,
) -> None:
    """A grant written before the upgrade has the Sid ``Grant<12 letters><8 hex>``, which is exactly
    ``Grant<new id>`` for a minted id of those 20 characters. Same person, same principal."""
    old = alice_grant(request_id="incident2024march")
    env.grant(old)
    trust = env.trust()
    for statement in trust["Statement"]:
        kind = "Grant" if statement["Sid"].startswith("Grant") else "Session"
        statement["Sid"] = legacy_statement_id(kind, old.request_id)
    env.iam.update_assume_role_policy(RoleName=TIERS["admin"].role_name, PolicyDocument=json.dumps(trust))
    colliding = legacy_statement_id("Grant", old.request_id).removeprefix("Grant")
    new = alice_grant(request_id=colliding)
    assert statement_id("Grant", new.request_id) == trust["Statement"][0]["Sid"]

    # The Session statement has no condition, but it sits beside the old request's gate: not ours.
    result = env.revoke(new, NOW + timedelta(minutes=5), early=True)
    assert result["outcome"] == "noop" and len(result["foreign_statements"]) == 2
    assert env.trust() == trust
    with pytest.raises(GrantError, match="not this grant's"):
        env.grant(new, now=NOW + timedelta(minutes=6))


# --- finding 3: the session name names the person ---------------------------------------------------


def test_the_granted_trust_admits_the_person_only_under_their_own_session_name(env: Env) -> None:
    g = alice_grant()
    env.grant(g)
    at = NOW + timedelta(minutes=5)
    own = assume_context(now=at, source_identity="alice", request_id=g.request_id, mfa=True)
    assert can_assume(env.trust(), TIERS["admin"].role_arn, ALICE, own)
    for name in ("bob", "alice-reqalice1", "Alice"):
        other = {**own, "sts:RoleSessionName": name}
        assert not can_assume(env.trust(), TIERS["admin"].role_arn, ALICE, other)


# --- finding 4: a record never says expiry when it isn't -------------------------------------------


def test_a_revoke_is_recorded_as_expiry_only_at_or_after_expiry_and_never_when_early(env: Env) -> None:
    cases = [
        ("before", timedelta(seconds=-1), False, "revoke"),
        ("atexpiry", timedelta(0), False, "expiry"),
        ("after", timedelta(minutes=5), False, "expiry"),
        ("earlyafter", timedelta(minutes=5), True, "revoke"),
    ]
    for rid, offset, early, expected in cases:
        g = alice_grant(request_id=rid)
        env.grant(g)
        assert env.revoke(g, g.expires_at + offset, early=early)["event_type"] == expected


def test_no_caller_can_ask_a_revoke_to_be_recorded_as_expiry() -> None:
    assert "at_expiry" not in inspect.signature(revoke).parameters
