"""The kill switch against moto: halt and resume SageMaker and Bedrock targets, every step audited."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from emf import captured_metrics
from moto import mock_aws

from breakglass.lambdas.audit.events import AuditEvent, AuditWriteError, AuditWriter, parse_record
from breakglass.lambdas.halt.service import (
    HaltAuditError,
    HaltClients,
    RetryPolicy,
    WaitSettings,
    halt,
    is_throttling,
    is_transient,
    resume,
)
from breakglass.lambdas.runtime import METRIC_ALERT_PUBLISH_FAILURES
from breakglass.policies.halt import SNAPSHOT_PREFIX, HaltTarget, parse_targets

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "audit-bucket"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
APP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "*"}],
}
CLAUDE = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
PROFILE = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
AGENT = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:agent/AGENT12345"

SPECS: list[dict[str, Any]] = [
    {
        "id": "chat",
        "endpoint_name": "chat-endpoint",
        "invoker_roles": ["chat-invoker", "batch-invoker"],
        "modes": ["deny-invoke", "delete-endpoint"],
    },
    {"id": "summarizer", "endpoint_name": "summarizer-endpoint", "modes": ["delete-endpoint"]},
    {
        "id": "ghost",
        "endpoint_name": "ghost-endpoint",
        "invoker_roles": ["ghost-invoker"],
        "modes": ["deny-invoke", "delete-endpoint"],
    },
    {"id": "fleet", "endpoint_tags": {"fleet": "blue"}, "modes": ["delete-endpoint"]},
    {
        "id": "claude",
        "bedrock_arns": [CLAUDE, PROFILE, AGENT],
        "invoker_roles": ["agent-invoker"],
        "modes": ["deny-invoke"],
    },
]


@dataclass
class World:
    s3: Any
    iam: Any
    sagemaker: Any
    organizations: Any
    clients: HaltClients
    writer: AuditWriter
    targets: dict[str, HaltTarget]

    def pick(self, *ids: str) -> list[HaltTarget]:
        return [self.targets[i] for i in ids]

    def events(self) -> list[AuditEvent]:
        keys = [
            o["Key"]
            for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix="breakglass-events/").get("Contents", [])
        ]
        return [
            parse_record(json.loads(self.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())) for k in keys
        ]

    def inline_policies(self, role: str) -> list[str]:
        return sorted(self.iam.list_role_policies(RoleName=role)["PolicyNames"])

    def endpoint_names(self) -> list[str]:
        return sorted(e["EndpointName"] for e in self.sagemaker.list_endpoints()["Endpoints"])


def _endpoint(sagemaker: Any, name: str, tags: dict[str, str]) -> None:
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "model",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.g4dn.xlarge",
            }
        ],
    )
    sagemaker.create_endpoint(
        EndpointName=name,
        EndpointConfigName=f"{name}-config",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
        iam = boto3.client("iam")
        for role in ("chat-invoker", "batch-invoker", "agent-invoker"):
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
            iam.put_role_policy(RoleName=role, PolicyName="app-access", PolicyDocument=json.dumps(APP_POLICY))
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model(
            ModelName="model",
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
            PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/llm:1"},
        )
        _endpoint(sagemaker, "chat-endpoint", {"team": "ml", "cost-center": "42"})
        _endpoint(sagemaker, "summarizer-endpoint", {"team": "ml"})
        _endpoint(sagemaker, "blue-1", {"fleet": "blue"})
        _endpoint(sagemaker, "blue-2", {"fleet": "blue"})
        _endpoint(sagemaker, "green-1", {"fleet": "green"})
        organizations = boto3.client("organizations", region_name=REGION)
        clients = HaltClients(
            iam=iam,
            sagemaker=sagemaker,
            s3=s3,
            account_id=ACCOUNT,
            region=REGION,
            organizations=organizations,
        )
        writer = AuditWriter(s3=s3, bucket=BUCKET, kms_key_id=key_id)
        yield World(
            s3,
            iam,
            sagemaker,
            organizations,
            clients,
            writer,
            {t.id: t for t in parse_targets("targets", SPECS)},
        )


FAST = WaitSettings(poll_interval=0.0, max_wait=5.0)


def _outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {r["target"]: r["outcome"] for r in result["results"]}


# ----- deny-invoke ----------------------------------------------------------------------------


def test_deny_invoke_puts_a_named_deny_on_every_sagemaker_invoker_and_resume_removes_only_it(
    world: World,
) -> None:
    result = halt(
        world.clients, world.writer, world.pick("chat"), "deny-invoke", actor="alice", reason="leak"
    )

    assert result["status"] == "ok"
    assert _outcomes(result) == {"chat": "halted"}
    for role in ("chat-invoker", "batch-invoker"):
        assert world.inline_policies(role) == ["app-access", "breakglass-halt-chat"]
        deny = world.iam.get_role_policy(RoleName=role, PolicyName="breakglass-halt-chat")["PolicyDocument"]
        assert deny["Statement"] == [
            {
                "Sid": "BreakGlassHaltSageMakerEndpointOfchat",
                "Effect": "Deny",
                "Action": ["sagemaker:InvokeEndpoint*"],
                "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/chat-endpoint",
            }
        ]
    # Capacity stays warm.
    assert "chat-endpoint" in world.endpoint_names()

    back = resume(
        world.clients, world.writer, world.pick("chat"), "deny-invoke", actor="alice", reason="fixed"
    )

    assert _outcomes(back) == {"chat": "resumed"}
    for role in ("chat-invoker", "batch-invoker"):
        assert world.inline_policies(role) == ["app-access"]
        kept = world.iam.get_role_policy(RoleName=role, PolicyName="app-access")["PolicyDocument"]
        assert kept == APP_POLICY


def test_deny_invoke_blocks_bedrock_models_profiles_and_agent_aliases(world: World) -> None:
    result = halt(
        world.clients, world.writer, world.pick("claude"), "deny-invoke", actor="alice", reason="jailbreak"
    )

    assert _outcomes(result) == {"claude": "halted"}
    deny = world.iam.get_role_policy(RoleName="agent-invoker", PolicyName="breakglass-halt-claude")[
        "PolicyDocument"
    ]
    by_sid = {s["Sid"]: s for s in deny["Statement"]}
    models = by_sid["BreakGlassHaltBedrockModelsOfclaude"]
    assert models["Action"] == ["bedrock:InvokeModel*", "bedrock:Converse*"]
    assert models["Resource"] == [CLAUDE, PROFILE]
    assert by_sid["BreakGlassHaltBedrockAgentsOfclaude"] == {
        "Sid": "BreakGlassHaltBedrockAgentsOfclaude",
        "Effect": "Deny",
        "Action": ["bedrock:InvokeAgent"],
        "Resource": [f"arn:aws:bedrock:us-east-1:{ACCOUNT}:agent-alias/AGENT12345/*"],
    }

    resume(world.clients, world.writer, world.pick("claude"), "deny-invoke", actor="alice", reason="patched")
    assert world.inline_policies("agent-invoker") == ["app-access"]


def test_halt_twice_and_resume_twice_are_noops_the_second_time(world: World) -> None:
    targets = world.pick("chat", "claude")
    first = halt(world.clients, world.writer, targets, "deny-invoke", actor="a", reason="r")
    second = halt(world.clients, world.writer, targets, "deny-invoke", actor="a", reason="r")
    assert _outcomes(first) == {"chat": "halted", "claude": "halted"}
    assert _outcomes(second) == {"chat": "noop", "claude": "noop"}
    assert second["status"] == "ok"

    once = resume(world.clients, world.writer, targets, "deny-invoke", actor="a", reason="r")
    twice = resume(world.clients, world.writer, targets, "deny-invoke", actor="a", reason="r")
    assert _outcomes(once) == {"chat": "resumed", "claude": "resumed"}
    assert _outcomes(twice) == {"chat": "noop", "claude": "noop"}
    assert world.inline_policies("chat-invoker") == ["app-access"]


def test_a_missing_invoker_role_is_a_per_target_error_and_the_status_is_partial(world: World) -> None:
    result = halt(
        world.clients, world.writer, world.pick("chat", "ghost"), "deny-invoke", actor="a", reason="r"
    )

    assert result["status"] == "partial"
    by_target = {r["target"]: r for r in result["results"]}
    assert by_target["chat"]["outcome"] == "halted"
    assert by_target["ghost"]["outcome"] == "error"
    assert by_target["ghost"]["error"] == "invoker role ghost-invoker does not exist"
    failed = [e for e in world.events() if e.target == "ghost"]
    assert [(e.event_type, e.outcome) for e in failed] == [("halt", "failed")]
    assert failed[0].details["error"] == "invoker role ghost-invoker does not exist"


def test_resume_of_a_missing_invoker_role_is_an_error_not_a_noop(world: World) -> None:
    result = resume(world.clients, world.writer, world.pick("ghost"), "deny-invoke", actor="a", reason="r")
    assert result["status"] == "failed"
    assert result["results"][0]["error"] == "invoker role ghost-invoker does not exist"


# ----- delete-endpoint ------------------------------------------------------------------------


def test_delete_endpoint_snapshots_then_deletes_and_resume_recreates_it_in_service(world: World) -> None:
    result = halt(
        world.clients, world.writer, world.pick("chat"), "delete-endpoint", actor="bob", reason="5xx"
    )

    assert _outcomes(result) == {"chat": "halted"}
    assert "chat-endpoint" not in world.endpoint_names()
    action = result["results"][0]["details"]["actions"][0]
    assert action["snapshot"].startswith(f"{SNAPSHOT_PREFIX}/chat/chat-endpoint/")
    stored = world.s3.get_object(Bucket=BUCKET, Key=action["snapshot"], ChecksumMode="ENABLED")
    assert stored["ChecksumSHA256"]  # the Object Lock bucket got a checksummed write
    assert stored["ServerSideEncryption"] == "aws:kms"
    snapshot = json.loads(stored["Body"].read())
    assert snapshot["endpoint_config_name"] == "chat-endpoint-config"
    assert sorted(snapshot["tags"], key=lambda t: t["Key"]) == [
        {"Key": "cost-center", "Value": "42"},
        {"Key": "team", "Value": "ml"},
    ]
    assert snapshot["production_variants"][0]["VariantName"] == "AllTraffic"
    assert snapshot["actor"] == "bob"

    back = resume(
        world.clients,
        world.writer,
        world.pick("chat"),
        "delete-endpoint",
        actor="bob",
        reason="ok",
        wait=FAST,
    )

    assert _outcomes(back) == {"chat": "resumed"}
    assert back["results"][0]["details"]["actions"][0]["status"] == "InService"
    endpoint = world.sagemaker.describe_endpoint(EndpointName="chat-endpoint")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == "chat-endpoint-config"
    tags = world.sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]
    assert sorted(t["Key"] for t in tags) == ["cost-center", "team"]


def test_delete_endpoint_is_idempotent_both_ways(world: World) -> None:
    targets = world.pick("chat", "summarizer")
    assert _outcomes(
        halt(world.clients, world.writer, targets, "delete-endpoint", actor="a", reason="r")
    ) == {
        "chat": "halted",
        "summarizer": "halted",
    }
    again = halt(world.clients, world.writer, targets, "delete-endpoint", actor="a", reason="r")
    assert _outcomes(again) == {"chat": "noop", "summarizer": "noop"}
    assert again["status"] == "ok"

    resume(world.clients, world.writer, targets, "delete-endpoint", actor="a", reason="r", wait=FAST)
    running = resume(
        world.clients, world.writer, targets, "delete-endpoint", actor="a", reason="r", wait=FAST
    )
    assert _outcomes(running) == {"chat": "noop", "summarizer": "noop"}
    # The resume marker retires the snapshot: a later, intentional delete is not undone by resume.
    world.sagemaker.delete_endpoint(EndpointName="summarizer-endpoint")
    stale = resume(
        world.clients, world.writer, world.pick("summarizer"), "delete-endpoint", actor="a", reason="r"
    )
    assert stale["results"][0]["outcome"] == "error"
    assert "no snapshot" in stale["results"][0]["error"]


def test_halt_of_a_missing_endpoint_is_reported_per_target(world: World) -> None:
    result = halt(
        world.clients, world.writer, world.pick("chat", "ghost"), "delete-endpoint", actor="a", reason="r"
    )

    assert result["status"] == "partial"
    by_target = {r["target"]: r for r in result["results"]}
    assert by_target["chat"]["outcome"] == "halted"
    assert by_target["ghost"]["outcome"] == "error"
    assert "ghost-endpoint does not exist" in by_target["ghost"]["error"]


def test_a_tag_selector_halts_every_matching_endpoint_and_resume_brings_them_back(world: World) -> None:
    result = halt(world.clients, world.writer, world.pick("fleet"), "delete-endpoint", actor="a", reason="r")

    assert _outcomes(result) == {"fleet": "halted"}
    assert world.endpoint_names() == ["chat-endpoint", "green-1", "summarizer-endpoint"]
    assert _outcomes(
        halt(world.clients, world.writer, world.pick("fleet"), "delete-endpoint", actor="a", reason="r")
    ) == {"fleet": "noop"}

    back = resume(
        world.clients, world.writer, world.pick("fleet"), "delete-endpoint", actor="a", reason="r", wait=FAST
    )
    assert _outcomes(back) == {"fleet": "resumed"}
    assert world.endpoint_names() == ["blue-1", "blue-2", "chat-endpoint", "green-1", "summarizer-endpoint"]


def test_resume_reports_an_endpoint_that_does_not_reach_in_service(world: World) -> None:
    halt(world.clients, world.writer, world.pick("chat"), "delete-endpoint", actor="a", reason="r")

    real_describe = world.sagemaker.describe_endpoint
    polls: list[float] = []

    class Creating:
        """moto creates endpoints InService at once; a real one spends minutes Creating."""

        def __getattr__(self, name: str) -> Any:
            return getattr(world.sagemaker, name)

        def describe_endpoint(self, **kwargs: Any) -> Any:
            return {**real_describe(**kwargs), "EndpointStatus": "Creating"}

    now = [0.0]

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        now[0] += seconds

    wait = WaitSettings(poll_interval=30.0, max_wait=90.0, sleep=sleep, clock=lambda: now[0])
    clients = HaltClients(iam=world.iam, sagemaker=Creating(), s3=world.s3, account_id=ACCOUNT, region=REGION)
    result = resume(
        clients, world.writer, world.pick("chat"), "delete-endpoint", actor="a", reason="r", wait=wait
    )

    assert result["results"][0]["outcome"] == "error"
    assert "recreated but is Creating" in result["results"][0]["error"]
    assert polls == [30.0, 30.0, 30.0]


# ----- scp ------------------------------------------------------------------------------------


@pytest.fixture
def org(world: World) -> dict[str, str]:
    world.organizations.create_organization(FeatureSet="ALL")
    root = world.organizations.list_roots()["Roots"][0]["Id"]
    ou = world.organizations.create_organizational_unit(ParentId=root, Name="ai-workloads")[
        "OrganizationalUnit"
    ]["Id"]
    account = world.organizations.create_account(AccountName="ml", Email="ml@example.com")[
        "CreateAccountStatus"
    ]["AccountId"]
    return {"root": root, "ou": ou, "account": account}


def _scp_target(*ids: str) -> HaltTarget:
    return HaltTarget.parse(
        "target",
        {"id": "org-claude", "bedrock_arns": [CLAUDE], "modes": ["scp"], "scp_target_ids": list(ids)},
    )


def _attached(world: World, target_id: str) -> list[str]:
    policies = world.organizations.list_policies_for_target(
        TargetId=target_id, Filter="SERVICE_CONTROL_POLICY"
    )
    return sorted(p["Name"] for p in policies["Policies"])


def test_scp_mode_creates_the_deny_scp_once_attaches_it_and_resume_detaches_it(
    world: World, org: dict[str, str]
) -> None:
    target = _scp_target(org["ou"], org["account"])

    result = halt(world.clients, world.writer, [target], "scp", actor="sec", reason="org-wide stop")

    assert _outcomes(result) == {"org-claude": "halted"}
    assert "breakglass-halt-org-claude" in _attached(world, org["ou"])
    assert "breakglass-halt-org-claude" in _attached(world, org["account"])
    summaries = world.organizations.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
    policy_id = next(p["Id"] for p in summaries if p["Name"] == "breakglass-halt-org-claude")
    # The tag is what the Lambdas' Organizations rights are conditioned on.
    assert world.organizations.list_tags_for_resource(ResourceId=policy_id)["Tags"] == [
        {"Key": "breakglass-halt", "Value": "org-claude"}
    ]
    content = json.loads(world.organizations.describe_policy(PolicyId=policy_id)["Policy"]["Content"])
    assert content["Statement"][0]["Effect"] == "Deny"
    assert content["Statement"][0]["Resource"] == [CLAUDE]

    again = halt(world.clients, world.writer, [target], "scp", actor="sec", reason="again")
    assert _outcomes(again) == {"org-claude": "noop"}
    names = [
        p["Name"] for p in world.organizations.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
    ]
    assert names.count("breakglass-halt-org-claude") == 1

    back = resume(world.clients, world.writer, [target], "scp", actor="sec", reason="over")
    assert _outcomes(back) == {"org-claude": "resumed"}
    assert "breakglass-halt-org-claude" not in _attached(world, org["ou"])
    assert "breakglass-halt-org-claude" not in _attached(world, org["account"])
    assert _outcomes(resume(world.clients, world.writer, [target], "scp", actor="sec", reason="over")) == {
        "org-claude": "noop"
    }


def test_scp_to_an_unknown_account_is_a_per_target_error(world: World, org: dict[str, str]) -> None:
    result = halt(
        world.clients, world.writer, [_scp_target(org["ou"], "999999999999")], "scp", actor="s", reason="r"
    )

    assert result["results"][0]["outcome"] == "error"
    assert result["results"][0]["error"] == "organization target 999999999999 does not exist"
    # The OU that exists is still covered: a partial halt beats none.
    assert "breakglass-halt-org-claude" in _attached(world, org["ou"])


# ----- throttling -----------------------------------------------------------------------------


class Throttling:
    """A client whose named operations fail with a throttling error ``times`` times first."""

    def __init__(self, client: Any, times: int, *operations: str, code: str = "ThrottlingException") -> None:
        self._client = client
        self._left = dict.fromkeys(operations, times)
        self._code = code
        self._lock = threading.Lock()
        self.raised = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in self._left:
            return method

        def call(**kwargs: Any) -> Any:
            with self._lock:
                throttle = self._left[name] > 0
                if throttle:
                    self._left[name] -= 1
                    self.raised += 1
            if throttle:
                status = 429 if self._code == "429" else 400
                raise ClientError(
                    {
                        "Error": {"Code": self._code, "Message": "Rate exceeded"},
                        "ResponseMetadata": {"HTTPStatusCode": status},
                    },
                    name,
                )
            return method(**kwargs)

        call.__name__ = name
        return call


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded", "429"]
)
def test_throttled_calls_are_retried_with_exponential_backoff_and_succeed(world: World, code: str) -> None:
    iam = Throttling(world.iam, 3, "put_role_policy", code=code)
    clients = HaltClients(iam=iam, sagemaker=world.sagemaker, s3=world.s3, account_id=ACCOUNT, region=REGION)
    waits: list[float] = []
    retry = RetryPolicy(
        max_attempts=5, base_delay=0.1, max_delay=0.25, sleep=waits.append, jitter=lambda: 1.0
    )

    result = halt(
        clients, world.writer, world.pick("claude"), "deny-invoke", actor="a", reason="r", retry=retry
    )

    assert _outcomes(result) == {"claude": "halted"}
    assert iam.raised == 3
    assert waits == [0.1, 0.2, 0.25]  # doubling, capped at max_delay
    assert "breakglass-halt-claude" in world.inline_policies("agent-invoker")


def test_throttling_on_many_concurrent_targets_is_absorbed(world: World) -> None:
    sagemaker = Throttling(world.sagemaker, 4, "describe_endpoint", "delete_endpoint")
    clients = HaltClients(iam=world.iam, sagemaker=sagemaker, s3=world.s3, account_id=ACCOUNT, region=REGION)
    retry = RetryPolicy(sleep=lambda _: None)

    result = halt(
        clients,
        world.writer,
        world.pick("chat", "summarizer"),
        "delete-endpoint",
        actor="a",
        reason="r",
        retry=retry,
    )

    assert result["status"] == "ok"
    assert sagemaker.raised == 8
    assert world.endpoint_names() == ["blue-1", "blue-2", "green-1"]


def test_an_endpoint_deleted_while_a_tag_selector_scans_is_skipped(world: World) -> None:
    real_list_tags = world.sagemaker.list_tags

    class Vanishing:
        """green-1 is deleted by someone else between ListEndpoints and ListTags."""

        def __getattr__(self, name: str) -> Any:
            return getattr(world.sagemaker, name)

        def list_tags(self, **kwargs: Any) -> Any:
            if kwargs["ResourceArn"].endswith("/green-1"):
                raise ClientError(
                    {"Error": {"Code": "ValidationException", "Message": "Could not find endpoint"}},
                    "ListTags",
                )
            return real_list_tags(**kwargs)

    clients = HaltClients(
        iam=world.iam, sagemaker=Vanishing(), s3=world.s3, account_id=ACCOUNT, region=REGION
    )
    result = halt(clients, world.writer, world.pick("fleet"), "delete-endpoint", actor="a", reason="r")

    assert _outcomes(result) == {"fleet": "halted"}
    assert world.endpoint_names() == ["chat-endpoint", "green-1", "summarizer-endpoint"]


def test_throttling_beyond_the_retry_budget_is_a_per_target_error(world: World) -> None:
    iam = Throttling(world.iam, 10, "put_role_policy")
    clients = HaltClients(iam=iam, sagemaker=world.sagemaker, s3=world.s3, account_id=ACCOUNT, region=REGION)
    retry = RetryPolicy(max_attempts=3, sleep=lambda _: None)

    result = halt(
        clients, world.writer, world.pick("claude"), "deny-invoke", actor="a", reason="r", retry=retry
    )

    assert result["status"] == "failed"
    assert iam.raised == 3
    assert "ThrottlingException" in result["results"][0]["error"]


def test_only_throttling_errors_count_as_throttling() -> None:
    def error(code: str, status: int = 400) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")

    assert is_throttling(error("RequestLimitExceeded"))
    assert is_throttling(error("SlowDown", 429))
    assert not is_throttling(error("AccessDenied", 403))
    assert not is_throttling(ValueError("Throttling"))


def test_throttling_and_server_side_failures_are_retried_and_refusals_are_not() -> None:
    def error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")

    assert is_transient(error("Throttling", 400)) and is_transient(error("ServiceFailure", 500))
    assert is_transient(error("ServiceUnavailable", 503))
    assert not is_transient(error("AccessDenied", 403)) and not is_transient(error("NoSuchEntity", 404))
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise error("InternalFailure", 500)
        return "done"

    assert RetryPolicy(sleep=lambda _: None).call(flaky) == "done" and len(calls) == 3


# ----- audit ----------------------------------------------------------------------------------


def test_every_target_and_action_gets_its_own_audit_event(world: World) -> None:
    targets = world.pick("chat", "claude")
    halt(
        world.clients,
        world.writer,
        targets,
        "deny-invoke",
        actor="alice",
        reason="incident 7",
        request_id="req1",
    )
    halt(
        world.clients,
        world.writer,
        targets,
        "deny-invoke",
        actor="alice",
        reason="incident 7",
        request_id="req1",
    )
    resume(world.clients, world.writer, targets, "deny-invoke", actor="bob", reason="all clear")

    events = sorted(world.events(), key=lambda e: (e.event_type, e.target or "", e.outcome))
    assert [(e.event_type, e.target, e.outcome, e.actor) for e in events] == [
        ("halt", "chat", "noop", "alice"),
        ("halt", "chat", "succeeded", "alice"),
        ("halt", "claude", "noop", "alice"),
        ("halt", "claude", "succeeded", "alice"),
        ("resume", "chat", "succeeded", "bob"),
        ("resume", "claude", "succeeded", "bob"),
    ]
    chat = next(
        e for e in events if e.target == "chat" and e.outcome == "succeeded" and e.event_type == "halt"
    )
    assert chat.mode == "deny-invoke"
    assert chat.request_id == "req1"
    assert chat.reason == "incident 7"
    assert [a["role"] for a in chat.details["actions"]] == ["chat-invoker", "batch-invoker"]
    assert "trigger" not in chat.details


def test_a_failed_audit_write_fails_the_call_after_every_target_is_halted(world: World) -> None:
    broken = AuditWriter(s3=world.s3, bucket="no-such-bucket")
    with pytest.raises(AuditWriteError, match="audit events not stored or not alerted for chat, claude"):
        halt(world.clients, broken, world.pick("chat", "claude"), "deny-invoke", actor="a", reason="r")
    # The halt itself still happened: a missing record must not leave a model running.
    assert "breakglass-halt-chat" in world.inline_policies("chat-invoker")
    assert "breakglass-halt-claude" in world.inline_policies("agent-invoker")


def test_a_failed_alert_publish_in_a_sequential_run_still_halts_every_target_and_is_counted(
    world: World,
) -> None:
    class BrokenTopic:
        def publish(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "no"}}, "Publish")

    writer = AuditWriter(s3=world.s3, bucket=BUCKET, sns=BrokenTopic(), topic_arn="arn:aws:sns:x:1:t")
    # The records are stored, so the halts stand: a lost alert is counted, never an error
    # (review finding 9: the record and the state must not disagree).
    with captured_metrics() as metrics:
        result = halt(
            world.clients,
            writer,
            world.pick("chat", "claude"),
            "deny-invoke",
            actor="a",
            reason="r",
            max_workers=1,
        )
    assert result["status"] == "ok"
    assert "breakglass-halt-chat" in world.inline_policies("chat-invoker")
    assert "breakglass-halt-claude" in world.inline_policies("agent-invoker")
    assert all(r["details"]["audit_key"] for r in result["results"])
    assert metrics.counts() == {(METRIC_ALERT_PUBLISH_FAILURES, "AuthorizationError"): 2}


def test_a_mode_the_target_does_not_allow_is_refused_per_target(world: World) -> None:
    result = halt(world.clients, world.writer, world.pick("summarizer"), "deny-invoke", actor="a", reason="r")
    assert result["status"] == "failed"
    assert "not allowed" in result["results"][0]["error"]
    assert world.endpoint_names().count("summarizer-endpoint") == 1


def test_an_empty_target_list_or_pool_is_rejected(world: World) -> None:
    with pytest.raises(ValueError, match="targets"):
        halt(world.clients, world.writer, [], "deny-invoke", actor="a", reason="r")
    with pytest.raises(ValueError, match="max_workers"):
        halt(
            world.clients,
            world.writer,
            world.pick("chat"),
            "deny-invoke",
            actor="a",
            reason="r",
            max_workers=0,
        )


# ----- partial success and failure are reported per target (review finding 8) -----------------


class Failing:
    """A client whose ``operation`` fails (AccessDenied) when ``when(kwargs)`` holds."""

    def __init__(self, client: Any, operation: str, when: Any = lambda kwargs: True) -> None:
        self._client = client
        self._operation = operation
        self._when = when

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name != self._operation:
            return method

        def call(**kwargs: Any) -> Any:
            if self._when(kwargs):
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, name)
            return method(**kwargs)

        call.__name__ = name
        return call


def _changed(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in result["details"]["actions"] if a.get("changed")]


def test_a_resume_whose_marker_write_fails_after_create_endpoint_reports_the_live_endpoint_then_the_error(
    world: World,
) -> None:
    halt(world.clients, world.writer, world.pick("chat"), "delete-endpoint", actor="a", reason="r")
    s3 = Failing(world.s3, "put_object", lambda kwargs: kwargs["Key"].endswith("-resumed.json"))
    clients = HaltClients(iam=world.iam, sagemaker=world.sagemaker, s3=s3, account_id=ACCOUNT, region=REGION)

    back = resume(
        clients, world.writer, world.pick("chat"), "delete-endpoint", actor="a", reason="r", wait=FAST
    )

    # The endpoint is live again, and the result says so before it says what failed.
    assert "chat-endpoint" in world.endpoint_names()
    [result] = back["results"]
    assert result["outcome"] == "error"
    assert result["changed"] is True
    [recreated] = _changed(result)
    assert recreated["action"] == "recreate-endpoint"
    assert recreated["endpoint"] == "chat-endpoint"
    assert recreated["status"] == "InService"
    assert "resume marker" in result["error"]
    assert "AccessDenied" in result["error"]
    assert back["status"] == "partial"  # never "failed" while something was done
    [event] = [e for e in world.events() if e.event_type == "resume"]
    assert event.outcome == "failed"
    assert [a["action"] for a in event.details["actions"] if a.get("changed")] == ["recreate-endpoint"]
    assert "resume marker" in event.details["error"]


def test_a_halt_whose_delete_fails_after_the_snapshot_reports_the_snapshot_and_the_running_endpoint(
    world: World,
) -> None:
    sagemaker = Failing(world.sagemaker, "delete_endpoint")
    clients = HaltClients(iam=world.iam, sagemaker=sagemaker, s3=world.s3, account_id=ACCOUNT, region=REGION)

    result = halt(clients, world.writer, world.pick("chat"), "delete-endpoint", actor="a", reason="r")

    assert "chat-endpoint" in world.endpoint_names()
    [target] = result["results"]
    assert target["outcome"] == "error"
    assert target["changed"] is False
    [action] = target["details"]["actions"]
    assert action["action"] == "delete-endpoint"
    assert action["changed"] is False
    assert action["snapshot"].startswith(f"{SNAPSHOT_PREFIX}/chat/chat-endpoint/")
    assert "AccessDenied" in target["error"]
    assert result["status"] == "failed"  # nothing was halted


def test_a_deny_invoke_that_reaches_one_invoker_role_of_two_reports_both(world: World) -> None:
    iam = Failing(world.iam, "put_role_policy", lambda kwargs: kwargs["RoleName"] == "batch-invoker")
    clients = HaltClients(iam=iam, sagemaker=world.sagemaker, s3=world.s3, account_id=ACCOUNT, region=REGION)

    result = halt(clients, world.writer, world.pick("chat"), "deny-invoke", actor="a", reason="r")

    [target] = result["results"]
    assert target["outcome"] == "error"
    assert target["changed"] is True
    assert [(a["role"], a["changed"]) for a in target["details"]["actions"]] == [("chat-invoker", True)]
    assert target["error"].startswith("batch-invoker: AccessDenied")
    assert result["status"] == "partial"
    assert "breakglass-halt-chat" in world.inline_policies("chat-invoker")


def test_a_scp_created_but_not_attached_is_reported_with_the_error(world: World, org: dict[str, str]) -> None:
    organizations = Failing(world.organizations, "attach_policy")
    clients = HaltClients(
        iam=world.iam,
        sagemaker=world.sagemaker,
        s3=world.s3,
        account_id=ACCOUNT,
        region=REGION,
        organizations=organizations,
    )

    result = halt(clients, world.writer, [_scp_target(org["ou"])], "scp", actor="s", reason="r")

    [target] = result["results"]
    assert target["outcome"] == "error"
    assert [a["action"] for a in _changed(target)] == ["create-scp"]
    assert target["error"] == f"{org['ou']}: AccessDenied: not allowed"
    assert result["status"] == "partial"


def test_a_resume_whose_audit_write_fails_raises_with_what_happened_to_each_target(world: World) -> None:
    halt(
        world.clients,
        world.writer,
        world.pick("chat", "summarizer"),
        "delete-endpoint",
        actor="a",
        reason="r",
    )
    s3 = Failing(world.s3, "put_object", lambda kwargs: kwargs["Key"].startswith("breakglass-events/"))
    writer = AuditWriter(s3=s3, bucket=BUCKET, kms_key_id=world.writer.kms_key_id)

    with pytest.raises(HaltAuditError) as raised:
        resume(
            world.clients,
            writer,
            world.pick("chat", "summarizer"),
            "delete-endpoint",
            actor="a",
            reason="r",
            wait=FAST,
        )

    # Both endpoints are live again; the error carries that, target by target, then the audit error.
    assert world.endpoint_names().count("chat-endpoint") == 1
    assert world.endpoint_names().count("summarizer-endpoint") == 1
    reported = raised.value.result
    assert reported["action"] == "resume"
    assert reported["status"] == "ok"
    assert "not stored" in reported["audit_error"]
    for target in reported["results"]:
        assert target["outcome"] == "resumed"
        assert [a["action"] for a in _changed(target)] == ["recreate-endpoint"]
        assert "not stored" in target["audit_error"]
    # The Lambda's error message is that same report, as JSON, for the caller (the access API).
    assert json.loads(str(raised.value)) == {"error": reported["audit_error"], **reported}
    assert isinstance(raised.value, AuditWriteError)


@pytest.mark.parametrize(
    ("mode", "targets"), [("deny-invoke", ("chat", "claude")), ("delete-endpoint", ("chat",))]
)
def test_a_halt_whose_audit_write_fails_raises_with_the_actions_done_in_every_mode(
    world: World, mode: str, targets: tuple[str, ...]
) -> None:
    s3 = Failing(world.s3, "put_object", lambda kwargs: kwargs["Key"].startswith("breakglass-events/"))
    broken = AuditWriter(s3=s3, bucket=BUCKET)
    with pytest.raises(HaltAuditError) as raised:
        halt(world.clients, broken, world.pick(*targets), mode, actor="a", reason="r")
    results = raised.value.result["results"]
    assert [r["target"] for r in results] == list(targets)
    assert all(r["outcome"] == "halted" and _changed(r) and r["audit_error"] for r in results)
