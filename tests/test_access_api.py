"""The access API: who acts is what AWS verified, never what a body says (security review, finding 7).

The function runs against moto's DynamoDB, KMS and S3; Step Functions and Lambda are recording
stand-ins (the whole path through the deployed components runs in the emulator tests).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyotp
import pytest
from moto import mock_aws

from breakglass.contracts import iso
from breakglass.lambdas.access.grants import Tier
from breakglass.lambdas.approvals import access_api, workflow
from breakglass.lambdas.approvals.access_api import AccessDeps, handle
from breakglass.lambdas.approvals.admission import ADMISSION_GRACE, Admission
from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.approvals.requests import TierApproval, parse_policy
from breakglass.lambdas.approvals.store import Store, create_table
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter, parse_record
from breakglass.validation import REQUEST_ID

ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 30, 2, 13, tzinfo=UTC)
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/oncall-ml"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def session_arn(role: str, session: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"


def tier(name: str) -> Tier:
    return Tier(
        name=name,
        role_name=f"breakglass-emergency-{name}",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-{name}",
        max_session_seconds=3600,
        max_window_seconds=7200,
        require_mfa=False,
        allowed_requesters=(user_arn("rita"), user_arn("mallory"), user_arn("ann"), ONCALL),
    )


POLICY = parse_policy(
    {
        "halt": {"approval": "auto", "approvers": ["ann"], "max_requests_per_person_per_hour": 3},
        "operator": {"approval": 1, "approvers": ["ann", "bob"], "max_requests_per_hour": 20},
    }
)


@dataclass
class Recorder:
    """Step Functions and Lambda as the access API uses them, recording every call."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answer: Any = None
    error: bool = False

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("start_execution", kwargs))
        return {
            "executionArn": f"arn:aws:states:us-east-1:{ACCOUNT}:execution:breakglass-workflow:{kwargs['name']}"
        }

    def send_task_success(self, **kwargs: Any) -> None:
        self.calls.append(("send_task_success", kwargs))

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("invoke", {**kwargs, "Payload": json.loads(kwargs["Payload"])}))
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer or {"ok": True}).encode())}
        if self.error:
            response["FunctionError"] = "Unhandled"
        return response


@dataclass
class World:
    deps: AccessDeps
    s3: Any
    secrets: dict[str, str]
    sfn: Recorder
    lam: Recorder
    clock: list[datetime]

    def call(
        self, caller: str | None, method: str, path: str, body: Any = None, **query: str
    ) -> tuple[int, Any]:
        event: dict[str, Any] = {
            "rawPath": path,
            "requestContext": {"http": {"method": method, "path": path}},
            "queryStringParameters": query or None,
            "body": json.dumps(body) if body is not None else None,
        }
        if caller is not None:
            event["requestContext"]["authorizer"] = {"iam": {"userArn": caller, "accountId": ACCOUNT}}
        response = handle(self.deps, event)
        return response["statusCode"], json.loads(response["body"])

    def code(self, user: str, offset: int = 0) -> str:
        return str(pyotp.TOTP(self.secrets[user]).at(self.clock[0] + timedelta(seconds=30 * offset)))

    def events(self) -> list[AuditEvent]:
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="audit").get("Contents", [])]
        return [
            parse_record(json.loads(self.s3.get_object(Bucket="audit", Key=k)["Body"].read())) for k in keys
        ]

    def tick(self, minutes: int = 1) -> None:
        self.clock[0] += timedelta(minutes=minutes)


PEOPLE = {
    "rita": (user_arn("rita"), ["responder"]),
    "mallory": (user_arn("mallory"), ["responder"]),
    "ann": (user_arn("ann"), ["responder", "approver"]),
    "bob": (user_arn("bob"), ["approver"]),
    "sec": (user_arn("sec"), ["security"]),
    "sam": (ONCALL, ["responder"]),
}


