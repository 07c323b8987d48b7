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
    "wes": ("responder",),
    "xan": ("responder",),
    "yul": ("responder",),
    "zed": ("responder",),
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
        Fault("s3", "PutObject", caller=access, contains="/grant-", error="SlowDown", status=503, times=1),
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


def test_an_alert_that_cannot_be_published_leaves_the_grant_and_its_record_and_is_counted(
    world: World,
) -> None:
    access = role_of(world, "breakglass-access")
    # Every publish of the access function fails: the SDK gives up on the alert, never on the record.
    lost = Fault("sns", "Publish", caller=access, error="InternalError", status=500, times=None)
    with injected(world.emulator, lost) as armed:
        rid = request(world, "rita", "halt", "--duration", "30m")
        assert world.wait_for(rid, ["granted"])["status"] == "granted"
    assert armed.hits() and {h.operation for h in armed.hits()} == {"Publish"}
    assert [e.outcome for e in world.audit_events(rid) if e.event_type == "grant"] == ["succeeded"]
    logs = world.emulator.client("logs")
    group = f"/aws/lambda/{function_name(world, 'breakglass-access')}"
    lines = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    counted = [line for line in lines if "AlertPublishFailures" in line and rid in line]
    assert len(counted) == 1, counted
    assert world.cli("rita", "revoke", rid, "--totp", world.code("rita"), "--reason", "done").exit_code == 0
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


def test_a_grant_killed_once_between_its_guard_and_its_trust_is_retried_and_grants_its_window(
    world: World,
) -> None:
    access = function_name(world, "breakglass-access")
    once = Timeout("iam", "UpdateAssumeRolePolicy", caller=access, contains="user/sam", times=1)
    with injected(world.emulator, once) as armed:
        rid = request(world, "sam", "halt", "--duration", "30m")
        granted = world.wait_for(rid, ["granted"])
    assert len(armed.hits()) == 1
    assert may_assume(world, "sam", "halt", rid, parse_iso(str(granted["expires_at"])) - timedelta(seconds=1))
    assert [e.outcome for e in world.audit_events(rid) if e.event_type == "grant"] == ["succeeded"]
    assert world.cli("sam", "revoke", rid, "--totp", world.code("sam"), "--reason", "done").exit_code == 0
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


# -- an audit write that fails -----------------------------------------------------------------------


def test_a_grant_whose_audit_write_keeps_failing_is_taken_back_and_the_retry_records_it_once(
    world: World,
) -> None:
    access = role_of(world, "breakglass-access")
    # One write's worth of 503s: the SDK gives up, the grant is rolled back, Step Functions retries.
    unrecorded = Fault(
        "s3", "PutObject", caller=access, contains="/grant-", error="ServiceUnavailable", status=503, times=5
    )
    with injected(world.emulator, unrecorded) as armed:
        rid = request(world, "uma", "halt", "--duration", "30m")
        assert world.wait_for(rid, ["granted"])["status"] == "granted"
    assert len(armed.hits()) == 5
    assert ("PutObject", "ServiceUnavailable", access) in trail_errors(world)
    grants = [e for e in world.audit_events(rid) if e.event_type == "grant"]
    assert [(e.outcome, e.details["already_granted"]) for e in grants] == [("succeeded", False)]
    assert world.cli("uma", "revoke", rid, "--totp", world.code("uma"), "--reason", "done").exit_code == 0
    assert_nothing_recorded_twice(world)


def test_a_grant_killed_between_its_iam_writes_and_its_record_is_recorded_once_as_a_grant(
    world: World,
) -> None:
    access = function_name(world, "breakglass-access")
    killed = Timeout("s3", "PutObject", caller=access, contains="/grant-", times=1)
    with injected(world.emulator, killed) as armed:
        rid = request(world, "vic", "halt", "--duration", "30m")
        assert world.wait_for(rid, ["granted"])["status"] == "granted"
    assert len(armed.hits()) == 1
    grants = [
        (e.outcome, e.details["already_granted"]) for e in world.audit_events(rid) if e.event_type == "grant"
    ]
    assert grants == [("succeeded", True)]
    assert world.cli("vic", "revoke", rid, "--totp", world.code("vic"), "--reason", "done").exit_code == 0
    assert_nothing_recorded_twice(world)


