"""Faults at the worst moments, on examples/quickstart deployed into the emulator, IAM enforced.

Faults are armed on the emulator (:mod:`breakglass.local.faults`): AWS answers a chosen call of a
chosen caller with an error (the SDK, the handlers and Step Functions see what AWS would send), or
the Lambda invocation making a chosen call times out just before it. Persistent failures use
timeouts: an AWS error the SDK retries costs real back-off seconds per call (botocore's legacy
retries sleep up to 8 s), a timeout fails the Task at once and Step Functions' Retry and Catch
run on the emulator's shortened back-off.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from iam_eval import assume_context, can_assume

from breakglass.contracts import parse_iso, utc_now
from breakglass.local.faults import Fault, Timeout, injected
from breakglass.local.world import World, open_world

PEOPLE = {
    "rita": ("responder",),
    "sam": ("responder",),
    "tom": ("responder",),
    "uma": ("responder",),
    "vic": ("responder",),
    "ann": ("approver",),
    "bob": ("approver",),
    "sec": ("security",),
}
REASON = "the chat model leaks customer data in its answers"
MFA = ["--mfa-serial", "arn:aws:iam::000000000000:mfa/responder", "--mfa-code", "123456"]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="faults", people=PEOPLE) as opened:
        opened.seed_ai_system()
        yield opened


# -- what the tests read -----------------------------------------------------------------------------


def function_name(world: World, logical: str) -> str:
    return world.deployment.function_arn(logical).rsplit(":", 1)[-1]


def role_of(world: World, logical: str) -> str:
    configuration = world.emulator.client("lambda").get_function(FunctionName=function_name(world, logical))
    return str(configuration["Configuration"]["Role"]).rsplit("/", 1)[-1]


def execution_of(world: World, request_id: str) -> str:
    machine = str(world.deployment.output("state_machine_arn"))
    return machine.replace(":stateMachine:", ":execution:") + f":{request_id}"


def wait_execution(world: World, request_id: str, *, timeout: float = 30.0) -> dict[str, Any]:
    sfn = world.emulator.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described = dict(sfn.describe_execution(executionArn=execution_of(world, request_id)))
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def request(world: World, user: str, tier: str, *extra: str) -> str:
    run = world.request(user, tier, REASON, *extra)
    assert run.exit_code in (0, 1), run.stderr
    if run.stdout.strip():
        return str(run.json()["request_id"])
    listed = world.cli(user, "list", "--json").json()["requests"]
    return str(listed[0]["request_id"])


def trust_of(world: World, tier: str) -> dict[str, Any]:
    role = world.emulator.client("iam").get_role(RoleName=f"breakglass-emergency-{tier}")["Role"]
    document = role["AssumeRolePolicyDocument"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def sids(world: World, tier: str) -> list[str]:
    return [str(s.get("Sid", "")) for s in trust_of(world, tier)["Statement"]]


def role_arn(world: World, tier: str) -> str:
    return str(world.emulator.client("iam").get_role(RoleName=f"breakglass-emergency-{tier}")["Role"]["Arn"])


def may_assume(world: World, person: str, tier: str, request_id: str, at: Any) -> bool:
    """Would STS let ``person`` assume the tier's role at ``at``, by the role's trust as it is now?"""
    context = assume_context(
        now=at, source_identity=person, request_id=request_id, mfa=True, mfa_age_seconds=60
    )
    return can_assume(trust_of(world, tier), role_arn(world, tier), world.people[person].arn, context)


def events_of(world: World, request_id: str) -> list[tuple[str, str, str]]:
    return [(e.event_type, e.actor, e.outcome) for e in world.audit_events(request_id)]


def assert_nothing_recorded_twice(world: World) -> None:
    events = world.audit_events()
    assert len({e.event_id for e in events}) == len(events)
    once = Counter((e.request_id, e.event_type, e.actor, e.outcome, e.target) for e in events if e.request_id)
    repeated = {key: n for key, n in once.items() if n > 1 and key[1] not in ("approval", "error")}
    assert repeated == {}


def trail_errors(world: World) -> list[tuple[str, str, str]]:
    """(eventName, errorCode, caller) of every failed call the CloudTrail recorder holds."""
    found = []
    for record in world.emulator.cloudtrail.records():
        if record.get("errorCode"):
            identity = record["userIdentity"]
            caller = identity.get("userName") or identity.get("sessionContext", {}).get(
                "sessionIssuer", {}
            ).get("userName", "")
            found.append((str(record["eventName"]), str(record["errorCode"]), str(caller)))
    return found


# -- retries succeed -----------------------------------------------------------------------------------


def test_throttled_iam_s3_and_sts_calls_during_a_grant_are_retried_and_recorded_with_their_error_code(
    world: World,
) -> None:
    access = role_of(world, "breakglass-access")
    throttles = (
        Fault("iam", "PutRolePolicy", caller=access, times=1),
        Fault("iam", "UpdateAssumeRolePolicy", caller=access, times=1),
        Fault("s3", "PutObject", caller=access, contains="-grant-", error="SlowDown", status=503, times=1),
        Fault("sts", "AssumeRole", caller="rita", times=1),
    )
    with injected(world.emulator, *throttles) as armed:
        rid = request(world, "rita", "halt", "--duration", "30m")
        assert world.wait_for(rid, ["granted"])["status"] == "granted"
        assumed = world.cli("rita", "assume", rid, "--format", "json", *MFA)
        assert assumed.exit_code == 0, assumed.stderr
    assert [(h.service, h.operation) for h in armed.hits()] == [
        ("iam", "PutRolePolicy"),
        ("iam", "UpdateAssumeRolePolicy"),
        ("s3", "PutObject"),
        ("sts", "AssumeRole"),
    ]
    errors = trail_errors(world)
    for expected in [
        ("PutRolePolicy", "Throttling", access),
        ("UpdateAssumeRolePolicy", "Throttling", access),
        ("PutObject", "SlowDown", access),
        ("AssumeRole", "Throttling", "rita"),
    ]:
        assert errors.count(expected) == 1, (expected, errors)
    assert world.cli("rita", "revoke", rid, "--totp", world.code("rita"), "--reason", "done").exit_code == 0
    assert [e for e in events_of(world, rid) if e[0] in ("grant", "revoke")] == [
        ("grant", "system", "succeeded"),
        ("revoke", "rita", "succeeded"),
    ]
    assert_nothing_recorded_twice(world)


# -- a grant that fails halfway -----------------------------------------------------------------------


def test_a_grant_that_times_out_halfway_leaves_no_access_and_the_run_fails_loudly(world: World) -> None:
    access = function_name(world, "breakglass-access")
    # Every Grant attempt dies after writing its guard, before the trust that lets sam in.
    halfway = Timeout("iam", "UpdateAssumeRolePolicy", caller=access, contains="user/sam", times=None)
    with injected(world.emulator, halfway) as armed:
        rid = request(world, "sam", "halt", "--duration", "30m", "--no-wait")
        done = wait_execution(world, rid)
    assert (done["status"], done.get("error")) == ("FAILED", "FailedAfterGrant")
    assert len(armed.hits()) == 4  # the first attempt and Grant's three retries
    assert not any(rid in sid for sid in sids(world, "halt"))
    assert not may_assume(world, "sam", "halt", rid, utc_now() + timedelta(minutes=1))
    # The guard the killed attempts wrote may stay until pruned: it only ever denies.
    iam = world.emulator.client("iam")
    for name in iam.list_role_policies(RoleName="breakglass-emergency-halt")["PolicyNames"]:
        document = iam.get_role_policy(RoleName="breakglass-emergency-halt", PolicyName=name)[
            "PolicyDocument"
        ]
        document = json.loads(document) if isinstance(document, str) else document
        naming = [s for s in document["Statement"] if rid in json.dumps(s)]
        assert all(s["Effect"] == "Deny" for s in naming), naming
    events = events_of(world, rid)
    assert not any(kind == "grant" and outcome == "succeeded" for kind, _, outcome in events)
    assert ("error", "system", "failed") in events and ("review", "system", "opened") in events
    assert world.cli("sam", "status", rid, "--json").json()["status"] == "revoked"
    assert_nothing_recorded_twice(world)


# -- a revoke that fails ----------------------------------------------------------------------------------


def test_a_revoke_that_keeps_failing_still_ends_access_at_expiry_and_the_reconciler_finishes_it(
    world: World,
) -> None:
    rid = request(world, "tom", "halt", "--duration", "30m")
    granted = world.wait_for(rid, ["granted"])
    expires = parse_iso(str(granted["expires_at"]))
    access = function_name(world, "breakglass-access")
    with injected(world.emulator, Timeout("iam", "*", caller=access, times=None)) as armed:
        world.emulator.fast_forward(expires + timedelta(seconds=1))
        done = wait_execution(world, rid)
        assert done["status"] == "FAILED", done
    # Revoke and its six retries died (and the error step's own attempt to revoke after them).
    assert len(armed.hits()) >= 7
    # Nothing removed the trust statements, yet the time conditions in them end access on time.
    assert any(rid in sid for sid in sids(world, "halt"))
    assert may_assume(world, "tom", "halt", rid, expires - timedelta(seconds=1))
    assert not may_assume(world, "tom", "halt", rid, expires + timedelta(seconds=1))
    assert ("error", "system", "failed") in events_of(world, rid)

    world.emulator.fast_forward(utc_now() + timedelta(minutes=3))
    answer = world.emulator.client("lambda").invoke(
        FunctionName=world.deployment.function_arn("breakglass-access"),
        Payload=json.dumps({"action": "reconcile"}).encode(),
    )
    repaired = json.loads(answer["Payload"].read())
    assert [r["request_id"] for r in repaired["repaired"]].count(rid) == 1, repaired
    assert not any(rid in sid for sid in sids(world, "halt"))
    assert_nothing_recorded_twice(world)