@contextmanager
def access_world(
    people: Mapping[str, tuple[str, Any]],  # user: (principal ARN, roles)
    policy: Mapping[str, TierApproval],
    tiers: Mapping[str, Tier],
    security_admins: tuple[str, ...] = (),
) -> Iterator[World]:
    """The access API's dependencies on moto (table, key, audit bucket), ``people`` enrolled."""
    with mock_aws():
        ddb, kms, s3 = (boto3.client(s, region_name="us-east-1") for s in ("dynamodb", "kms", "s3"))
        create_table(ddb, "bg")
        s3.create_bucket(Bucket="audit")
        store = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])
        secrets = {
            user: pyotp.parse_uri(enroll(store, user, principal, f"{user}@example.com", roles)).secret
            for user, (principal, roles) in people.items()
        }
        clock = [NOW]
        sfn, lam = Recorder(), Recorder()
        deps = AccessDeps(
            store=store,
            admission=Admission(ddb, "bg"),
            audit=AuditWriter(s3=s3, bucket="audit"),
            sfn=sfn,
            lambda_client=lam,
            state_machine_arn=f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:breakglass-workflow",
            access_function="breakglass-access",
            halt_function="ai-halt",
            resume_function="ai-resume",
            tiers=tiers,
            policy=policy,
            security_admins=security_admins,
            clock=lambda: clock[0],
        )
        yield World(deps, s3, secrets, sfn, lam, clock)


@pytest.fixture
def world() -> Iterator[World]:
    with access_world(
        PEOPLE,
        POLICY,
        {"halt": tier("halt"), "operator": tier("operator")},
        security_admins=(f"arn:aws:iam::{ACCOUNT}:role/cloud-admin",),
    ) as made:
        yield made


def ask(world: World, user: str, caller: str | None = None, **changes: Any) -> tuple[int, Any]:
    body = {"tier": "halt", "reason": "the chat model leaks customer data", "duration": "30m"}
    body.update(changes)
    body.setdefault("totp", world.code(user))
    return world.call(
        caller or user_arn(user), "POST", "/requests", {k: v for k, v in body.items() if v is not None}
    )


# -- who is asking ---------------------------------------------------------------------------------


def test_a_request_is_made_in_the_verified_caller_s_name_with_a_minted_id(world: World) -> None:
    status, answer = ask(world, "rita")
    assert status == 201, answer
    assert answer["requester"] == "rita" and answer["status"] == "pending"
    assert re.fullmatch(REQUEST_ID, answer["request_id"]) and answer["request_id"].startswith("r261130021300")
    (call,) = [c for c in world.sfn.calls if c[0] == "start_execution"]
    # The execution carries nothing but the id: the workflow reloads everything from the table.
    assert call[1]["name"] == answer["request_id"] and json.loads(call[1]["input"]) == {
        "request_id": answer["request_id"]
    }
    (event,) = world.events()
    assert (event.event_type, event.actor, event.outcome) == ("request", "rita", "pending")


def test_the_body_cannot_name_someone_else_as_the_requester(world: World) -> None:
    status, answer = ask(world, "mallory", requester="ann")
    assert status == 400 and answer["error"]["field"] == "requester"
    assert world.sfn.calls == []


def test_an_unsigned_call_is_refused_and_leaves_no_record(world: World) -> None:
    status, answer = world.call(None, "POST", "/requests", {"tier": "halt"})
    assert status == 401 and answer["error"]["code"] == "not-authenticated"
    assert world.events() == []


def test_a_caller_whose_principal_is_not_their_enrollment_s_is_refused(world: World) -> None:
    # An IAM user named rita in another path or a role session called rita is not rita's enrollment.
    status, answer = ask(world, "rita", caller=session_arn("some-role", "rita"))
    assert status == 403 and answer["error"]["code"] == "unknown-caller"
    status, _ = ask(world, "rita", caller=f"arn:aws:iam::{ACCOUNT}:user/nobody")
    assert status == 403