# -- halting ---------------------------------------------------------------------------------------------


def halt_role(world: World) -> str:
    (name,) = [
        r.name for r in world.deployment.by_type("aws:lambda/function:Function") if r.name.endswith("-halt")
    ]
    return role_of(world, name)


def chat_policies(world: World) -> list[str]:
    return list(world.emulator.client("iam").list_role_policies(RoleName="chat-api")["PolicyNames"])


def halt(world: World, person: str) -> Any:
    return world.cli(person, "halt", "chat", "--reason", REASON, "--totp", world.code(person), *MFA, "--json")


def test_a_halt_throttled_and_failing_with_5xx_is_retried_and_reports_the_target_halted(
    world: World, unhalted: None
) -> None:
    role = halt_role(world)
    flaky = (
        Fault("iam", "PutRolePolicy", caller=role, times=2),
        Fault("iam", "PutRolePolicy", caller=role, error="ServiceFailure", status=500, times=1),
    )
    with injected(world.emulator, *flaky) as armed:
        halted = halt(world, "wes")
    assert halted.exit_code == 0, halted.stderr
    assert [r["outcome"] for r in halted.json()["results"]] == ["halted"]
    assert len(armed.hits()) == 3
    assert chat_policies(world) == ["breakglass-halt-chat"]
    halts = [e for e in world.audit_events() if e.event_type == "halt" and e.actor == "wes"]
    assert [(e.target, e.outcome) for e in halts] == [("chat", "succeeded")]


@pytest.fixture
def unhalted(world: World) -> Iterator[None]:
    """Each halt test starts and ends with the chat model serving (as resuming would leave it)."""
    iam = world.emulator.client("iam")
    for name in chat_policies(world):
        iam.delete_role_policy(RoleName="chat-api", PolicyName=name)
    yield
    for name in chat_policies(world):
        iam.delete_role_policy(RoleName="chat-api", PolicyName=name)
    # The halt tier's grants the halts asked for end too: the trust policy has room for a few only.
    for person in ("wes", "xan", "yul", "zed"):
        for listed in world.cli(person, "list", "--json").json()["requests"]:
            if listed["status"] == "granted":
                rid = listed["request_id"]
                world.cli(person, "revoke", rid, "--totp", world.code(person), "--reason", "halt test done")


def test_a_halt_whose_iam_write_keeps_failing_reports_the_target_failed_and_records_it(
    world: World, unhalted: None
) -> None:
    role = halt_role(world)
    with injected(
        world.emulator,
        Fault("iam", "PutRolePolicy", caller=role, error="ServiceFailure", status=500, times=None),
    ):
        halted = halt(world, "xan")
    assert halted.exit_code != 0
    assert chat_policies(world) == []
    halts = [e for e in world.audit_events() if e.event_type == "halt" and e.actor == "xan"]
    assert [(e.target, e.outcome) for e in halts] == [("chat", "failed")]
    assert "chat" in halted.stdout + halted.stderr


def test_a_halt_whose_audit_write_fails_acts_but_fails_the_call_and_says_what_happened(
    world: World, unhalted: None
) -> None:
    role = halt_role(world)
    with injected(
        world.emulator,
        Fault("s3", "PutObject", caller=role, error="ServiceUnavailable", status=503, times=None),
    ):
        halted = halt(world, "yul")
    assert halted.exit_code != 0, halted.stdout + halted.stderr
    assert chat_policies(world) == ["breakglass-halt-chat"]  # the halt stands: undoing it is worse
    said = halted.stdout + halted.stderr
    assert "chat" in said and "audit" in said.lower()


