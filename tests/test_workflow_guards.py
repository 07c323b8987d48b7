"""The workflow's own guards: executions take up only admitted requests, only the request's execution
in its Revoke state runs the end-of-window revoke, and the reconciler repairs stopped executions.

Security review findings 2 (requester-chosen ids), 4 (stopped executions) and 5 (unauthorized revoke).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from breakglass.contracts import iso
from breakglass.lambdas.access import grants, reconcile
from breakglass.lambdas.approvals import workflow
from breakglass.lambdas.approvals.admission import Admission, IndexEntry
from breakglass.lambdas.approvals.identity import NotAuthenticated, caller_from_event, parse_caller_arn
from breakglass.lambdas.approvals.requests import RequestRejected, parse_policy
from breakglass.lambdas.approvals.store import RequestRecord, Store, create_table
from breakglass.lambdas.audit.events import AuditWriter, parse_record
from breakglass.policies.emergency_role import locked_trust_policy

ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 30, 2, 13, tzinfo=UTC)
MACHINE = "breakglass-workflow"
RITA = f"arn:aws:iam::{ACCOUNT}:user/rita"


def execution_arn(request_id: str) -> str:
    return f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{MACHINE}:{request_id}"


@dataclass
class Executions:
    """What Step Functions says about executions: status and the states they entered."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run(self, request_id: str, *states: str, status: str = "RUNNING", machine: str = MACHINE) -> str:
        arn = execution_arn(request_id).replace(MACHINE, machine)
        self.runs[arn] = {"status": status, "name": request_id, "machine": machine, "states": list(states)}
        return arn

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        run = self.runs.get(executionArn)
        if run is None:
            raise RuntimeError("ExecutionDoesNotExist")
        return {
            "status": run["status"],
            "name": run["name"],
            "stateMachineArn": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{run['machine']}",
        }

    def get_execution_history(self, executionArn: str, **_: Any) -> dict[str, Any]:
        states = self.runs[executionArn]["states"]
        return {
            "events": [
                {"id": i + 1, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": s}}
                for i, s in enumerate(states)
            ]
        }


def record(request_id: str = "r1", status: str = "pending", **changes: Any) -> RequestRecord:
    values: dict[str, Any] = {
        "request_id": request_id,
        "requester": "rita",
        "requester_arn": RITA,
        "tier": "halt",
        "reason": "the chat model leaks customer data",
        "ticket": None,
        "duration_seconds": 1800,
        "requested_at": iso(NOW - timedelta(minutes=10)),
        "status": status,
        "quorum": 0,
        "approvers": ("ann",),
    }
    values.update(changes)
    return RequestRecord(**values)


@dataclass
class World:
    deps: workflow.WorkflowDeps
    runs: Executions
    iam: Any
    s3: Any
    tier: grants.Tier

    def events(self) -> list[Any]:
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="audit").get("Contents", [])]
        return [
            parse_record(json.loads(self.s3.get_object(Bucket="audit", Key=k)["Body"].read())) for k in keys
        ]


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        ddb, kms, s3, iam = (
            boto3.client(s, region_name="us-east-1") for s in ("dynamodb", "kms", "s3", "iam")
        )
        create_table(ddb, "bg")
        s3.create_bucket(Bucket="audit")
        role = iam.create_role(
            RoleName="breakglass-emergency-halt", AssumeRolePolicyDocument=json.dumps(locked_trust_policy())
        )["Role"]
        tier = grants.Tier(
            name="halt",
            role_name="breakglass-emergency-halt",
            role_arn=role["Arn"],
            max_session_seconds=3600,
            max_window_seconds=3600,
            require_mfa=False,
            allowed_requesters=(RITA,),
        )
        runs = Executions()
        deps = workflow.WorkflowDeps(
            store=Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"]),
            audit=AuditWriter(s3=s3, bucket="audit"),
            ses=None,
            iam=iam,
            tiers={"halt": tier},
            policy=parse_policy({"halt": {"approval": "auto", "approvers": ["ann"]}}),
            sender="bg@example.com",
            approval_url="https://approvals.example.com",
            link_key=lambda: b"k" * 32,
            clock=lambda: NOW,
            sfn=runs,
        )
        yield World(deps, runs, iam, s3, tier)