def test_a_shared_role_names_the_person_by_session_name_and_cannot_claim_a_colleague(world: World) -> None:
    status, answer = ask(world, "sam", caller=session_arn("oncall-ml", "sam"))
    assert status == 201 and answer["requester"] == "sam" and answer["requester_arn"] == ONCALL
    # rita's enrollment names her IAM user: the shared role's session "rita" is not rita.
    status, _ = ask(world, "rita", caller=session_arn("oncall-ml", "rita"))
    assert status == 403


def test_an_emergency_session_cannot_make_requests_as_a_person(world: World) -> None:
    status, answer = ask(world, "rita", caller=session_arn("breakglass-emergency-admin", "rita"))
    assert status == 403 and "emergency session" in answer["error"]["message"]


def test_nobody_can_lock_another_person_out_with_wrong_codes(world: World) -> None:
    """On 198d2d6 five bogus requests in ann's name made her correct code get HTTP 429."""
    for _ in range(6):
        status, answer = ask(world, "mallory", tier="operator", totp="000000")
    assert status == 429 and "too many wrong codes" in answer["error"]["message"]  # only herself
    status, answer = ask(world, "ann", tier="operator", ticket=None)
    assert status == 201, answer


# -- admission: rate limits and one live request --------------------------------------------------


def test_one_person_holds_at_most_one_live_request_per_tier(world: World) -> None:
    status, first = ask(world, "rita")
    assert status == 201
    world.tick()
    status, answer = ask(world, "rita")
    assert status == 409 and first["request_id"] in answer["error"]["message"]
    world.deps.store.set_status(first["request_id"], "denied")
    world.tick()
    assert ask(world, "rita")[0] == 201


def test_a_request_being_admitted_cannot_be_overtaken_by_a_second_one_of_the_same_person(
    world: World,
) -> None:
    # Another invocation has claimed rita's halt slot and is still checking her code: its
    # request is not stored yet. A second request must not take the slot over, or rita would
    # end up with two live grants of one tier.
    admission = world.deps.admission
    admission.claim_live(
        "halt", "rita", "r261130021300aaaaaaaaaa", lookup=world.deps.store.get_request, now=NOW
    )
    status, answer = ask(world, "rita")
    assert status == 409 and "being admitted" in answer["error"]["message"]
    # An invocation that died before storing its request holds the slot only for a while.
    world.clock[0] = NOW + ADMISSION_GRACE + timedelta(seconds=1)
    assert ask(world, "rita")[0] == 201


def test_a_refused_request_frees_the_person_s_slot_at_once(world: World) -> None:
    status, answer = ask(world, "rita", totp="000000")
    assert status == 403 and answer["error"]["field"] == "totp"
    assert world.deps.admission.live_request("halt", "rita") is None
    assert ask(world, "rita")[0] == 201


def test_a_person_s_requests_per_hour_are_limited_without_spending_their_code(world: World) -> None:
    for _ in range(3):
        status, answer = ask(world, "rita")
        assert status == 201, answer
        world.deps.store.set_status(answer["request_id"], "revoked")
        world.tick()
    code = world.code("rita")
    status, answer = ask(world, "rita", totp=code)
    assert status == 429 and "limit per person" in answer["error"]["message"]
    # Others still get through; and the refused code was not spent (the check ran before it).
    assert ask(world, "mallory")[0] == 201
    world.clock[0] = NOW + timedelta(hours=1)
    assert ask(world, "rita")[0] == 201


def test_admission_refusals_are_audited_under_the_verified_person(world: World) -> None:
    ask(world, "rita")
    world.tick()
    ask(world, "rita")
    refused = [e for e in world.events() if e.outcome == "failed"]
    assert [(e.actor, e.details["admission"]) for e in refused] == [("rita", True)]


# -- viewing and listing ----------------------------------------------------------------------------


