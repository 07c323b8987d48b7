"""Emergency role documents: evaluated with principalmapper, linted with parliament, size-checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from iam_eval import (
    ADMIN_POLICY,
    assume_context,
    can_assume,
    session_allowed,
    session_context,
)
from parliament import analyze_policy_string

from breakglass.contracts import iso
from breakglass.policies.boundary import permission_boundary
from breakglass.policies.documents import policy_size
from breakglass.policies.emergency_role import (
    GUARD_POLICY_RESERVE_CHARS,
    GUARD_PRUNE_MARGIN,
    INLINE_POLICIES_MAX_CHARS,
    LOCKED_SID,
    STATEMENT_KINDS,
    TRUST_POLICY_MAX_CHARS,
    grant_function_statements,
    grant_guard_statement,
    grant_trust_statements,
    guard_capacity,
    guard_lifetime_seconds,
    guard_max_chars,
    guard_page_arn,
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
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG

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


def test_a_session_name_other_than_the_person_is_refused() -> None:
    """The session ARN assumed-role/breakglass-emergency-<tier>/<session name> must name the person."""
    assert alice_assumes(role_session_name="alice")
    for name in ("bob", "alice-req1", "Alice", "alice2"):
        assert not alice_assumes(role_session_name=name)


def test_only_the_assume_role_statement_pins_the_session_name() -> None:
    """sts:RoleSessionName is documented for AssumeRole only; a condition on it in the statement for
    SetSourceIdentity/TagSession could make AWS refuse every assume of the grant."""
    gate, session = alice_statements()
    assert gate["Action"] == "sts:AssumeRole"
    assert gate["Condition"]["StringEquals"]["sts:RoleSessionName"] == "alice"
    assert "Condition" not in session
    # Evaluated: the name is checked once, on the AssumeRole authorization.
    assert not can_assume(
        TRUST,
        ROLE,
        ALICE,
        assume_context(
            now=INSIDE, source_identity="alice", request_id="req1", mfa=True, role_session_name="x1"
        ),
    )


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
        grant_guard_statement(request_id="req1", source_identity="alice", expires_at=END),
        grant_guard_statement(request_id="req2", source_identity="bob", expires_at=END + timedelta(hours=1)),
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
            grant_guard_statement(request_id="req1", source_identity="alice", expires_at=END),
            grant_guard_statement(
                request_id="req9", source_identity="alice", expires_at=END + timedelta(hours=2)
            ),
        ]
    )
    later = END + timedelta(minutes=30)
    assert call("alice", "req9", later, issued_at=later, guards=guards)
    assert not call("alice", "req1", later, guards=guards)


def revoked(guards: dict[str, Any] | None, request_id: str) -> dict[str, Any] | None:
    """``guards`` with ``request_id``'s guard rewritten in place into its revoked form."""
    assert guards is not None
    return guard_policy(
        [
            grant_guard_statement(
                request_id=request_id,
                source_identity=scope.source_identity,
                expires_at=scope.expires_at,
                revoked=True,
            )
            if (scope := read_guard(s)) is not None and scope.request_id == request_id
            else s
            for s in guards["Statement"]
        ]
    )


def test_a_revoked_guard_denies_every_session_of_its_grant_and_leaves_the_other_grant_alone() -> None:
    revoked_at = INSIDE + timedelta(minutes=5)
    guards = revoked(ADMIN_GRANTS_GUARDS, "req1")
    later = revoked_at + timedelta(minutes=1)
    # Issued before the revoke, or after it (the trust removal still propagating), up to expiry.
    for issued_at in (START, INSIDE, revoked_at + timedelta(seconds=30), END - timedelta(seconds=1)):
        assert not call("alice", "req1", max(later, issued_at), issued_at=issued_at, guards=guards)
    # Bob's session of the same tier keeps working, and Alice's next request is not affected.
    assert call("bob", "req2", later + timedelta(minutes=30), issued_at=later, guards=guards)
    assert call("alice", "req9", later, issued_at=later, guards=guards)


def test_the_old_revoke_margin_left_sessions_issued_a_minute_after_the_revoke_alive_until_expiry() -> None:
    """Why the revoked guard names expiry, not the revoke time: IAM propagates a trust change in
    seconds to minutes, and a session issued in that gap by the old ``revoke + 60 s`` guard lived
    until expiry. The revoked form denies it, and every other session the grant can have."""
    revoked_at = INSIDE
    old = guard_policy(
        [
            {
                **grant_guard_statement(request_id="req1", source_identity="alice", expires_at=END),
                "Sid": "Revokereq1",
                "Condition": {
                    "DateLessThan": {"aws:TokenIssueTime": iso(revoked_at + timedelta(seconds=60))},
                    "StringEquals": {
                        "aws:SourceIdentity": "alice",
                        f"aws:PrincipalTag/{REQUEST_ID_SESSION_TAG}": "req1",
                    },
                },
            }
        ]
    )
    slipped = revoked_at + timedelta(seconds=90)
    assert call("alice", "req1", slipped + timedelta(minutes=5), issued_at=slipped, guards=old)
    assert not call(
        "alice",
        "req1",
        slipped + timedelta(minutes=5),
        issued_at=slipped,
        guards=revoked(ADMIN_GRANTS_GUARDS, "req1"),
    )


