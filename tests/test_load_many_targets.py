"""A 500-target halt at once while people ask: examples/many-targets in the emulator, IAM enforced.

The deployment declares 500 deny-invoke targets over 25 invoker roles (its targets ship in the
halt function's archive, not its 4 KB environment). While responders' requests run through the
access API, the deployed halt function is invoked for every target at once, as the access API does
for a verified caller: every target is halted once, each has its one audit event, the requests
run as if alone, and one resume brings all 500 back. Timings are in ``benchmarks/load.py``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from breakglass.local.world import World, open_world
from breakglass.policies.documents import policy_size
from breakglass.policies.halt import HALT_POLICY_PREFIX

MANY_TARGETS = Path(__file__).parent.parent / "examples" / "many-targets"
TARGETS = [f"model-{i:03d}" for i in range(500)]
INVOKERS = [f"fleet-invoker-{i}" for i in range(25)]
INLINE_QUOTA = 10_240  # IAM: characters of inline policy per role (the emulator does not enforce it)
PEOPLE = {
    "p00": ("responder",),
    "p01": ("responder",),
    "p02": ("responder",),
    "p03": ("responder",),
    "ann": ("approver",),
    "bob": ("approver",),
    "sec": ("security",),
}
REASON = "load: the whole fleet answers with leaked data"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(MANY_TARGETS, name="fleet", people=PEOPLE) as opened:
        iam = opened.emulator.client("iam")
        for role in INVOKERS:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
        yield opened


def submit(world: World, person: str, tier: str) -> str:
    body = {"tier": tier, "reason": REASON, "duration": "1h", "totp": world.code(person)}
    return str(world.access_api(person).post("/requests", body)["request_id"])


def invoke(world: World, output: str, event: dict[str, Any]) -> dict[str, Any]:
    """The deployed function, invoked as the access API invokes it for a verified caller."""
    answer = world.emulator.client("lambda").invoke(
        FunctionName=str(world.deployment.output(output)), Payload=json.dumps(event)
    )
    assert "FunctionError" not in answer, answer["Payload"].read()[:2000]
    return dict(json.loads(answer["Payload"].read()))


def inline_chars(world: World, role: str) -> int:
    """What the role's inline policies count against IAM's quota (white space removed)."""
    iam = world.emulator.client("iam")
    return sum(
        policy_size(_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]))
        for name in iam.list_role_policies(RoleName=role, MaxItems=1000)["PolicyNames"]
    )


def _document(document: Any) -> Any:
    return json.loads(document) if isinstance(document, str) else document


def denied_endpoints(world: World) -> dict[str, set[str]]:
    """Per invoker role, the endpoints its halt deny pages name (targets share pages per role)."""
    iam = world.emulator.client("iam")
    denied: dict[str, set[str]] = {}
    for role in INVOKERS:
        denied[role] = set()
        for name in iam.list_role_policies(RoleName=role, MaxItems=1000)["PolicyNames"]:
            if name.startswith(HALT_POLICY_PREFIX):
                document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                text = document if isinstance(document, str) else json.dumps(document)
                denied[role] |= set(re.findall(r"endpoint/(model-\d{3})", text))
    return denied


def test_a_500_target_halt_at_once_during_requests_halts_each_target_once_and_one_resume_undoes_it(
    world: World,
) -> None:
    caller = submit(world, "p00", "halt")
    world.wait_for(caller, ["granted"])
    event = {"targets": "all", "mode": "deny-invoke", "reason": REASON, "actor": "p00", "request_id": caller}

    with ThreadPoolExecutor(max_workers=4) as pool:
        halting = pool.submit(invoke, world, "halt_function", event)
        asked = dict(
            zip(
                ("p01", "p02", "p03"),
                pool.map(
                    lambda pt: submit(world, *pt), [("p01", "halt"), ("p02", "operator"), ("p03", "operator")]
                ),
                strict=True,
            )
        )
        halted = halting.result()

    # Every target halted, each once, by the one call.
    assert halted["status"] == "ok"
    assert Counter(r["target"] for r in halted["results"]) == Counter(TARGETS)
    assert {r["outcome"] for r in halted["results"]} == {"halted"}
    assert denied_endpoints(world) == {
        role: set(TARGETS[i :: len(INVOKERS)]) for i, role in enumerate(INVOKERS)
    }
    # Each role's pages fit the quota AWS would hold them to.
    assert max(inline_chars(world, role) for role in INVOKERS) <= INLINE_QUOTA

    # The requests made meanwhile ran as if alone: one granted outright, two waiting for a quorum,
    # then decided independently.
    world.wait_for(asked["p01"], ["granted"])
    for person, decision in (("p02", "approve"), ("p03", "deny")):
        link = world.approval_links("ann", asked[person], wait=30)[0]
        assert world.decide("ann", link, decision)[0] == 200
    assert world.wait_for(asked["p02"], ["granted"])["status"] == "granted"
    assert world.wait_for(asked["p03"], ["denied"])["status"] == "denied"

    resumed = invoke(world, "resume_function", {**event, "reason": "fleet patched"})
    assert resumed["status"] == "ok"
    assert Counter(r["target"] for r in resumed["results"]) == Counter(TARGETS)
    assert {r["outcome"] for r in resumed["results"]} == {"resumed"}
    assert denied_endpoints(world) == {role: set() for role in INVOKERS}

    # Every audit event exactly once: one halt and one resume per target, one request per person.
    events = world.audit_events()
    assert len({e.event_id for e in events}) == len(events)
    for kind in ("halt", "resume"):
        recorded = Counter(e.target for e in events if e.event_type == kind)
        assert recorded == Counter(TARGETS), kind
        assert {(e.actor, e.request_id, e.outcome) for e in events if e.event_type == kind} == {
            ("p00", caller, "succeeded")
        }
    requests = Counter(e.request_id for e in events if e.event_type == "request")
    assert requests == Counter([caller, *asked.values()])
    grants = Counter(e.request_id for e in events if e.event_type == "grant")
    assert grants == Counter([caller, asked["p01"], asked["p02"]])