def test_a_request_is_visible_to_its_requester_approvers_and_security_only(world: World) -> None:
    _, made = ask(world, "rita", tier="operator")
    path = f"/requests/{made['request_id']}"
    for who in ("rita", "ann", "bob", "sec"):
        status, answer = world.call(user_arn(who), "GET", path)
        assert status == 200 and "task_token" not in answer, who
    assert world.call(user_arn("mallory"), "GET", path)[0] == 403
    assert world.call(user_arn("rita"), "GET", "/requests/..%2Fetc")[0] == 404


def test_lists_show_mine_pending_for_approvers_and_all_for_security(world: World) -> None:
    _, made = ask(world, "rita", tier="operator")
    world.tick()
    ask(world, "mallory")
    assert [
        r["request_id"] for r in world.call(user_arn("rita"), "GET", "/requests", scope="mine")[1]["requests"]
    ] == [made["request_id"]]
    pending = world.call(user_arn("bob"), "GET", "/requests", scope="pending")[1]["requests"]
    assert [r["request_id"] for r in pending] == [made["request_id"]]
    assert len(world.call(user_arn("sec"), "GET", "/requests", scope="all")[1]["requests"]) == 2
    assert world.call(user_arn("rita"), "GET", "/requests", scope="all")[0] == 403
    assert world.call(user_arn("rita"), "GET", "/requests", scope="everything")[0] == 400


# -- votes from a terminal -----------------------------------------------------------------------


def waiting(world: World, request_id: str) -> None:
    record = world.deps.store.get_request(request_id)
    assert record is not None
    world.deps.store.set_waiting(request_id, "token-1", record.approvers)


def test_an_approver_votes_from_a_terminal_and_the_deciding_vote_resumes_the_workflow(world: World) -> None:
    _, made = ask(world, "rita", tier="operator")
    waiting(world, made["request_id"])
    status, answer = world.call(
        user_arn("ann"),
        "POST",
        f"/requests/{made['request_id']}/votes",
        {"decision": "approve", "totp": world.code("ann")},
    )
    assert status == 200 and answer["status"] == "approved" and answer["decided"]
    (success,) = [c for c in world.sfn.calls if c[0] == "send_task_success"]
    assert json.loads(success[1]["output"])["decision"] == "approved"
    vote = [e for e in world.events() if e.event_type == "approval"][-1]
    assert vote.actor == "ann" and vote.details["channel"] == "access-api"


@pytest.mark.parametrize(
    ("voter", "code", "status", "reason"),
    [
        ("rita", None, 403, "self-approval"),
        ("mallory", None, 403, "not-an-approver"),
        ("ann", "000000", 403, "totp-wrong"),
    ],
)
def test_terminal_votes_follow_the_page_s_rules(
    world: World, voter: str, code: str | None, status: int, reason: str
) -> None:
    _, made = ask(world, "rita", tier="operator")
    waiting(world, made["request_id"])
    got, answer = world.call(
        user_arn(voter),
        "POST",
        f"/requests/{made['request_id']}/votes",
        {"decision": "approve", "totp": code or world.code(voter)},
    )
    assert (got, answer["error"]["code"]) == (status, reason)
    assert world.deps.store.get_request(made["request_id"]).approvals == ()  # type: ignore[union-attr]
    refusal = [e for e in world.events() if e.outcome == "failed"][-1]
    assert refusal.actor == voter and refusal.details["refused"] == reason


# -- early revoke --------------------------------------------------------------------------------------


def granted(world: World, user: str, tier_name: str = "halt") -> str:
    _, made = ask(world, user, tier=tier_name, ticket=None)
    request_id = made["request_id"]
    world.deps.store.set_status(request_id, "approved")
    world.deps.store.set_status(request_id, "granted")
    world.deps.store.set_grant_window(
        request_id, iso(world.clock[0]), iso(world.clock[0] + timedelta(minutes=30))
    )
    return request_id


