"""Extensions and scheduled starts at the access API: who may, what is refused, what is recorded.

The attacks first: another person's grant, a revoked, ended or pending one, a cap passed in one
step or along a chain, a tier named in the body, start times in the past, too far ahead or not
times at all. The emulator tests (test_extensions_e2e.py) play the approved and denied paths with
the sessions IAM evaluates.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import test_access_api
from test_access_api import World, ask, granted, user_arn
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.contracts import iso, parse_iso
from breakglass.lambdas.approvals.mail import WITHDRAWN
from breakglass.lambdas.approvals.requests import parse_policy

REASON = "the key rotation needs another half hour"
world = test_access_api.world  # the access API over moto's DynamoDB, KMS and S3 (a fixture)


def extend(world: World, user: str, request_id: str, **changes: Any) -> tuple[int, Any]:
    world.tick()  # a fresh TOTP step for every call
    body: dict[str, Any] = {"by": "30m", "reason": REASON, "totp": world.code(user)}
    body.update(changes)
    return world.call(
        user_arn(user),
        "POST",
        f"/requests/{request_id}/extensions",
        {k: v for k, v in body.items() if v is not None},
    )


def grant_it(world: World, request_id: str) -> dict[str, Any]:
    """What the workflow's grant records for an extension (its planned window)."""
    record = world.deps.store.get_request(request_id)
    assert record is not None and record.start_at
    world.deps.store.set_status(request_id, "approved")
    world.deps.store.set_status(request_id, "granted")
    end = parse_iso(record.start_at) + timedelta(seconds=record.duration_seconds)
    world.deps.store.set_grant_window(request_id, record.start_at, iso(end))
    return record.to_dict()


def with_policy(world: World, halt: dict[str, Any]) -> None:
    world.deps = replace(world.deps, policy={**world.deps.policy, **parse_policy({"halt": halt})})


def started(world: World) -> list[str]:
    return [c[1]["name"] for c in world.sfn.calls if c[0] == "start_execution"]


# -- what an extension is ------------------------------------------------------------------------


def test_an_extension_is_a_new_request_whose_window_starts_where_the_old_one_ends(world: World) -> None:
    original = granted(world, "rita")
    world.tick()
    status, made = extend(world, "rita", original)
    assert status == 201, made
    assert made["request_id"] != original and made["extends"] == original
    assert made["requester"] == "rita" and made["tier"] == "halt" and made["status"] == "pending"
    old = world.deps.store.get_request(original)
    assert old is not None and made["start_at"] == old.expires_at and made["duration_seconds"] == 1800
    assert old.extended_by == made["request_id"]
    assert started(world)[-1] == made["request_id"]  # its own execution
    (event,) = [e for e in world.events() if e.event_type == "extension"]
    assert (event.actor, event.outcome, event.request_id) == ("rita", "pending", made["request_id"])
    assert event.details["extends"] == original and event.window_start == old.expires_at
    assert event.details["extended_window"] == f"{old.starts_at} to {old.expires_at}"


def test_an_extension_on_a_quorum_tier_asks_the_tier_s_approvers_again_never_the_requester(
    world: World,
) -> None:
    original = granted(world, "ann", "operator")
    status, made = extend(world, "ann", original)
    assert status == 201, made
    assert made["quorum"] == 1 and made["approvers"] == ["bob"]


# -- the attacks ---------------------------------------------------------------------------------------


def test_an_extension_of_someone_else_s_request_is_refused_and_audited(world: World) -> None:
    original = granted(world, "rita")
    status, answer = extend(world, "mallory", original)
    assert status == 403 and "only the requester" in answer["error"]["message"]
    refused = [e for e in world.events() if e.event_type == "extension"]
    assert [(e.actor, e.outcome, e.details["extends"]) for e in refused] == [("mallory", "failed", original)]
    assert world.deps.store.get_request(original).extended_by is None  # type: ignore[union-attr]


@pytest.mark.parametrize("status_name", ["revoked", "expired", "denied"])
def test_an_extension_of_a_request_that_is_not_granted_is_refused(world: World, status_name: str) -> None:
    original = granted(world, "rita")
    world.deps.store.set_status(original, status_name)
    status, answer = extend(world, "rita", original)
    assert status == 409 and f"is {status_name}" in answer["error"]["message"]


def test_an_extension_of_a_pending_request_is_refused(world: World) -> None:
    _, made = ask(world, "ann", tier="operator")
    status, answer = extend(world, "ann", made["request_id"])
    assert status == 409 and "is pending" in answer["error"]["message"]