def test_a_resume_throttled_and_failing_with_5xx_is_retried_and_the_target_serves_again(
    world: World, unhalted: None
) -> None:
    halted = halt(world, "zed")
    assert halted.exit_code == 0 and chat_policies(world) == ["breakglass-halt-chat"], halted.stderr
    rid = request(world, "zed", "operator", "--no-wait")
    world.wait_for(rid, ["pending"])
    assert world.cli("bob", "approve", rid, "--totp", world.code("bob")).exit_code == 0
    world.wait_for(rid, ["granted"])
    resumer = role_of(
        world,
        next(
            r.name
            for r in world.deployment.by_type("aws:lambda/function:Function")
            if r.name.endswith("-resume")
        ),
    )
    flaky = (
        Fault("iam", "DeleteRolePolicy", caller=resumer, times=1),
        Fault("iam", "DeleteRolePolicy", caller=resumer, error="ServiceFailure", status=500, times=1),
    )
    with injected(world.emulator, *flaky) as armed:
        resumed = world.cli("zed", "resume", "chat", "--reason", "guardrail fixed", *MFA, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert len(armed.hits()) == 2
    assert chat_policies(world) == []
    resumes = [e for e in world.audit_events() if e.event_type == "resume" and e.actor == "zed"]
    assert [(e.target, e.outcome) for e in resumes] == [("chat", "succeeded")]
    assert world.cli("zed", "revoke", rid, "--totp", world.code("zed"), "--reason", "done").exit_code == 0


# -- votes and email ---------------------------------------------------------------------------------------


def test_throttled_table_writes_and_email_while_voting_are_retried_and_the_vote_counts_once(
    world: World,
) -> None:
    flaky = (
        Fault("ses", "Send*", caller="*", contains="ann%40example.com", times=1),
        Fault("dynamodb", "*", caller="*", error="ProvisionedThroughputExceededException", times=3),
    )
    with injected(world.emulator, *flaky) as armed:
        rid = request(world, "rita", "operator", "--no-wait")
        world.wait_for(rid, ["pending"])
        (link,) = world.approval_links("ann", rid, wait=20)
        assert world.decide("ann", link, "approve")[0] == 200
        assert world.wait_for(rid, ["granted"])["status"] == "granted"
    assert {h.service for h in armed.hits()} == {"ses", "dynamodb"}
    approvals = [e for e in world.audit_events(rid) if e.event_type == "approval" and e.actor != "system"]
    assert [(e.actor, e.outcome) for e in approvals] == [("ann", "succeeded")]
    assert world.cli("rita", "revoke", rid, "--totp", world.code("rita"), "--reason", "done").exit_code == 0
    assert_nothing_recorded_twice(world)


# -- nothing recorded twice: a task killed after its record, before its status, is retried ----------


def stored_copies(world: World, request_id: str, event_type: str) -> int:
    """Every stored object version of ``request_id``'s ``event_type`` events (a second PUT to one
    key adds a version under Object Lock, so versions are counted, not only the latest)."""
    s3 = world.emulator.client("s3")
    bucket = str(world.deployment.output("audit_bucket"))
    copies = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="breakglass-events/"):
        for version in page.get("Versions", []):
            if f"-{event_type}-" not in version["Key"] and f"/{event_type}-" not in version["Key"]:
                continue
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"]
            if json.loads(body.read())["request_id"] == request_id:
                copies += 1
    return copies


def test_a_grant_killed_after_its_record_and_before_its_status_is_retried_and_recorded_once(
    world: World,
) -> None:
    access = function_name(world, "breakglass-access")
    # The first table write after the grant's record (its window, then its status) never happens.
    after_record = Timeout("dynamodb", "UpdateItem", caller=access, times=1)
    with injected(world.emulator, after_record) as armed:
        rid = request(world, "rita", "halt", "--duration", "30m")
        granted = world.wait_for(rid, ["granted"])
    assert len(armed.hits()) == 1
    assert may_assume(
        world, "rita", "halt", rid, parse_iso(str(granted["expires_at"])) - timedelta(seconds=1)
    )
    grants = [e for e in world.audit_events(rid) if e.event_type == "grant"]
    assert [(e.outcome, e.details["already_granted"]) for e in grants] == [("succeeded", False)]
    assert stored_copies(world, rid, "grant") == 1
    assert world.cli("rita", "revoke", rid, "--totp", world.code("rita"), "--reason", "done").exit_code == 0
    assert_nothing_recorded_twice(world)


