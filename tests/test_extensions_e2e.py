"""Extensions and scheduled starts on examples/quickstart in the emulator, IAM enforced.

Every step goes through the ``breakglass`` command, the emails and the approval API; which session
works when is checked twice: by calls to the emulator (it evaluates the trust's and the guards'
Date conditions at its clock) and by evaluating the role's documents as IAM does (iam_eval).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from iam_eval import ADMIN_POLICY, assume_context, can_assume, session_allowed, session_context

from breakglass.contracts import parse_iso, utc_now
from breakglass.local.world import World, open_world
from breakglass.policies.emergency_role import GUARD_POLICY_NAME
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG

PEOPLE = {
    "rita": ("responder",),
    "sam": ("responder",),
    "tom": ("responder",),
    "ann": ("responder", "approver"),
    "bob": ("approver",),
    "cat": ("approver",),
    "sec": ("security",),
}
REASON = "the chat model leaks customer data in its answers"
MORE = "the guardrail rollback needs another half hour"
MFA = ["--mfa-serial", "arn:aws:iam::000000000000:mfa/responder", "--mfa-code", "123456"]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="extend", people=PEOPLE) as opened:
        opened.seed_ai_system()
        yield opened


def extend(world: World, user: str, request_id: str, *extra: str) -> Any:
    run = world.cli(
        user, "extend", request_id, "--by", "30m", "--reason", MORE, "--totp", world.code(user), "--json",
        "--poll-seconds", "0.05", *extra,
    )  # fmt: skip
    assert run.exit_code in (0, 1), run.stderr
    return run


def assume(world: World, user: str, request_id: str) -> Any:
    return world.cli(user, "assume", request_id, "--format", "json", *MFA)


def describe(world: World, credentials: dict[str, str]) -> str:
    """``ok`` or the error code of a SageMaker call made with an emergency session."""
    sagemaker = world.emulator.client_as(
        "sagemaker",
        {
            "AccessKeyId": credentials["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": credentials["AWS_SECRET_ACCESS_KEY"],
            "SessionToken": credentials["AWS_SESSION_TOKEN"],
        },
    )
    try:
        sagemaker.describe_endpoint(EndpointName="chat-prod")
    except Exception as exc:
        return "AccessDenied" if "AccessDenied" in str(exc) else str(exc)
    return "ok"


def sts_assume(world: World, user: str, tier: str, request_id: str) -> str:
    """``ok`` or the error of an AssumeRole the person makes themselves, past the command's checks."""
    person = world.people[user]
    sts = world.emulator.client_as(
        "sts", {"AccessKeyId": person.access_key_id, "SecretAccessKey": person.secret_access_key}
    )
    try:
        sts.assume_role(
            RoleArn=role(world, tier)["Arn"],
            RoleSessionName=user,
            SourceIdentity=user,
            Tags=[{"Key": REQUEST_ID_SESSION_TAG, "Value": request_id}],
            DurationSeconds=900,
            SerialNumber=MFA[1],
            TokenCode=MFA[3],
        )
    except Exception as exc:
        return "AccessDenied" if "AccessDenied" in str(exc) else str(exc)
    return "ok"


def role(world: World, tier: str) -> dict[str, Any]:
    return dict(world.emulator.client("iam").get_role(RoleName=f"breakglass-emergency-{tier}")["Role"])


