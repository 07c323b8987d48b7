"""The static KMS-rights check: every function holds the KMS rights its services will ask it for.

moto never asks for KMS permissions, so these are checked on the synthesized program: crafted
programs that miss each right are each reported, the halt function as it was on 198d2d6 is caught,
and the quickstart's functions hold what they need.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from breakglass.contracts import ENV_ALERT_TOPIC, ENV_AUDIT_BUCKET, ENV_AUDIT_KMS_KEY, ENV_AUDIT_PREFIX
from breakglass.local.synth import ACCOUNT_ID, SynthResult, synth, synth_directory
from breakglass.policies.audit_trail import audit_writer_statements
from breakglass.policies.halt import AuditAccess, halt_function_statements, parse_targets
from breakglass.policies.kms_rights import KmsRight, missing_kms_rights, report, required_kms_rights

FIXTURES = Path(__file__).parent / "fixtures" / "kms_rights"
QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"

KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/data-key-id"
OTHER_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/audit-key-id"
BUCKET = "arn:aws:s3:::data-bucket"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:alerts"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/records"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret/link-key"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/worker-role"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def allow(actions: str | list[str], resources: str | list[str], sid: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if sid:
        statement["Sid"] = sid
    return statement


def document(statements: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def program(
    statements: Sequence[Mapping[str, Any]],
    *,
    environment: Mapping[str, str] | None = None,
    topic_key: str | None = None,
    key_policy: Sequence[Mapping[str, Any]] | None = None,
    managed: Sequence[Mapping[str, Any]] | None = None,
    separate_key_policy: Sequence[Mapping[str, Any]] | None = None,
) -> SynthResult:
    """One function ``worker`` whose role has ``statements``, beside resources under one CMK."""

    def build() -> None:
        key = aws.kms.Key("data-key", policy=document(key_policy) if key_policy is not None else None)
        aws.kms.Key("audit-key")
        aws.kms.Alias("data-key-alias", name="alias/data", target_key_id=key.key_id)
        if separate_key_policy is not None:
            aws.kms.KeyPolicy("data-key-policy", key_id=key.key_id, policy=document(separate_key_policy))
        bucket = aws.s3.Bucket("data-bucket", bucket="data-bucket")
        aws.s3.BucketServerSideEncryptionConfiguration(
            "data-bucket-sse",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
        )
        aws.sns.Topic("alerts", name="alerts", kms_master_key_id=topic_key or key.arn)
        aws.dynamodb.Table(
            "records",
            name="records",
            hash_key="pk",
            attributes=[{"name": "pk", "type": "S"}],
            billing_mode="PAY_PER_REQUEST",
            server_side_encryption={"enabled": True, "kms_key_arn": key.arn},
        )
        aws.secretsmanager.Secret("link-key", name="link-key", kms_key_id=key.arn)
        role = aws.iam.Role("worker-role", assume_role_policy=TRUST)
        aws.iam.RolePolicy("worker-policy", role=role.id, policy=document(statements))
        if managed is not None:
            policy = aws.iam.Policy("worker-managed", policy=document(managed))
            aws.iam.RolePolicyAttachment("worker-managed-attach", role=role.name, policy_arn=policy.arn)
        aws.lambda_.Function(
            "worker",
            name="worker",
            role=role.arn,
            runtime="python3.12",
            handler="worker.handler",
            environment={"variables": dict(environment)} if environment else None,
        )

    return synth(build)


def found(result: SynthResult) -> set[tuple[str, str, str, str, str]]:
    return {
        (f.function, f.service, f.resource, f.key, f.action) for f in missing_kms_rights(result.resources)
    }


# ----- each rule: a function that may touch the resource but lacks the right is reported ----------

RULES = [
    # (what the function may do, what it then needs: service, resource, key actions)
    (allow("s3:PutObject", f"{BUCKET}/events/*"), "s3", BUCKET, ["kms:GenerateDataKey"]),
    (allow("s3:GetObject", f"{BUCKET}/snapshots/*"), "s3", BUCKET, ["kms:Decrypt"]),
    (allow("sns:Publish", TOPIC), "sns", TOPIC, ["kms:Decrypt", "kms:GenerateDataKey"]),
    (allow(["dynamodb:GetItem", "dynamodb:Query"], TABLE), "dynamodb", TABLE, ["kms:Decrypt"]),
    (
        allow("dynamodb:PutItem", TABLE),
        "dynamodb",
        TABLE,
        ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
    ),
    (allow("secretsmanager:GetSecretValue", SECRET), "secretsmanager", SECRET, ["kms:Decrypt"]),
    (
        allow("secretsmanager:PutSecretValue", SECRET),
        "secretsmanager",
        SECRET,
        ["kms:Decrypt", "kms:GenerateDataKey"],
    ),
]


@pytest.mark.parametrize(("statement", "service", "resource", "actions"), RULES)
def test_a_function_that_may_touch_an_encrypted_resource_without_the_key_rights_is_reported(
    statement: dict[str, Any], service: str, resource: str, actions: list[str]
) -> None:
    assert found(program([statement])) == {("worker", service, resource, KEY, a) for a in actions}


@pytest.mark.parametrize(("statement", "service", "resource", "actions"), RULES)
def test_the_same_function_with_those_key_rights_has_no_finding(
    statement: dict[str, Any], service: str, resource: str, actions: list[str]
) -> None:
    assert found(program([statement, allow(actions, KEY)])) == set()


@pytest.mark.parametrize(("statement", "service", "resource", "actions"), RULES)
def test_each_missing_action_is_reported_on_its_own(
    statement: dict[str, Any], service: str, resource: str, actions: list[str]
) -> None:
    for held in actions:
        rest = {a for a in actions if a != held}
        assert {f[4] for f in found(program([statement, allow(held, KEY)]))} == rest


def test_a_finding_names_function_service_resource_key_action_and_why() -> None:
    [finding] = missing_kms_rights(program([allow("s3:PutObject", f"{BUCKET}/*")]).resources)
    assert finding == KmsRight("worker", "s3", BUCKET, KEY, "kms:GenerateDataKey")
    assert finding.needed_for == ("s3:PutObject",)
    text = str(finding)
    for part in ("worker", "s3", BUCKET, KEY, "kms:GenerateDataKey", "s3:PutObject"):
        assert part in text
    assert report([finding]) == text


def test_wildcard_actions_and_resources_count_as_touching_everything_they_match() -> None:
    result = program([allow(["s3:*", "sns:Pub*", "dynamodb:Get*"], "*")])
    assert found(result) == {
        ("worker", "s3", BUCKET, KEY, "kms:GenerateDataKey"),
        ("worker", "s3", BUCKET, KEY, "kms:Decrypt"),
        ("worker", "sns", TOPIC, KEY, "kms:GenerateDataKey"),
        ("worker", "sns", TOPIC, KEY, "kms:Decrypt"),
        ("worker", "dynamodb", TABLE, KEY, "kms:Decrypt"),
    }


def test_a_function_that_touches_nothing_encrypted_needs_no_key_rights() -> None:
    result = program([allow("s3:PutObject", "arn:aws:s3:::another-bucket/*"), allow("sns:Subscribe", TOPIC)])
    assert required_kms_rights(result.resources) == []
    assert found(result) == set()


@pytest.mark.parametrize("grant", ["kms:GenerateDataKey*", "kms:*", "*", "KMS:generatedatakey"])
def test_iam_wildcards_and_case_in_the_key_statement_are_honoured(grant: str) -> None:
    result = program([allow("s3:PutObject", f"{BUCKET}/*"), allow(grant, "arn:aws:kms:*:*:key/*")])
    assert found(result) == set()


def test_an_unconditional_deny_on_the_key_takes_the_right_away() -> None:
    deny = {"Effect": "Deny", "Action": "kms:GenerateDataKey", "Resource": KEY}
    result = program([allow("s3:PutObject", f"{BUCKET}/*"), allow("kms:*", KEY), deny])
    assert found(result) == {("worker", "s3", BUCKET, KEY, "kms:GenerateDataKey")}


def test_a_key_for_another_resource_does_not_count() -> None:
    result = program([allow("sns:Publish", TOPIC), allow(["kms:GenerateDataKey", "kms:Decrypt"], OTHER_KEY)])
    assert {f[4] for f in found(result)} == {"kms:GenerateDataKey", "kms:Decrypt"}


def test_a_key_policy_that_names_the_role_grants_the_right_but_the_account_root_does_not() -> None:
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    publish = [allow("sns:Publish", TOPIC)]
    assert len(found(program(publish, key_policy=[root]))) == 2
    role = {
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": "*",
    }
    assert found(program(publish, key_policy=[root, role])) == set()


def test_a_customer_managed_policy_attached_to_the_role_counts() -> None:
    result = program(
        [allow("sns:Publish", TOPIC)], managed=[allow(["kms:GenerateDataKey", "kms:Decrypt"], KEY)]
    )
    assert found(result) == set()
    touching = program([], managed=[allow("sns:Publish", TOPIC)])
    assert {f[4] for f in found(touching)} == {"kms:GenerateDataKey", "kms:Decrypt"}


def test_an_aws_managed_key_needs_no_identity_policy_right() -> None:
    assert found(program([allow("sns:Publish", TOPIC)], topic_key="alias/aws/sns")) == set()


def test_the_key_the_environment_names_for_s3_puts_wins_over_the_bucket_default() -> None:
    environment = {ENV_AUDIT_BUCKET: "data-bucket", ENV_AUDIT_KMS_KEY: OTHER_KEY}
    result = program([allow("s3:PutObject", f"{BUCKET}/*"), allow("kms:*", KEY)], environment=environment)
    assert found(result) == {("worker", "s3", BUCKET, OTHER_KEY, "kms:GenerateDataKey")}


def test_a_bucket_outside_the_program_is_checked_through_the_key_the_environment_names() -> None:
    environment = {ENV_AUDIT_BUCKET: "external-audit", ENV_AUDIT_KMS_KEY: OTHER_KEY}
    result = program([allow("s3:PutObject", "arn:aws:s3:::external-audit/events/*")], environment=environment)
    assert found(result) == {
        ("worker", "s3", "arn:aws:s3:::external-audit", OTHER_KEY, "kms:GenerateDataKey")
    }


# ----- finding 13: the halt function's audit rights -------------------------------------------


def halt_program(statements: Sequence[Mapping[str, Any]]) -> SynthResult:
    """The quickstart's audit bucket, key and alert topic, and a halt function with ``statements``."""

    def build() -> None:
        key = aws.kms.Key("audit-key")
        bucket = aws.s3.Bucket("audit-bucket", bucket="audit-bucket")
        aws.s3.BucketServerSideEncryptionConfiguration(
            "audit-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    }
                }
            ],
        )
        topic = aws.sns.Topic("audit-alerts", name="breakglass-alerts", kms_master_key_id=key.arn)
        role = aws.iam.Role("ai-halt-role", assume_role_policy=TRUST)
        aws.iam.RolePolicy("ai-halt-policy", role=role.id, policy=document(statements))
        aws.lambda_.Function(
            "ai-halt",
            name="ai-halt",
            role=role.arn,
            runtime="python3.12",
            handler="breakglass.lambdas.halt.handler.halt_handler",
            environment={
                "variables": {
                    ENV_AUDIT_BUCKET: bucket.bucket,
                    ENV_AUDIT_PREFIX: "breakglass-events",
                    ENV_AUDIT_KMS_KEY: key.arn,
                    ENV_ALERT_TOPIC: topic.arn,
                }
            },
        )
        pulumi.export("key", key.arn)

    return synth(build)