def test_an_expiry_and_a_review_killed_after_their_records_are_retried_and_recorded_once(
    world: World,
) -> None:
    rid = request(world, "sam", "halt", "--duration", "30m")
    granted = world.wait_for(rid, ["granted"])
    killed = (
        Timeout("dynamodb", "UpdateItem", caller=function_name(world, "breakglass-access"), times=1),
        Timeout("dynamodb", "UpdateItem", caller=function_name(world, "breakglass-open-review"), times=1),
    )
    with injected(world.emulator, *killed) as armed:
        world.emulator.fast_forward(parse_iso(str(granted["expires_at"])) + timedelta(seconds=1))
        done = wait_execution(world, rid)
    assert done["status"] == "SUCCEEDED", done
    assert len(armed.hits()) == 2
    assert not any(rid in sid for sid in sids(world, "halt"))
    assert world.cli("sam", "status", rid, "--json").json()["status"] == "expired"
    ends = [
        (e.event_type, e.outcome) for e in world.audit_events(rid) if e.event_type in ("expiry", "review")
    ]
    assert ends == [("expiry", "succeeded"), ("review", "opened")]
    assert (stored_copies(world, rid, "expiry"), stored_copies(world, rid, "review")) == (1, 1)
    assert_nothing_recorded_twice(world)


def test_an_early_revoke_killed_after_its_record_and_asked_again_is_recorded_once(world: World) -> None:
    rid = request(world, "tom", "halt", "--duration", "30m")
    world.wait_for(rid, ["granted"])
    access = function_name(world, "breakglass-access")
    with injected(world.emulator, Timeout("dynamodb", "UpdateItem", caller=access, times=1)) as armed:
        first = world.cli("tom", "revoke", rid, "--totp", world.code("tom"), "--reason", "done")
    assert len(armed.hits()) == 1 and first.exit_code != 0, first.stdout
    assert not any(rid in sid for sid in sids(world, "halt"))  # the revoke itself stands
    again = world.cli("tom", "revoke", rid, "--totp", world.code("tom"), "--reason", "done")
    assert again.exit_code == 0, again.stderr
    assert world.cli("tom", "status", rid, "--json").json()["status"] == "revoked"
    revokes = [(e.actor, e.outcome) for e in world.audit_events(rid) if e.event_type == "revoke"]
    assert revokes == [("tom", "succeeded")]
    assert stored_copies(world, rid, "revoke") == 1
    assert_nothing_recorded_twice(world)


def test_a_reconciler_run_killed_after_its_record_is_run_again_and_records_the_repair_once(
    world: World,
) -> None:
    rid = request(world, "uma", "halt", "--duration", "30m")
    world.wait_for(rid, ["granted"])
    world.emulator.client("stepfunctions").stop_execution(executionArn=execution_of(world, rid))
    world.emulator.fast_forward(utc_now() + timedelta(minutes=3))
    access = function_name(world, "breakglass-access")
    invoke = {
        "FunctionName": world.deployment.function_arn("breakglass-access"),
        "Payload": b'{"action": "reconcile"}',
    }
    # The run writes its record of the stopped execution, then dies reading the role to revoke.
    killed = Timeout("iam", "GetRole", caller=access, times=1)
    with injected(world.emulator, killed) as armed:
        first = world.emulator.client("lambda").invoke(**invoke)
    assert len(armed.hits()) == 1 and first.get("FunctionError"), first
    again = json.loads(world.emulator.client("lambda").invoke(**invoke)["Payload"].read())
    assert [r["request_id"] for r in again["repaired"]].count(rid) == 1, again
    assert not any(rid in sid for sid in sids(world, "halt"))
    repairs = [e for e in world.audit_events(rid) if e.actor == "system:reconciler"]
    assert sorted((e.event_type, e.outcome) for e in repairs) == [
        ("error", "failed"),
        ("review", "opened"),
        ("revoke", "succeeded"),
    ]
    assert stored_copies(world, rid, "error") == 1
    assert_nothing_recorded_twice(world)
