"""Each example in examples/ deployed into the emulator (IAM enforced), doing the one thing it
exists to show, end to end through the ``breakglass`` command, the emails and the alarms.

The quickstart's whole incident is the drill's (tests/test_drill.py) and tests/test_e2e.py's;
here every example is also synthesized as ``breakglass synth examples/NAME`` runs it, and its
README is checked for what a reader needs.
"""

from __future__ import annotations

import gzip
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_world import parses
from iam_eval import ADMIN_POLICY, session_allowed
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.contracts import EVENTS_PREFIX, parse_iso
from breakglass.local.emulator import Emulator
from breakglass.local.synth import ACCOUNT_ID, SynthError, synth_directory
from breakglass.local.world import World, open_world

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ("quickstart", "tiers", "existing-trail", "sagemaker-bedrock")
REASON = "the recommender learned from a poisoned batch of feature rows"
# The tiers require MFA: the command sends the device and a code with AssumeRole, as a person's
# profile with `mfa_serial` does (the emulator does not check the code).
MFA = ["--mfa-serial", "arn:aws:iam::000000000000:mfa/responder", "--mfa-code", "123456"]
PEOPLE: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "tiers": {
        "rita": ("responder",),
        "sam": ("responder",),
        "tom": ("responder",),
        "ann": ("approver",),
        "bob": ("approver",),
        "cat": ("approver",),
        "dan": ("approver",),
        "sec": ("security",),
    },
    "existing-trail": {
        "rita": ("responder",),
        "ann": ("approver",),
        "bob": ("approver",),
        "sec": ("security",),
    },
    "sagemaker-bedrock": {
        "rita": ("responder",),
        "sam": ("responder",),
        "ann": ("approver",),
        "bob": ("approver",),
        "sec": ("security",),
    },
}
ORG_TRAIL = "org-trail"
ORG_BUCKET = "org-cloudtrail-logs"


def organization_audit(emulator: Emulator) -> dict[str, str]:
    """What the organization's security account already runs: a key, a bucket locked in
    COMPLIANCE mode and a multi-region trail delivering into it. Returns the stack config naming them."""
    key = emulator.client("kms").create_key(Description="organization trail")["KeyMetadata"]["Arn"]
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=ORG_BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=ORG_BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2555}},
        },
    )
    cloudtrail = emulator.client("cloudtrail")
    trail = cloudtrail.create_trail(
        Name=ORG_TRAIL,
        S3BucketName=ORG_BUCKET,
        IsMultiRegionTrail=True,
        IncludeGlobalServiceEvents=True,
        EnableLogFileValidation=True,
        KmsKeyId=key,
    )["TrailARN"]
    cloudtrail.start_logging(Name=ORG_TRAIL)
    return {"existingTrailArn": trail, "existingBucketName": ORG_BUCKET, "existingKmsKeyArn": key}


PREPARE = {"existing-trail": organization_audit}


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """One deployment per example (pytest runs an example's tests together, one world at a time)."""
    name = str(request.param)
    with open_world(EXAMPLES / name, name=name, people=PEOPLE[name], prepare=PREPARE.get(name)) as opened:
        opened.seed_ai_system()
        yield opened


def example(name: str) -> Any:
    return pytest.mark.parametrize("world", [name], indirect=True)


def status(world: World, request_id: str) -> dict[str, Any]:
    run = world.cli("sec", "status", request_id, "--json")
    assert run.exit_code == 0, run.stderr
    return dict(run.json())


def approve(world: World, approver: str, request_id: str) -> None:
    """``breakglass approve`` as ``approver`` once they were asked (their email came)."""
    assert world.approval_links(approver, request_id, wait=20), f"{approver} was not asked"
    run = world.cli(approver, "approve", request_id, "--totp", world.code(approver), "--json")
    assert run.exit_code == 0, run.stderr


def window(record: Mapping[str, Any]) -> timedelta:
    return parse_iso(str(record["expires_at"])) - parse_iso(str(record["starts_at"]))


# -- every example ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_example_previews_offline_with_breakglass_synth(name: str) -> None:
    result = CliRunner().invoke(app, ["synth", str(EXAMPLES / name)])
    assert result.exit_code == 0, result.output
    assert "breakglass:index:BreakGlass" in result.output
    assert "LockedNoActiveGrant" in result.output