AUDIT_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/audit-key-id"
ALERTS = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:breakglass-alerts"


def test_the_halt_statements_of_commit_198d2d6_are_flagged_for_the_missing_decrypt() -> None:
    fixture = json.loads((FIXTURES / "halt-statements-198d2d6.json").read_text())
    findings = missing_kms_rights(halt_program(fixture["statements"]).resources)
    assert [(f.function, f.service, f.resource, f.key, f.action) for f in findings] == [
        ("ai-halt", "sns", ALERTS, AUDIT_KEY, "kms:Decrypt")
    ]
    assert findings[0].needed_for == ("sns:Publish",)


def test_the_halt_statements_built_now_hold_every_key_right() -> None:
    targets = parse_targets(
        "targets",
        [
            {
                "id": "chat",
                "endpoint_name": "chat-prod",
                "invoker_roles": ["chat-api"],
                "modes": ["deny-invoke", "delete-endpoint"],
            }
        ],
    )
    audit = AuditAccess("audit-bucket", "breakglass-events", kms_key_arn=AUDIT_KEY, topic_arn=ALERTS)
    statements = halt_function_statements(
        targets, partition="aws", region="us-east-1", account=ACCOUNT_ID, audit=audit
    )
    result = halt_program(statements)
    assert {(r.service, r.action) for r in required_kms_rights(result.resources)} == {
        ("s3", "kms:GenerateDataKey"),
        ("sns", "kms:GenerateDataKey"),
        ("sns", "kms:Decrypt"),
    }
    assert missing_kms_rights(result.resources) == []