def test_an_early_revoke_hands_the_access_function_the_verified_actor(world: World) -> None:
    request_id = granted(world, "rita")
    world.tick()
    status, _ = world.call(
        user_arn("rita"), "POST", f"/requests/{request_id}/revoke", {"totp": world.code("rita")}
    )
    assert status == 200
    (call,) = [c for c in world.lam.calls if c[0] == "invoke"]
    assert call[1]["FunctionName"] == "breakglass-access"
    assert call[1]["Payload"] == {
        "action": "early_revoke",
        "request_id": request_id,
        "actor": "rita",
        "reason": None,
    }


def test_an_early_revoke_by_someone_unrelated_is_refused_and_audited(world: World) -> None:
    request_id = granted(world, "rita")
    status, _ = world.call(
        user_arn("mallory"), "POST", f"/requests/{request_id}/revoke", {"totp": world.code("mallory")}
    )
    assert status == 403 and world.lam.calls == []
    assert [e.actor for e in world.events() if e.event_type == "revoke"] == ["mallory"]


# -- halt and resume -------------------------------------------------------------------------------------


def test_an_emergency_session_halts_as_the_person_its_grant_names(world: World) -> None:
    request_id = granted(world, "rita")
    status, _ = world.call(
        session_arn("breakglass-emergency-halt", "rita"),
        "POST",
        "/halts",
        {"targets": ["chat"], "mode": "deny-invoke", "reason": "leaking data"},
    )
    assert status == 200
    (call,) = [c for c in world.lam.calls if c[0] == "invoke"]
    assert call[1]["FunctionName"] == "ai-halt"
    assert call[1]["Payload"]["actor"] == "rita" and call[1]["Payload"]["request_id"] == request_id


def test_the_auto_approved_tier_may_halt_but_not_resume(world: World) -> None:
    granted(world, "rita")
    status, answer = world.call(
        session_arn("breakglass-emergency-halt", "rita"),
        "POST",
        "/resumes",
        {"targets": ["chat"], "mode": "deny-invoke", "reason": "ok"},
    )
    assert status == 403 and "quorum" in answer["error"]["message"]
    assert world.lam.calls == []


def test_a_quorum_tier_resumes_as_the_person_its_grant_names_whatever_the_body_says(world: World) -> None:
    request_id = granted(world, "rita", "operator")
    status, _ = world.call(
        session_arn("breakglass-emergency-operator", "rita"),
        "POST",
        "/resumes",
        {"targets": ["chat"], "mode": "deny-invoke", "reason": "fixed", "actor": "ann"},
    )
    assert status == 400  # an actor in the body is refused, never believed
    assert world.lam.calls == []
    status, _ = world.call(
        session_arn("breakglass-emergency-operator", "rita"),
        "POST",
        "/resumes",
        {"targets": ["chat"], "mode": "deny-invoke", "reason": "fixed"},
    )
    assert status == 200
    (call,) = [c for c in world.lam.calls if c[0] == "invoke"]
    assert call[1]["FunctionName"] == "ai-resume"
    assert call[1]["Payload"]["actor"] == "rita" and call[1]["Payload"]["request_id"] == request_id


@pytest.mark.parametrize(
    "caller",
    [user_arn("rita"), session_arn("breakglass-emergency-halt", "mallory"), session_arn("app-role", "rita")],
)
def test_only_an_emergency_session_with_a_live_grant_may_halt(world: World, caller: str) -> None:
    granted(world, "rita")
    status, _ = world.call(
        caller, "POST", "/halts", {"targets": ["chat"], "mode": "deny-invoke", "reason": "x"}
    )
    assert status == 403 and world.lam.calls == []


def test_a_halt_after_the_grant_expired_is_refused(world: World) -> None:
    granted(world, "rita")
    world.tick(31)
    status, answer = world.call(
        session_arn("breakglass-emergency-halt", "rita"),
        "POST",
        "/halts",
        {"targets": ["chat"], "mode": "deny-invoke", "reason": "x"},
    )
    assert status == 403 and answer["error"]["code"] == "no-active-grant"


# -- review and enrollment ---------------------------------------------------------------------------------


