"""Sixty responders and forty approvers: the grant Lambdas' tiers and approval policy list them
all, and Lambda refuses an environment over 4 KB, so they travel in files of the archive.

The emulator refuses such an environment as AWS does; this deploys examples/quickstart with all
of them (IAM enforced) and runs one request to a grant, approved from an email.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from breakglass.contracts import LAMBDA_ENVIRONMENT_MAX_BYTES, environment_bytes
from breakglass.local.world import World, open_world

RESPONDERS = [f"responder{i:02d}" for i in range(60)]
APPROVERS = [f"approver{i:02d}" for i in range(40)]
PEOPLE = {
    **{p: ("responder",) for p in RESPONDERS},
    **{a: ("approver",) for a in APPROVERS},
    "sec": ("security",),
}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="many", people=PEOPLE) as opened:
        yield opened


def test_sixty_responders_and_forty_approvers_deploy_and_a_request_is_granted_from_an_email(
    world: World,
) -> None:
    person, approver = RESPONDERS[-1], APPROVERS[-1]
    body = {"tier": "operator", "reason": "the fraud model approves everything", "duration": "1h"}
    answer = world.access_api(person).post("/requests", {**body, "totp": world.code(person)})
    request_id = str(answer["request_id"])
    links = world.approval_links(approver, request_id, wait=30)
    assert links, f"{approver} got no email for {request_id}"
    assert world.decide(approver, links[0], "approve")[0] == 200
    assert world.wait_for(request_id, ["granted"])["status"] == "granted"


def test_every_deployed_function_environment_stays_well_under_lambdas_limit(world: World) -> None:
    client = world.emulator.client("lambda")
    sizes = {}
    for page in client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            sizes[function["FunctionName"]] = environment_bytes(
                function.get("Environment", {}).get("Variables", {})
            )
    assert sizes
    # Margin: what a longer prefix, region or account would add stays within the limit.
    assert max(sizes.values()) < LAMBDA_ENVIRONMENT_MAX_BYTES // 2, sizes
