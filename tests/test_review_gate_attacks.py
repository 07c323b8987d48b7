"""Attacks on the review gate and its waiver (security review of issue 13's gate and admission).

Each test is one attack of the review, written before its fix, and states what the gate
guarantees against it (the fixes are described in docs/security.md, "The review gate"). The
harness is tests/test_review_gate.py's (moto DynamoDB, KMS and S3; the workflow's part is what
it writes to the store).
"""

# ruff: noqa: F811  (the tests take tests/test_review_gate.py's `world` fixture, imported below)

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from test_access_api import World, user_arn
from test_review_gate import (  # noqa: F401
    ask,
    granted_and_ended,
    review,
    started,
    waive,
    world,
)

from breakglass.contracts import iso
from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter


def second_enrollment(world: World, user: str, *, of: str, roles: list[str]) -> None:
    """Enroll ``user`` as another identity of the person ``of`` (same email address), the way a
    person with an IAM user and an SSO session, or an admin identity, is enrolled twice."""
    uri = enroll(world.deps.store, user, user_arn(user), f"{of}@example.com", roles)
    world.secrets[user] = pyotp.parse_uri(uri).secret


def review_as(world: World, by: str, rid: str, verdict: str = "accepted", notes: str = "") -> tuple[int, Any]:
    world.tick()
    body = {"verdict": verdict, "notes": notes, "totp": world.code(by)}
    return world.call(user_arn(by), "POST", f"/requests/{rid}/review", body)


def grant(world: World, rid: str) -> None:
    store = world.deps.store
    store.set_status(rid, "approved")
    store.set_status(rid, "granted")
    now = world.clock[0]
    store.set_grant_window(rid, iso(now), iso(now + timedelta(minutes=30)))


def expire(world: World, rid: str) -> None:
    world.tick(31)
    world.deps.store.set_status(rid, "expired")


# -- finding 1: the self-checks of review and waiver compare user ids only --------------------------


def test_a_person_cannot_record_the_verdict_of_their_own_grant_under_a_second_enrollment(
    world: World,
) -> None:
    first = granted_and_ended(world, "sue")
    second_enrollment(world, "sue.sec", of="sue", roles=["security"])
    status, answer = review_as(world, "sue.sec", first)
    assert status == 403, answer
    assert ask(world, "sue")[0] == 409


def test_a_person_cannot_waive_their_own_gate_under_a_second_enrollment(world: World) -> None:
    granted_and_ended(world, "sue")
    second_enrollment(world, "sue.sec", of="sue", roles=["security"])
    status, answer = waive(world, "sue.sec", "sue")
    assert status == 403, answer
    assert ask(world, "sue")[0] == 409


# -- finding 2: a verdict can be recorded before there is anything to review ------------------------


@pytest.mark.parametrize("stage", ["pending", "granted"])
def test_a_verdict_recorded_before_the_grant_ended_does_not_open_the_gate(world: World, stage: str) -> None:
    status, made = ask(world, "rita")
    assert status == 201, made
    rid = str(made["request_id"])
    if stage == "granted":
        grant(world, rid)
    # Security (an accomplice, or simply too early) signs off before anything was done with it.
    review(world, rid)
    if stage == "pending":
        grant(world, rid)
    expire(world, rid)
    # What the grant was used for was never read: the next request must still be gated.
    status, answer = ask(world, "rita")
    assert status == 409, answer


def test_a_waiver_cannot_be_given_for_a_grant_still_in_use(world: World) -> None:
    status, made = ask(world, "rita")
    assert status == 201, made
    rid = str(made["request_id"])
    grant(world, rid)
    status, answer = waive(world, "sec", "rita")
    assert status == 409, answer


# -- finding 3: an approver of the grant signs off its review -----------------------------------------