# -- Validate: only admitted requests run ---------------------------------------------------------


def test_an_execution_takes_up_the_request_the_access_api_admitted(world: World) -> None:
    world.deps.store.put_request(record())
    state = workflow.bind_request(world.deps, workflow.ValidateEvent("r1", execution_arn("r1")))
    assert state["request_id"] == "r1" and state["quorum"] == 0
    assert world.deps.store.get_request("r1").execution_arn == execution_arn("r1")  # type: ignore[union-attr]


def test_an_execution_started_around_the_access_api_is_rejected(world: World) -> None:
    with pytest.raises(RequestRejected, match="requests enter through the access API"):
        workflow.bind_request(world.deps, workflow.ValidateEvent("r9", execution_arn("r9")))


def test_a_second_execution_cannot_take_over_an_admitted_request(world: World) -> None:
    world.deps.store.put_request(record())
    workflow.bind_request(world.deps, workflow.ValidateEvent("r1", execution_arn("r1")))
    other = execution_arn("r1").replace(MACHINE, "breakglass-other")
    with pytest.raises(RequestRejected, match="already run by another execution"):
        workflow.bind_request(world.deps, workflow.ValidateEvent("r1", other))


# -- the end-of-window revoke: only the request's execution, in its Revoke state ---------------------


def grant(world: World, request_id: str = "r1", minutes: int = 30) -> None:
    world.deps.store.put_request(record(request_id, "approved"))
    world.deps.store.set_status(request_id, "granted")
    g = grants.Grant(
        request_id=request_id,
        tier="halt",
        requester_arn=RITA,
        source_identity="rita",
        starts_at=NOW - timedelta(minutes=5),
        expires_at=NOW + timedelta(minutes=minutes),
    )
    grants.grant(world.iam, world.deps.audit, world.deps.tiers, g, now=NOW - timedelta(minutes=5))
    world.deps.store.set_grant_window(request_id, iso(g.starts_at), iso(g.expires_at))


def trust_sids(world: World) -> list[str]:
    document = world.iam.get_role(RoleName="breakglass-emergency-halt")["Role"]["AssumeRolePolicyDocument"]
    return [s.get("Sid", "") for s in document["Statement"]]


@pytest.mark.parametrize(
    ("states", "status", "machine", "problem"),
    [
        (
            ("Validate", "AutoApprove", "Grant", "NotifyRequester", "WaitUntilExpiry"),
            "RUNNING",
            MACHINE,
            "not Revoke",
        ),
        (("Validate", "Grant", "Revoke"), "SUCCEEDED", MACHINE, "not the running workflow"),
        (("Validate", "Grant", "Revoke"), "RUNNING", "attacker-machine", "not the running workflow"),
    ],
)
def test_a_revoke_not_asked_by_the_request_s_execution_in_its_revoke_state_is_refused(
    world: World, states: tuple[str, ...], status: str, machine: str, problem: str
) -> None:
    """On 198d2d6 {"action": "revoke", "request_id": X, "state": {}} ended any grant, recorded as expiry."""
    grant(world)
    arn = world.runs.run("r1", *states, status=status, machine=machine)
    with pytest.raises(workflow.RevokeNotFromWorkflow, match=problem):
        workflow.verify_revoke_caller(world.runs, "r1", arn, MACHINE)
    assert any(s.startswith("Grant") for s in trust_sids(world))  # untouched


def test_the_request_s_own_execution_in_its_revoke_state_may_revoke(world: World) -> None:
    grant(world)
    arn = world.runs.run(
        "r1", "Validate", "AutoApprove", "Grant", "NotifyRequester", "WaitUntilExpiry", "Revoke"
    )
    workflow.verify_revoke_caller(world.runs, "r1", arn, MACHINE)


def test_a_revoke_before_expiry_is_recorded_as_a_revoke_never_as_expiry(world: World) -> None:
    grant(world, minutes=30)
    result = workflow.revoke(world.deps, "r1", {})
    assert result["event_type"] == "revoke"
    assert world.deps.store.get_request("r1").status == "revoked"  # type: ignore[union-attr]


