"""Attacks on extensions and scheduled starts (security review of issue 13's extensions).

Each test is one attack of the review, written before its fix (it failed then), and states the
property the design promises against it (docs/security.md, "Extensions and scheduled starts:
the choices made").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_access_api
import test_review_gate
import test_workflow_guards
from fixtures.audit.scenario import EVENTS, write_cloudtrail, write_events
from test_access_api import World, granted, user_arn
from test_extensions import extend, grant_it

from breakglass.cli.report import _after_the_window, build_incident
from breakglass.lambdas.audit.events import AuditEvent
from breakglass.local.athena import LocalBucket

world = test_access_api.world
gated = test_review_gate.world  # the access API with review-gated tiers (a fixture)
guarded = test_workflow_guards.world  # moto's IAM behind the workflow's grant (a fixture)


# -- finding 1: the original cannot be revoked once its own window ended --------------------------


def test_revoking_the_original_during_its_extension_s_window_ends_the_chain(world: World) -> None:
    original = granted(world, "rita")  # 30 min window
    _, made = extend(world, "rita", original)
    grant_it(world, made["request_id"])
    world.tick(31)  # the first window ended; the workflow recorded it, the extension's holds now
    world.deps.store.set_status(original, "expired")
    # security (or the requester, following "revoke the original to end everything") revokes it
    status, answer = world.call(
        user_arn("rita"), "POST", f"/requests/{original}/revoke", {"totp": world.code("rita")}
    )
    assert status == 200, answer
    (call,) = [c for c in world.lam.calls if c[0] == "invoke"]
    assert call[1]["Payload"]["action"] == "early_revoke"


def test_a_pending_extension_is_withdrawn_by_revoking_the_original_after_its_window_ended(
    world: World,
) -> None:
    original = granted(world, "rita")
    _, made = extend(world, "rita", original)  # still waiting for its workflow
    world.tick(31)
    world.deps.store.set_status(original, "expired")
    status, answer = world.call(
        user_arn("rita"), "POST", f"/requests/{original}/revoke", {"totp": world.code("rita")}
    )
    assert status == 200 and answer["extensions_withdrawn"] == [made["request_id"]], answer
    assert world.deps.store.get_request(made["request_id"]).status == "denied"  # type: ignore[union-attr]


def test_an_ended_request_with_nothing_live_after_it_still_has_no_access_to_revoke(world: World) -> None:
    original = granted(world, "rita")
    world.tick(31)
    world.deps.store.set_status(original, "expired")
    status, answer = world.call(
        user_arn("rita"), "POST", f"/requests/{original}/revoke", {"totp": world.code("rita")}
    )
    assert status == 403 and "no access to revoke" in answer["error"]["message"], answer


def _chain_of_two(guarded: Any) -> tuple[str, str]:
    """r1 granted now (30 min), r2 its extension granted ahead (opens at r1's expiry)."""
    from test_workflow_guards import record

    from breakglass.lambdas.approvals import workflow

    store, deps = guarded.deps.store, guarded.deps
    store.put_request(record("r1", "approved"))
    opened = workflow.grant(deps, "r1")
    store.put_request(
        record(
            "r2",
            "approved",
            start_at=opened["expires_at"],
            extends="r1",
            extends_starts_at=opened["starts_at"],
        )
    )
    assert store.link_extension("r1", "r2", replaces=None)
    workflow.grant(deps, "r2")
    return "r1", "r2"


def test_revoking_an_ended_original_revokes_its_extension_and_leaves_the_original_s_record_alone(
    guarded: Any,
) -> None:
    from test_workflow_guards import NOW

    from breakglass.lambdas.access import early_revoke

    first, second = _chain_of_two(guarded)
    guarded.deps.store.set_status(first, "expired")
    before = len(guarded.events())
    done = early_revoke.revoke_now(
        guarded.deps.store,
        guarded.iam,
        guarded.deps.audit,
        guarded.deps.tiers,
        early_revoke.EarlyRevokeRequest(first, "rita"),
        now=NOW,
    )
    assert done["extensions_revoked"] == [second] and done["original_status"] == "expired"
    assert guarded.deps.store.get_request(first).status == "expired"  # type: ignore[union-attr]
    assert guarded.deps.store.get_request(second).status == "revoked"  # type: ignore[union-attr]
    written = [(e.event_type, e.request_id) for e in guarded.events()[before:]]
    assert written == [("revoke", second)]


def test_the_revoke_at_the_original_s_expiry_leaves_its_extension_to_open(guarded: Any) -> None:
    from dataclasses import replace as _replace

    from breakglass.contracts import parse_iso
    from breakglass.lambdas.approvals import workflow
    from breakglass.policies.emergency_role import grant_trust_sids

    first, second = _chain_of_two(guarded)
    store = guarded.deps.store
    expiry = parse_iso(store.get_request(first).expires_at)  # type: ignore[union-attr,arg-type]
    done = workflow.revoke(_replace(guarded.deps, clock=lambda: expiry), first, {})
    assert done["event_type"] == "expiry" and done["extensions_revoked"] == []
    assert store.get_request(second).status == "granted"  # type: ignore[union-attr]
    trust = guarded.iam.get_role(RoleName="breakglass-emergency-halt")["Role"]["AssumeRolePolicyDocument"]
    assert grant_trust_sids(second)[0] in [s.get("Sid") for s in trust["Statement"]]


def test_another_person_s_window_waiting_to_open_does_not_hold_back_a_grant_ahead(guarded: Any) -> None:
    from dataclasses import replace as _replace
    from datetime import timedelta

    from test_workflow_guards import NOW, record

    from breakglass.contracts import iso
    from breakglass.lambdas.approvals import workflow

    sam = "arn:aws:iam::123456789012:user/sam"
    tier = _replace(guarded.tier, allowed_requesters=(*guarded.tier.allowed_requesters, sam))
    deps = _replace(guarded.deps, tiers={"halt": tier})
    start = iso(NOW + timedelta(hours=1))
    deps.store.put_request(record("r1", "approved", start_at=start))
    workflow.grant(deps, "r1")
    deps.store.put_request(record("r2", "approved", start_at=start, requester="sam", requester_arn=sam))
    assert workflow.grant(deps, "r2")["starts_at"] == start


def test_the_reconciler_s_revoke_of_a_stopped_original_ends_its_granted_extension(guarded: Any) -> None:
    from test_workflow_guards import execution_arn, reconciler, trust_sids

    first, second = _chain_of_two(guarded)
    store = guarded.deps.store
    store.bind_execution(first, execution_arn(first))
    store.bind_execution(second, execution_arn(second))
    guarded.runs.run(first, "Validate", "Grant", "WaitUntilExpiry", status="ABORTED")  # stopped by hand
    guarded.runs.run(second, "Validate", "Grant", "WaitUntilExpiry")  # its own run goes on
    (done,) = reconciler(guarded)["repaired"]
    assert done["revoked"] == "revoke" and done["extensions_revoked"] == [second]
    assert store.get_request(second).status == "revoked"  # type: ignore[union-attr]
    assert not any(s.startswith("Grant") for s in trust_sids(guarded))


def test_an_extension_that_loses_the_race_for_its_grant_is_stored_denied_with_a_denial_event(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = granted(world, "rita")
    store = world.deps.store
    put = store.put_request

    def revoked_meanwhile(record: Any) -> None:  # a revoke lands between the checks and the link
        put(record)
        if record.extends:
            store.set_status(record.extends, "revoked")

    monkeypatch.setattr(store, "put_request", revoked_meanwhile)
    status, answer = extend(world, "rita", original)
    assert status == 409 and "changed meanwhile" in answer["error"]["message"], answer
    (denial,) = [e for e in world.events() if e.event_type == "denial"]
    assert denial.details["extends"] == original
    assert store.get_request(denial.request_id).status == "denied"  # type: ignore[union-attr,arg-type]


# -- finding 2: the incident report hides a re-extension ---------------------------------------------


def _event(n: int, kind: str, request_id: str, at: str, **fields: Any) -> AuditEvent:
    return AuditEvent(
        kind,
        fields.pop("actor", "system"),
        request_id=request_id,
        requester="erin",
        tier="ops",
        event_time=at,
        event_id=f"00000000-0000-4000-8000-{950 + n:012d}",
        **fields,
    )


def test_the_report_draws_an_extension_granted_after_an_earlier_extension_was_revoked(
    tmp_path: Path,
) -> None:
    # erin's req-0003 (15:00-15:30) is extended by req-0004, which she revokes before it opens,
    # then extended again by req-0007 (15:30-16:00), which runs to its expiry.
    events = (
        _event(1, "grant", "req-0004", "2025-03-15T15:10:00Z", window_start="2025-03-15T15:30:00Z",
               expires_at="2025-03-15T16:00:00Z", details={"extends": "req-0003"}),
        _event(2, "revoke", "req-0004", "2025-03-15T15:12:00Z", actor="erin"),
        _event(3, "grant", "req-0007", "2025-03-15T15:14:00Z", window_start="2025-03-15T15:30:00Z",
               expires_at="2025-03-15T16:00:00Z", details={"extends": "req-0003"}),
        _event(4, "expiry", "req-0007", "2025-03-15T16:00:00Z"),
    )  # fmt: skip
    copy = tmp_path / "copy"
    write_cloudtrail(copy)
    write_events(copy, (*EVENTS, *events))
    incident = build_incident(LocalBucket(copy), "req-0003")
    assert "req-0007" in [w.request_id for w in incident.extensions]
    assert not _after_the_window(incident, "2025-03-15T15:45:00Z")  # inside req-0007's window


def test_a_report_asked_for_an_extension_covers_the_chain_from_its_first_window(tmp_path: Path) -> None:
    from breakglass.cli.report import Window

    events = (
        _event(1, "grant", "req-0004", "2025-03-15T15:10:00Z", window_start="2025-03-15T15:30:00Z",
               expires_at="2025-03-15T16:00:00Z", details={"extends": "req-0003"}),
        _event(2, "revoke", "req-0004", "2025-03-15T15:12:00Z", actor="erin"),
        _event(3, "grant", "req-0007", "2025-03-15T15:14:00Z", window_start="2025-03-15T15:30:00Z",
               expires_at="2025-03-15T16:00:00Z", details={"extends": "req-0003"}),
    )  # fmt: skip
    copy = tmp_path / "copy"
    write_cloudtrail(copy)
    write_events(copy, (*EVENTS, *events))
    incident = build_incident(LocalBucket(copy), "req-0007")
    assert incident.request_id == "req-0003" and any("from req-0003" in n for n in incident.notes)
    # the extension revoked before it opened is drawn as an empty window, never one ending before it starts
    assert incident.extensions[0] == Window(
        "req-0004", "2025-03-15T15:30:00Z", "2025-03-15T16:00:00Z", "2025-03-15T15:30:00Z", "revoke"
    )


# -- finding 3: one person's scheduled grant and its extension fill the tier's trust for hours ------


def test_a_window_scheduled_hours_ahead_and_its_extension_leave_room_for_another_responder_now(
    guarded: Any,
) -> None:
    from dataclasses import replace as _replace
    from datetime import timedelta

    from test_workflow_guards import NOW, record

    from breakglass.contracts import iso
    from breakglass.lambdas.access import grants
    from breakglass.lambdas.approvals import workflow

    sam = "arn:aws:iam::123456789012:user/sam"
    tier = _replace(guarded.tier, allowed_requesters=(*guarded.tier.allowed_requesters, sam))
    deps = _replace(guarded.deps, tiers={"halt": tier})
    store = deps.store
    # rita (auto tier, nobody asked) schedules her halt window 4 h ahead and extends it at once
    first, second = "r261130021300aaaaaaaaaa", "r261130021301bbbbbbbbbb"
    start = NOW + timedelta(hours=4)
    store.put_request(record(first, "approved", start_at=iso(start)))
    workflow.grant(deps, first)
    store.set_status(first, "granted")
    store.put_request(
        record(
            second,
            "approved",
            start_at=iso(start + timedelta(minutes=30)),
            extends=first,
            extends_starts_at=iso(start),
        )
    )
    assert store.link_extension(first, second, replaces=None)
    # (the access API refuses to extend a window that has not opened; the access function, the only
    # one that writes trust statements, holds one waiting window per person and tier whatever asks)
    with pytest.raises(grants.GrantError, match="waiting to open"):
        workflow.grant(deps, second)
    # now, hours before rita's window opens, sam needs the halt tier for a real incident
    urgent = "r261130021302cccccccccc"
    store.put_request(record(urgent, "approved", requester="sam", requester_arn=sam))
    workflow.grant(deps, urgent)  # was refused: GrantError, "over the 2048 quota"
    assert store.get_request(urgent).status == "granted"  # type: ignore[union-attr]


# -- finding 4: the review gate looks at the last link of a chain only ---------------------------------


def test_the_review_gate_holds_while_any_window_of_the_person_s_chain_has_no_verdict(
    gated: Any,
) -> None:
    from datetime import timedelta

    import test_review_gate as rg

    from breakglass.contracts import iso, parse_iso

    w = gated
    status, made = rg.ask(w, "rita")  # admin, quorum 1, review-gated
    assert status == 201, made
    first = str(made["request_id"])
    store = w.deps.store
    store.set_status(first, "approved")
    store.set_status(first, "granted")
    now = w.clock[0]
    store.set_grant_window(first, iso(now), iso(now + timedelta(minutes=30)))
    # rita asks for a 15-minute extension; ann approves it in passing; it is granted ahead ...
    status, ext = extend(w, "rita", first, by="15m")
    assert status == 201, ext
    second = str(ext["request_id"])
    store.set_status(second, "approved")
    store.set_status(second, "granted")
    start = parse_iso(ext["start_at"])
    store.set_grant_window(second, iso(start), iso(start + timedelta(minutes=15)))
    # ... and she revokes it herself before it opens: a review with nothing in it
    store.set_status(second, "revoked")
    w.tick(31)
    store.set_status(first, "expired")
    for ended in (first, second):  # what the workflows do as each grant ends
        store.mark_review_opened(ended)
    assert rg.review(w, second)[0] == 201  # security accepts the empty extension
    status, answer = rg.ask(w, "rita")
    assert status == 409 and first in answer["error"]["message"], answer  # first has no verdict


# -- finding 5: an approver of a second extension is not told the chain is already two windows long ----


def test_the_approval_email_of_an_extension_shows_when_the_person_s_access_first_opened() -> None:
    from test_workflow_guards import record

    from breakglass.lambdas.approvals import mail

    first_opened = "2026-11-30T02:13:00Z"  # req A: 02:13-02:43, B: 02:43-03:13, C asks 03:13-03:43
    third = record(
        "r261130030000cccccccccc",
        "pending",
        start_at="2026-11-30T03:13:00Z",
        extends="r261130024300bbbbbbbbbb",
        extends_starts_at="2026-11-30T02:43:00Z",
        # what the access API stores on an extension (test_an_extension_records_its_chain_...)
        chain_starts_at=first_opened,
        chain_window=3,
        chain_cap_seconds=7200,
    )
    text = mail.approval_text(third, "https://approvals.example.com/x", "2026-11-30T04:00:00Z")
    assert first_opened in text, text
    assert "window 3, 1 h 30 min of the 2 h cap used if approved" in text, text
    notice = mail.auto_approve_notice(third)
    assert first_opened in notice.text and first_opened in notice.html


def test_an_extension_records_its_chain_s_start_its_place_and_the_cap(world: World) -> None:
    from breakglass.lambdas.approvals.requests import total_cap

    original = granted(world, "rita")
    started = world.deps.store.get_request(original).starts_at  # type: ignore[union-attr]
    _, made = extend(world, "rita", original)
    grant_it(world, made["request_id"])
    world.tick(31)
    _, again = extend(world, "rita", made["request_id"])
    stored = world.deps.store.get_request(again["request_id"])
    assert stored is not None
    cap = total_cap(world.deps.policy["halt"], world.deps.tiers["halt"])
    assert (stored.chain_starts_at, stored.chain_window, stored.chain_cap_seconds) == (started, 3, cap)


# -- finding 6: a revoke of the original by the workflow (after a failure) leaves its extension granted ---


def test_a_revoke_of_the_original_after_a_workflow_failure_ends_its_granted_extension(guarded: Any) -> None:
    from datetime import timedelta

    from iam_eval import assume_context, can_assume
    from test_workflow_guards import NOW, RITA, record

    from breakglass.contracts import iso
    from breakglass.lambdas.approvals import workflow

    store, deps = guarded.deps.store, guarded.deps
    first, second = "r261130021300aaaaaaaaaa", "r261130021301bbbbbbbbbb"
    store.put_request(record(first, "approved"))
    opened = workflow.grant(deps, first)
    store.put_request(
        record(
            second,
            "approved",
            start_at=opened["expires_at"],
            extends=first,
            extends_starts_at=opened["starts_at"],
        )
    )
    assert store.link_extension(first, second, replaces=None)
    workflow.grant(deps, second)  # approved early: its window opens at the first one's expiry
    # the first run fails after its grant: the workflow revokes the original at once
    workflow.revoke(deps, first, {"failure": {"Error": "States.TaskFailed", "Cause": "notify failed"}})
    assert store.get_request(first).status == "revoked"  # type: ignore[union-attr]
    trust = guarded.iam.get_role(RoleName="breakglass-emergency-halt")["Role"]["AssumeRolePolicyDocument"]
    later = NOW + timedelta(minutes=40)  # inside the extension's window
    context = assume_context(now=later, source_identity="rita", request_id=second)
    assert not can_assume(trust, guarded.tier.role_arn, RITA, context), iso(later)
    assert store.get_request(second).status != "granted"  # type: ignore[union-attr]


# -- finding 7: extending a window that has not opened parks access beyond the scheduling horizon ------


def test_no_window_is_granted_further_ahead_than_the_tier_s_scheduling_horizon(world: World) -> None:
    from datetime import timedelta

    from test_access_api import ask

    from breakglass.contracts import iso, parse_iso

    horizon = world.deps.policy["halt"].max_start_delay_seconds
    status, made = ask(world, "rita", start_at="+4h")  # the horizon, on the auto-approved halt tier
    assert status == 201, made
    first = made["request_id"]
    grant_it(world, first)  # the workflow grants a scheduled window at approval time
    status, ext = extend(world, "rita", first, by="30m")  # nothing was used, yet "more time"
    latest_start = world.clock[0] + timedelta(seconds=horizon)
    assert status != 201 or parse_iso(ext["start_at"]) <= latest_start, (
        f"extension opens at {ext['start_at']}, horizon ends {iso(latest_start)}"
    )
