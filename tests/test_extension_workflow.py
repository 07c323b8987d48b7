"""The workflow's grant of scheduled requests and extensions: which window IAM gets, and when none.

Run against moto's IAM, DynamoDB and S3 (tests/test_workflow_guards.py's world); the windows are
then evaluated as IAM evaluates the trust policy (iam_eval).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import test_workflow_guards
from iam_eval import assume_context, can_assume
from test_workflow_guards import NOW, RITA, World, record

from breakglass.contracts import iso
from breakglass.lambdas.access import grants
from breakglass.lambdas.approvals import workflow

world = test_workflow_guards.world  # moto's IAM, DynamoDB and S3 behind the workflow (a fixture)


def trust(world: World) -> dict[str, object]:
    return dict(world.iam.get_role(RoleName="breakglass-emergency-halt")["Role"]["AssumeRolePolicyDocument"])


def assumes(world: World, request_id: str, at: object) -> bool:
    context = assume_context(now=at, source_identity="rita", request_id=request_id)  # type: ignore[arg-type]
    return can_assume(trust(world), world.tier.role_arn, RITA, context)


def test_a_scheduled_grant_keeps_the_role_shut_until_the_planned_start(world: World) -> None:
    start = NOW + timedelta(hours=1)
    world.deps.store.put_request(record(status="approved", start_at=iso(start)))
    granted = workflow.grant(world.deps, "r1")
    assert (granted["starts_at"], granted["expires_at"]) == (iso(start), iso(start + timedelta(minutes=30)))
    assert not assumes(world, "r1", start - timedelta(seconds=1))
    assert assumes(world, "r1", start + timedelta(seconds=1))
    assert not assumes(world, "r1", start + timedelta(minutes=30, seconds=1))
    (event,) = [e for e in world.events() if e.event_type == "grant"]
    assert event.details["scheduled_start"] == iso(start) and event.window_start == iso(start)


def test_an_approval_after_the_planned_start_opens_at_once_and_keeps_the_planned_expiry(world: World) -> None:
    start = NOW - timedelta(minutes=10)
    world.deps.store.put_request(record(status="approved", start_at=iso(start)))
    granted = workflow.grant(world.deps, "r1")
    assert granted["starts_at"] == iso(NOW - timedelta(seconds=1))
    assert granted["expires_at"] == iso(start + timedelta(minutes=30))


def test_an_approval_after_the_planned_window_grants_nothing(world: World) -> None:
    world.deps.store.put_request(record(status="approved", start_at=iso(NOW - timedelta(minutes=31))))
    with pytest.raises(grants.GrantError, match="passed before it was approved"):
        workflow.grant(world.deps, "r1")
    assert not any(s.get("Sid", "").startswith("Grant") for s in trust(world)["Statement"])  # type: ignore[attr-defined]


def extension_of(world: World, original_status: str, *, named: bool = True) -> None:
    world.deps.store.put_request(
        record(
            "r0",
            original_status,
            starts_at=iso(NOW - timedelta(minutes=20)),
            expires_at=iso(NOW + timedelta(minutes=10)),
            extended_by="r1" if named else "r2",
        )
    )
    world.deps.store.put_request(
        record(
            "r1",
            "approved",
            start_at=iso(NOW + timedelta(minutes=10)),
            extends="r0",
            extends_starts_at=iso(NOW - timedelta(minutes=20)),
        )
    )


def test_an_extension_is_granted_from_the_old_expiry_and_its_grant_names_what_it_extends(
    world: World,
) -> None:
    extension_of(world, "granted")
    granted = workflow.grant(world.deps, "r1")
    assert granted["starts_at"] == iso(NOW + timedelta(minutes=10))
    (event,) = [e for e in world.events() if e.event_type == "grant"]
    assert event.details["extends"] == "r0"
    assert (
        event.details["extended_window"]
        == f"{iso(NOW - timedelta(minutes=20))} to {iso(NOW + timedelta(minutes=10))}"
    )


@pytest.mark.parametrize(("status", "named"), [("revoked", True), ("granted", False)])
def test_an_extension_of_a_revoked_or_otherwise_extended_request_is_not_granted(
    world: World, status: str, named: bool
) -> None:
    extension_of(world, status, named=named)
    with pytest.raises(grants.GrantError, match="not granted"):
        workflow.grant(world.deps, "r1")
    assert [e.event_type for e in world.events()] == []