def test_an_approver_of_a_grant_cannot_record_its_verdict(world: World) -> None:
    # ann approves admin requests and is also enrolled as security.
    second = enroll(world.deps.store, "ann", user_arn("ann"), "ann@example.com", ["approver", "security"])
    world.secrets["ann"] = pyotp.parse_uri(second).secret
    status, made = ask(world, "rita")
    assert status == 201, made
    rid = str(made["request_id"])
    world.deps.store.set_waiting(rid, "token-1", ["ann", "bob"])
    world.tick()
    voted = world.call(
        user_arn("ann"), "POST", f"/requests/{rid}/votes", {"decision": "approve", "totp": world.code("ann")}
    )
    assert voted[0] == 200 and voted[1]["decided"], voted
    world.deps.store.set_status(rid, "granted")
    world.deps.store.set_grant_window(rid, iso(world.clock[0]), iso(world.clock[0] + timedelta(minutes=30)))
    expire(world, rid)
    status, answer = review_as(world, "ann", rid)
    assert status == 403, answer
    assert ask(world, "rita")[0] == 409


# -- finding 4: refusals of review and waiver that leave no record ------------------------------------


def _failed(world: World, event_type: str) -> list[AuditEvent]:
    return [e for e in world.events() if e.event_type == event_type and e.outcome == "failed"]


def test_a_wrong_code_on_a_waiver_is_on_record(world: World) -> None:
    granted_and_ended(world, "rita")
    body = {"user": "rita", "tier": "admin", "reason": "second incident INC-4243 right now", "totp": "000000"}
    status, _ = world.call(user_arn("sec"), "POST", "/waivers", body)
    assert status == 403
    assert [e.actor for e in _failed(world, "waiver")] == ["sec"]


def test_a_wrong_code_on_a_review_is_on_record(world: World) -> None:
    first = granted_and_ended(world, "rita")
    body = {"verdict": "accepted", "notes": "", "totp": "000000"}
    status, _ = world.call(user_arn("sec"), "POST", f"/requests/{first}/review", body)
    assert status == 403
    assert [(e.actor, e.request_id) for e in _failed(world, "review")] == [("sec", first)]


def test_an_attempt_to_review_one_s_own_grant_is_on_record(world: World) -> None:
    first = granted_and_ended(world, "sue")
    status, _ = review_as(world, "sue", first)
    assert status in (400, 403)
    assert [(e.actor, e.request_id) for e in _failed(world, "review")] == [("sue", first)]


# -- finding 5: a waiver whose record failed can still be spent ----------------------------------------


def test_a_waiver_whose_record_failed_lets_nobody_through_even_a_request_in_flight(world: World) -> None:
    first = granted_and_ended(world, "rita")
    admitted: list[tuple[int, Any]] = []

    @dataclasses.dataclass
    class SlowThenFailing(AuditWriter):
        def write(self, event: AuditEvent, *, alert: bool = True) -> str:
            if event.event_type == "waiver" and event.outcome == "succeeded":
                # rita retries her request every few seconds; one lands while the put is failing.
                admitted.append(ask(world, "rita"))
                raise RuntimeError("bucket unreachable")
            return super().write(event, alert=alert)

    writer = world.deps.audit
    assert isinstance(writer, AuditWriter)
    world.deps = dataclasses.replace(world.deps, audit=SlowThenFailing(s3=writer.s3, bucket=writer.bucket))
    with pytest.raises(RuntimeError):
        waive(world, "sec", "rita")
    assert [e for e in world.events() if e.event_type == "waiver"] == []
    assert started(world) == [first], admitted


# -- finding 6: the gate forgets an unreviewed grant once a later one is reviewed ----------------------


def test_a_grant_let_through_by_a_waiver_does_not_clear_the_review_of_the_grant_before_it(
    world: World,
) -> None:
    first = granted_and_ended(world, "rita")  # the admin session nobody has read yet
    assert waive(world, "sec", "rita")[0] == 201
    second = granted_and_ended(world, "rita")  # the waived, harmless one
    assert review(world, second)[0] == 201
    status, answer = ask(world, "rita")
    assert status == 409 and first in answer["error"]["message"], answer


# -- finding 7: a waiver spent on a request that never ran ---------------------------------------------


def test_a_request_whose_workflow_could_not_start_gives_the_waiver_back(world: World) -> None:
    granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201

    class Down(type(world.sfn)):  # type: ignore[misc]
        def start_execution(self, **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError("Step Functions throttled")

    world.deps = dataclasses.replace(world.deps, sfn=Down())
    with pytest.raises(RuntimeError):
        ask(world, "rita")
    assert world.deps.admission.slot("admin", "rita").waiver is not None
