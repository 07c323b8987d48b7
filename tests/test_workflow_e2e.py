"""Whole approval-workflow executions in the embedded emulator.

moto's Step Functions interpreter runs the real definition; every Task Lambda and the approval
API run in-process from this package; approvers act through the approval API with the links
from the emails moto captured. Every test reads back the audit events from the locked bucket.
Waits are shortened by the emulator, so the end-of-window revoke runs before the wall-clock
expiry. A record never says expiry when it isn't (issue 8): until the emulator fast-forwards its
clock at the end of a Wait, that revoke is recorded as ``revoke`` (with ``early`` false).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp
import pytest

from breakglass.contracts import iso, utc_now
from breakglass.lambdas.approvals import workflow as workflow
from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.approvals.links import sign_link
from breakglass.lambdas.approvals.requests import TierApproval
from breakglass.lambdas.approvals.store import RequestRecord
from breakglass.lambdas.approvals.workflow import WorkflowDeps
from breakglass.lambdas.audit.events import AuditWriter
from breakglass.lambdas.audit.review import record_verdict
from breakglass.local.emulator import Emulator, TierSpec, WorkflowDeployment, deploy_workflow
from breakglass.policies.documents import policy_size
from breakglass.policies.emergency_role import GUARD_POLICY_NAME, TRUST_POLICY_MAX_CHARS, trust_policy

ACCOUNT = "123456789012"
LINK = re.compile(r"https://approvals\.example\.com/approve/requests/[^\s?\"<]+\?token=[^\s\"<&]+")
REASON = "model is leaking customer data; need to halt the endpoint now"


def arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{user}"


@dataclass
class Person:
    """An enrolled person with an authenticator: each code is for a later time step than the last.

    Codes start at the current step and may run one step ahead (the verifier's window), so a
    code never expires between typing and checking; a third code in one step waits for the next.
    """

    user: str
    secret: str
    table: str
    last_step: int = 0

    def _next_step(self) -> int:
        while True:
            current = int(time.time()) // 30
            step = max(current, self.last_step + 1)
            if step <= current + 1:
                return step
            time.sleep(30 - time.time() % 30 + 0.05)

    def peek(self) -> str:
        """The next code, without using it up (for requests refused before the code is checked)."""
        return str(pyotp.TOTP(self.secret).at(self._next_step() * 30))

    def code(self) -> str:
        step = self._next_step()
        self.last_step = step
        return str(pyotp.TOTP(self.secret).at(step * 30))

    def wrong_code(self) -> str:
        totp = pyotp.TOTP(self.secret)
        current = int(time.time()) // 30
        valid = {totp.at((current + d) * 30) for d in (-1, 0, 1, 2)}
        return next(c for c in (f"{n:06d}" for n in range(10)) if c not in valid)


RESPONDERS = ("rita", "sam", "tom", "uma", "vic", "wes")
CROWD_REQUESTERS = tuple(f"r{i:02d}" for i in range(20))
CROWD_APPROVERS = tuple(f"c{i}" for i in range(10))
APPROVERS = ("ann", "bob", "cat")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(max_wait_seconds=0.2) as emu:
        yield emu


@pytest.fixture(scope="module")
def deployment(emulator: Emulator) -> WorkflowDeployment:
    everyone = [arn(u) for u in (*RESPONDERS, *CROWD_REQUESTERS, "ann")]
    return deploy_workflow(
        emulator,
        [
            TierSpec(
                "operator",
                TierApproval(
                    quorum=2,
                    approvers=APPROVERS,
                    backup_approvers=("sec",),
                    ticket_required=True,
                    ticket_pattern=r"INC-\d+",
                    approval_timeout_seconds=60,
                ),
                allowed_requesters=tuple(everyone),
            ),
            TierSpec("halt", TierApproval(quorum=0, approvers=("ann",)), allowed_requesters=tuple(everyone)),
            TierSpec(
                "slow",
                TierApproval(
                    quorum=1, approvers=("ann",), backup_approvers=("sec",), approval_timeout_seconds=1
                ),
                allowed_requesters=tuple(everyone),
            ),
            # Four tiers for the concurrency test: one role's trust holds about 6 grants at 4096 chars.
            *(
                TierSpec(
                    tier,
                    TierApproval(quorum=1, approvers=CROWD_APPROVERS, approval_timeout_seconds=60)
                    if tier.startswith("crowd")
                    else TierApproval(quorum=0),
                    allowed_requesters=tuple(everyone),
                    trust_policy_max_chars=4096,
                )
                for tier in ("crowd", "crowd2", "auto1", "auto2")
            ),
        ],
        name="bg",
    )


@pytest.fixture(scope="module")
def people(deployment: WorkflowDeployment) -> dict[str, Person]:
    table = deployment.store()
    roles: dict[str, list[str]] = {u: ["responder"] for u in (*RESPONDERS, *CROWD_REQUESTERS)}
    roles.update({u: ["approver"] for u in (*APPROVERS, *CROWD_APPROVERS, "zed")})
    roles["ann"] = ["approver", "responder"]
    roles["sec"] = ["security"]
    found = {}
    for user, user_roles in roles.items():
        uri = enroll(table, user, arn(user), f"{user}@example.com", user_roles)
        found[user] = Person(user, pyotp.parse_uri(uri).secret, deployment.table)
    return found


@pytest.fixture(autouse=True)
def fresh_authenticators(people: dict[str, Person], deployment: WorkflowDeployment) -> None:
    """Each test starts with nobody's codes used (replays are still refused within a test)."""
    dynamodb = deployment.emulator.client("dynamodb")
    for person in people.values():
        person.last_step = 0
        dynamodb.update_item(
            TableName=person.table,
            Key={"pk": {"S": f"USER#{person.user}"}, "sk": {"S": "ENROLLMENT"}},
            UpdateExpression="REMOVE last_totp_step",
        )


def request(tier: str, requester: Person, **extra: Any) -> dict[str, Any]:
    body = {"tier": tier, "requester": requester.user, "reason": REASON, "duration": "30m"}
    body.update(extra)
    if "totp" not in body:
        body["totp"] = requester.code()
    return body


def links_for(dep: WorkflowDeployment, user: str, request_id: str, *, at_least: int = 0) -> list[str]:
    """The approval links mailed to ``user`` for the request (waiting for ``at_least`` of them)."""
    deadline = time.monotonic() + 15
    while True:
        found = []
        for message in dep.emulator.sent_emails():
            if (
                f"{user}@example.com" in message.destinations.get("ToAddresses", [])
                and request_id in message.body
            ):
                found.extend(LINK.findall(message.body))
        links = list(dict.fromkeys(found))
        if len(links) >= at_least or time.monotonic() > deadline:
            return links
        time.sleep(0.02)


def awaiting(dep: WorkflowDeployment, request_id: str) -> RequestRecord:
    """Wait until the request waits for votes and its approvers were mailed."""
    record = dep.wait_for_status(request_id, "pending")
    deadline = time.monotonic() + 15
    while not any(
        e.event_type == "approval" and e.outcome == "pending" for e in dep.audit_events(request_id)
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"approvers of {request_id} were never notified")
        time.sleep(0.02)
    return record


def mails_to(dep: WorkflowDeployment, user: str, request_id: str) -> list[Any]:
    return [
        m
        for m in dep.emulator.sent_emails()
        if f"{user}@example.com" in m.destinations.get("ToAddresses", []) and request_id in m.body
    ]


def post(
    dep: WorkflowDeployment, link: str, code: str, decision: str, *, path: str | None = None
) -> dict[str, Any]:
    url = urlsplit(link)
    token = parse_qs(url.query)["token"][0]
    target = path or url.path
    return dep.call_approval_api(
        {
            "version": "2.0",
            "rawPath": target,
            "requestContext": {"http": {"method": "POST", "path": target, "sourceIp": "127.0.0.1"}},
            "headers": {"content-type": "application/x-www-form-urlencoded", "host": "approvals.example.com"},
            "body": urlencode({"token": token, "totp": code, "decision": decision}),
            "isBase64Encoded": False,
        }
    )


def start(dep: WorkflowDeployment, body: dict[str, Any], request_id: str) -> str:
    return dep.start_request(body, request_id=request_id)


def kinds(dep: WorkflowDeployment, request_id: str) -> list[tuple[str, str, str]]:
    return [(e.event_type, e.outcome, e.actor) for e in dep.audit_events(request_id)]


def role_state(dep: WorkflowDeployment, tier: str, request_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(trust statements, guard statement ids) of the tier's role that belong to the request."""
    iam = dep.emulator.client("iam")
    name = dep.tiers[tier].role_name
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    trust_doc = trust if isinstance(trust, dict) else json.loads(trust)
    letters = re.sub(r"[^A-Za-z0-9]", "", request_id)[:40]
    guards: list[str] = []
    if GUARD_POLICY_NAME in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=name, PolicyName=GUARD_POLICY_NAME)["PolicyDocument"]
        guards = [s["Sid"] for s in (doc if isinstance(doc, dict) else json.loads(doc))["Statement"]]
    mine = [s for s in trust_doc["Statement"] if letters in s.get("Sid", "")]
    return mine, [g for g in guards if letters in g]


def no_access_left(dep: WorkflowDeployment, tier: str, request_id: str) -> bool:
    trust, _ = role_state(dep, tier, request_id)
    return not any(s["Effect"] == "Allow" for s in trust)


# -- the happy paths -------------------------------------------------------------------------------


def test_a_quorum_of_two_approvers_grants_access_then_it_is_revoked_and_a_review_opened(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "quorumtwo"
    execution = start(deployment, request("operator", people["rita"], ticket="INC-1234"), rid)
    awaiting(deployment, rid)
    ann_link, bob_link = links_for(deployment, "ann", rid), links_for(deployment, "bob", rid)
    assert len(ann_link) == len(bob_link) == 1 and links_for(deployment, "cat", rid)
    assert links_for(deployment, "rita", rid) == []

    first = post(deployment, ann_link[0], people["ann"].code(), "approve")
    assert first["statusCode"] == 200 and "1 of 2 approvals" in first["body"]
    assert deployment.store().get_request(rid).status == "pending"  # type: ignore[union-attr]
    second = post(deployment, bob_link[0], people["bob"].code(), "approve")
    assert second["statusCode"] == 200

    done = deployment.wait_for(execution)
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert output["decision"]["approvals"] == ["ann", "bob"]
    assert output["revoke"] == {"outcome": "succeeded", "after_failure": False}
    record = deployment.store().get_request(rid)
    assert record is not None and record.status == "expired" and record.approvals == ("ann", "bob")
    assert no_access_left(deployment, "operator", rid)
    events = deployment.audit_events(rid)
    assert [(e.event_type, e.outcome, e.actor) for e in events] == [
        ("request", "pending", "rita"),
        ("approval", "pending", "system"),
        ("approval", "succeeded", "ann"),
        ("approval", "succeeded", "bob"),
        ("grant", "succeeded", "system"),
        ("revoke", "succeeded", "system"),  # expiry once the emulator's clock reaches it
        ("review", "opened", "system"),
    ]
    assert events[0].ticket == "INC-1234" and events[0].details["approvers"] == ["ann", "bob", "cat"]
    assert events[4].role_arn == deployment.tiers["operator"].role_arn
    assert events[4].details["requester_arn"] == arn("rita")
    assert events[5].details["early"] is False
    assert len(mails_to(deployment, "rita", rid)) == 1  # access granted notice


def test_an_auto_tier_is_granted_at_once_and_its_approvers_are_told(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "autohalt"
    done = deployment.wait_for(start(deployment, request("halt", people["sam"]), rid))
    assert done["status"] == "SUCCEEDED", done
    assert kinds(deployment, rid) == [
        ("request", "pending", "sam"),
        ("approval", "succeeded", "system:auto"),
        ("grant", "succeeded", "system"),
        ("revoke", "succeeded", "system"),  # expiry once the emulator's clock reaches it
        ("review", "opened", "system"),
    ]
    (notice,) = mails_to(deployment, "ann", rid)
    assert "automatic" in notice.subject and LINK.search(notice.body) is None
    assert no_access_left(deployment, "halt", rid)


def test_a_denial_is_final_audited_and_the_requester_is_told(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "deniedone"
    execution = start(deployment, request("operator", people["tom"], ticket="INC-7"), rid)
    awaiting(deployment, rid)
    page = post(deployment, links_for(deployment, "cat", rid)[0], people["cat"].code(), "deny")
    assert page["statusCode"] == 200 and "denied" in page["body"]
    done = deployment.wait_for(execution)
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"])["decision"]["decision"] == "denied"
    # A later approval changes nothing.
    late = post(deployment, links_for(deployment, "ann", rid)[0], people["ann"].peek(), "approve")
    assert late["statusCode"] == 409
    assert deployment.store().get_request(rid).status == "denied"  # type: ignore[union-attr]
    assert kinds(deployment, rid) == [
        ("request", "pending", "tom"),
        ("approval", "pending", "system"),
        ("denial", "succeeded", "cat"),
        ("denial", "succeeded", "cat"),
        ("approval", "failed", "ann"),
    ]
    assert [e.details.get("cause") for e in deployment.audit_events(rid) if e.event_type == "denial"] == [
        None,
        "denied",
    ]
    (notice,) = mails_to(deployment, "tom", rid)
    assert "denied" in notice.subject
    assert no_access_left(deployment, "operator", rid)


def test_no_quorum_by_the_deadline_renotifies_backups_once_then_denies(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "timedout"
    done = deployment.wait_for(start(deployment, request("slow", people["uma"]), rid))
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"])["decision"] == {
        "decision": "timed_out"
    }
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in deployment.history(done["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered.count("AwaitApproval") == entered.count("AwaitBackupApproval") == 1
    events = deployment.audit_events(rid)
    assert [(e.event_type, e.outcome, e.actor) for e in events] == [
        ("request", "pending", "uma"),
        ("approval", "pending", "system"),
        ("approval", "pending", "system"),
        ("denial", "succeeded", "system:timeout"),
    ]
    assert [e.details["round"] for e in events[1:3]] == ["primary", "backup"]
    assert events[1].details["notified"] == ["ann"] and events[2].details["notified"] == ["ann", "sec"]
    assert len(links_for(deployment, "sec", rid)) == 1 and len(links_for(deployment, "ann", rid)) == 2
    assert deployment.store().get_request(rid).status == "denied"  # type: ignore[union-attr]


# -- refusals --------------------------------------------------------------------------------------


def test_the_requester_can_never_approve_their_own_request(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "selfapproval"
    execution = start(deployment, request("operator", people["ann"], ticket="INC-9"), rid)
    record = awaiting(deployment, rid)
    assert "ann" not in record.approvers and links_for(deployment, "ann", rid) == []
    # Even a genuinely signed link for the requester is refused.
    key = deployment.link_key()
    token = sign_link(key, request_id=rid, approver="ann", expires_at=utc_now() + timedelta(minutes=5))
    page = post(
        deployment,
        f"https://approvals.example.com/approve/requests/{rid}?token={token}",
        people["ann"].code(),
        "approve",
    )
    assert page["statusCode"] == 403 and "cannot approve your own request" in page["body"]
    assert deployment.store().get_request(rid).approvals == ()  # type: ignore[union-attr]
    refused = [e for e in deployment.audit_events(rid) if e.outcome == "failed"]
    assert [(e.event_type, e.actor, e.details["refused"]) for e in refused] == [
        ("approval", "ann", "self-approval")
    ]
    post(deployment, links_for(deployment, "bob", rid)[0], people["bob"].code(), "deny")
    assert deployment.wait_for(execution)["status"] == "SUCCEEDED"


def test_forged_expired_reused_cross_request_and_wrong_approver_links_are_refused(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    first, other = "linksa", "linksb"
    exec_a = start(deployment, request("operator", people["vic"], ticket="INC-11"), first)
    exec_b = start(deployment, request("operator", people["wes"], ticket="INC-12"), other)
    awaiting(deployment, first)
    awaiting(deployment, other)
    (bob_a,) = links_for(deployment, "bob", first)
    (cat_a,) = links_for(deployment, "cat", first)
    key = deployment.link_key()
    base = f"https://approvals.example.com/approve/requests/{first}?token="

    # Each link is refused before the (valid) code is even checked.
    forged = bob_a[:-4] + ("AAAA" if not bob_a.endswith("AAAA") else "BBBB")
    assert post(deployment, forged, people["bob"].peek(), "approve")["statusCode"] == 403
    expired = sign_link(key, request_id=first, approver="bob", expires_at=utc_now() - timedelta(seconds=1))
    assert post(deployment, base + expired, people["bob"].peek(), "approve")["statusCode"] == 410
    wrong = sign_link(key, request_id=first, approver="zed", expires_at=utc_now() + timedelta(minutes=5))
    assert post(deployment, base + wrong, people["zed"].peek(), "approve")["statusCode"] == 403
    cross = post(deployment, cat_a, people["cat"].peek(), "approve", path=f"/approve/requests/{other}")
    assert cross["statusCode"] == 403 and "another request" in cross["body"]
    # Nothing counted so far; now one genuine vote, and its link cannot be used again.
    assert deployment.store().get_request(first).approvals == ()  # type: ignore[union-attr]
    assert post(deployment, bob_a, people["bob"].code(), "approve")["statusCode"] == 200
    assert post(deployment, bob_a, people["bob"].peek(), "approve")["statusCode"] == 409
    assert deployment.store().get_request(first).approvals == ("bob",)  # type: ignore[union-attr]
    assert deployment.store().get_request(other).approvals == ()  # type: ignore[union-attr]

    # Forged and expired links are no genuine link: counted, never written to the locked bucket.
    # A genuine link is on record under the request it was signed for, whatever the path said.
    refusals = sorted(e.details["refused"] for e in deployment.audit_events(first) if e.outcome == "failed")
    assert refusals == ["cross-request", "used", "wrong-approver"]
    assert [e for e in deployment.audit_events(other) if e.outcome == "failed"] == []
    for rid in (first, other):
        post(deployment, links_for(deployment, "ann", rid)[0], people["ann"].code(), "deny")
    assert deployment.wait_for(exec_a)["status"] == deployment.wait_for(exec_b)["status"] == "SUCCEEDED"


def test_a_wrong_or_replayed_requester_totp_rejects_the_request(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    sam = people["sam"]
    wrong = deployment.wait_for(start(deployment, request("halt", sam, totp=sam.wrong_code()), "totpwrong"))
    assert wrong["status"] == "FAILED" and wrong["error"] == "RequestRejected"
    assert "totp: the code is wrong" in wrong["cause"]
    code = sam.code()
    used = deployment.wait_for(start(deployment, request("halt", sam, totp=code), "totpfirst"))
    assert used["status"] == "SUCCEEDED"
    replay = deployment.wait_for(start(deployment, request("halt", sam, totp=code), "totpreplay"))
    assert replay["status"] == "FAILED" and "already used" in replay["cause"]
    for rid, problem in (("totpwrong", "wrong"), ("totpreplay", "already used")):
        (event,) = deployment.audit_events(rid)
        assert (event.event_type, event.outcome, event.details["field"]) == ("request", "failed", "totp")
        assert problem in event.details["problem"]
    assert deployment.store().get_request("totpreplay") is None


def test_an_approver_with_a_wrong_code_can_retry_and_a_replayed_code_is_refused(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "approvertotp"
    execution = start(deployment, request("operator", people["rita"], ticket="INC-3"), rid)
    awaiting(deployment, rid)
    (link,) = links_for(deployment, "ann", rid)
    ann = people["ann"]
    page = post(deployment, link, ann.wrong_code(), "approve")
    assert page["statusCode"] == 403 and 'name="totp"' in page["body"]  # the form again
    code = ann.code()
    assert post(deployment, link, code, "approve")["statusCode"] == 200
    (bob_link,) = links_for(deployment, "bob", rid)
    # Bob votes on another request, then replays that same code here.
    bob_code = people["bob"].code()
    other = "approvertotp2"
    exec2 = start(deployment, request("operator", people["sam"], ticket="INC-4"), other)
    awaiting(deployment, other)
    assert post(deployment, links_for(deployment, "bob", other)[0], bob_code, "deny")["statusCode"] == 200
    replayed = post(deployment, bob_link, bob_code, "approve")
    assert replayed["statusCode"] == 403 and "already used" in replayed["body"]
    reasons = [e.details.get("refused") for e in deployment.audit_events(rid) if e.outcome == "failed"]
    assert reasons == ["totp-wrong", "totp-replayed"]
    assert deployment.store().get_request(rid).approvals == ("ann",)  # type: ignore[union-attr]
    post(deployment, links_for(deployment, "cat", rid)[0], people["cat"].code(), "deny")
    assert deployment.wait_for(execution)["status"] == deployment.wait_for(exec2)["status"] == "SUCCEEDED"


def test_bad_requests_are_rejected_with_the_field_named(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    tom, zed = people["tom"], people["zed"]
    # The code is checked last, so none of these uses it up.
    cases = {
        "badtier": (request("nope", tom, totp=tom.peek()), "tier: unknown tier 'nope'"),
        "badticket": (request("operator", tom, ticket="JIRA-1", totp=tom.peek()), "ticket:"),
        "noticket": (request("operator", tom, totp=tom.peek()), "ticket: tier 'operator' requires"),
        "badduration": (
            request("halt", tom, duration="9h", totp=tom.peek()),
            "duration: tier 'halt' allows at most 1h",
        ),
        "badreason": (request("halt", tom, reason="because", totp=tom.peek()), "reason: say why"),
        "badperson": (
            request("halt", zed, totp=zed.peek()),
            "requester: 'zed' is enrolled but not as a responder",
        ),
    }
    for rid, (body, message) in cases.items():
        done = deployment.wait_for(start(deployment, body, rid))
        assert done["status"] == "FAILED" and done["error"] == "RequestRejected", rid
        assert message in done["cause"], (rid, done["cause"])
        (event,) = deployment.audit_events(rid)
        assert event.outcome == "failed" and message.split(":")[0] == event.details["field"]


# -- early revoke and review -------------------------------------------------------------------------


def test_early_revoke_by_the_requester_ends_access_and_the_expiry_revoke_is_a_noop(
    emulator: Emulator, deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "earlyrevoke"
    emulator.max_wait_seconds = 60  # hold the execution in its Wait until expiry
    try:
        execution = start(deployment, request("halt", people["tom"]), rid)
        deployment.wait_for_status(rid, "granted")
        trust, guards = role_state(deployment, "halt", rid)
        assert trust and all(s["Effect"] == "Allow" for s in trust)  # the grant's trust statements
        refused = deployment.early_revoke(rid, "bob", people["bob"].peek())
        assert refused["errorType"] == "RevokeRefused"
        wrong = deployment.early_revoke(rid, "tom", people["tom"].wrong_code())
        assert wrong["errorType"] == "RevokeRefused" and "wrong" in wrong["errorMessage"]
        result = deployment.early_revoke(rid, "tom", people["tom"].code())
        assert result["as"] == "requester" and result["outcome"] == "succeeded" and result["role_locked"]
        assert no_access_left(deployment, "halt", rid)
        # The grant's one guard, rewritten in place into its token-issue-time form.
        assert role_state(deployment, "halt", rid)[1] == guards
    finally:
        emulator.max_wait_seconds = 0.2
    assert deployment.wait_for(execution)["status"] == "SUCCEEDED"
    assert deployment.store().get_request(rid).status == "revoked"  # type: ignore[union-attr]
    revokes = [
        (e.event_type, e.actor, e.outcome, e.details.get("early"))
        for e in deployment.audit_events(rid)
        if e.event_type in ("revoke", "expiry")
    ]
    assert revokes == [
        ("revoke", "bob", "failed", True),
        ("revoke", "tom", "failed", True),
        ("revoke", "tom", "succeeded", True),
        ("revoke", "system", "noop", False),  # expiry once the emulator's clock reaches it
    ]


def test_an_auditor_verdict_closes_the_review(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "reviewed"
    assert (
        deployment.wait_for(start(deployment, request("halt", people["uma"]), rid))["status"] == "SUCCEEDED"
    )
    writer = AuditWriter(deployment.emulator.client("s3"), deployment.bucket, deployment.prefix)
    with pytest.raises(ValueError, match="auditor: the requester cannot review"):
        record_verdict(writer, rid, "uma", "accepted", "", store=deployment.store())
    record_verdict(writer, rid, "sec", "accepted", "ticket matches the incident", store=deployment.store())
    reviews = [(e.outcome, e.actor) for e in deployment.audit_events(rid) if e.event_type == "review"]
    assert reviews == [("opened", "system"), ("accepted", "sec")]


# -- failures after grant ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fragile(
    emulator: Emulator, people: dict[str, Person], deployment: WorkflowDeployment
) -> WorkflowDeployment:
    """A second deployment whose mail cannot be sent and whose 'bulky' role has no room for a grant."""
    dep = deploy_workflow(
        emulator,
        [
            TierSpec("fragile", TierApproval(quorum=0), allowed_requesters=(arn("vic"),)),
            TierSpec("bulky", TierApproval(quorum=0), allowed_requesters=(arn("vic"),)),
        ],
        name="bgx",
        sender="unverified@example.com",
    )
    # Same table contents as the main deployment's people: enroll vic here too.
    uri = enroll(dep.store(), "vic", arn("vic"), "vic@example.com", ["responder"])
    people["vic-x"] = Person("vic", pyotp.parse_uri(uri).secret, dep.table)
    emulator.client("ses").delete_identity(Identity="unverified@example.com")
    # Fill the bulky role's trust policy so that a grant statement no longer fits its quota.
    filler: list[dict[str, Any]] = []
    while policy_size(trust_policy(filler)) < TRUST_POLICY_MAX_CHARS - 120:
        filler.append(
            {
                "Sid": f"Filler{len(filler)}",
                "Effect": "Deny",
                "Principal": {"AWS": arn(f"nobody{len(filler)}")},
                "Action": "sts:AssumeRole",
            }
        )
    emulator.client("iam").update_assume_role_policy(
        RoleName=dep.tiers["bulky"].role_name, PolicyDocument=json.dumps(trust_policy(filler))
    )
    return dep


def test_a_grant_that_fails_ends_with_no_access_left(
    fragile: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "grantfails"
    done = fragile.wait_for(fragile.start_request(request("bulky", people["vic-x"]), request_id=rid))
    assert done["status"] == "FAILED" and done["error"] == "FailedAfterGrant"
    assert no_access_left(fragile, "bulky", rid)
    assert fragile.store().get_request(rid).status == "revoked"  # type: ignore[union-attr]
    events = fragile.audit_events(rid)
    assert [(e.event_type, e.outcome) for e in events] == [
        ("request", "pending"),
        ("approval", "succeeded"),
        ("revoke", "noop"),  # the refused grant wrote nothing, so there is nothing to revoke
        ("error", "failed"),
        ("review", "opened"),
    ]
    assert "trust_policy" in events[3].details["cause"] and events[3].details["stage"] == "after-grant"
    assert events[4].details["failure"]["error"] == "GrantError"


def test_a_failure_after_a_real_grant_is_caught_and_revoked_at_once(
    fragile: WorkflowDeployment, people: dict[str, Person]
) -> None:
    rid = "notifyfails"
    done = fragile.wait_for(fragile.start_request(request("fragile", people["vic-x"]), request_id=rid))
    assert done["status"] == "FAILED" and done["error"] == "FailedAfterGrant"
    events = fragile.audit_events(rid)
    assert [(e.event_type, e.outcome) for e in events] == [
        ("request", "pending"),
        ("approval", "succeeded"),
        ("grant", "succeeded"),
        ("revoke", "succeeded"),
        ("error", "failed"),
        ("review", "opened"),
    ]
    assert events[3].details["early"] is True  # sessions already issued are cut too
    assert "not verified" in events[4].details["cause"]
    assert no_access_left(fragile, "fragile", rid)
    assert any(sid for sid in role_state(fragile, "fragile", rid)[1])


# -- concurrency ------------------------------------------------------------------------------------


def test_twenty_concurrent_requests_do_not_cross_talk(
    deployment: WorkflowDeployment, people: dict[str, Person]
) -> None:
    tiers = ("auto1", "crowd", "auto2", "crowd2")
    plan = {}
    for i, user in enumerate(CROWD_REQUESTERS):
        tier = tiers[i % 4]
        plan[f"crowd{i:02d}"] = (user, tier, CROWD_APPROVERS[i // 2] if tier.startswith("crowd") else None)
    executions: dict[str, str] = {}
    bodies = {rid: request(tier, people[user]) for rid, (user, tier, _) in plan.items()}

    def begin(rid: str) -> None:
        executions[rid] = start(deployment, bodies[rid], rid)

    threads = [threading.Thread(target=begin, args=(rid,)) for rid in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rid, (_, _, approver) in plan.items():
        if approver:
            awaiting(deployment, rid)
            (link,) = links_for(deployment, approver, rid)
            assert post(deployment, link, people[approver].code(), "approve")["statusCode"] == 200
    for rid, arn_ in executions.items():
        assert deployment.wait_for(arn_, timeout=60)["status"] == "SUCCEEDED", rid
    for rid, (user, tier, approver) in plan.items():
        events = deployment.audit_events(rid)
        assert {e.request_id for e in events} == {rid}
        assert {e.requester for e in events} == {user}, rid
        assert {e.tier for e in events} == {tier}, rid
        grant = next(e for e in events if e.event_type == "grant")
        assert grant.details["requester_arn"] == arn(user)
        voters = [e.actor for e in events if e.event_type == "approval" and e.outcome == "succeeded"]
        assert voters == ([approver] if approver else ["system:auto"]), rid
        assert [e.event_type for e in events][-1] == "review"
        assert deployment.store().get_request(rid).status == "expired"  # type: ignore[union-attr]
        assert no_access_left(deployment, tier, rid)


def test_a_retried_grant_keeps_the_window_it_already_wrote_instead_of_failing_into_revoke(
    deployment: WorkflowDeployment,
) -> None:
    """Grant's Retry runs the handler again when something after the role edit failed (the status
    update, a timeout): the retry must find its own statements, not refuse them as 'different'."""
    rid = "grantretried"
    table = deployment.store()
    requested = utc_now()
    table.put_request(
        RequestRecord(
            request_id=rid,
            requester="wes",
            requester_arn=arn("wes"),
            tier="halt",
            reason=REASON,
            ticket=None,
            duration_seconds=1800,
            requested_at=iso(requested),
            status="approved",
            quorum=0,
            approvers=("ann",),
        )
    )
    emu = deployment.emulator
    clock = [requested]
    deps = WorkflowDeps(
        store=table,
        audit=AuditWriter(emu.client("s3"), deployment.bucket, deployment.prefix),
        ses=emu.client("ses"),
        iam=emu.client("iam"),
        tiers=deployment.tiers,
        policy={},
        sender=deployment.sender,
        approval_url=deployment.approval_url,
        link_key=deployment.link_key,
        clock=lambda: clock[0],
    )
    first = workflow.grant(deps, rid)
    clock[0] = requested + timedelta(seconds=7)  # the retry runs after a back-off
    again = workflow.grant(deps, rid)
    assert (again["starts_at"], again["expires_at"]) == (first["starts_at"], first["expires_at"])
    assert (first["outcome"], again["outcome"]) == ("succeeded", "noop")
    assert table.get_request(rid).status == "granted"  # type: ignore[union-attr]
    trust, _ = role_state(deployment, "halt", rid)
    assert len(trust) == 2
    workflow.revoke(deps, rid, {"grant": first})
    assert no_access_left(deployment, "halt", rid)