def test_an_extension_after_the_window_ended_is_refused_even_before_the_workflow_expired_it(
    world: World,
) -> None:
    original = granted(world, "rita")
    world.tick(31)
    status, answer = extend(world, "rita", original)
    assert status == 409 and "ended at" in answer["error"]["message"]


def test_an_extension_past_the_tier_s_total_cap_is_refused_without_spending_the_code(world: World) -> None:
    original = granted(world, "rita")  # 30 min of a tier whose window is 2 h: the cap is 4 h
    status, answer = extend(world, "rita", original, by="2h")
    assert status == 201, answer
    grant_it(world, answer["request_id"])
    world.tick(31)  # into the extension's window: an unopened window cannot be extended
    status, answer = extend(world, "rita", answer["request_id"], by="1h31m")
    assert status == 400 and answer["error"]["field"] == "by"
    assert "at most 4h from the first window's start" in answer["error"]["message"]
    assert "1h30m is left" in answer["error"]["message"]


def test_a_chain_of_extensions_counts_the_whole_chain_against_the_cap(world: World) -> None:
    with_policy(world, {"approval": "auto", "max_total_seconds": 5400})
    current = granted(world, "rita")  # 30 min
    for _ in range(2):  # +30 min twice: 90 min, the cap
        status, made = extend(world, "rita", current)
        assert status == 201, made
        grant_it(world, made["request_id"])
        current = made["request_id"]
        world.tick(31)  # into the new window: an unopened window cannot be extended
    status, answer = extend(world, "rita", current, by="15m")
    assert status == 400 and "nothing is left" in answer["error"]["message"]


def test_a_second_live_extension_of_one_grant_is_refused_and_the_chain_continues_from_the_latest(
    world: World,
) -> None:
    original = granted(world, "rita")
    _, first = extend(world, "rita", original)
    status, answer = extend(world, "rita", original)
    assert status == 409 and first["request_id"] in answer["error"]["message"]
    world.deps.store.set_status(first["request_id"], "denied")  # a denied extension frees the slot
    status, second = extend(world, "rita", original)
    assert status == 201 and second["start_at"] == first["start_at"]


def test_an_extension_cannot_name_a_tier_a_window_or_a_requester(world: World) -> None:
    original = granted(world, "rita")
    for field, value in (("tier", "operator"), ("start_at", "+1h"), ("requester", "ann")):
        status, answer = extend(world, "rita", original, **{field: value})
        assert status == 400 and answer["error"]["field"] == field, answer
    assert world.deps.store.get_request(original).extended_by is None  # type: ignore[union-attr]


@pytest.mark.parametrize("by", ["10m", "3h", "soon", "-30m", 10**30])
def test_an_extension_s_length_is_parsed_like_a_duration_and_bounded_by_the_tier(
    world: World, by: Any
) -> None:
    original = granted(world, "rita")
    status, answer = extend(world, "rita", original, by=by)
    assert status == 400 and answer["error"]["field"] == "by"


def test_a_wrong_code_refuses_the_extension(world: World) -> None:
    original = granted(world, "rita")
    status, answer = extend(world, "rita", original, totp="000000")
    assert status == 403 and answer["error"]["field"] == "totp"
    assert world.deps.store.get_request(original).extended_by is None  # type: ignore[union-attr]


def test_a_revoke_of_the_original_withdraws_its_pending_extension_and_answers_its_workflow(
    world: World,
) -> None:
    original = granted(world, "ann", "operator")
    _, made = extend(world, "ann", original)
    world.deps.store.set_waiting(made["request_id"], "token-of-the-extension", ["bob"])
    world.tick()
    status, answer = world.call(
        user_arn("ann"), "POST", f"/requests/{original}/revoke", {"totp": world.code("ann")}
    )
    assert status == 200 and answer["extensions_withdrawn"] == [made["request_id"]]
    assert world.deps.store.get_request(made["request_id"]).status == "denied"  # type: ignore[union-attr]
    handed = [c[1] for c in world.sfn.calls if c[0] == "send_task_success"]
    assert handed == [{"taskToken": "token-of-the-extension", "output": f'{{"decision": "{WITHDRAWN}"}}'}]
    status, _ = world.call(
        user_arn("bob"),
        "POST",
        f"/requests/{made['request_id']}/votes",
        {"decision": "approve", "totp": world.code("bob")},
    )
    assert status == 409  # nothing left to approve


# -- scheduled starts ----------------------------------------------------------------------------------