def test_the_shared_audit_writer_statements_hold_every_key_right() -> None:
    statements = audit_writer_statements(
        bucket_arn="arn:aws:s3:::audit-bucket",
        prefix="breakglass-events",
        kms_key_arn=AUDIT_KEY,
        topic_arn=ALERTS,
    )
    assert missing_kms_rights(halt_program(statements).resources) == []


# ----- the quickstart ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quickstart() -> SynthResult:
    return synth_directory(QUICKSTART)


def test_the_quickstart_halt_and_resume_functions_hold_every_kms_right_they_need(
    quickstart: SynthResult,
) -> None:
    needed = [
        r
        for r in required_kms_rights(quickstart.resources)
        if r.function in {"breakglass-ai-halt", "breakglass-ai-resume"}
    ]
    assert {(r.function, r.service, r.action) for r in needed} == {
        ("breakglass-ai-halt", "s3", "kms:GenerateDataKey"),
        ("breakglass-ai-halt", "sns", "kms:GenerateDataKey"),
        ("breakglass-ai-halt", "sns", "kms:Decrypt"),
        ("breakglass-ai-resume", "s3", "kms:GenerateDataKey"),
        ("breakglass-ai-resume", "s3", "kms:Decrypt"),  # reads the snapshots it recreates endpoints from
        ("breakglass-ai-resume", "sns", "kms:GenerateDataKey"),
        ("breakglass-ai-resume", "sns", "kms:Decrypt"),
    }
    assert [
        f
        for f in missing_kms_rights(quickstart.resources)
        if f.function in {"breakglass-ai-halt", "breakglass-ai-resume"}
    ] == []