def test_security_records_the_review_verdict_as_themselves(world: World) -> None:
    request_id = granted(world, "rita")
    world.deps.store.set_status(request_id, "expired")
    world.deps.store.mark_review_opened(request_id)  # what the workflow does last
    status, answer = world.call(
        user_arn("sec"),
        "POST",
        f"/requests/{request_id}/review",
        {"verdict": "accepted", "notes": "", "totp": world.code("sec")},
    )
    assert status == 201 and answer["reviewer"] == "sec"
    assert (
        world.call(
            user_arn("ann"),
            "POST",
            f"/requests/{request_id}/review",
            {"verdict": "accepted", "totp": world.code("ann")},
        )[0]
        == 403
    )


def test_a_bootstrap_admin_enrolls_the_first_person_and_others_cannot(world: World) -> None:
    body = {
        "user": "una",
        "principal_arn": user_arn("una"),
        "email": "una@example.com",
        "roles": ["security"],
    }
    status, answer = world.call(session_arn("cloud-admin", "jo"), "POST", "/enrollments", body)
    assert status == 201 and answer["otpauth_uri"].startswith("otpauth://totp/")
    (event,) = [e for e in world.events() if e.event_type == "enrollment"]
    assert event.actor == "admin:jo" and event.details["user"] == "una"
    assert world.call(user_arn("rita"), "POST", "/enrollments", {**body, "user": "eve"})[0] == 403
    status, _ = world.call(
        user_arn("sec"), "POST", "/enrollments", {**body, "user": "vic", "totp": world.code("sec")}
    )
    assert status == 201


@pytest.mark.parametrize(
    "changes",
    [
        {"user": "sec", "principal_arn": user_arn("sec"), "email": "sec@example.com"},  # new roles
        {"user": "SEC"},  # the same user id, spelled otherwise
        {"principal_arn": user_arn("sec")},  # a second identity on their own principal
        {"email": "Sec@Example.com"},  # a second identity with their own address
    ],
)
def test_a_security_person_cannot_enroll_themselves_under_any_name(
    world: World, changes: dict[str, str]
) -> None:
    body = {
        "user": "sec2",
        "principal_arn": user_arn("sec2"),
        "email": "sec2@example.com",
        "roles": ["security", "approver", "responder"],
        "totp": world.code("sec"),
        **changes,
    }
    status, answer = world.call(user_arn("sec"), "POST", "/enrollments", body)
    assert status == 403 and "yourself" in answer["error"]["message"], answer
    (event,) = [e for e in world.events() if e.event_type == "enrollment"]
    assert (event.actor, event.outcome) == ("sec", "failed")
    assert world.deps.store.get_enrollment("sec2") is None
    assert world.deps.store.get_enrollment("sec").roles == ("security",)  # type: ignore[union-attr]


def test_unknown_routes_and_methods_answer_clearly(world: World) -> None:
    assert world.call(user_arn("rita"), "GET", "/nowhere")[0] == 404
    assert world.call(user_arn("rita"), "DELETE", "/requests")[0] == 405


def test_every_declared_persona_route_is_served() -> None:
    served = set(access_api.route_keys())
    declared = {r for routes in access_api.PERSONA_ROUTES.values() for r in routes}
    declared |= {access_api.HALT_ROUTE, access_api.RESUME_ROUTE, *access_api.EMERGENCY_ROUTES}
    assert declared <= served


def test_a_role_with_a_path_is_matched_by_its_name_as_its_sessions_show_it(world: World) -> None:
    # IAM Identity Center roles live under a path; their session ARNs name the role without it.
    sso = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Oncall_0123"
    store = world.deps.store
    enroll(store, "una", sso, "una@example.com", ["responder"])
    status, answer = world.call(session_arn("AWSReservedSSO_Oncall_0123", "una"), "GET", "/whoami")
    assert status == 200 and answer["user"] == "una"
    other_account = "arn:aws:sts::210987654321:assumed-role/AWSReservedSSO_Oncall_0123/una"
    assert world.call(other_account, "GET", "/whoami")[1].get("enrolled") is False