def test_a_scheduled_request_records_when_its_window_opens(world: World) -> None:
    status, made = ask(world, "rita", start_at="+2h")
    assert status == 201, made
    assert made["start_at"] == iso(world.clock[0] + timedelta(hours=2))
    status, made = ask(world, "ann", tier="operator", start_at=iso(world.clock[0] + timedelta(hours=3)))
    assert status == 201 and made["start_at"] == iso(world.clock[0] + timedelta(hours=3))


@pytest.mark.parametrize(
    ("start_at", "problem"),
    [
        ("2020-01-01T00:00:00Z", "not in the future"),
        ("+0m", "not in the future"),
        ("+5h", "at most 4h ahead"),
        ("+8d", "is not a delay"),
        ("tomorrow", "is not a start time"),
        ("2026-13-45T00:00:00Z", "not a real date"),
        ("2026-11-30T09:00:00+02:00", "is not a start time"),
        ("+" + "9" * 40, "at most 32 characters"),
        (12345, "must be a string"),
    ],
)
def test_a_start_in_the_past_beyond_the_horizon_or_malformed_is_refused(
    world: World, start_at: Any, problem: str
) -> None:
    status, answer = ask(world, "rita", start_at=start_at)
    assert status == 400 and answer["error"]["field"] == "start_at", answer
    assert problem in answer["error"]["message"]
    assert started(world) == []


def test_a_tier_with_scheduling_off_refuses_a_start(world: World) -> None:
    with_policy(world, {"approval": "auto", "max_start_delay_seconds": 0})
    status, answer = ask(world, "rita", start_at="+1h")
    assert status == 400 and "takes no scheduled requests" in answer["error"]["message"]


# -- halts during an extended incident -------------------------------------------------------------------


def test_a_halt_is_recorded_under_the_request_whose_window_holds_the_moment(world: World) -> None:
    original = granted(world, "rita")
    _, made = extend(world, "rita", original)
    grant_it(world, made["request_id"])
    halt = {"targets": ["chat"], "mode": "deny-invoke", "reason": "leaking data"}
    caller = test_access_api.session_arn("breakglass-emergency-halt", "rita")
    assert world.call(caller, "POST", "/halts", halt)[0] == 200
    world.tick(31)  # past the first expiry: the workflow has not recorded it yet
    assert world.call(caller, "POST", "/halts", halt)[0] == 200
    world.tick(30)  # past the second
    status, answer = world.call(caller, "POST", "/halts", halt)
    assert status == 403 and answer["error"]["code"] == "no-active-grant"
    recorded = [c[1]["Payload"]["request_id"] for c in world.lam.calls if c[0] == "invoke"]
    assert recorded == [original, made["request_id"]]


def test_a_new_request_waits_while_an_extension_of_the_person_s_request_is_live(world: World) -> None:
    original = granted(world, "rita")
    _, made = extend(world, "rita", original)
    grant_it(world, made["request_id"])
    world.deps.store.set_status(original, "expired")
    world.tick()
    status, answer = ask(world, "rita")
    assert status == 409 and original in answer["error"]["message"]


# -- the command checks what it can before sending anything -----------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["request", "--tier", "halt", "--reason", REASON, "--start-at", "yesterday"], "--start-at:"),
        (
            ["request", "--tier", "halt", "--reason", REASON, "--start-at", "2020-01-01T00:00:00Z"],
            "not in the future",
        ),
        (
            ["extend", "r2611300213004f1c9a2b7e", "--by", "5m", "--reason", REASON],
            "--by: must be at least 15 minutes",
        ),
        (["extend", "not-an-id", "--by", "30m", "--reason", REASON], "is not a request id"),
    ],
)
def test_a_malformed_start_or_extension_is_refused_before_anything_is_sent(
    argv: list[str], problem: str
) -> None:
    result = CliRunner().invoke(app, [*argv, "--totp", "123456"])
    assert result.exit_code == 2 and problem in result.stderr, result.stderr


def test_an_emergency_session_cannot_extend_the_grant_it_belongs_to(world: World) -> None:
    original = granted(world, "rita")
    world.tick()
    status, _ = world.call(
        test_access_api.session_arn("breakglass-emergency-halt", "rita"),
        "POST",
        f"/requests/{original}/extensions",
        {"by": "30m", "reason": REASON, "totp": world.code("rita")},
    )
    assert status == 403
    assert world.deps.store.get_request(original).extended_by is None  # type: ignore[union-attr]