def test_every_quickstart_function_holds_the_key_rights_to_write_and_alert_audit_events(
    quickstart: SynthResult,
) -> None:
    audit = [f for f in missing_kms_rights(quickstart.resources) if f.service in {"s3", "sns"}]
    assert audit == []


def test_the_quickstart_has_no_missing_kms_rights(quickstart: SynthResult) -> None:
    assert report(missing_kms_rights(quickstart.resources)) == ""


def test_every_quickstart_function_that_writes_audit_events_gets_the_shared_builders_statements(
    quickstart: SynthResult,
) -> None:
    writers = [
        f
        for f in quickstart.by_type("aws:lambda/function:Function")
        if ENV_AUDIT_BUCKET in ((f.inputs.get("environment") or {}).get("variables") or {})
    ]
    assert {"breakglass-ai-halt", "breakglass-ai-resume"} <= {f.name for f in writers}
    buckets = {b.outputs["bucket"]: b.outputs["arn"] for b in quickstart.by_type("aws:s3/bucket:Bucket")}
    for function in writers:
        variables = function.inputs["environment"]["variables"]
        shared = audit_writer_statements(
            bucket_arn=buckets[variables[ENV_AUDIT_BUCKET]],
            prefix=variables.get(ENV_AUDIT_PREFIX, "breakglass-events"),
            kms_key_arn=variables.get(ENV_AUDIT_KMS_KEY),
            topic_arn=variables.get(ENV_ALERT_TOPIC),
        )
        role = function.inputs["role"].rsplit("/", 1)[-1]
        [policy] = [
            p for p in quickstart.by_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role
        ]
        statements = json.loads(policy.inputs["policy"])["Statement"]
        assert all(s in statements for s in shared), function.name


def test_a_key_named_by_its_alias_is_resolved_to_the_key() -> None:
    assert found(program([allow("sns:Publish", TOPIC)], topic_key="alias/data")) == {
        ("worker", "sns", TOPIC, KEY, "kms:GenerateDataKey"),
        ("worker", "sns", TOPIC, KEY, "kms:Decrypt"),
    }
    held = program([allow("sns:Publish", TOPIC), allow("kms:*", KEY)], topic_key="alias/data")
    assert found(held) == set()


def test_a_key_policy_resource_that_names_the_role_grants_the_right() -> None:
    role = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:*", "Resource": "*"}
    assert found(program([allow("sns:Publish", TOPIC)], separate_key_policy=[role])) == set()


def test_the_rights_one_key_gives_for_several_actions_are_reported_once_with_every_reason() -> None:
    [decrypt] = [
        r
        for r in missing_kms_rights(
            program([allow(["dynamodb:GetItem", "dynamodb:PutItem"], TABLE)]).resources
        )
        if r.action == "kms:Decrypt"
    ]
    assert decrypt.needed_for == ("dynamodb:GetItem", "dynamodb:PutItem")
