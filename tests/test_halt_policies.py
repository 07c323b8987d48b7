"""Halt targets and the documents built from them: structure, least privilege, parliament lint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from parliament import analyze_policy_string

from breakglass.policies.audit_trail import audit_writer_statements
from breakglass.policies.halt import (
    HALT_TAG_KEY,
    AuditAccess,
    HaltTarget,
    deny_invoke_policy,
    encode_halt_config,
    halt_function_statements,
    parse_halt_config,
    parse_targets,
    parse_tripwires,
    policy_document,
    resume_function_statements,
    scp_document,
    tripwire_event_pattern,
    tripwire_input_template,
)
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
WHERE: dict[str, str] = {"partition": "aws", "region": "us-east-1", "account": ACCOUNT}
CLAUDE = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
AGENT_ALIAS = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:agent-alias/AGENT12345/ALIAS6789"
AUDIT = AuditAccess(
    bucket="audit-bucket",
    events_prefix="breakglass-events",
    kms_key_arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    topic_arn=f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts",
)
TARGETS = parse_targets(
    "targets",
    [
        {
            "id": "chat",
            "endpoint_name": "Chat-Endpoint",
            "invoker_roles": ["chat-invoker"],
            "modes": ["deny-invoke", "delete-endpoint"],
        },
        {"id": "fleet", "endpoint_tags": {"fleet": "blue"}, "modes": ["delete-endpoint"]},
        {
            "id": "claude",
            "bedrock_arns": [CLAUDE, AGENT_ALIAS],
            "invoker_roles": ["agent-invoker"],
            "modes": ["deny-invoke", "scp"],
            "scp_target_ids": ["111122223333", "ou-ab12-cdef3456"],
        },
    ],
)
BY_ID = {t.id: t for t in TARGETS}

# AWS authorizes Converse through InvokeModel; parliament's action list has no bedrock:Converse*.
KNOWN_CONVERSE_FINDING = "UNKNOWN_ACTION - Unknown action bedrock:Converse*"


def findings(document: dict[str, Any]) -> list[str]:
    return [str(f) for f in analyze_policy_string(json.dumps(document)).findings]


def resources(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        value = statement["Resource"]
        found.update([value] if isinstance(value, str) else value)
    return found


@pytest.mark.parametrize("builder", [halt_function_statements, resume_function_statements])
def test_the_lambda_policies_are_parliament_clean(builder: Any) -> None:
    statements = builder(TARGETS, audit=AUDIT, **WHERE)
    assert findings(policy_document(statements)) == []


def test_the_halt_policy_names_only_the_declared_targets() -> None:
    statements = halt_function_statements(TARGETS, audit=AUDIT, **WHERE)
    assert resources(statements) == {
        "arn:aws:s3:::audit-bucket/breakglass-events/*",
        AUDIT.kms_key_arn,
        AUDIT.topic_arn,
        f"arn:aws:iam::{ACCOUNT}:role/chat-invoker",
        f"arn:aws:iam::{ACCOUNT}:role/agent-invoker",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat-endpoint",
        # the tag selector's endpoints: only with the selector's tags (condition checked below)
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/*",
        "arn:aws:s3:::audit-bucket",
        "arn:aws:s3:::audit-bucket/breakglass-snapshots/chat/*",
        "arn:aws:s3:::audit-bucket/breakglass-snapshots/fleet/*",
        f"arn:aws:organizations::{ACCOUNT}:policy/o-*/service_control_policy/p-*",
        f"arn:aws:organizations::{ACCOUNT}:account/o-*/111122223333",
        f"arn:aws:organizations::{ACCOUNT}:ou/o-*/ou-ab12-cdef3456",
        # only for actions without resource-level permissions (each justified in the builder)
        "*",
    }
    star = [s for s in statements if s["Resource"] == "*"]
    assert sorted(a for s in star for a in s["Action"]) == [
        "organizations:CreatePolicy",
        "organizations:ListPolicies",
        "sagemaker:ListEndpoints",
    ]
    tagged = next(s for s in statements if s["Sid"] == "HaltTaggedEndpoints0")
    assert tagged["Action"] == ["sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint"]
    assert tagged["Condition"] == {"StringEquals": {"aws:ResourceTag/fleet": "blue"}}
    # The halt function can only halt: no resume action, nothing on roles it was not given.
    actions = {a for s in statements for a in s["Action"]}
    assert not actions & {"iam:DeleteRolePolicy", "sagemaker:CreateEndpoint", "organizations:DetachPolicy"}


def test_the_resume_policy_holds_only_the_inverse_actions() -> None:
    statements = resume_function_statements(TARGETS, audit=AUDIT, **WHERE)
    actions = {a for s in statements for a in s["Action"]}
    assert {
        "iam:DeleteRolePolicy",
        "sagemaker:CreateEndpoint",
        "organizations:DetachPolicy",
        "s3:GetObject",
    } <= actions
    assert not actions & {"sagemaker:DeleteEndpoint", "organizations:AttachPolicy"}
    # Resume rewrites a deny page that still-halted targets share, so it may put an inline
    # policy, but only on the declared invoker roles (as the halt role may).
    putting = [s for s in statements if "iam:PutRolePolicy" in s["Action"]]
    assert [s["Resource"] for s in putting] == [
        [f"arn:aws:iam::{ACCOUNT}:role/agent-invoker", f"arn:aws:iam::{ACCOUNT}:role/chat-invoker"]
    ]
    tagged = next(s for s in statements if s["Sid"] == "HaltTaggedEndpoints0")
    assert tagged["Condition"] == {"StringEquals": {"aws:RequestTag/fleet": "blue"}}


def test_a_deny_invoke_only_target_needs_no_sagemaker_s3_snapshot_or_organizations_access() -> None:
    targets = [
        BY_ID["claude"].__class__.parse("t", {"id": "c", "bedrock_arns": [CLAUDE], "invoker_roles": ["r"]})
    ]
    statements = halt_function_statements(targets, audit=AuditAccess("b", "events"), **WHERE)
    assert [s["Sid"] for s in statements] == ["WriteAuditEvents", "ManageHaltDenyOnInvokerRoles"]
    assert findings(policy_document(statements)) == []


def test_the_sagemaker_deny_uses_the_lower_case_endpoint_arn() -> None:
    document = deny_invoke_policy(BY_ID["chat"], **WHERE)
    assert document["Statement"] == [
        {
            "Sid": "BreakGlassHaltSageMakerEndpointOfchat",  # the Sid names the target it denies
            "Effect": "Deny",
            "Action": ["sagemaker:InvokeEndpoint*"],
            "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat-endpoint",
        }
    ]
    assert findings(document) == []


def test_the_bedrock_deny_covers_models_and_agent_aliases_and_lints_clean_but_for_converse() -> None:
    document = deny_invoke_policy(BY_ID["claude"], **WHERE)
    assert [(s["Action"], s["Resource"]) for s in document["Statement"]] == [
        (["bedrock:InvokeModel*", "bedrock:Converse*"], [CLAUDE]),
        (["bedrock:InvokeAgent"], [AGENT_ALIAS]),
    ]
    assert [f.split(" - {")[0] for f in findings(document)] == [KNOWN_CONVERSE_FINDING]


def test_the_scp_denies_in_every_member_account_and_region() -> None:
    chat = scp_document(BY_ID["chat"], partition="aws")
    assert chat["Statement"][0]["Resource"] == "arn:aws:sagemaker:*:*:endpoint/chat-endpoint"
    fleet = scp_document(BY_ID["fleet"], partition="aws")
    assert fleet["Statement"][0]["Resource"] == "*"
    assert fleet["Statement"][0]["Condition"] == {"StringEquals": {"aws:ResourceTag/fleet": "blue"}}
    assert all(s["Effect"] == "Deny" for s in scp_document(BY_ID["claude"], partition="aws")["Statement"])


def test_targets_and_tripwires_survive_the_trip_through_the_functions_archive_file() -> None:
    tripwires = {f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:ai-trip-errors": "errors"}
    assert parse_halt_config("file", json.loads(encode_halt_config(TARGETS, tripwires))) == (
        TARGETS,
        tripwires,
    )


def test_a_halt_config_file_with_an_unknown_key_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"^file\.extra"):
        parse_halt_config("file", {"targets": [], "extra": 1})


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"endpoint_name": "x", "invoker_roles": ["r"]}, r"t\.id"),
        ({"id": "Bad_Id", "endpoint_name": "x", "invoker_roles": ["r"]}, r"t\.id"),
        ({"id": "a", "invoker_roles": ["r"]}, "t: give exactly one"),
        (
            {"id": "a", "endpoint_name": "x", "bedrock_arns": [CLAUDE], "invoker_roles": ["r"]},
            "t: give exactly one",
        ),
        ({"id": "a", "endpoint_name": "-x", "invoker_roles": ["r"]}, r"t\.endpoint_name"),
        (
            {"id": "a", "bedrock_arns": ["arn:aws:s3:::bucket"], "invoker_roles": ["r"]},
            r"t\.bedrock_arns\[0\]",
        ),
        ({"id": "a", "endpoint_name": "x"}, r"t\.invoker_roles"),
        (
            {"id": "a", "endpoint_name": "x", "invoker_roles": ["arn:aws:iam::1:role/r"]},
            r"t\.invoker_roles\[0\]",
        ),
        ({"id": "a", "endpoint_name": "x", "modes": ["pull-plug"]}, r"t\.modes\[0\]"),
        ({"id": "a", "bedrock_arns": [CLAUDE], "modes": ["delete-endpoint"]}, r"t\.modes"),
        ({"id": "a", "endpoint_name": "x", "modes": ["scp"]}, r"t\.scp_target_ids"),
        (
            {"id": "a", "endpoint_name": "x", "modes": ["scp"], "scp_target_ids": ["123"]},
            r"t\.scp_target_ids\[0\]",
        ),
        (
            {"id": "a", "endpoint_tags": {"aws:cloudformation": "x"}, "modes": ["delete-endpoint"]},
            r"t\.endpoint_tags",
        ),
        ({"id": "a", "endpoint_name": "x", "invoker_roles": ["r"], "mode": "scp"}, r"t\.mode"),
    ],
)
def test_a_bad_target_is_rejected_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        HaltTarget.parse("t", spec)


def test_target_ids_must_be_distinct_and_present() -> None:
    spec = {"id": "a", "endpoint_name": "x", "invoker_roles": ["r"]}
    with pytest.raises(ConfigError, match=r"^targets\[1\]\.id"):
        parse_targets("targets", [spec, spec])
    with pytest.raises(ConfigError, match=r"^targets: declare at least one"):
        parse_targets("targets", [])


def test_the_tripwire_rule_matches_only_its_alarm_entering_alarm() -> None:
    arn = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:ai-trip-errors"
    assert tripwire_event_pattern(arn) == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [arn],
        "detail": {"state": {"value": ["ALARM"]}},
    }


def test_the_tripwire_input_carries_targets_mode_and_the_whole_alarm_event() -> None:
    template = tripwire_input_template("errors", ["chat", "claude"], "deny-invoke")
    assert template.endswith(',"alarm":<aws.events.event.json>}')
    rendered = json.loads(template.replace("<aws.events.event.json>", '{"detail-type": "x"}'))
    assert rendered == {
        "source": "breakglass.tripwire",
        "tripwire": "errors",
        "mode": "deny-invoke",
        "targets": ["chat", "claude"],
        "alarm": {"detail-type": "x"},
    }


@pytest.mark.parametrize("builder", [halt_function_statements, resume_function_statements])
def test_organizations_rights_over_existing_scps_need_the_halt_tag_of_a_declared_target(builder: Any) -> None:
    # Without the tag condition the SCP pattern p-* would let the function rewrite every SCP of the
    # organization; Attach / Detach stay bounded by the declared targets instead.
    statements = builder(TARGETS, audit=AUDIT, **WHERE)
    policy_pattern = f"arn:aws:organizations::{ACCOUNT}:policy/o-*/service_control_policy/p-*"
    for statement in statements:
        actions = set(statement["Action"])
        if actions & {
            "organizations:UpdatePolicy",
            "organizations:DescribePolicy",
            "organizations:CreatePolicy",
        }:
            key = "aws:RequestTag" if "organizations:CreatePolicy" in actions else "aws:ResourceTag"
            assert statement["Condition"]["StringEquals"][f"{key}/{HALT_TAG_KEY}"] == ["claude"]
        elif policy_pattern in statement["Resource"] and "organizations:ListTargetsForPolicy" in actions:
            assert statement["Condition"]["StringEquals"] == {f"aws:ResourceTag/{HALT_TAG_KEY}": ["claude"]}
        elif policy_pattern in statement["Resource"]:
            assert actions <= {"organizations:AttachPolicy", "organizations:DetachPolicy"}
            assert "*" not in statement["Resource"]


@pytest.mark.parametrize("builder", [halt_function_statements, resume_function_statements])
def test_the_audit_rights_of_halt_and_resume_come_from_the_one_shared_builder(builder: Any) -> None:
    """Review finding 13: a private copy of these rights lacked kms:Decrypt for the encrypted topic."""
    statements = builder(TARGETS, audit=AUDIT, **WHERE)
    shared = audit_writer_statements(
        bucket_arn="arn:aws:s3:::audit-bucket",
        prefix="breakglass-events",
        kms_key_arn=AUDIT.kms_key_arn,
        topic_arn=AUDIT.topic_arn,
    )
    assert statements[: len(shared)] == shared
    rest = statements[len(shared) :]
    actions = [a for s in rest for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in actions if a.startswith(("kms:", "sns:"))]


def test_the_halt_function_may_read_the_state_of_its_tripwire_alarms_only() -> None:
    alarms = [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:ai-trip-errors"]
    statements = halt_function_statements(TARGETS, audit=AUDIT, tripwire_alarm_arns=alarms, **WHERE)
    [verify] = [s for s in statements if s["Sid"] == "VerifyTripwireAlarms"]
    assert verify["Action"] == ["cloudwatch:DescribeAlarms"]
    assert verify["Resource"] == alarms
    assert findings(policy_document(statements)) == []
    assert not [
        s for s in halt_function_statements(TARGETS, audit=AUDIT, **WHERE) if "cloudwatch" in json.dumps(s)
    ]


@pytest.mark.parametrize(
    ("tripwires", "field"),
    [
        ({"arn:aws:cloudwatch:us-east-1:123456789012:alarm:x": "Bad Name"}, "tripwires"),
        ({"arn:aws:sns:us-east-1:123456789012:alarm:x": "errors"}, "tripwires key"),
        (["errors"], "tripwires"),
    ],
)
def test_bad_tripwire_configuration_is_refused_naming_the_field(tripwires: Any, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        parse_tripwires("tripwires", tripwires)
