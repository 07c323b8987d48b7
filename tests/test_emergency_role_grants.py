"""Grant and revoke on real (moto) roles: round trips, idempotency, overlap, bad input, audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from iam_eval import ADMIN_POLICY, assume_context, can_assume, session_allowed, session_context
from moto import mock_aws

from breakglass.contracts import ENV_AUDIT_BUCKET, ENV_TIERS, iso
from breakglass.lambdas.access import grant_handler as handlers
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
from breakglass.policies.boundary import permission_boundary
from breakglass.policies.emergency_role import GUARD_POLICY_NAME, locked_trust_policy, statement_id
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
    def __init__(self) -> None:
        self.iam = boto3.client("iam", region_name="us-east-1")
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

    def guards(self, tier: str = "admin") -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = self.inline(tier).get(GUARD_POLICY_NAME, {}).get("Statement", [])
        return statements

    def state(self) -> Any:
        return {t: (self.trust(t), self.inline(t)) for t in TIERS}

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
    assert sids(env.guards()) == [statement_id("Expire", "reqalice1")]
    assert env.inline()["permissions"] == PERMISSIONS  # the tier's own permissions are untouched

    result = env.revoke(g, NOW + timedelta(hours=1), early=False, actor="system")
    assert result["outcome"] == "succeeded" and result["event_type"] == "expiry" and result["role_locked"]
    assert env.trust() == locked_trust_policy()
    # The expiry guard stays: a session issued before expiry still dies at expiry.
    assert sids(env.guards()) == [statement_id("Expire", "reqalice1")]


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


def test_grant_and_revoke_are_idempotent(env: Env) -> None:
    g = alice_grant()
    env.grant(g)
    after_first = env.state()
    again = env.grant(g, now=NOW + timedelta(minutes=1))
    assert again["outcome"] == "noop"
    assert env.state() == after_first

    env.revoke(g, NOW + timedelta(minutes=10), early=True)
    after_revoke = env.state()
    again = env.revoke(g, NOW + timedelta(minutes=11), early=True)
    assert again["outcome"] == "noop"
    assert env.state() == after_revoke
    assert [(e.event_type, e.outcome) for e in env.events()] == [
        ("grant", "succeeded"),
        ("grant", "noop"),
        ("revoke", "succeeded"),
        ("revoke", "noop"),
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
    assert sids(env.guards()) == [statement_id("Expire", "reqalice2")]


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
    # With the quota raised (and said so in the tier), the third grant fits.
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
    assert statement_id("Revoke", g.request_id) in sids(env.guards())
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


def test_tiers_round_trip_through_the_environment() -> None:
    environ = {ENV_TIERS: json.dumps({name: t.to_dict() for name, t in TIERS.items()})}
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
def test_a_bad_tier_setting_is_named(change: dict[str, Any], message: str) -> None:
    data = {**TIERS["admin"].to_dict(), **change}
    with pytest.raises(ConfigError, match=message):
        Tier.from_dict(data)
    with pytest.raises(ConfigError, match=f"{ENV_TIERS}.admin.{message}"):
        load_tiers({ENV_TIERS: json.dumps({"admin": data})})


def test_missing_or_malformed_tier_configuration_is_reported() -> None:
    with pytest.raises(ConfigError, match=f"{ENV_TIERS}: is not set"):
        load_tiers({})
    with pytest.raises(ConfigError, match=f"{ENV_TIERS}: is not valid JSON"):
        load_tiers({ENV_TIERS: "{"})
    with pytest.raises(ConfigError, match=rf"{ENV_TIERS}.ops.name: must equal its key"):
        load_tiers({ENV_TIERS: json.dumps({"ops": TIERS["admin"].to_dict()})})


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


# --- handlers ----------------------------------------------------------------------------------------


def test_the_handlers_grant_and_revoke_with_tiers_and_writer_from_the_environment(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_TIERS, json.dumps({n: t.to_dict() for n, t in TIERS.items()}))
    monkeypatch.setenv(ENV_AUDIT_BUCKET, BUCKET)
    start = datetime.now(UTC).replace(microsecond=0)
    g = alice_grant(starts_at=start, expires_at=start + timedelta(hours=1))
    result = handlers.grant_handler({**g.to_event(), "actor": "approver:carol"}, None)
    assert result["outcome"] == "succeeded" and result["role_arn"] == TIERS["admin"].role_arn
    assert statement_id("Grant", g.request_id) in sids(env.trust())

    result = handlers.revoke_handler({**g.to_event(), "early": True, "actor": "alice"}, None)
    assert result["outcome"] == "succeeded" and result["early"] is True
    assert env.trust() == locked_trust_policy()
    assert [(e.event_type, e.actor) for e in env.events()] == [
        ("grant", "approver:carol"),
        ("revoke", "alice"),
    ]


def test_the_revoke_handler_requires_early_and_actor(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_TIERS, json.dumps({n: t.to_dict() for n, t in TIERS.items()}))
    monkeypatch.setenv(ENV_AUDIT_BUCKET, BUCKET)
    with pytest.raises(ConfigError, match="early: must be true or false"):
        handlers.revoke_handler({**alice_grant().to_event(), "actor": "alice"}, None)
    with pytest.raises(ConfigError, match="actor: must be a string"):
        handlers.revoke_handler({**alice_grant().to_event(), "early": False}, None)