@pytest.mark.parametrize("name", NAMES)
def test_every_example_has_a_readme_with_its_config_preview_and_deployment(name: str) -> None:
    readme = (EXAMPLES / name / "README.md").read_text()
    program = (EXAMPLES / name / "__main__.py").read_text()
    assert f"breakglass synth examples/{name}" in readme
    assert "pulumi up" in readme
    # Every stack config key the program reads is in its README's table.
    keys = set(re.findall(r'config\.get(?:_int)?\("(\w+)"\)', program))
    assert keys, "the example reads no stack config"
    missing = sorted(k for k in keys if f"`{k}`" not in readme)
    assert not missing, f"examples/{name}/README.md does not list {missing}"
    # Every command it shows names real commands and options.
    for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.S):
        for line in block.splitlines():
            if line.startswith("breakglass "):
                parses(shlex.split(line.partition("#")[0])[1:])


def test_the_readme_lists_every_example() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    programs = sorted(p.parent.name for p in EXAMPLES.glob("*/__main__.py"))
    assert [name for name in programs if f"examples/{name}/" not in readme] == []


# -- tiers: custom tiers and quorums ----------------------------------------------------------------


@example("tiers")
def test_a_data_fix_request_stays_pending_one_vote_short_and_the_second_vote_grants_its_window(
    world: World,
) -> None:
    made = world.request("rita", "data-fix", REASON, "--ticket", "DATA-42", "--duration", "90m", "--no-wait")
    assert made.exit_code == 0, made.stderr
    rid = made.json()["request_id"]
    assert (made.json()["status"], made.json()["quorum"]) == ("pending", 2)

    approve(world, "ann", rid)
    one_short = status(world, rid)
    assert one_short["status"] == "pending"
    assert one_short["approvals"] == ["ann"]

    approve(world, "bob", rid)
    granted = world.wait_for(rid, ["granted", "denied"])
    assert granted["status"] == "granted"
    assert window(granted) == timedelta(minutes=90)


@example("tiers")
def test_a_data_fix_request_needs_a_ticket_of_its_pattern_and_a_window_within_its_limit(world: World) -> None:
    no_ticket = world.request("rita", "data-fix", REASON, "--duration", "30m", "--no-wait")
    wrong_ticket = world.request("rita", "data-fix", REASON, "--ticket", "INC-7", "--no-wait")
    too_long = world.request(
        "rita", "data-fix", REASON, "--ticket", "DATA-7", "--duration", "3h", "--no-wait"
    )
    for refused in (no_ticket, wrong_ticket, too_long):
        assert refused.exit_code == 2, (refused.exit_code, refused.stdout, refused.stderr)
    assert "ticket" in no_ticket.stderr and "ticket" in wrong_ticket.stderr
    assert "duration" in too_long.stderr


@example("tiers")
def test_admin_needs_three_approvers_and_grants_at_most_half_an_hour(world: World) -> None:
    made = world.request("sam", "admin", REASON, "--ticket", "INC-9", "--duration", "30m", "--no-wait")
    assert made.exit_code == 0, made.stderr
    rid = made.json()["request_id"]
    assert made.json()["quorum"] == 3
    approve(world, "ann", rid)
    approve(world, "bob", rid)
    assert status(world, rid)["status"] == "pending"
    approve(world, "cat", rid)
    granted = world.wait_for(rid, ["granted", "denied"])
    assert granted["status"] == "granted" and window(granted) == timedelta(minutes=30)


@example("tiers")
def test_the_observer_tier_is_granted_at_once_and_may_only_look(world: World) -> None:
    made = world.request("tom", "observer", REASON, "--duration", "45m")
    assert made.exit_code == 0, made.stderr
    assert (made.json()["status"], made.json()["quorum"]) == ("granted", 0)
    role = world.emulator.client("iam").list_attached_role_policies(RoleName="breakglass-emergency-observer")
    assert [p["PolicyArn"] for p in role["AttachedPolicies"]] == [
        "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"
    ]


@example("tiers")
def test_the_command_shows_each_tier_with_its_quorum_window_and_rights(world: World) -> None:
    run = world.cli("sec", "deployments", "tiers", "--json")
    assert run.exit_code == 0, run.stderr
    shown = {
        name: (t["quorum"], t["max_window_seconds"], t["ticket_required"], t["may_halt"], t["may_resume"])
        for name, t in run.json()["tiers"].items()
    }
    assert shown == {
        "halt": (0, 3600, False, True, False),
        "operator": (1, 7200, False, True, True),
        "admin": (3, 1800, True, True, True),
        "drill": (0, 1800, False, False, False),
        "observer": (0, 3600, False, False, False),
        "data-fix": (2, 7200, True, False, False),
    }