def documents(world: World, tier: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The role's trust policy and its guard documents (inline guard policy and guard pages)."""
    iam = world.emulator.client("iam")
    name = f"breakglass-emergency-{tier}"

    def loaded(value: Any) -> dict[str, Any]:
        return json.loads(value) if isinstance(value, str) else dict(value)

    guards = []
    if GUARD_POLICY_NAME in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        guards.append(
            loaded(iam.get_role_policy(RoleName=name, PolicyName=GUARD_POLICY_NAME)["PolicyDocument"])
        )
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        if "-guards-" in attached["PolicyName"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
            guards.append(loaded(document["PolicyVersion"]["Document"]))
    return loaded(role(world, tier)["AssumeRolePolicyDocument"]), guards


def evaluated_session(
    world: World, tier: str, user: str, request_id: str, *, issued_at: datetime, at: datetime
) -> bool:
    _, guards = documents(world, tier)
    context = session_context(now=at, source_identity=user, request_id=request_id, issued_at=issued_at)
    return session_allowed(
        role(world, tier)["Arn"],
        "sagemaker:DescribeEndpoint",
        f"arn:aws:sagemaker:us-east-1:{world.emulator.account_id}:endpoint/chat-prod",
        policies=[ADMIN_POLICY, *guards],
        boundary=None,
        context=context,
    )


def evaluated_assume(world: World, tier: str, user: str, request_id: str, *, at: datetime) -> bool:
    trust, _ = documents(world, tier)
    context = assume_context(
        now=at, source_identity=user, request_id=request_id, mfa=True, mfa_age_seconds=60
    )
    return can_assume(trust, role(world, tier)["Arn"], world.people[user].arn, context)


def kinds(world: World, request_id: str) -> list[tuple[str, str, str]]:
    return [(e.event_type, e.actor, e.outcome) for e in world.audit_events(request_id)]


# -- an auto tier: approved at once, two windows, each one's sessions die at its own expiry ----------


def test_an_auto_extension_opens_where_the_first_window_ends_and_each_window_dies_at_its_own_expiry(
    world: World,
) -> None:
    first = world.request("rita", "halt", REASON, "--duration", "30m").json()
    assert first["status"] == "granted"
    old = assume(world, "rita", first["request_id"])
    assert old.exit_code == 0, old.stderr
    old_session = old.json()

    run = extend(world, "rita", first["request_id"])
    assert run.exit_code == 0, run.stderr
    second = run.json()
    assert second["status"] == "granted" and second["extends"] == first["request_id"]
    first_end, second_end = parse_iso(first["expires_at"]), parse_iso(second["expires_at"])
    assert second["starts_at"] == first["expires_at"] and second_end - first_end == timedelta(minutes=30)
    assert (
        world.cli("sec", "status", first["request_id"], "--json").json()["extended_by"]
        == second["request_id"]
    )

    # Before the second window opens: the command says when, and IAM refuses it anyway.
    early = assume(world, "rita", second["request_id"])
    assert early.exit_code == 1 and f"opens at {second['starts_at']}" in early.stderr
    assert sts_assume(world, "rita", "halt", second["request_id"]) == "AccessDenied"
    assert describe(world, old_session) == "ok"

    # The role's documents, as IAM evaluates them.
    issued = utc_now().replace(microsecond=0)
    second_issued = first_end + timedelta(seconds=1)
    assert evaluated_session(
        world, "halt", "rita", first["request_id"], issued_at=issued, at=first_end - timedelta(seconds=1)
    )
    assert not evaluated_session(
        world, "halt", "rita", first["request_id"], issued_at=issued, at=first_end + timedelta(seconds=1)
    )
    assert not evaluated_assume(
        world, "halt", "rita", second["request_id"], at=first_end - timedelta(minutes=1)
    )
    assert evaluated_assume(world, "halt", "rita", second["request_id"], at=second_issued)
    assert evaluated_session(
        world,
        "halt",
        "rita",
        second["request_id"],
        issued_at=second_issued,
        at=second_end - timedelta(seconds=1),
    )
    assert not evaluated_session(
        world,
        "halt",
        "rita",
        second["request_id"],
        issued_at=second_issued,
        at=second_end + timedelta(seconds=1),
    )

    # The first expiry: the old sessions die, the second window's assume works.
    assert world.end_window(first["request_id"])["status"] == "expired"
    assert describe(world, old_session) == "AccessDenied"
    new = assume(world, "rita", second["request_id"])
    assert new.exit_code == 0, new.stderr
    new_session = new.json()
    assert describe(world, new_session) == "ok"
    assert world.cli("sec", "status", second["request_id"], "--json").json()["status"] == "granted"

    # The second expiry ends the second window's sessions too.
    assert world.end_window(second["request_id"])["status"] == "expired"
    assert describe(world, new_session) == "AccessDenied"

    events = kinds(world, second["request_id"])
    assert events[:3] == [
        ("extension", "rita", "pending"),
        ("approval", "system:auto", "succeeded"),
        ("grant", "system", "succeeded"),
    ]
    (grant,) = [e for e in world.audit_events(second["request_id"]) if e.event_type == "grant"]
    assert grant.details["extends"] == first["request_id"]
    assert (grant.window_start, grant.expires_at) == (second["starts_at"], second["expires_at"])
    assert ("expiry", "system", "succeeded") in events


# -- a quorum tier: approved again by others, denied without touching the first window -----------------


def test_a_quorum_extension_needs_the_quorum_again_the_requester_never_counts_and_a_denial_is_final(
    world: World,
) -> None:
    first = world.request("ann", "operator", REASON, "--duration", "30m", "--no-wait").json()
    rid = first["request_id"]
    world.wait_for(rid, ["pending"])
    assert world.decide("bob", world.approval_links("bob", rid, wait=20)[0], "approve")[0] == 200
    first = world.wait_for(rid, ["granted"])

    denied = extend(world, "ann", rid, "--no-wait").json()
    ext = denied["request_id"]
    assert denied["status"] == "pending" and denied["quorum"] == 1 and "ann" not in denied["approvers"]
    assert world.approval_links("bob", ext, wait=20) and world.approval_links("ann", ext) == []
    mail = world.emails_about("bob", ext)[0]
    assert f"extension of request {rid}" in mail and first["expires_at"] in mail
    own = world.cli("ann", "approve", ext, "--totp", world.code("ann"))
    assert own.exit_code == 1  # never their own
    assert world.cli("bob", "deny", ext, "--totp", world.code("bob")).exit_code == 0
    assert world.wait_for(ext, ["denied"])["status"] == "denied"
    assert world.cli("sec", "status", rid, "--json").json()["status"] == "granted"
    assert ("denial", "bob", "succeeded") in kinds(world, ext)

    approved = extend(world, "ann", rid, "--no-wait").json()
    ext = approved["request_id"]
    assert world.decide("cat", world.approval_links("cat", ext, wait=20)[0], "approve")[0] == 200
    granted = world.wait_for(ext, ["granted"])
    assert granted["starts_at"] == first["expires_at"]
    assert ("approval", "cat", "succeeded") in kinds(world, ext)
    assert world.end_window(rid)["status"] == "expired"
    assert world.end_window(ext)["status"] == "expired"


# -- revoking the original ends its extension ---------------------------------------------------------


def test_revoking_the_original_grant_revokes_its_granted_extension(world: World) -> None:
    first = world.request("sam", "halt", REASON, "--duration", "30m").json()
    second = extend(world, "sam", first["request_id"]).json()
    assert second["status"] == "granted"
    revoked = world.cli("sam", "revoke", first["request_id"], "--totp", world.code("sam"))
    assert revoked.exit_code == 0, revoked.stderr
    # The person is told what ended with it, in the command's words.
    assert f"extensions ended with it: {second['request_id']}" in revoked.stdout
    assert world.cli("sec", "status", second["request_id"], "--json").json()["status"] == "revoked"
    world.emulator.fast_forward(parse_iso(second["starts_at"]) + timedelta(seconds=1))
    assert sts_assume(world, "sam", "halt", second["request_id"]) == "AccessDenied"
    assert ("revoke", "sam", "succeeded") in kinds(world, second["request_id"])


# -- a scheduled start -----------------------------------------------------------------------------------


def test_a_scheduled_request_is_approved_now_refused_before_its_start_and_allowed_after(world: World) -> None:
    made = world.request("tom", "halt", REASON, "--duration", "30m", "--start-at", "+1h").json()
    assert made["status"] == "granted"
    opens = parse_iso(made["starts_at"])
    assert opens - utc_now() > timedelta(minutes=59) and parse_iso(made["expires_at"]) - opens == timedelta(
        minutes=30
    )
    notice = world.emails_about("tom", made["request_id"], wait=10)
    assert any(f"from {made['starts_at']}" in m for m in notice)

    early = assume(world, "tom", made["request_id"])
    assert early.exit_code == 1 and f"opens at {made['starts_at']}" in early.stderr
    assert sts_assume(world, "tom", "halt", made["request_id"]) == "AccessDenied"
    assert not evaluated_assume(world, "halt", "tom", made["request_id"], at=opens - timedelta(seconds=1))
    assert evaluated_assume(world, "halt", "tom", made["request_id"], at=opens + timedelta(seconds=1))

    world.emulator.fast_forward(opens + timedelta(seconds=1))
    assert world.cli("sec", "status", made["request_id"], "--json").json()["status"] == "granted"
    later = assume(world, "tom", made["request_id"])
    assert later.exit_code == 0, later.stderr
    assert describe(world, later.json()) == "ok"
    assert world.end_window(made["request_id"])["status"] == "expired"


def test_revoking_the_original_withdraws_a_pending_extension_and_its_workflow_ends_denied(
    world: World,
) -> None:
    first = world.request("tom", "operator", REASON, "--duration", "30m", "--no-wait").json()
    rid = first["request_id"]
    world.wait_for(rid, ["pending"])
    assert world.decide("bob", world.approval_links("bob", rid, wait=20)[0], "approve")[0] == 200
    world.wait_for(rid, ["granted"])
    ext = extend(world, "tom", rid, "--no-wait").json()["request_id"]
    assert world.approval_links("cat", ext, wait=20)
    revoked = world.cli("tom", "revoke", rid, "--totp", world.code("tom"), "--json")
    assert revoked.exit_code == 0, revoked.stderr
    assert revoked.json()["extensions_withdrawn"] == [ext]
    assert world.wait_for(ext, ["denied"])["status"] == "denied"
    machine = world.deployment.output("state_machine_arn")
    sfn = world.emulator.client("stepfunctions")
    arn = machine.replace(":stateMachine:", ":execution:") + f":{ext}"
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    assert ("denial", "tom", "succeeded") in kinds(world, ext)  # who withdrew it
    assert ("denial", "system:withdrawn", "succeeded") in kinds(world, ext)  # the workflow closing it
    assert any("withdrawn" in m for m in world.emails_about("tom", ext, wait=10))
    late = world.decide("cat", world.approval_links("cat", ext)[0], "approve")
    assert late[0] != 200  # nothing left to approve
