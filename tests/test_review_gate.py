"""The review gate: no second grant of a gated tier before the first was reviewed, unless security
waives it for one request (issue 13).

The access API runs against moto's DynamoDB, KMS and S3 as in tests/test_access_api.py; the
workflow's part (grant, expiry) is what it writes to the store. The whole path through the deployed
components, the command and the emails is in tests/test_review_gate_world.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from test_access_api import ACCOUNT, NOW, World, access_world, user_arn

from breakglass.contracts import iso
from breakglass.lambdas.access.grants import Tier
from breakglass.lambdas.approvals.admission import (
    ADMISSION_GRACE,
    WAIVER_LIFETIME,
    Admission,
    AdmissionRefused,
)
from breakglass.lambdas.approvals.requests import parse_policy
from breakglass.lambdas.approvals.store import RequestRecord, Store, StoreError
from breakglass.lambdas.approvals.totp import verify_totp
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.validation import ConfigError

PEOPLE = {
    "rita": (user_arn("rita"), ["responder"]),
    "mallory": (user_arn("mallory"), ["responder"]),
    "ann": (user_arn("ann"), ["approver"]),
    "bob": (user_arn("bob"), ["approver"]),
    "sec": (user_arn("sec"), ["security"]),
    "sue": (user_arn("sue"), ["security", "responder"]),
}
POLICY = parse_policy(
    {
        "halt": {"approval": "auto", "approvers": ["ann"]},
        "operator": {"approval": 1, "approvers": ["ann", "bob"]},
        "admin": {"approval": 1, "approvers": ["ann", "bob"], "review_gate": True},
        "db": {"approval": 1, "approvers": ["ann", "bob"], "review_gate": True, "may_halt": False},
    }
)
REASON = "the chat model leaks customer data"
WAIVER_REASON = "second incident INC-4243; the review of the first is booked for Monday"


def tier(name: str) -> Tier:
    return Tier(
        name=name,
        role_name=f"breakglass-emergency-{name}",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-{name}",
        max_session_seconds=3600,
        max_window_seconds=7200,
        require_mfa=False,
        allowed_requesters=tuple(arn for arn, roles in PEOPLE.values() if "responder" in roles),
    )


@pytest.fixture
def world() -> Iterator[World]:
    with access_world(PEOPLE, POLICY, {name: tier(name) for name in POLICY}) as made:
        yield made


def ask(world: World, user: str, tier_name: str = "admin", **changes: Any) -> tuple[int, Any]:
    world.tick()  # a fresh TOTP step for every code
    body = {"tier": tier_name, "reason": REASON, "duration": "30m", "totp": world.code(user)}
    body.update(changes)
    return world.call(user_arn(user), "POST", "/requests", body)


def granted_and_ended(world: World, user: str, tier_name: str = "admin") -> str:
    """A request of ``user`` the workflow granted and that expired (what the workflow stores)."""
    status, made = ask(world, user, tier_name)
    assert status == 201, made
    rid = str(made["request_id"])
    store = world.deps.store
    store.set_status(rid, "approved")
    store.set_status(rid, "granted")
    now = world.clock[0]
    store.set_grant_window(rid, iso(now), iso(now + timedelta(minutes=30)))
    world.tick(31)
    store.set_status(rid, "expired")
    store.mark_review_opened(rid)  # the workflow's last step
    return rid


def waive(
    world: World, by: str, user: str, tier_name: str = "admin", reason: str = WAIVER_REASON
) -> tuple[int, Any]:
    world.tick()
    body = {"user": user, "tier": tier_name, "reason": reason, "totp": world.code(by)}
    return world.call(user_arn(by), "POST", "/waivers", body)


def review(world: World, rid: str, verdict: str = "accepted", notes: str = "") -> tuple[int, Any]:
    world.tick()
    body = {"verdict": verdict, "notes": notes, "totp": world.code("sec")}
    return world.call(user_arn("sec"), "POST", f"/requests/{rid}/review", body)


def started(world: World) -> list[str]:
    return [c[1]["name"] for c in world.sfn.calls if c[0] == "start_execution"]


def refused_requests(world: World) -> list[AuditEvent]:
    return [e for e in world.events() if e.event_type == "request" and e.outcome == "failed"]


# -- the gate ---------------------------------------------------------------------------------------


def test_a_second_admin_request_is_refused_while_the_first_grant_has_no_verdict(world: World) -> None:
    first = granted_and_ended(world, "rita")
    status, answer = ask(world, "rita")
    assert status == 409 and answer["error"]["code"] == "not-admitted", answer
    message = answer["error"]["message"]
    assert first in message and f"breakglass audit review {first}" in message
    assert "breakglass audit waive --person rita --tier admin" in message
    assert started(world) == [first]
    # Audited like every admission refusal: the verified person, the tier, why.
    (refusal,) = refused_requests(world)
    assert (refusal.actor, refusal.tier, refusal.details["admission"]) == ("rita", "admin", True)
    assert first in refusal.details["problem"]


def test_an_accepted_verdict_recorded_through_the_review_route_opens_the_gate(world: World) -> None:
    first = granted_and_ended(world, "rita")
    assert ask(world, "rita")[0] == 409
    assert review(world, first)[0] == 201
    assert world.call(user_arn("sec"), "GET", f"/requests/{first}")[1]["review_verdict"] == "accepted"
    status, answer = ask(world, "rita")
    assert status == 201, answer


def test_a_flagged_grant_keeps_the_gate_closed_until_security_waives_each_request_or_accepts(
    world: World,
) -> None:
    first = granted_and_ended(world, "rita")
    assert review(world, first, "flagged", "calls outside the ticket")[0] == 201
    status, answer = ask(world, "rita")
    assert status == 409 and first in answer["error"]["message"], answer
    # Each request needs its own waiver while the verdict stands ...
    assert waive(world, "sec", "rita")[0] == 201
    status, second = ask(world, "rita")
    assert status == 201, second
    world.deps.store.set_status(second["request_id"], "denied")
    assert ask(world, "rita")[0] == 409
    # ... until security, having looked again, accepts it.
    assert review(world, first, "accepted", "the calls were part of INC-4242 after all")[0] == 201
    assert ask(world, "rita")[0] == 201


def test_a_request_that_was_denied_or_never_granted_does_not_gate(world: World) -> None:
    status, made = ask(world, "rita")
    assert status == 201
    world.deps.store.set_status(made["request_id"], "denied")
    status, answer = ask(world, "rita")
    assert status == 201, answer


def test_the_gate_looks_at_the_most_recent_grant_past_a_later_denied_request(world: World) -> None:
    first = granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    status, second = ask(world, "rita")
    assert status == 201
    world.deps.store.set_status(second["request_id"], "denied")
    # The denied request holds the person's slot; the unreviewed grant before it still gates.
    status, answer = ask(world, "rita")
    assert status == 409 and first in answer["error"]["message"]


def test_the_gate_follows_the_person_not_the_spelling_of_their_name(world: World) -> None:
    first = granted_and_ended(world, "rita")
    # The slot is keyed by the verified caller's user id, case-folded; the body cannot name anyone.
    status, answer = ask(world, "rita", requester="someone-else")
    assert status == 400 and answer["error"]["field"] == "requester"
    assert world.deps.admission.slot("admin", "RITA").request_id == first
    assert ask(world, "mallory")[0] == 201  # rita's unreviewed grant is hers alone
    assert first in ask(world, "rita")[1]["error"]["message"]


# -- the waiver -------------------------------------------------------------------------------------


def test_a_waiver_lets_exactly_one_request_through_and_the_next_is_refused_again(world: World) -> None:
    first = granted_and_ended(world, "rita")
    status, waiver = waive(world, "sec", "rita")
    assert status == 201, waiver
    assert (waiver["user"], waiver["tier"], waiver["unreviewed_request"]) == ("rita", "admin", first)
    assert waiver["expires_at"] == iso(world.clock[0] + WAIVER_LIFETIME)
    (event,) = [e for e in world.events() if e.event_type == "waiver"]
    assert (event.actor, event.outcome, event.requester, event.tier, event.request_id) == (
        "sec",
        "succeeded",
        "rita",
        "admin",
        first,
    )
    assert event.reason == WAIVER_REASON and event.details["waiver_id"] == waiver["waiver_id"]

    status, second = ask(world, "rita")
    assert status == 201, second
    (admitted,) = [
        e for e in world.events() if e.event_type == "request" and e.request_id == second["request_id"]
    ]
    assert admitted.details["review_waiver"] == {
        "waiver_id": waiver["waiver_id"],
        "unreviewed_request": first,
        "unreviewed_requests": [first],
        "waived_by": "sec",
        "waiver_reason": WAIVER_REASON,
        "waiver_expires_at": waiver["expires_at"],
    }
    world.deps.store.set_status(second["request_id"], "denied")
    status, answer = ask(world, "rita")
    assert status == 409 and first in answer["error"]["message"], answer


def test_a_mistyped_code_does_not_spend_the_waiver(world: World) -> None:
    granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    status, answer = ask(world, "rita", totp="000000")
    assert status == 403 and answer["error"]["field"] == "totp"
    assert ask(world, "rita")[0] == 201


def test_security_can_waive_again_after_a_refused_try_gave_the_slot_back(world: World) -> None:
    granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    assert ask(world, "rita", totp="000000")[0] == 403
    assert world.deps.admission.live_request("admin", "rita") is None
    world.tick()
    assert waive(world, "sec", "rita")[0] == 201
    assert ask(world, "rita")[0] == 201


def test_two_requests_admitted_at_once_spend_one_waiver_once(world: World) -> None:
    granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    admission, store, now = world.deps.admission, world.deps.store, world.clock[0]
    one = admission.claim_live(
        "admin", "rita", "r261130030000aaaaaaaaaa", lookup=store.get_request, review_gate=True, now=now
    )
    # While the first is being admitted, a second is refused outright ...
    with pytest.raises(AdmissionRefused, match="being admitted"):
        admission.claim_live(
            "admin", "rita", "r261130030000bbbbbbbbbb", lookup=store.get_request, review_gate=True, now=now
        )
    # ... but an admission slower than the grace loses its slot: both then pass the gate before
    # either spends the waiver, the race the conditional write settles.
    later = now + ADMISSION_GRACE + timedelta(seconds=1)
    two = admission.claim_live(
        "admin", "rita", "r261130030000bbbbbbbbbb", lookup=store.get_request, review_gate=True, now=later
    )
    assert one is not None and one == two
    spent = [
        admission.consume_waiver("admin", "rita", one, request_id=rid, now=now)
        for rid in ("r261130030000aaaaaaaaaa", "r261130030000bbbbbbbbbb", "r261130030000bbbbbbbbbb")
    ]
    assert spent == [False, True, False]
    assert admission.slot("admin", "rita").waiver is None


def test_a_request_that_loses_the_race_for_the_waiver_is_refused_and_audited(world: World) -> None:
    granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    waiver = world.deps.admission.slot("admin", "rita").waiver
    assert waiver is not None

    class Racing(Admission):
        def consume_waiver(self, *args: Any, **kwargs: Any) -> bool:
            # Another request of rita's spends it between this one's gate check and its own spend.
            super().withdraw_waiver("admin", "rita", waiver)
            return super().consume_waiver(*args, **kwargs)

    base = world.deps.admission
    racing = dataclasses.replace(world.deps, admission=Racing(base.dynamodb, base.table))
    world.deps = racing
    status, answer = ask(world, "rita")
    assert status == 409 and "used by another request" in answer["error"]["message"]
    assert len(started(world)) == 1
    assert refused_requests(world)[-1].details["admission"] is True


@pytest.mark.parametrize("who", ["ann", "rita"])
def test_only_security_may_waive_and_a_refusal_is_on_record(world: World, who: str) -> None:
    granted_and_ended(world, "mallory")
    status, answer = waive(world, who, "mallory")
    assert status == 403 and answer["error"]["code"] == "forbidden"
    (event,) = [e for e in world.events() if e.event_type == "waiver"]
    assert (event.actor, event.outcome, event.requester) == (who, "failed", "mallory")
    assert ask(world, "mallory")[0] == 409


@pytest.mark.parametrize("spelled", ["sue", "SUE", "Sue"])
def test_security_cannot_waive_their_own_gate(world: World, spelled: str) -> None:
    granted_and_ended(world, "sue")
    world.tick()
    body = {"user": spelled, "tier": "admin", "reason": WAIVER_REASON, "totp": world.code("sue")}
    status, answer = world.call(user_arn("sue"), "POST", "/waivers", body)
    assert status == 403 and "own" in answer["error"]["message"]
    assert [e.outcome for e in world.events() if e.event_type == "waiver"] == ["failed"]
    assert ask(world, "sue")[0] == 409
    # Another security person may.
    assert waive(world, "sec", "sue")[0] == 201
    assert ask(world, "sue")[0] == 201


def test_a_waiver_for_another_person_or_tier_does_not_apply(world: World) -> None:
    granted_and_ended(world, "rita")
    granted_and_ended(world, "rita", "db")
    granted_and_ended(world, "mallory")
    assert waive(world, "sec", "mallory")[0] == 201
    assert waive(world, "sec", "rita", "db")[0] == 201
    assert ask(world, "rita")[0] == 409
    assert ask(world, "rita", "db")[0] == 201
    assert ask(world, "mallory")[0] == 201


def test_an_expired_waiver_lets_nothing_through(world: World) -> None:
    granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    world.clock[0] += WAIVER_LIFETIME
    status, answer = ask(world, "rita")
    assert status == 409 and "review-gated" in answer["error"]["message"]


def test_a_waiver_of_one_grant_does_not_let_a_request_past_a_later_one(world: World) -> None:
    first = granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    assert review(world, first)[0] == 201
    second = granted_and_ended(world, "rita")  # admitted on the review; the waiver was never spent
    status, answer = ask(world, "rita")
    assert status == 409 and second in answer["error"]["message"]


def test_a_waiver_not_on_record_lets_nobody_through(world: World) -> None:
    granted_and_ended(world, "rita")

    @dataclasses.dataclass
    class Failing(AuditWriter):
        def write(self, event: AuditEvent, *, alert: bool = True) -> str:
            if event.event_type == "waiver":
                raise RuntimeError("bucket unreachable")
            return super().write(event, alert=alert)

    writer = world.deps.audit
    assert isinstance(writer, AuditWriter)
    world.deps = dataclasses.replace(world.deps, audit=Failing(s3=writer.s3, bucket=writer.bucket))
    with pytest.raises(RuntimeError):
        waive(world, "sec", "rita")
    assert world.deps.admission.slot("admin", "rita").waiver is None
    assert ask(world, "rita")[0] == 409


@pytest.mark.parametrize(
    ("user", "tier_name", "reason", "status", "field"),
    [
        ("rita", "admin", "too short", 400, "reason"),
        ("rita", "admin", "line one\x1b[2Jforged line two", 400, "reason"),
        ("rita", "admin", "x" * 1001, 400, "reason"),
        ("rita", "operator", WAIVER_REASON, 400, "tier"),
        ("rita", "nope", WAIVER_REASON, 400, "tier"),
        ("../rita", "admin", WAIVER_REASON, 400, "user"),
        ("mallory", "admin", WAIVER_REASON, 409, "user"),  # nothing of mallory's awaits a review
    ],
)
def test_a_waiver_is_refused_naming_the_field_and_the_refusal_is_on_record(
    world: World, user: str, tier_name: str, reason: str, status: int, field: str
) -> None:
    granted_and_ended(world, "rita")
    got, answer = waive(world, "sec", user, tier_name, reason)
    assert (got, answer["error"]["field"]) == (status, field), answer
    (event,) = [e for e in world.events() if e.event_type == "waiver"]
    assert (event.actor, event.outcome) == ("sec", "failed")
    assert event.details["refused"] == answer["error"]["message"]


def test_a_waiver_needs_the_security_person_s_own_code(world: World) -> None:
    granted_and_ended(world, "rita")
    body = {"user": "rita", "tier": "admin", "reason": WAIVER_REASON, "totp": "000000"}
    status, answer = world.call(user_arn("sec"), "POST", "/waivers", body)
    assert status == 403 and answer["error"]["field"] == "totp"
    assert world.deps.admission.slot("admin", "rita").waiver is None


# -- which tiers are gated --------------------------------------------------------------------------


def test_the_halt_tier_is_never_gated_even_with_unreviewed_grants(world: World) -> None:
    for _ in range(3):
        granted_and_ended(world, "rita", "halt")
    assert waive(world, "sec", "rita", "halt")[1]["error"]["field"] == "tier"


def test_the_gate_is_off_by_default_on_operator(world: World) -> None:
    assert not POLICY["operator"].review_gate
    granted_and_ended(world, "rita", "operator")
    assert ask(world, "rita", "operator")[0] == 201


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ({"halt": {"approval": "auto", "review_gate": True}}, "tiers.halt.review_gate"),
        (
            {
                "halt": {"approval": "auto", "may_halt": False},
                "operator": {"approval": 1, "approvers": ["ann"], "review_gate": True},
            },
            "tiers.operator.review_gate",
        ),
        ({"admin": {"approval": 1, "approvers": ["ann"], "review_gate": "yes"}}, "tiers.admin.review_gate"),
    ],
)
def test_a_gate_that_would_stop_halting_is_refused_naming_the_field(
    tiers: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_policy(tiers)
    assert refused.value.field == field


def test_the_setting_goes_to_the_functions_and_back() -> None:
    assert parse_policy(json.loads(json.dumps({t: a.to_dict() for t, a in POLICY.items()}))) == POLICY


def test_a_record_stored_before_the_gate_existed_reads_as_unreviewed() -> None:
    record = RequestRecord.from_dict(
        {
            "request_id": "r261130021300aaaaaaaaaa",
            "requester": "rita",
            "requester_arn": user_arn("rita"),
            "tier": "admin",
            "reason": REASON,
            "ticket": None,
            "duration_seconds": 1800,
            "requested_at": iso(NOW),
            "status": "expired",
            "quorum": 1,
            "approvers": ["ann"],
            "starts_at": iso(NOW),
            "expires_at": iso(NOW + timedelta(minutes=30)),
        }
    )
    assert record.granted_once and record.review_verdict is None


# -- what a refused request costs ---------------------------------------------------------------------


def test_requests_the_gate_refuses_count_against_the_person_s_hour_and_a_flood_pages_once(
    world: World,
) -> None:
    alerts: list[tuple[str, bool]] = []

    @dataclasses.dataclass
    class Recording(AuditWriter):
        def write(self, event: AuditEvent, *, alert: bool = True) -> str:
            if event.event_type == "request" and event.outcome == "failed":
                alerts.append((event.details["problem"][:9], alert))
            return super().write(event, alert=alert)

    writer = world.deps.audit
    assert isinstance(writer, AuditWriter)
    world.deps = dataclasses.replace(world.deps, audit=Recording(s3=writer.s3, bucket=writer.bucket))
    granted_and_ended(world, "rita")  # one of her six this hour
    answers = [ask(world, "rita") for _ in range(7)]
    assert [status for status, _ in answers] == [409] * 5 + [429] * 2
    assert all("review-gated" in a["error"]["message"] for _, a in answers[:5])
    assert all("refused ones count" in a["error"]["message"] for _, a in answers[5:])
    # Every refusal is on record; past the limit only the first one alerts by itself.
    assert [alert for _, alert in alerts] == [True] * 6 + [False]
    # The count is per hour; the gate is not.
    world.tick(60)
    assert "review-gated" in ask(world, "rita")[1]["error"]["message"]


def test_a_request_that_could_not_be_stored_gives_the_waiver_back_and_is_on_record(world: World) -> None:
    granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    store = world.deps.store

    class Full(Store):
        def put_request(self, r: RequestRecord) -> None:
            raise StoreError("request exists")

    world.deps = dataclasses.replace(
        world.deps, store=Full(store.dynamodb, store.table, store.kms, store.kms_key_id)
    )
    status, answer = ask(world, "rita")
    assert (status, answer["error"]["field"]) == (400, "request"), answer
    assert refused_requests(world)[-1].details["field"] == "request"
    assert world.deps.admission.slot("admin", "rita").waiver is not None
    world.deps = dataclasses.replace(world.deps, store=store)
    assert ask(world, "rita")[0] == 201


def test_a_waiver_names_every_grant_that_gates_the_person(world: World) -> None:
    first = granted_and_ended(world, "rita")
    assert waive(world, "sec", "rita")[0] == 201
    second = granted_and_ended(world, "rita")
    status, answer = ask(world, "rita")
    assert status == 409 and first in answer["error"]["message"] and second in answer["error"]["message"]
    status, waiver = waive(world, "sec", "rita")
    assert status == 201 and waiver["unreviewed_requests"] == [first, second], waiver
    assert ask(world, "rita")[0] == 201


def test_an_attempt_to_review_one_s_own_grant_is_refused_before_the_code_is_spent(world: World) -> None:
    first = granted_and_ended(world, "sue")
    world.tick()
    code = world.code("sue")
    body = {"verdict": "accepted", "notes": "", "totp": code}
    status, answer = world.call(user_arn("sue"), "POST", f"/requests/{first}/review", body)
    assert status == 403 and "own" in answer["error"]["message"], answer
    verify_totp(world.deps.store, "sue", code, now=world.clock[0])  # still unspent
