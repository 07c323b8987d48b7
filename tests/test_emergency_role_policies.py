"""Emergency role documents: evaluated with principalmapper, linted with parliament, size-checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from iam_eval import (
    ADMIN_POLICY,
    assume_context,
    can_assume,
    session_allowed,
    session_context,
)
from parliament import analyze_policy_string

from breakglass.policies.boundary import permission_boundary
from breakglass.policies.documents import policy_size
from breakglass.policies.emergency_role import (
    GUARD_POLICY_RESERVE_CHARS,
    INLINE_POLICIES_MAX_CHARS,
    LOCKED_SID,
    REVOKE_PROPAGATION_MARGIN,
    TRUST_POLICY_MAX_CHARS,
    early_revoke_deny_statement,
    expiry_deny_statement,
    grant_function_statements,
    grant_trust_statements,
    guard_policy,
    locked_trust_policy,
    statement_id,
    trust_policy,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-admin"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:role/oncall-bob"
MALLORY = f"arn:aws:iam::{ACCOUNT}:user/mallory"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
INSIDE = START + timedelta(minutes=10)

AUDIT_BUCKET = "arn:aws:s3:::bg-audit"
AUDIT_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GRANT_FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:bg-grant"
WORKFLOW = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:bg-approval"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/bg-state"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/bg-trail"
PROTECTED = [AUDIT_BUCKET, AUDIT_KEY, GRANT_FN, WORKFLOW, TABLE]
BOUNDARY = permission_boundary(PROTECTED)


def alice_statements(**overrides: Any) -> list[dict[str, Any]]:
    values: dict[str, Any] = {
        "request_id": "req1",
        "requester_arn": ALICE,
        "source_identity": "alice",
        "starts_at": START,
        "expires_at": END,
        "require_mfa": True,
    }
    values.update(overrides)
    return grant_trust_statements(**values)


def bob_statements() -> list[dict[str, Any]]:
    return grant_trust_statements(
        request_id="req2",
        requester_arn=BOB,
        source_identity="bob",
        starts_at=START + timedelta(minutes=30),
        expires_at=END + timedelta(hours=1),
        require_mfa=False,
    )


TRUST = trust_policy([*alice_statements(), *bob_statements()])


def alice_assumes(**overrides: Any) -> bool:
    values: dict[str, Any] = {"now": INSIDE, "source_identity": "alice", "request_id": "req1", "mfa": True}
    principal = overrides.pop("principal", ALICE)
    values.update(overrides)
    return can_assume(TRUST, ROLE, principal, assume_context(**values))


# --- assuming: who, as whom, with what, when ----------------------------------------------------


def test_the_granted_principal_with_its_source_identity_and_mfa_can_assume_inside_the_window() -> None:
    assert alice_assumes()


def test_another_principal_cannot_assume_even_claiming_the_granted_identity() -> None:
    assert not alice_assumes(principal=MALLORY)


def test_a_wrong_source_identity_is_refused() -> None:
    assert not alice_assumes(source_identity="bob")


def test_a_missing_source_identity_is_refused() -> None:
    assert not alice_assumes(source_identity=None)


def test_missing_mfa_is_refused_where_the_tier_requires_it() -> None:
    assert not alice_assumes(mfa=None)
    assert not alice_assumes(mfa=False)


def test_a_tier_without_mfa_admits_sessions_that_carry_no_mfa_key() -> None:
    context = assume_context(now=END, source_identity="bob", request_id="req2")
    assert can_assume(TRUST, ROLE, BOB, context)


def test_mfa_older_than_the_tier_allows_is_refused() -> None:
    trust = trust_policy(alice_statements(max_mfa_age_seconds=900))
    fresh = assume_context(
        now=INSIDE, source_identity="alice", request_id="req1", mfa=True, mfa_age_seconds=60
    )
    stale = assume_context(
        now=INSIDE, source_identity="alice", request_id="req1", mfa=True, mfa_age_seconds=3600
    )
    assert can_assume(trust, ROLE, ALICE, fresh)
    assert not can_assume(trust, ROLE, ALICE, stale)


def test_assume_is_refused_before_the_window_opens() -> None:
    assert not alice_assumes(now=START - timedelta(seconds=1))


def test_assume_is_refused_at_and_after_expiry() -> None:
    assert alice_assumes(now=END - timedelta(seconds=1))
    assert not alice_assumes(now=END)
    assert not alice_assumes(now=END + timedelta(days=1))


def test_the_request_id_session_tag_is_required_and_must_match() -> None:
    assert not alice_assumes(request_id=None)
    assert not alice_assumes(request_id="req2")


def test_extra_session_tags_are_refused() -> None:
    assert not alice_assumes(extra_tags={"team": "admins"})


def test_one_grant_does_not_admit_its_principal_under_another_grant_s_identity() -> None:
    context = assume_context(now=END, source_identity="alice", request_id="req2", mfa=True)
    assert not can_assume(TRUST, ROLE, ALICE, context)
    context = assume_context(now=END, source_identity="bob", request_id="req1")
    assert not can_assume(TRUST, ROLE, BOB, context)


def test_the_locked_trust_admits_nobody_not_even_the_account_root() -> None:
    locked = locked_trust_policy()
    for principal in (ALICE, BOB, f"arn:aws:iam::{ACCOUNT}:role/Admin"):
        assert not can_assume(
            locked, ROLE, principal, assume_context(now=INSIDE, source_identity="x1", request_id="r")
        )
    assert locked["Statement"] == [
        {"Sid": LOCKED_SID, "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    ]


def test_trust_without_grants_is_the_locked_trust() -> None:
    assert trust_policy([]) == locked_trust_policy()
    assert trust_policy(locked_trust_policy()["Statement"]) == locked_trust_policy()
    assert [s["Sid"] for s in trust_policy(alice_statements())["Statement"]] == [
        s["Sid"] for s in alice_statements()
    ]


# --- API calls with a session: expiry, early revoke, a second grant ---------------------------

ADMIN_GRANTS_GUARDS = guard_policy(
    [
        expiry_deny_statement(request_id="req1", source_identity="alice", expires_at=END),
        expiry_deny_statement(request_id="req2", source_identity="bob", expires_at=END + timedelta(hours=1)),
    ]
)


def call(
    who: str, rid: str, now: datetime, *, issued_at: datetime = INSIDE, guards: dict[str, Any] | None = None
) -> bool:
    policies = [ADMIN_POLICY, guards or ADMIN_GRANTS_GUARDS]
    context = session_context(now=now, source_identity=who, request_id=rid, issued_at=issued_at)
    return session_allowed(
        ROLE,
        "sagemaker:UpdateEndpoint",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/m",
        policies=policies,
        boundary=BOUNDARY,
        context=context,
    )


def test_a_session_works_inside_its_window() -> None:
    assert call("alice", "req1", INSIDE)


def test_a_session_issued_before_expiry_is_denied_after_expiry_while_a_second_grant_still_works() -> None:
    after = END + timedelta(minutes=1)
    assert not call("alice", "req1", after)
    assert call("bob", "req2", after)


def test_an_earlier_grant_s_expiry_guard_does_not_deny_the_same_person_s_later_grant() -> None:
    guards = guard_policy(
        [
            expiry_deny_statement(request_id="req1", source_identity="alice", expires_at=END),
            expiry_deny_statement(
                request_id="req9", source_identity="alice", expires_at=END + timedelta(hours=2)
            ),
        ]
    )
    later = END + timedelta(minutes=30)
    assert call("alice", "req9", later, issued_at=later, guards=guards)
    assert not call("alice", "req1", later, guards=guards)


def test_early_revoke_denies_sessions_issued_before_it_and_leaves_the_other_grant_alone() -> None:
    revoked_at = INSIDE + timedelta(minutes=5)
    assert ADMIN_GRANTS_GUARDS is not None
    guards = guard_policy(
        [
            *ADMIN_GRANTS_GUARDS["Statement"],
            early_revoke_deny_statement(request_id="req1", source_identity="alice", revoked_at=revoked_at),
        ]
    )
    later = revoked_at + timedelta(minutes=1)
    assert not call("alice", "req1", later, issued_at=INSIDE, guards=guards)
    # Within the propagation margin a session of the revoked grant is denied too...
    assert not call(
        "alice", "req1", later, issued_at=revoked_at + REVOKE_PROPAGATION_MARGIN / 2, guards=guards
    )
    # ...and bob's session of the same tier keeps working.
    assert call("bob", "req2", later + timedelta(minutes=30), issued_at=later, guards=guards)


def test_a_session_without_source_identity_or_request_tag_gets_nothing() -> None:
    for who, rid in ((None, "req1"), ("alice", None)):
        context = session_context(now=INSIDE, source_identity=who, request_id=rid, issued_at=INSIDE)
        assert not session_allowed(
            ROLE, "ec2:DescribeInstances", "*", policies=[ADMIN_POLICY], boundary=BOUNDARY, context=context
        )


# --- lint --------------------------------------------------------------------------------------


def findings(document: dict[str, Any], *, trust: bool = False) -> list[str]:
    if trust:
        # parliament lints identity policies: it stops at a trust statement's missing Resource
        # (the role itself is a trust policy's resource). Lint each trust statement as the identity
        # statement it is equivalent to for actions and condition keys: Principal out, the role in.
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {**{k: v for k, v in s.items() if k != "Principal"}, "Resource": ROLE}
                for s in document["Statement"]
            ],
        }
    return [f"{f.issue}: {f.detail}" for f in analyze_policy_string(json.dumps(document)).findings]


def test_parliament_reports_nothing_on_any_generated_document() -> None:
    assert findings(BOUNDARY) == []
    assert findings(permission_boundary([])) == []
    assert ADMIN_GRANTS_GUARDS is not None
    assert findings(ADMIN_GRANTS_GUARDS) == []
    revoke = guard_policy(
        [early_revoke_deny_statement(request_id="r", source_identity="alice", revoked_at=END)]
    )
    assert revoke is not None and findings(revoke) == []
    functions = {"Version": "2012-10-17", "Statement": grant_function_statements([ROLE])}
    assert findings(functions) == []
    assert findings(TRUST, trust=True) == []
    assert findings(locked_trust_policy(), trust=True) == []
    assert findings(trust_policy(alice_statements(max_mfa_age_seconds=900)), trust=True) == []


def test_trust_lint_still_catches_a_mistake() -> None:
    broken = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AsumeRole"}],
    }
    assert findings(broken, trust=True) == ["UNKNOWN_ACTION: Unknown action sts:AsumeRole"]
    wrong_key = trust_policy(alice_statements())
    wrong_key["Statement"][1]["Condition"] = {"StringEquals": {"sts:SourceIdentity": "alice"}}
    assert findings(wrong_key, trust=True) == [
        "UNKNOWN_CONDITION_FOR_ACTION: Unknown condition sts:SourceIdentity for action sts:TagSession"
    ]


# --- ids and sizes -------------------------------------------------------------------------------


def test_statement_ids_are_derived_from_the_request_id_and_never_collide() -> None:
    assert statement_id("Grant", "req1") == statement_id("Grant", "req1")
    assert statement_id("Grant", "req1").startswith("Grantreq1")
    assert statement_id("Grant", "a-bc") != statement_id("Grant", "ab-c")
    assert statement_id("Grant", "req1").isalnum()


def test_a_trust_with_two_grants_of_the_longest_principals_fits_the_default_quota() -> None:
    # The longest realistic requester: an IAM Identity Center role with its reserved path.
    sso = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Oncall_0123456789abcdef"
    statements = [
        statement
        for i in range(2)
        for statement in alice_statements(
            request_id=f"3f2c9a1e7b4d4c6e9a8b00000000000{i}",
            requester_arn=sso,
            source_identity=f"responder{i}.name@example.com",
            max_mfa_age_seconds=3600,
        )
    ]
    assert policy_size(trust_policy(statements)) <= TRUST_POLICY_MAX_CHARS
    assert GUARD_POLICY_RESERVE_CHARS < INLINE_POLICIES_MAX_CHARS