# -- existing-trail: the organization's trail, bucket and key ---------------------------------------


@example("existing-trail")
def test_with_an_organization_trail_no_second_trail_bucket_or_audit_key_is_created(world: World) -> None:
    deployment = world.deployment
    assert deployment.by_type("aws:cloudtrail/trail:Trail") == []
    audit_children = [r.type for r in deployment if r.parent == "breakglass-audit"]
    assert "aws:s3/bucket:Bucket" not in audit_children and "aws:kms/key:Key" not in audit_children
    trails = world.emulator.client("cloudtrail").describe_trails()["trailList"]
    assert [t["Name"] for t in trails] == [ORG_TRAIL]
    s3 = world.emulator.client("s3")
    locked = []
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            s3.get_object_lock_configuration(Bucket=bucket["Name"])
            locked.append(bucket["Name"])
        except s3.exceptions.ClientError:
            continue
    assert locked == [ORG_BUCKET]
    assert deployment.output("audit_bucket") == ORG_BUCKET


@example("existing-trail")
def test_a_request_s_events_and_its_calls_land_in_the_organization_bucket(world: World) -> None:
    made = world.request("rita", "drill", "rehearse on the organization's trail", "--duration", "15m")
    assert made.exit_code == 0 and made.json()["status"] == "granted", made.stderr
    rid = made.json()["request_id"]
    assert [e.event_type for e in world.audit_events(rid)][:3] == ["request", "approval", "grant"]

    s3 = world.emulator.client("s3")
    key_arn = world.emulator.client("cloudtrail").describe_trails()["trailList"][0]["KmsKeyId"]  # the org's
    events = s3.list_objects_v2(Bucket=ORG_BUCKET, Prefix=f"{EVENTS_PREFIX}/dt=")["Contents"]
    assert events, "no break-glass event in the organization bucket"
    head = s3.head_object(Bucket=ORG_BUCKET, Key=events[0]["Key"])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn
    assert head["ObjectLockMode"] == "COMPLIANCE"

    # The organization trail delivers the calls of the request (the access API's and the grant's)
    # into the same bucket, where `breakglass audit sync` and the named queries find them.
    delivered = world.emulator.cloudtrail.flush()
    assert delivered and all(
        k.startswith(f"AWSLogs/{world.emulator.account_id}/CloudTrail/") for k in delivered
    )
    records = [
        record
        for key in delivered
        for record in json.loads(gzip.decompress(s3.get_object(Bucket=ORG_BUCKET, Key=key)["Body"].read()))[
            "Records"
        ]
    ]
    assert any(r["eventName"] == "UpdateAssumeRolePolicy" for r in records)


def test_the_athena_cloudtrail_table_reads_where_the_organization_trail_delivers() -> None:
    config = {
        "organizationId": "o-z9y8x7w6v5",
        "cloudtrailPrefix": "central",
        "existingBucketName": "acme-logs",
    }
    table = synth_directory(EXAMPLES / "existing-trail", config=config).one(
        "aws:glue/catalogTable:CatalogTable", "breakglass-queries-cloudtrail"
    )
    # The member account's logs, as an organization trail files them (the synth's account).
    expected = f"s3://acme-logs/central/AWSLogs/o-z9y8x7w6v5/{ACCOUNT_ID}/CloudTrail/"
    assert table.inputs["storageDescriptor"]["location"] == expected


def test_a_malformed_organization_id_is_refused_naming_the_audit_setting() -> None:
    with pytest.raises(SynthError, match=r"audit\.organization_id: use the organization's id"):
        synth_directory(EXAMPLES / "existing-trail", config={"organizationId": "r-root"})


# -- sagemaker-bedrock: a tripwire on the guardrail halts both kinds of target ----------------------


def inline_policies(world: World, role: str) -> list[str]:
    return list(world.emulator.client("iam").list_role_policies(RoleName=role)["PolicyNames"])