def test_the_revoke_at_the_end_of_the_window_is_recorded_as_expiry(world: World) -> None:
    grant(world, minutes=30)
    later = replace_clock(world, NOW + timedelta(minutes=30))
    result = workflow.revoke(later, "r1", {})
    assert result["event_type"] == "expiry"
    assert later.store.get_request("r1").status == "expired"  # type: ignore[union-attr]


def replace_clock(world: World, moment: datetime) -> workflow.WorkflowDeps:
    from dataclasses import replace

    return replace(world.deps, clock=lambda: moment)


# -- the reconciler ------------------------------------------------------------------------------------


def reconciler(world: World, moment: datetime = NOW) -> dict[str, Any]:
    admission = Admission(world.deps.store.dynamodb, world.deps.store.table)
    for r in world.deps.store.get_requests(["r1", "r2"]):
        admission.index(
            IndexEntry(
                request_id=r.request_id, requested_at=r.requested_at, requester=r.requester, tier=r.tier
            ),
            now=moment,
        )
    deps = reconcile.ReconcileDeps(
        store=world.deps.store,
        admission=admission,
        audit=world.deps.audit,
        sfn=world.runs,
        iam=world.iam,
        tiers=world.deps.tiers,
    )
    return reconcile.reconcile(deps, now=moment)


def test_a_grant_whose_execution_was_stopped_is_revoked_and_its_review_opened(world: World) -> None:
    """On 198d2d6 an admin session could StopExecution after the grant: no expiry, no review."""
    grant(world)
    world.runs.run("r1", "Validate", "Grant", "NotifyRequester", "WaitUntilExpiry", status="ABORTED")
    world.deps.store.bind_execution("r1", execution_arn("r1"))
    done = reconciler(world)
    assert done["repaired"] == [
        {"request_id": "r1", "execution_status": "ABORTED", "revoked": "revoke", "review_opened": True}
    ]
    assert not any(s.startswith("Grant") for s in trust_sids(world))
    kinds = sorted((e.event_type, e.actor, e.outcome) for e in world.events() if e.actor == reconcile.ACTOR)
    assert kinds == [
        ("error", "system:reconciler", "failed"),
        ("review", "system:reconciler", "opened"),
        ("revoke", "system:reconciler", "succeeded"),
    ]
    assert reconciler(world)["repaired"] == []  # idempotent


def test_a_running_execution_is_left_alone(world: World) -> None:
    grant(world)
    world.runs.run("r1", "Validate", "Grant", "WaitUntilExpiry")
    world.deps.store.bind_execution("r1", execution_arn("r1"))
    assert reconciler(world)["repaired"] == []
    assert any(s.startswith("Grant") for s in trust_sids(world))


def test_a_finished_request_without_its_review_gets_one(world: World) -> None:
    grant(world)
    world.deps.store.set_status("r1", "expired")
    world.runs.run("r1", "Revoke", status="ABORTED")
    world.deps.store.bind_execution("r1", execution_arn("r1"))
    (done,) = reconciler(world)["repaired"]
    assert done == {"request_id": "r1", "execution_status": "ABORTED", "review_opened": True}


# -- identity parsing -----------------------------------------------------------------------------------


def test_the_caller_comes_only_from_the_verified_request_context() -> None:
    with pytest.raises(NotAuthenticated):
        caller_from_event({"headers": {"x-amz-user-arn": RITA}, "body": json.dumps({"userArn": RITA})})
    caller = caller_from_event({"requestContext": {"authorizer": {"iam": {"userArn": RITA}}}})
    assert (caller.name, caller.principal_arn, caller.session) == ("rita", RITA, False)


def test_an_emergency_session_names_its_tier_and_person() -> None:
    caller = parse_caller_arn(f"arn:aws:sts::{ACCOUNT}:assumed-role/breakglass-emergency-admin/rita")
    assert caller.emergency_tier == "admin" and caller.name == "rita"
    assert parse_caller_arn(f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall/rita").emergency_tier is None
    with pytest.raises(NotAuthenticated):
        parse_caller_arn(f"arn:aws:iam::{ACCOUNT}:root")
