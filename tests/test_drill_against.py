"""`breakglass drill --against NAME`: the rehearsal on a deployment, here the quickstart in the emulator.

The person runs it with their own credentials and TOTP, as they would against production; every
check is made against what AWS (the emulator, IAM enforced) holds, not against what the command
believes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from breakglass.local.world import World, open_world

PEOPLE = {
    "rita": ("responder", "security"),
    "ann": ("approver",),
    "bob": ("approver",),
    "ron": ("responder",),
}
STEPS = ["whoami", "request", "assume", "call", "revoke", "audit", "cloudtrail", "sealed"]
SEALED_USER = "breakglass-sealed"


def run_sealed_check(world: World) -> None:
    """What EventBridge's schedule does hourly (the emulator runs no schedules)."""
    answer = world.emulator.client("lambda").invoke(FunctionName="breakglass-sealed-check", Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="rehearsal", people=PEOPLE) as opened:
        run_sealed_check(opened)
        yield opened


def rehearse(world: World, person: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    mfa = ["--mfa-serial", f"arn:aws:iam::{world.emulator.account_id}:mfa/{person}", "--mfa-code", "123456"]
    codes = f"{world.code(person)}\n{world.code(person)}\n"
    with world.cloudtrail_delivery():
        run = world.cli(
            person,
            "drill",
            "--against",
            world.name,
            "--cloudtrail-wait",
            "30",
            "--poll-seconds",
            "0.2",
            *mfa,
            "--json",
            *extra,
            input=codes,
        )
    document = json.loads(run.stdout) if run.stdout.strip() else {}
    return run.exit_code, document, run.stderr


def trust_sids(world: World) -> list[str]:
    role = world.emulator.client("iam").get_role(RoleName="breakglass-emergency-drill")["Role"]
    document = role["AssumeRolePolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    return [s.get("Sid", "") for s in document["Statement"]]


def test_the_rehearsal_requests_assumes_is_refused_outside_revokes_and_finds_the_records(
    world: World,
) -> None:
    code, document, stderr = rehearse(world, "rita")
    assert code == 0, stderr
    assert [s["name"] for s in document["steps"]] == STEPS and all(s["ok"] for s in document["steps"])
    details = {s["name"]: s["detail"] for s in document["steps"]}
    rid = document["request_id"]
    assert details["call"].endswith("sagemaker:ListEndpoints refused")
    assert ":assumed-role/breakglass-emergency-drill/rita" in details["call"]
    assert "AssumeRole by rita" in details["cloudtrail"]
    assert details["sealed"].startswith("global (us-east-1): 4 rules; home (us-east-1): 2 rules")
    assert "no finding" in details["sealed"]
    # What AWS holds afterwards: revoked, the trust forgot the grant, the events are locked.
    assert world.cli("rita", "status", rid, "--json").json()["status"] == "revoked"
    assert not [sid for sid in trust_sids(world) if rid in sid]
    kinds = [(e.event_type, e.actor) for e in world.audit_events(rid)]
    assert ("approval", "system:auto") in kinds and ("revoke", "rita") in kinds


def test_the_drill_tier_can_do_nothing_but_say_who_it_is(world: World) -> None:
    policies = world.emulator.client("iam").list_role_policies(RoleName="breakglass-emergency-drill")
    documents = [
        world.emulator.client("iam").get_role_policy(RoleName="breakglass-emergency-drill", PolicyName=name)[
            "PolicyDocument"
        ]
        for name in policies["PolicyNames"]
    ]
    allowed = {
        (s["Action"], resource)
        for d in documents
        for s in (json.loads(d) if isinstance(d, str) else d)["Statement"]
        if s["Effect"] == "Allow"
        for resource in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    # Who am I, to AWS and to the access API (every emergency session may ask): nothing else.
    assert {action for action, _ in allowed} == {"sts:GetCallerIdentity", "execute-api:Invoke"}
    assert all(r.endswith("/GET/whoami") for a, r in allowed if a == "execute-api:Invoke")
    attached = world.emulator.client("iam").list_attached_role_policies(RoleName="breakglass-emergency-drill")
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == []


def test_a_responder_without_the_security_role_fails_at_the_first_check_they_cannot_make(
    world: World,
) -> None:
    code, document, _ = rehearse(world, "ron")
    assert code == 1
    failed = next(s for s in document["steps"] if not s["ok"])
    assert failed["name"] == "revoke" and "AccessDenied" in failed["observed"]
    # The grant itself ended: the revoke went through before the trust could not be read.
    assert world.cli("ron", "status", document["request_id"], "--json").json()["status"] == "revoked"


def test_an_unknown_deployment_is_a_usage_error_listing_those_there(world: World) -> None:
    run = world.cli("rita", "drill", "--against", "prdo")
    assert run.exit_code == 2 and "no deployment 'prdo'" in run.stderr and world.name in run.stderr


def test_a_wrong_totp_code_fails_the_request_step_and_nothing_is_granted(world: World) -> None:
    run = world.cli("rita", "drill", "--against", world.name, "--json", input="000000\n")
    assert run.exit_code == 1
    document = json.loads(run.stdout)
    failed = next(s for s in document["steps"] if not s["ok"])
    assert failed["name"] == "request" and document["request_id"] is None


def test_the_sealed_step_fails_and_reports_when_the_check_found_an_access_key(world: World) -> None:
    iam = world.emulator.client("iam")
    key = iam.create_access_key(UserName=SEALED_USER)["AccessKey"]["AccessKeyId"]
    try:
        run_sealed_check(world)
        code, document, _ = rehearse(world, "rita")
    finally:
        iam.delete_access_key(UserName=SEALED_USER, AccessKeyId=key)
        run_sealed_check(world)
    assert code == 1
    failed = next(s for s in document["steps"] if not s["ok"])
    assert failed["name"] == "sealed" and "1 findings" in failed["observed"]


def test_the_sealed_step_fails_when_a_rule_was_disabled(world: World) -> None:
    events = world.emulator.client("events")
    events.disable_rule(Name="breakglass-sealed-assume-home")
    try:
        code, document, _ = rehearse(world, "rita")
    finally:
        events.enable_rule(Name="breakglass-sealed-assume-home")
    failed = next(s for s in document["steps"] if not s["ok"])
    assert code == 1 and failed["name"] == "sealed" and "DISABLED" in failed["observed"]


def test_a_sealed_role_whose_settings_are_gone_fails_the_step(world: World) -> None:
    # Next to last: the sealed settings are deleted, the sealed role is still there.
    world.emulator.client("ssm").delete_parameter(Name=f"/breakglass/{world.name}/sealed_access")
    code, document, stderr = rehearse(world, "rita")
    sealed = document["steps"][-1]
    assert code == 1 and sealed["name"] == "sealed" and not sealed["ok"], (code, sealed, stderr)


def test_a_deployment_without_sealed_access_skips_the_step_saying_so(world: World) -> None:
    # Last: the deployment has no sealed role and publishes no sealed access.
    iam = world.emulator.client("iam")
    for attached in iam.list_attached_role_policies(RoleName="breakglass-sealed")["AttachedPolicies"]:
        iam.detach_role_policy(RoleName="breakglass-sealed", PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName="breakglass-sealed")
    code, document, stderr = rehearse(world, "rita")
    assert code == 0, stderr
    sealed = document["steps"][-1]
    assert sealed["ok"] and sealed["detail"] == f"skipped: deployment {world.name} has no sealed access"
