"""Whole incidents on examples/quickstart deployed into the emulator, IAM enforced.

Nothing here is wired by hand: the program deploys the components, each Lambda runs under its own
role, people are IAM users with the persona policies the deployment offers, and every step goes
through the ``breakglass`` command, the approval emails and the approval page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from breakglass.contracts import utc_now
from breakglass.local.athena import run_named_query
from breakglass.local.world import World, open_world

PEOPLE = {
    "rita": ("responder",),
    "sam": ("responder",),
    "tom": ("responder",),
    "uma": ("responder",),
    "vic": ("responder",),
    "ann": ("responder", "approver"),
    "bob": ("approver",),
    "cat": ("approver",),
    "sec": ("security",),
}
REASON = "the chat model leaks customer data in its answers"
MFA = ["--mfa-serial", "arn:aws:iam::000000000000:mfa/responder", "--mfa-code", "123456"]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="e2e", people=PEOPLE) as opened:
        opened.seed_ai_system()
        yield opened


def request(world: World, user: str, tier: str, *extra: str) -> dict[str, Any]:
    run = world.request(user, tier, REASON, *extra)
    assert run.exit_code in (0, 1), run.stderr
    return dict(run.json()) if run.stdout.strip() else {"stderr": run.stderr, "exit": run.exit_code}


def kinds(world: World, request_id: str) -> list[tuple[str, str, str]]:
    return [(e.event_type, e.actor, e.outcome) for e in world.audit_events(request_id)]


def trust_sids(world: World, tier: str) -> list[str]:
    role = world.emulator.client("iam").get_role(RoleName=f"breakglass-emergency-{tier}")["Role"]
    document = role["AssumeRolePolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    return [s.get("Sid", "") for s in document["Statement"]]


def execution_of(world: World, request_id: str) -> str:
    machine = world.deployment.output("state_machine_arn")
    return machine.replace(":stateMachine:", ":execution:") + f":{request_id}"


def wait_execution(world: World, request_id: str, *, timeout: float = 30.0) -> dict[str, Any]:
    sfn = world.emulator.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described = dict(sfn.describe_execution(executionArn=execution_of(world, request_id)))
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


# -- the auto-approved tier -------------------------------------------------------------------------


def test_an_auto_approved_request_is_granted_assumed_and_revoked_early(world: World) -> None:
    made = request(world, "rita", "halt", "--duration", "30m")
    rid = made["request_id"]
    assert made["status"] == "granted" and made["requester"] == "rita"
    env = world.cli("rita", "assume", rid, "--format", "json", *MFA)
    assert env.exit_code == 0, env.stderr
    credentials = env.json()
    sts = world.emulator.client_as(
        "sts",
        {
            "AccessKeyId": credentials["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": credentials["AWS_SECRET_ACCESS_KEY"],
            "SessionToken": credentials["AWS_SESSION_TOKEN"],
        },
    )
    identity = sts.get_caller_identity()
    assert identity["Arn"].endswith(":assumed-role/breakglass-emergency-halt/rita")

    revoked = world.cli("rita", "revoke", rid, "--totp", world.code("rita"), "--reason", "done", "--json")
    assert revoked.exit_code == 0, revoked.stderr
    assert not any(s.startswith("Grant") for s in trust_sids(world, "halt"))
    assert world.cli("sec", "status", rid, "--json").json()["status"] == "revoked"
    assert kinds(world, rid)[:3] == [
        ("request", "rita", "pending"),
        ("approval", "system:auto", "succeeded"),
        ("grant", "system", "succeeded"),
    ]
    assert ("revoke", "rita", "succeeded") in kinds(world, rid)


# -- a quorum from email --------------------------------------------------------------------------


def test_two_approvers_from_email_grant_admin_and_the_window_ends_recorded_as_expiry(world: World) -> None:
    made = request(world, "sam", "admin", "--ticket", "INC-4242", "--no-wait")
    rid = made["request_id"]
    assert made["status"] == "pending" and made["quorum"] == 2
    world.wait_for(rid, ["pending"])
    _await_links(world, "ann", rid)
    assert world.approval_links("sam", rid) == []  # never asked to approve their own request
    status, page = world.open_link(world.approval_links("ann", rid)[0])
    assert status == 200 and REASON in page  # opening decides nothing
    assert world.decide("ann", world.approval_links("ann", rid)[0], "approve")[0] == 200
    assert world.decide("bob", _await_links(world, "bob", rid)[0], "approve")[0] == 200
    assert world.wait_for(rid, ["granted"])["status"] == "granted"
    assert world.end_window(rid)["status"] == "expired"
    done = wait_execution(world, rid)
    assert done["status"] == "SUCCEEDED", done
    assert world.cli("sec", "status", rid, "--json").json()["status"] == "expired"
    events = kinds(world, rid)
    assert ("approval", "ann", "succeeded") in events and ("approval", "bob", "succeeded") in events
    assert ("expiry", "system", "succeeded") in events and ("review", "system", "opened") in events
    assert not any(s.startswith("Grant") for s in trust_sids(world, "admin"))


def _await_links(world: World, user: str, request_id: str) -> list[str]:
    links = world.approval_links(user, request_id, wait=20)
    assert links, f"no approval email for {user}"
    return links


def test_a_denial_from_a_terminal_is_final(world: World) -> None:
    made = request(world, "tom", "operator", "--no-wait")
    rid = made["request_id"]
    world.wait_for(rid, ["pending"])
    _await_links(world, "cat", rid)
    denied = world.cli("cat", "deny", rid, "--totp", world.code("cat"), "--json")
    assert denied.exit_code == 0 and denied.json()["status"] == "denied"
    late = world.cli("ann", "approve", rid, "--totp", world.code("ann"))
    assert late.exit_code == 1 and "no longer waiting" in late.stderr
    assert wait_execution(world, rid)["status"] == "SUCCEEDED"
    assert world.cli("tom", "status", rid, "--json").json()["status"] == "denied"


def test_nobody_approves_their_own_request(world: World) -> None:
    # ann is an approver and a responder: her own request is never hers to decide.
    made = request(world, "ann", "operator", "--no-wait")
    rid = made["request_id"]
    world.wait_for(rid, ["pending"])
    assert world.approval_links("ann", rid) == []
    own = world.cli("ann", "approve", rid, "--totp", world.code("ann"))
    assert own.exit_code == 1 and "your own request" in own.stderr
    assert world.cli("sec", "status", rid, "--json").json()["approvals"] == []
    # A responder who is no approver cannot even reach the route: IAM refuses it.
    outsider = world.cli("uma", "approve", rid, "--totp", world.code("uma"))
    assert outsider.exit_code == 1 and "Forbidden" in outsider.stderr
    assert world.cli("bob", "deny", rid, "--totp", world.code("bob")).exit_code == 0


# -- halting and resuming ---------------------------------------------------------------------------


def chat_api_policies(world: World) -> list[str]:
    return list(world.emulator.client("iam").list_role_policies(RoleName="chat-api")["PolicyNames"])


def test_a_responder_halts_with_one_command_and_resuming_needs_a_quorum_tier(world: World) -> None:
    halted = world.cli("vic", "halt", "chat", "--reason", REASON, "--totp", world.code("vic"), *MFA, "--json")
    assert halted.exit_code == 0, halted.stderr
    assert [r["outcome"] for r in halted.json()["results"]] == ["halted"]
    assert chat_api_policies(world) == ["breakglass-halt-chat"]
    halts = [e for e in world.audit_events() if e.event_type == "halt" and e.actor == "vic"]
    assert [(e.target, e.outcome) for e in halts] == [("chat", "succeeded")]

    refused = world.cli("vic", "resume", "chat", "--reason", "fixed", *MFA)
    assert refused.exit_code == 1 and "may resume" in refused.stderr
    assert chat_api_policies(world) == ["breakglass-halt-chat"]

    made = request(world, "vic", "operator", "--no-wait")
    world.wait_for(made["request_id"], ["pending"])
    assert world.cli("bob", "approve", made["request_id"], "--totp", world.code("bob")).exit_code == 0
    world.wait_for(made["request_id"], ["granted"])
    resumed = world.cli("vic", "resume", "chat", "--reason", "guardrail fixed", *MFA, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert chat_api_policies(world) == []
    resumes = [e for e in world.audit_events() if e.event_type == "resume"]
    assert [(e.actor, e.request_id) for e in resumes] == [("vic", made["request_id"])]


# -- attacks on the workflow ------------------------------------------------------------------------


def test_an_execution_started_around_the_access_api_is_rejected(world: World) -> None:
    sfn = world.emulator.client("stepfunctions")
    forged = sfn.start_execution(
        stateMachineArn=world.deployment.output("state_machine_arn"),
        name="rforged0000000000000000",
        input=json.dumps({"tier": "admin", "requester": "mallory", "duration": "4h"}),
    )["executionArn"]
    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=forged))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (described["status"], described["error"]) == ("FAILED", "RequestRejected")
    assert not any(s.startswith("Grant") for s in trust_sids(world, "admin"))


def invoke_access(world: World, payload: dict[str, Any]) -> dict[str, Any]:
    function = world.deployment.function_arn("breakglass-access")
    answer = world.emulator.client("lambda").invoke(
        FunctionName=function, Payload=json.dumps(payload).encode()
    )
    return dict(json.loads(answer["Payload"].read()))


def test_a_forged_end_of_window_revoke_is_refused_and_the_stopped_execution_is_repaired(world: World) -> None:
    made = request(world, "sam", "halt", "--duration", "30m")
    rid = made["request_id"]
    assert made["status"] == "granted"
    forged = invoke_access(
        world, {"action": "revoke", "request_id": rid, "execution_arn": execution_of(world, rid), "state": {}}
    )
    assert forged.get("errorType") == "RevokeNotFromWorkflow"
    assert any(s == f"Grant{rid}" for s in trust_sids(world, "halt"))

    # An operator (or a session that got past the boundary) stops the run after the grant.
    world.emulator.client("stepfunctions").stop_execution(executionArn=execution_of(world, rid))
    # The schedule runs the reconciler every few minutes; it leaves requests younger than that.
    world.emulator.fast_forward(utc_now() + timedelta(minutes=3))
    repaired = invoke_access(world, {"action": "reconcile"})
    done = [r for r in repaired["repaired"] if r["request_id"] == rid]
    assert done == [
        {"request_id": rid, "execution_status": "ABORTED", "revoked": "revoke", "review_opened": True}
    ]
    assert not any(s == f"Grant{rid}" for s in trust_sids(world, "halt"))
    assert ("review", "system:reconciler", "opened") in kinds(world, rid)


# -- what the auditor sees --------------------------------------------------------------------------


def test_the_responder_s_session_calls_are_in_the_trail_and_the_named_queries_return_them(
    world: World, tmp_path: Path
) -> None:
    made = request(world, "uma", "halt", "--duration", "30m")
    rid = made["request_id"]
    credentials = world.cli("uma", "assume", rid, "--format", "json", *MFA).json()
    session = {
        "AccessKeyId": credentials["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": credentials["AWS_SECRET_ACCESS_KEY"],
        "SessionToken": credentials["AWS_SESSION_TOKEN"],
    }
    world.emulator.client_as("sagemaker", session).describe_endpoint(EndpointName="chat-prod")
    world.emulator.cloudtrail.flush()
    copy = world.emulator.copy_bucket(world.deployment.output("audit_bucket"), tmp_path / "bucket")
    params = {"source_identity": "uma", "start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
    rows = run_named_query("session_actions", copy, params).records()
    described = [r for r in rows if r["event_name"] == "DescribeEndpoint"]
    assert described and described[0]["principal_arn"].endswith(":assumed-role/breakglass-emergency-halt/uma")
    sessions = run_named_query("emergency_sessions", copy, {}).records()
    (assumed,) = [r for r in sessions if r["source_identity"] == "uma"]
    assert assumed["role_session_name"] == "uma" and assumed["mfa"] is True


# -- refusals a person meets at the command line ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["--tier", "root"], 2, "tier: unknown tier 'root'"),
        (["--tier", "admin"], 2, "ticket: tier 'admin' requires an incident ticket"),
        (["--tier", "halt", "--duration", "9h"], 2, "duration: tier 'halt' allows at most 1h"),
        (["--tier", "halt", "--duration", "²"], 2, "duration:"),
        (["--tier", "halt", "--totp", "12345"], 2, "the TOTP code must be 6 digits"),
        (["--tier", "halt", "--totp", "000000"], 1, "the code is wrong"),
    ],
)
def test_a_bad_request_is_refused_with_the_field_and_a_clear_exit_code(
    world: World, args: list[str], exit_code: int, message: str
) -> None:
    argv = ["request", "--reason", REASON, "--poll-seconds", "0.05", *args]
    if "--totp" not in args:
        argv += ["--totp", world.code("tom")]
    run = world.cli("tom", *argv)
    assert (run.exit_code, run.stdout) == (exit_code, ""), run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr


def test_another_person_s_request_cannot_be_revoked_or_assumed(world: World) -> None:
    made = request(world, "rita", "halt", "--duration", "30m")
    rid = made["request_id"]
    revoke = world.cli("tom", "revoke", rid, "--totp", world.code("tom"))
    assert revoke.exit_code == 1 and "may not revoke" in revoke.stderr
    assume = world.cli("tom", "assume", rid, *MFA)
    assert assume.exit_code == 1 and "Traceback" not in assume.stderr
    assert world.cli("rita", "revoke", rid, "--totp", world.code("rita")).exit_code == 0


def test_a_forged_and_a_reused_link_decide_nothing(world: World) -> None:
    made = request(world, "sam", "operator", "--no-wait")
    rid = made["request_id"]
    world.wait_for(rid, ["pending"])
    (link,) = _await_links(world, "ann", rid)
    forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    assert world.decide("ann", forged, "approve")[0] == 403
    assert world.decide("ann", link, "deny")[0] == 200
    assert world.decide("ann", link, "approve")[0] == 409
    assert world.cli("sam", "status", rid, "--json").json()["status"] == "denied"


def test_a_grant_that_fails_halfway_leaves_no_access_and_fails_loudly() -> None:
    """The access function's role may not rewrite a trust (one action taken away): the grant fails
    after its guard was written, the workflow's catch revokes, and the run ends as a failure."""

    def without_trust_writes(type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if type_token == "aws:iam/rolePolicy:RolePolicy" and name == "breakglass-access-policy":
            document = json.loads(inputs["policy"])
            for statement in document["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                statement["Action"] = [a for a in actions if a != "iam:UpdateAssumeRolePolicy"]
            inputs = {**inputs, "policy": json.dumps(document)}
        return inputs

    people = {"rita": ("responder",), "ann": ("approver",), "bob": ("approver",), "sec": ("security",)}
    with open_world(name="fragile", people=people, transform=without_trust_writes) as fragile:
        made = request(fragile, "rita", "halt", "--duration", "30m")
        rid = (
            made.get("request_id")
            or fragile.cli("rita", "list", "--json").json()["requests"][0]["request_id"]
        )
        done = wait_execution(fragile, rid)
        assert (done["status"], done.get("error")) == ("FAILED", "FailedAfterGrant")
        assert not any(s.startswith("Grant") for s in trust_sids(fragile, "halt"))
        events = kinds(fragile, rid)
        assert ("error", "system", "failed") in events
        assert ("review", "system", "opened") in events
        assert fragile.cli("rita", "status", rid, "--json").json()["status"] == "revoked"
