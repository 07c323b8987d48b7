"""Load on examples/many-targets deployed into the emulator (IAM enforced): fifty requests at once
and a 500-target halt.

Fifty responders (``--people``) each send one request at the same moment (threads, through the
access API as themselves) across the tiers; approvers answer from their emails, several at a time
(two grants per tier, the rest denied: a tier's trust policy holds two live grants at IAM's
default quota). While that runs, a probe opens an approval link again and again, and the deployed
halt function is invoked for all of the deployment's 500 deny-invoke targets at once (25
invoker roles). Printed:

- requests/s: the fifty submissions, first sent to last answered;
- the approval API under load: p50/p95 of opening an approval link (GET) and of a decision (POST),
  against its budget (the approval function's configured timeout; API Gateway's own limit is 30 s);
- the halt under load: time of the halt function's answer, its outcomes counted per target (and
  any target not halted, by name);
- audit events expected vs found, and how many are duplicated (by event id and by what they record).

It exits 1, after one ``DIFFERS:`` line per difference, when a request did not end as decided
(granted or denied), a target was not halted, or the audit events are not each there exactly
once.

The targets ship in the halt function's archive (``breakglass-halt.json``), so one deployed
function holds them all; ``benchmarks/halt_fanout.py`` measures the service's fan-out alone.

    .venv/bin/python benchmarks/load.py [--people 50] [--approvers 5]

Everything runs in this process (moto server, Step Functions interpreter, Lambda handlers under
their own roles, one interpreter lock), so the figures are the code's own cost plus the
emulator's, without network latency or cold starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from breakglass.local.world import World, open_world

PROGRAM = Path(__file__).resolve().parents[1] / "examples" / "many-targets"
INVOKERS = [f"fleet-invoker-{i}" for i in range(25)]  # the program's invoker roles
TARGETS = 500  # the program's default targetCount: every one is halted

TIERS = ("halt", "operator", "admin")
GRANTED_PER_TIER = 2
REASON = "load: the fraud model approves every transaction"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def submit(world: World, person: str, tier: str) -> dict[str, Any]:
    body: dict[str, Any] = {"tier": tier, "reason": REASON, "duration": "1h", "totp": world.code(person)}
    if tier == "admin":
        body["ticket"] = "INC-5050"
    return dict(world.access_api(person).post("/requests", body))


def status(world: World, request_id: str) -> str:
    return str(world.access_api("sec").get(f"/requests/{request_id}")["status"])


def differences(
    *,
    statuses: dict[str, tuple[str, str]],
    halted: tuple[int, int, list[str]],
    targets: int,
    events: tuple[int, int, int, int],
) -> list[str]:
    """What is not as expected, one line each (empty: the run holds). ``statuses``: person ->
    (final, expected); ``halted``: (results, halted, not halted); ``events``: (found, expected,
    duplicate ids, duplicate facts)."""
    problems = [
        f"{person} ended {final}, expected {wanted}"
        for person, (final, wanted) in sorted(statuses.items())
        if final != wanted
    ]
    results, done, not_halted = halted
    if results != targets or done != targets:
        problems.append(
            f"halt: {done} of {targets} targets halted ({results} results); not halted: {not_halted}"
        )
    found, expected, duplicate_ids, duplicate_facts = events
    if found != expected:
        problems.append(f"audit events: {found} found, {expected} expected")
    if duplicate_ids or duplicate_facts:
        problems.append(f"audit events: {duplicate_ids} duplicate ids, {duplicate_facts} duplicate facts")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--approvers", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    responders = [f"p{i:02d}" for i in range(args.people)]
    approvers = [f"a{i}" for i in range(args.approvers)]
    people = {**{p: ("responder",) for p in responders}, **{a: ("approver",) for a in approvers}}
    people["sec"] = ("security",)
    plan = {p: "halt" if i < GRANTED_PER_TIER else TIERS[1 + i % 2] for i, p in enumerate(responders)}

    started = time.perf_counter()
    with open_world(PROGRAM, name="load", people=people) as world:
        iam = world.emulator.client("iam")
        for role in INVOKERS:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
        print(
            f"world: {len(people)} people enrolled, many-targets deployed in {time.perf_counter() - started:.1f} s"
        )

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            made = dict(
                zip(responders, pool.map(lambda p: submit(world, p, plan[p]), responders), strict=True)
            )
        submitted = time.perf_counter() - began
        rid = {p: str(m["request_id"]) for p, m in made.items()}
        print(f"requests: {len(rid)} in {submitted:.2f} s = {len(rid) / submitted:.1f} requests/s")

        votes: dict[str, list[tuple[str, str]]] = {a: [] for a in approvers}
        granted = {p for p in responders if plan[p] == "halt"}
        for tier in ("operator", "admin"):
            for n, person in enumerate(p for p in responders if plan[p] == tier):
                if n < GRANTED_PER_TIER:
                    granted.add(person)
                    votes[approvers[0]].append((rid[person], "approve"))
                    if tier == "admin":
                        votes[approvers[1]].append((rid[person], "approve"))
                else:
                    votes[approvers[n % len(approvers)]].append((rid[person], "deny"))

        posts: list[float] = []
        gets: list[float] = []
        lock = threading.Lock()
        done = threading.Event()

        def decide_all(approver: str) -> None:
            for request_id, decision in votes[approver]:
                link = world.approval_links(approver, request_id, wait=60)[0]
                t0 = time.perf_counter()
                code, _ = world.decide(approver, link, decision)
                with lock:
                    posts.append(time.perf_counter() - t0)
                if code != 200:
                    print(f"  {approver} {decision} {request_id}: HTTP {code}")

        def probe() -> None:
            person = next(p for p in responders if plan[p] == "operator")
            link = world.approval_links(approvers[0], rid[person], wait=60)[0]
            while not done.is_set():
                t0 = time.perf_counter()
                world.open_link(link)
                gets.append(time.perf_counter() - t0)
                time.sleep(0.05)

        halt_answer: dict[str, Any] = {}

        def halt_under_load() -> None:
            halter = next(p for p in responders if plan[p] == "halt")
            event = {
                "mode": "deny-invoke",
                "targets": "all",
                "actor": halter,
                "reason": REASON,
                "request_id": rid[halter],
            }
            t0 = time.perf_counter()
            answer = world.emulator.client("lambda").invoke(
                FunctionName=world.deployment.function_arn(
                    next(
                        r.name
                        for r in world.deployment.by_type("aws:lambda/function:Function")
                        if r.name.endswith("-halt")
                    )
                ),
                Payload=json.dumps(event).encode(),
            )
            halt_answer["seconds"] = time.perf_counter() - t0
            halt_answer["payload"] = json.loads(answer["Payload"].read())

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(approvers) + 1) as pool:
            halting = pool.submit(halt_under_load)
            list(pool.map(decide_all, approvers))
            halting.result()
        decided = time.perf_counter() - began
        finals: dict[str, str] = {}
        for person in responders:
            deadline = time.monotonic() + 60
            while (finals.setdefault(person, status(world, rid[person]))) not in (
                "granted",
                "denied",
                "revoked",
            ):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
                finals[person] = status(world, rid[person])
        done.set()
        prober.join()
        budget = next(
            r.outputs.get("timeout")
            for r in world.deployment.by_type("aws:lambda/function:Function")
            if r.name.endswith("approval-api")
        )
        print(
            f"decisions: {sum(len(v) for v in votes.values())} by {len(approvers)} approvers in {decided:.2f} s"
        )
        print(
            f"approval API under load: GET p50 {percentile(gets, 0.5) * 1000:.0f} ms, p95 "
            f"{percentile(gets, 0.95) * 1000:.0f} ms ({len(gets)} opens); POST p50 "
            f"{percentile(posts, 0.5) * 1000:.0f} ms, p95 {percentile(posts, 0.95) * 1000:.0f} ms "
            f"({len(posts)} decisions); budget: the function's timeout {budget} s, API Gateway's 30 s"
        )
        results = halt_answer["payload"].get("results", [])
        outcomes = Counter(str(r.get("outcome")) for r in results)
        not_halted = sorted(str(r.get("target")) for r in results if r.get("outcome") != "halted")
        print(
            f"halt under load: {len(results)} targets in {halt_answer['seconds']:.2f} s, outcomes "
            f"{dict(outcomes) or halt_answer['payload']}; not halted: {not_halted or 'none'}"
        )
        print(
            f"statuses: {dict(Counter(finals.values()))} (expected granted {len(granted)}, denied {len(responders) - len(granted)})"
        )

        for person in granted:
            if finals.get(person) == "granted":
                world.end_window(rid[person])
        events = [e for e in world.audit_events() if e.request_id in set(rid.values())]
        # request each; approval per auto-approved request (system:auto), per quorum request (its
        # round opened) and per approving vote; vote and final denial per denied request; grant,
        # expiry and review per grant; the halt's one event per target.
        auto = sum(1 for p in responders if plan[p] == "halt")
        approving = sum(1 for v in votes.values() for _, d in v if d == "approve")
        denied = len(responders) - len(granted)
        expected = (
            len(responders)
            + auto
            + (len(responders) - auto)
            + approving
            + 2 * denied
            + 3 * len(granted)
            + len(results)
        )
        kinds = Counter(e.event_type for e in events)
        by_fact = Counter(
            (e.request_id, e.event_type, e.actor, e.outcome, e.target, e.details.get("cause")) for e in events
        )
        duplicate_ids = len(events) - len({e.event_id for e in events})
        duplicate_facts = sum(n - 1 for n in by_fact.values() if n > 1)
        print(
            f"audit events: {len(events)} found, {expected} expected; "
            f"{duplicate_ids} duplicate ids, {duplicate_facts} duplicate facts; by type {dict(kinds)}"
        )
        print(f"total: {time.perf_counter() - started:.1f} s")
        expected_status = {p: "granted" if p in granted else "denied" for p in responders}
        problems = differences(
            statuses={p: (finals.get(p, "?"), expected_status[p]) for p in responders},
            halted=(len(results), outcomes["halted"], not_halted),
            targets=TARGETS,
            events=(len(events), expected, duplicate_ids, duplicate_facts),
        )
    for problem in problems:
        print(f"DIFFERS: {problem}")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