# -- malformed events: always an answer, never an exception ------------------------------------------


def _signed(body: Any, *, base64_flag: bool = False, http: Any = None) -> dict[str, Any]:
    return {
        "rawPath": "/requests",
        "requestContext": {
            "http": {"method": "POST", "path": "/requests"} if http is None else http,
            "authorizer": {"iam": {"userArn": user_arn("rita"), "accountId": ACCOUNT}},
        },
        "body": body,
        "isBase64Encoded": base64_flag,
    }


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (_signed("gA==", base64_flag=True), 400),  # base64 of bytes that are not UTF-8
        (_signed("0", base64_flag=True), 400),  # not base64
        (_signed("\x80", base64_flag=True), 400),  # not even ASCII
        (_signed("[" * 1000 + "1" + "]" * 1000), 400),  # deeper than Python's recursion limit
        (_signed({"tier": "halt"}), 400),  # a body that is not text
        (_signed(12), 400),
        (_signed("x" * 40_000, base64_flag=True), 413),  # refused before decoding
        (_signed("{}", http="POST /requests"), 200),  # no method given: a read (GET /requests)
        (None, 400),
        (["not", "an", "event"], 400),
    ],
    ids=[
        "not-utf8",
        "not-base64",
        "not-ascii",
        "deep-json",
        "dict-body",
        "int-body",
        "huge",
        "bad-http",
        "none",
        "list",
    ],
)
def test_a_malformed_event_is_answered_never_raised(world: World, event: Any, status: int) -> None:
    response = handle(world.deps, event)
    assert response["statusCode"] == status
    if status >= 400:
        assert set(json.loads(response["body"])["error"]) == {"code", "field", "message"}


def test_whoami_from_a_session_whose_name_is_not_a_person_is_refused_not_raised(world: World) -> None:
    status, answer = world.call(session_arn("breakglass-emergency-halt", "a"), "GET", "/whoami")
    assert status == 403 and answer["error"]["code"] == "not-emergency-session"


def await_task(world: World, request_id: str, token: str, round_name: str = "primary") -> dict[str, Any]:
    """The workflow's AwaitApproval task starting to wait, on the same table and audit bucket."""
    deps = workflow.WorkflowDeps(
        store=world.deps.store,
        audit=world.deps.audit,
        ses=None,
        iam=None,
        tiers=world.deps.tiers,
        policy=world.deps.policy,
        sender="bg@example.com",
        approval_url="https://approvals.example.com",
        link_key=lambda: b"k" * 32,
        clock=lambda: world.clock[0],
        sfn=world.sfn,
    )
    event = workflow.AwaitEvent(request_id=request_id, task_token=token, round=round_name, execution_arn=None)
    return workflow.await_approval(deps, event)


@pytest.mark.parametrize(("decision", "status"), [("approve", "approved"), ("deny", "denied")])
def test_a_vote_that_decides_before_the_workflow_waits_is_its_answer_when_it_does(
    world: World, decision: str, status: str
) -> None:
    # An approver told by chat votes from a terminal before the workflow has stored its task token:
    # the vote stands and the workflow, once waiting, takes that decision instead of failing.
    _, made = ask(world, "rita", tier="operator")
    got, answer = world.call(
        user_arn("ann"),
        "POST",
        f"/requests/{made['request_id']}/votes",
        {"decision": decision, "totp": world.code("ann")},
    )
    assert got == 200 and answer["status"] == status and answer["decided"], answer
    assert not [c for c in world.sfn.calls if c[0] == "send_task_success"]

    result = await_task(world, made["request_id"], "token-1")

    (success,) = [c for c in world.sfn.calls if c[0] == "send_task_success"]
    assert success[1]["taskToken"] == "token-1"
    assert json.loads(success[1]["output"])["decision"] == status
    assert result["decided"] == status and result["notified"] == []
    record = world.deps.store.get_request(made["request_id"])
    assert record is not None and record.status == status