def invoker_may(world: World, role: str, action: str, resource: str) -> bool:
    """Would a session of the application's ``role`` (allowed everything by its own policy) be
    allowed ``action`` on ``resource`` with the role's inline policies as they are now?"""
    iam = world.emulator.client("iam")
    documents = [
        iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in inline_policies(world, role)
    ]
    documents = [json.loads(d) if isinstance(d, str) else d for d in documents]
    arn = f"arn:aws:iam::{world.emulator.account_id}:role/{role}"
    return session_allowed(
        arn, action, resource, policies=[ADMIN_POLICY, *documents], boundary=None, context={}
    )


def models(world: World) -> dict[str, tuple[str, str, str]]:
    """What each application does: (its role, the action it calls, on what)."""
    account, region = world.emulator.account_id, world.emulator.region
    return {
        "chat": (
            "chat-api",
            "sagemaker:InvokeEndpoint",
            f"arn:aws:sagemaker:{region}:{account}:endpoint/chat-prod",
        ),
        "assistant": (
            "bedrock-invoker",
            "bedrock:InvokeModel",
            f"arn:aws:bedrock:{region}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        ),
    }


@example("sagemaker-bedrock")
def test_the_guardrail_tripwire_halts_the_endpoint_and_the_bedrock_model_and_resume_restores_both(
    world: World,
) -> None:
    for role, action, resource in models(world).values():
        assert invoker_may(world, role, action, resource)

    world.emulator.client("cloudwatch").set_alarm_state(
        AlarmName="breakglass-ai-trip-guardrail",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [37.0] was greater than or equal to the threshold (20.0)",
    )
    assert inline_policies(world, "chat-api") == ["breakglass-halt-chat"]
    assert inline_policies(world, "bedrock-invoker") == ["breakglass-halt-assistant"]
    for role, action, resource in models(world).values():
        assert not invoker_may(world, role, action, resource), (role, action)
    halts = sorted((e.target, e.actor, e.outcome) for e in world.audit_events() if e.event_type == "halt")
    assert halts == [
        ("assistant", "tripwire:guardrail", "succeeded"),
        ("chat", "tripwire:guardrail", "succeeded"),
    ]

    made = world.request("rita", "operator", "guardrail tightened, probing blocked", "--no-wait")
    assert made.exit_code == 0, made.stderr
    rid = made.json()["request_id"]
    approve(world, "ann", rid)
    assert world.wait_for(rid, ["granted", "denied"])["status"] == "granted"
    resumed = world.cli(
        "rita", "resume", "chat", "assistant", "--reason", "guardrail tightened", *MFA, "--json"
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert inline_policies(world, "chat-api") == [] and inline_policies(world, "bedrock-invoker") == []
    for role, action, resource in models(world).values():
        assert invoker_may(world, role, action, resource)
    resumes = sorted(
        (e.target, e.actor, e.request_id) for e in world.audit_events() if e.event_type == "resume"
    )
    assert resumes == [("assistant", "rita", rid), ("chat", "rita", rid)]


@example("sagemaker-bedrock")
def test_a_responder_deletes_the_endpoint_and_resume_recreates_it_from_its_snapshot(world: World) -> None:
    sagemaker = world.emulator.client("sagemaker")
    code = world.code("sam")
    halted = world.cli(
        "sam", "halt", "chat", "--mode", "delete-endpoint", "--reason", REASON, "--totp", code, *MFA
    )
    assert halted.exit_code == 0, halted.stderr
    assert [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]] == []
    snapshots = world.emulator.client("s3").list_objects_v2(
        Bucket=world.deployment.output("audit_bucket"), Prefix="breakglass-snapshots/chat/"
    )
    assert snapshots.get("KeyCount", 0) >= 1

    made = world.request("sam", "operator", "the endpoint's config is fixed", "--no-wait")
    assert made.exit_code == 0, made.stderr
    rid = made.json()["request_id"]
    approve(world, "bob", rid)
    assert world.wait_for(rid, ["granted", "denied"])["status"] == "granted"
    resumed = world.cli(
        "sam",
        "resume",
        "chat",
        "--mode",
        "delete-endpoint",
        "--tier",
        "operator",
        "--reason",
        "config fixed",
        *MFA,
    )
    assert resumed.exit_code == 0, resumed.stderr
    described = sagemaker.describe_endpoint(EndpointName="chat-prod")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "chat-prod-config")
    recorded = [
        (e.event_type, e.target, e.actor) for e in world.audit_events() if e.mode == "delete-endpoint"
    ]
    assert recorded == [("halt", "chat", "sam"), ("resume", "chat", "sam")]