def test_both_guard_forms_have_one_sid_one_size_and_the_same_relevance() -> None:
    expiry = grant_guard_statement(request_id="req1", source_identity="alice", expires_at=END)
    revoked_ = grant_guard_statement(request_id="req1", source_identity="alice", expires_at=END, revoked=True)
    assert expiry["Sid"] == revoked_["Sid"] == "Guardreq1"
    assert policy_size(expiry) == policy_size(revoked_)
    assert guard_relevant_until(expiry) == guard_relevant_until(revoked_) == END
    assert read_guard(expiry) is not None and read_guard(expiry).revoked is False  # type: ignore[union-attr]
    assert read_guard(revoked_) is not None and read_guard(revoked_).revoked is True  # type: ignore[union-attr]


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
    revoke = revoked(ADMIN_GRANTS_GUARDS, "req1")
    assert revoke is not None and findings(revoke) == []
    functions = {"Version": "2012-10-17", "Statement": grant_function_statements([ROLE, HALT_ROLE])}
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


def test_statement_ids_are_the_kind_and_the_request_id_verbatim() -> None:
    assert statement_id("Grant", "req1") == "Grantreq1"
    assert statement_id("Session", "3f2c9a1e7b4d4c6e9a8b0000000000000000beef") == (
        "Session3f2c9a1e7b4d4c6e9a8b0000000000000000beef"
    )
    assert statement_id("Guard", "r") == "Guardr"


def test_no_statement_kind_is_a_prefix_of_another_so_a_sid_names_one_kind_and_one_request() -> None:
    for a in STATEMENT_KINDS:
        for b in STATEMENT_KINDS:
            assert a == b or not b.startswith(a)
    # The old 12 letters + 32-bit digest could collide; the verbatim id cannot.
    assert len({statement_id(k, r) for k in STATEMENT_KINDS for r in ("ab", "abc", "a1", "a1b")}) == 12


@pytest.mark.parametrize("request_id", ["", "Req1", "req-1", "req 1", "r" * 41, "reqé"])
def test_statement_ids_refuse_request_ids_outside_the_minted_alphabet(request_id: str) -> None:
    with pytest.raises(ValueError, match="1-40 lower-case letters and digits"):
        statement_id("Grant", request_id)


def test_statement_ids_refuse_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown statement kind 'Expire'"):
        statement_id("Expire", "req1")


# --- ownership: a Sid is not proof --------------------------------------------------------------


def test_a_gate_belongs_to_a_grant_only_with_its_principal_source_identity_and_request_tag() -> None:
    gate, session = alice_statements()
    mine = {"request_id": "req1", "requester_arn": ALICE, "source_identity": "alice"}
    assert owns_gate(gate, **mine)
    assert not owns_gate(gate, **{**mine, "requester_arn": BOB})
    assert not owns_gate(gate, **{**mine, "source_identity": "bob"})
    retagged = json.loads(json.dumps(gate))
    retagged["Condition"]["StringEquals"][f"aws:RequestTag/{REQUEST_ID_SESSION_TAG}"] = "req2"
    assert not owns_gate(retagged, **mine)
    assert not owns_gate(session, **mine)
    assert owns_session_statement(session, request_id="req1", requester_arn=ALICE)
    assert not owns_session_statement(session, request_id="req1", requester_arn=BOB)
    assert not owns_session_statement({**session, "Action": "sts:*"}, request_id="req1", requester_arn=ALICE)


def test_a_guard_belongs_to_a_grant_only_when_it_denies_that_grant_s_sessions() -> None:
    guard = grant_guard_statement(request_id="req1", source_identity="alice", expires_at=END)
    assert owns_guard(guard, request_id="req1", source_identity="alice")
    assert not owns_guard(guard, request_id="req1", source_identity="bob")
    other_scope = grant_guard_statement(request_id="req2", source_identity="alice", expires_at=END)
    assert not owns_guard({**other_scope, "Sid": "Guardreq1"}, request_id="req1", source_identity="alice")
    # Not a guard this package writes: an allow, a narrower deny, an extra condition.
    for changed in (
        {"Effect": "Allow"},
        {"Action": "s3:*"},
        {"Condition": {**guard["Condition"], "Bool": {}}},
    ):
        assert not owns_guard({**guard, **changed}, request_id="req1", source_identity="alice")


