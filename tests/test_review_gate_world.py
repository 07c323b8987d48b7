"""The review gate on examples/quickstart deployed into the emulator (IAM enforced): the admin tier
refuses a second request before the first grant was reviewed, security's waiver lets exactly one
through, and the halt tier is never gated. Every step is the ``breakglass`` command as that person.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from breakglass.local.world import CliRun, World, open_world

PEOPLE = {
    "rita": ("responder",),
    "ann": ("approver",),
    "bob": ("approver",),
    "cat": ("approver",),
    "sec": ("security",),
}
REASON = "the chat model leaks customer data in its answers"
WAIVER_REASON = "second incident INC-4243 while the review of INC-4242 is booked"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="gate", people=PEOPLE) as opened:
        yield opened


def ok(run: CliRun) -> CliRun:
    assert run.exit_code == 0, f"{run.line}\n{run.stderr or run.stdout}"
    return run


def ask_admin(world: World, ticket: str) -> CliRun:
    return world.request("rita", "admin", REASON, "--ticket", ticket, "--no-wait")


def vote(world: World, approver: str, decision: str, request_id: str) -> None:
    ok(world.cli(approver, decision, request_id, "--totp", world.code(approver), "--json"))


def waive(world: World, by: str) -> CliRun:
    return world.cli(
        by,
        "audit",
        "waive",
        "--person",
        "rita",
        "--tier",
        "admin",
        "--reason",
        WAIVER_REASON,
        "--totp",
        world.code(by),
        "--json",
    )


def test_the_admin_tier_refuses_a_second_request_until_security_reviews_or_waives_for_one(
    world: World,
) -> None:
    first = str(ok(ask_admin(world, "INC-4242")).json()["request_id"])
    vote(world, "ann", "approve", first)
    vote(world, "bob", "approve", first)
    world.wait_for(first, ["granted"])
    assert world.end_window(first)["status"] == "expired"

    refused = ask_admin(world, "INC-4243")
    assert refused.exit_code == 1 and first in refused.stderr
    assert "breakglass audit waive --person rita --tier admin" in " ".join(refused.stderr.split())
    assert [e.outcome for e in world.audit_events() if e.event_type == "request"][-1] == "failed"

    # An approver cannot waive (IAM stops the approver persona before the route refuses it);
    # security can, with a reason, for rita's next request only.
    denied = waive(world, "ann")
    assert denied.exit_code == 1 and "Forbidden" in denied.stderr
    waiver = ok(waive(world, "sec")).json()
    assert (waiver["unreviewed_request"], waiver["waived_by"]) == (first, "sec")
    (recorded,) = [
        e for e in world.audit_events(first) if e.event_type == "waiver" and e.outcome == "succeeded"
    ]
    assert (recorded.actor, recorded.requester, recorded.reason) == ("sec", "rita", WAIVER_REASON)

    second = str(ok(ask_admin(world, "INC-4243")).json()["request_id"])
    (admitted,) = [e for e in world.audit_events(second) if e.event_type == "request"]
    assert admitted.details["review_waiver"]["waiver_id"] == waiver["waiver_id"]
    vote(world, "ann", "deny", second)
    world.wait_for(second, ["denied"])

    # The waiver is spent: the unreviewed grant gates again, until security records the review.
    again = ask_admin(world, "INC-4244")
    assert again.exit_code == 1 and first in again.stderr
    ok(world.cli("sec", "audit", "review", first, "--verdict", "accepted", "--totp", world.code("sec")))
    third = str(ok(ask_admin(world, "INC-4244")).json()["request_id"])
    vote(world, "ann", "deny", third)
    world.wait_for(third, ["denied"])


def test_the_halt_tier_is_never_gated_even_after_an_unreviewed_grant(world: World) -> None:
    for _ in range(2):
        run = ok(world.request("rita", "halt", REASON, "--duration", "30m"))
        granted = run.json()
        assert granted["status"] == "granted"
        ok(world.cli("rita", "revoke", granted["request_id"], "--totp", world.code("rita"), "--json"))
        assert world.wait_for(granted["request_id"], ["revoked"])["review_verdict"] is None