# --- guard pages and the access function's rights ------------------------------------------------

HALT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-halt"


def test_guard_pages_are_named_under_the_boundary_s_protected_prefix() -> None:
    assert guard_page_arn(ROLE, 3) == f"arn:aws:iam::{ACCOUNT}:policy/breakglass-emergency-admin-guards-3"
    assert guard_page_number(ROLE, guard_page_arn(ROLE, 3)) == 3
    assert guard_page_number(ROLE, guard_page_arn(HALT_ROLE, 3)) is None
    assert (
        guard_page_number(ROLE, f"arn:aws:iam::{ACCOUNT}:policy/breakglass-emergency-admin-guards-x") is None
    )
    assert guard_page_number(ROLE, "arn:aws:iam::aws:policy/AdministratorAccess") is None
    # Emergency sessions cannot touch a page: see test_boundary.py.


def test_the_access_function_may_manage_guard_pages_of_the_tier_roles_and_attach_nothing_else() -> None:
    statements = {s["Sid"]: s for s in grant_function_statements([ROLE, HALT_ROLE])}
    pages = [
        f"arn:aws:iam::{ACCOUNT}:policy/breakglass-emergency-admin-guards-*",
        f"arn:aws:iam::{ACCOUNT}:policy/breakglass-emergency-halt-guards-*",
    ]
    assert statements["ManageGuardPages"]["Resource"] == pages
    attach = statements["AttachGuardPages"]
    assert attach["Resource"] == [ROLE, HALT_ROLE]
    assert attach["Condition"] == {"ArnLike": {"iam:PolicyARN": pages}}
    assert "iam:ListAttachedRolePolicies" in statements["ManageEmergencyRoleGrants"]["Action"]
    every_action = [a for s in statements.values() for a in s["Action"]]
    assert not any("*" in a for a in every_action)
    # Evaluated: attaching AdministratorAccess to an emergency role is not allowed.
    function = f"arn:aws:iam::{ACCOUNT}:role/breakglass-access"
    policies = [{"Version": "2012-10-17", "Statement": list(statements.values())}]

    def allowed(action: str, resource: str, policy_arn: str | None = None) -> bool:
        context = {"iam:PolicyARN": policy_arn} if policy_arn else {}
        return session_allowed(function, action, resource, policies=policies, boundary=None, context=context)

    assert allowed("iam:AttachRolePolicy", ROLE, guard_page_arn(ROLE, 2))
    assert not allowed("iam:AttachRolePolicy", ROLE, "arn:aws:iam::aws:policy/AdministratorAccess")
    assert allowed("iam:CreatePolicyVersion", guard_page_arn(HALT_ROLE, 1))
    assert not allowed(
        "iam:CreatePolicyVersion", f"arn:aws:iam::{ACCOUNT}:policy/breakglass-emergency-admin-boundary"
    )


# --- capacity ---------------------------------------------------------------------------------------


def test_guard_capacity_in_figures_for_the_default_tier() -> None:
    """Worst-case ids (40-character request id, 64-character user id); window 1 h, session 1 h;
    the tier attaches one managed policy and has no inline policy of its own."""
    capacity = guard_capacity(max_window_seconds=3600, max_session_seconds=3600, tier_managed_policies=1)
    assert guard_max_chars() == 364  # one guard and its comma
    # (10240 - 38) // 364 inline, (6144 - 38) // 364 per page, 10 - 1 pages.
    assert (capacity.inline, capacity.per_page, capacity.pages) == (28, 16, 9)
    assert capacity.total == 172
    assert capacity.lifetime_seconds == 2 * 3600 + int(GUARD_PRUNE_MARGIN.total_seconds()) == 7500
    # 172 guards / 7500 s each: under 82.56 evenly spaced grants per hour; a guard overlaps three
    # sliding hours, so 172 // 3 in any one hour.
    assert capacity.sustainable_grants_per_hour == 82
    assert capacity.safe_grants_per_hour == 57


def test_a_guard_is_kept_at_least_an_hour_after_expiry_because_no_role_session_maximum_is_shorter() -> None:
    assert guard_lifetime_seconds(max_window_seconds=900, max_session_seconds=900) == 900 + 3600 + 300


def test_a_trust_with_two_grants_of_the_longest_principals_fits_the_default_quota() -> None:
    # The longest realistic requester: an IAM Identity Center role with its reserved path; a
    # 32-character request id and a 28-character user id (session name and source identity).
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
