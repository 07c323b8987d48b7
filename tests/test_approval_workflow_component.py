"""ApprovalWorkflow under the Pulumi mock runtime: what it creates, and each function's least privilege."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from breakglass.components import ApprovalWorkflow, EmergencyRole
from breakglass.contracts import APPROVAL_POLICY_FILE, SECURITY_ADMINS_FILE, TIERS_CONFIG_FILE
from breakglass.lambdas.approvals.access_api import security_admins_from_archive
from breakglass.lambdas.runtime import TASK_ROOT_VARIABLE
from breakglass.local.synth import SynthError, SynthResult, synth
from breakglass.policies import state_machine as sm
from breakglass.policies.naming import PROTECTED_TAG
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
BUCKET_ARN = "arn:aws:s3:::audit-bucket"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/audit"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
REQUESTERS = [f"arn:aws:iam::{ACCOUNT}:user/rita"]
TIERS = {
    "halt": {"approval": "auto", "approvers": ["ann"]},
    "operator": {
        "approval": 2,
        "approvers": ["ann", "bob", "cat"],
        "backup_approvers": ["sec"],
        "ticket_required": True,
        "ticket_pattern": r"INC-\d+",
        "approval_timeout_seconds": 1800,
    },
}


def args(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tiers": TIERS,
        "audit_bucket_name": "audit-bucket",
        "audit_bucket_arn": BUCKET_ARN,
        "audit_kms_key_arn": KEY_ARN,
        "alert_topic_arn": TOPIC_ARN,
        "sender_email": "breakglass@example.com",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def program(**changes: Any) -> None:
    roles = [
        EmergencyRole(
            f"role-{tier}",
            {
                "tier": tier,
                "allowed_requesters": REQUESTERS,
                "managed_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            },
        )
        for tier in ("halt", "operator")
    ]
    ApprovalWorkflow("wf", args(emergency_roles=roles, **changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result() -> SynthResult:
    return synth(program)


def policy_of(result: SynthResult, function: str) -> list[dict[str, Any]]:
    policy = result.one("aws:iam/rolePolicy:RolePolicy", f"breakglass-{function}-policy")
    return list(json.loads(policy.inputs["policy"])["Statement"])


def actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for s in statements:
        found.update([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return found


FUNCTIONS = (
    "validate",
    "await-approval",
    "auto-approve",
    "deny",
    "access",
    "notify-requester",
    "open-review",
    "record-error",
    "approval-api",
    "access-api",
)


def test_it_creates_one_function_per_task_plus_the_approval_page_and_the_access_api(
    result: SynthResult,
) -> None:
    names = sorted(r.name for r in result.by_type("aws:lambda/function:Function"))
    assert names == sorted(f"breakglass-{f}" for f in FUNCTIONS)
    for resource in result.by_type("aws:lambda/function:Function"):
        assert resource.parent == "wf"
        env = resource.inputs["environment"]["variables"]
        assert env["BREAKGLASS_SENDER_EMAIL"] == "breakglass@example.com"
        if resource.name == "breakglass-approval-api":
            # The page reads neither: it knows a request by its record and a vote by its link.
            assert APPROVAL_POLICY_FILE not in resource.inputs["code"].assets
            continue
        assert resource.shipped_json(APPROVAL_POLICY_FILE)["operator"]["approval"] == 2
        assert set(resource.shipped_json(TIERS_CONFIG_FILE)) == {"halt", "operator"}
    access = result.one("aws:lambda/function:Function", "breakglass-access")
    assert access.inputs["reservedConcurrentExecutions"] == 1


def test_only_the_access_function_may_edit_the_emergency_roles_and_only_their_trust_inline_policies_and_guard_pages(
    result: SynthResult,
) -> None:
    role_arns = {f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-{t}" for t in ("halt", "operator")}
    for function in FUNCTIONS:
        statements = policy_of(result, function)
        iam = {a for a in actions(statements) if a.startswith("iam:")}
        if function == "access":
            assert iam == {
                "iam:GetRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListAttachedRolePolicies",
                # Guard pages (managed policies breakglass-emergency-<tier>-guards-<n>) only.
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
                "iam:CreatePolicy",
                "iam:TagPolicy",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
                "iam:CreatePolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:DeletePolicy",
            }
            edits = [s for s in statements if any(a.startswith("iam:") for a in s["Action"])]
            pages = {arn.replace(":role/", ":policy/") + "-guards-*" for arn in role_arns}
            for statement in edits:
                assert set(statement["Resource"]) in (role_arns, pages), statement
        else:
            assert iam == set(), function


def test_each_function_gets_only_the_table_items_mail_keys_and_callbacks_it_uses(result: SynthResult) -> None:
    def leading(statements: list[dict[str, Any]], sid: str) -> list[str]:
        found = [s for s in statements if s.get("Sid") == sid]
        return found[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] if found else []

    expected = {
        "validate": (["REQUEST#*"], ["REQUEST#*"], False, False),
        "await-approval": (["REQUEST#*", "USER#*"], ["REQUEST#*"], True, True),
        "open-review": (["REQUEST#*"], ["REQUEST#*"], False, False),
        "approval-api": (["REQUEST#*", "TOKEN#*", "USER#*"], ["REQUEST#*", "TOKEN#*", "USER#*"], False, True),
        "access-api": (
            ["LIVE#*", "REQUEST#*", "USER#*"],
            ["INDEX#*", "LIVE#*", "RATE#*", "REQUEST#*", "USER#*"],
            False,
            False,
        ),
    }
    for function, (read, write, mail, secret) in expected.items():
        statements = policy_of(result, function)
        assert leading(statements, "ReadItems") == read, function
        assert leading(statements, "WriteItems") == write, function
        assert ("ses:SendEmail" in actions(statements)) is mail, function
        assert ("secretsmanager:GetSecretValue" in actions(statements)) is secret, function
    callers = [f for f in FUNCTIONS if "states:SendTaskSuccess" in actions(policy_of(result, f))]
    # await-approval: votes that decided the request before it waited are its task's answer.
    assert sorted(callers) == ["access-api", "approval-api", "await-approval"]
    machine = result.one("aws:sfn/stateMachine:StateMachine").outputs["arn"]
    for caller in callers:
        (answer,) = [s for s in policy_of(result, caller) if "states:SendTaskSuccess" in actions([s])]
        assert answer["Resource"] == machine, caller
    starters = [f for f in FUNCTIONS if "states:StartExecution" in actions(policy_of(result, f))]
    assert starters == ["access-api"]
    for function in FUNCTIONS:
        statements = policy_of(result, function)
        assert "dynamodb:Scan" not in actions(statements)
        deletes = [s for s in statements if "dynamodb:DeleteItem" in actions([s])]
        if function == "access-api":  # unenrolling removes a USER item, nothing else
            assert [d["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for d in deletes] == [
                ["USER#*"]
            ]
        else:
            assert deletes == [], function
        assert all(s["Resource"] != "*" for s in statements), function
        assert any(s["Sid"] == "WriteAuditEvents" for s in statements), function


def test_the_table_is_kms_encrypted_with_ttl_point_in_time_recovery_and_deletion_protection(
    result: SynthResult,
) -> None:
    table = result.one("aws:dynamodb/table:Table").inputs
    assert (table["hashKey"], table["rangeKey"]) == ("pk", "sk")
    assert table["serverSideEncryption"]["enabled"] is True
    assert table["serverSideEncryption"]["kmsKeyArn"].startswith("arn:aws:kms:")
    assert table["ttl"] == {"attributeName": "ttl", "enabled": True}
    assert table["pointInTimeRecovery"]["enabled"] is True
    assert table["deletionProtectionEnabled"] is True
    assert result.one("aws:kms/key:Key").inputs["enableKeyRotation"] is True
    secret = result.one("aws:secretsmanager/secret:Secret").inputs
    assert secret["kmsKeyId"].startswith("arn:aws:kms:")


def test_the_state_machine_is_standard_logged_without_execution_data_and_traced(result: SynthResult) -> None:
    machine = result.one("aws:sfn/stateMachine:StateMachine").inputs
    assert machine["type"] == "STANDARD"
    logging = machine["loggingConfiguration"]
    assert logging["level"] == "ALL" and logging["includeExecutionData"] is False
    group = result.one("aws:cloudwatch/logGroup:LogGroup", "wf-execution-logs").inputs
    assert logging["logDestination"].endswith(":*") and group["retentionInDays"] == 365
    assert machine["tracingConfiguration"] == {"enabled": True}
    document = json.loads(machine["definition"])
    assert document["StartAt"] == "Validate"
    access_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:breakglass-access"
    assert document["States"]["Grant"]["Parameters"]["FunctionName"] == access_arn
    assert document["States"]["Revoke"]["Parameters"]["FunctionName"] == access_arn
    role = json.loads(result.one("aws:iam/rolePolicy:RolePolicy", "wf-states-policy").inputs["policy"])
    invoke = role["Statement"][0]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert access_arn in invoke["Resource"]
    assert f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:breakglass-approval-api" not in invoke["Resource"]


def test_execution_data_is_logged_only_on_explicit_opt_in() -> None:
    machine = synth(lambda: program(log_execution_data_opt_in=True)).one("aws:sfn/stateMachine:StateMachine")
    assert machine.inputs["loggingConfiguration"]["includeExecutionData"] is True


def test_failed_timed_out_and_aborted_executions_alarm_to_the_alert_topic(result: SynthResult) -> None:
    alarms = {
        a.inputs["metricName"]: a.inputs
        for a in result.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["namespace"] == "AWS/States"
    }
    # Aborted too: an emergency session or operator stopping an execution is a security event.
    assert set(alarms) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    for alarm in alarms.values():
        assert alarm["namespace"] == "AWS/States" and alarm["alarmActions"] == [TOPIC_ARN]
        assert alarm["threshold"] == 1 and alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["dimensions"]["StateMachineArn"].endswith(":stateMachine:breakglass-workflow")


def test_the_approval_page_routes_get_and_post_of_a_request_to_the_approval_function(
    result: SynthResult,
) -> None:
    page_routes = [
        r for r in result.by_type("aws:apigatewayv2/route:Route") if r.name.startswith("wf-route-")
    ]
    assert sorted(r.inputs["routeKey"] for r in page_routes) == ["GET /requests/{id}", "POST /requests/{id}"]
    assert all(r.inputs.get("authorizationType", "NONE") == "NONE" for r in page_routes)
    integration = result.one("aws:apigatewayv2/integration:Integration", "wf-api-integration").inputs
    assert integration["payloadFormatVersion"] == "2.0" and integration["integrationType"] == "AWS_PROXY"
    assert integration["integrationUri"].endswith(":function:breakglass-approval-api")
    permission = result.one("aws:lambda/permission:Permission", "wf-api-invoke").inputs
    assert permission["principal"] == "apigateway.amazonaws.com"
    stage = result.one("aws:apigatewayv2/stage:Stage", "wf-api-stage").inputs
    # Deciding has its own throttle budget: floods of page views cannot crowd out the POSTs.
    assert {s["routeKey"] for s in stage["routeSettings"]} == {"GET /requests/{id}", "POST /requests/{id}"}
    assert result.one("aws:ses/emailIdentity:EmailIdentity").inputs["email"] == "breakglass@example.com"
    api_url = "https://wf-api.execute-api.us-east-1.amazonaws.com"
    env = result.one("aws:lambda/function:Function", "breakglass-await-approval").inputs["environment"]
    assert env["variables"]["BREAKGLASS_APPROVAL_URL"] == api_url


def test_every_resource_is_a_child_of_the_component(result: SynthResult) -> None:
    component = result.one("breakglass:index:ApprovalWorkflow")
    assert component.name == "wf" and component.parent is None
    mine = [r for r in result.resources if r.type != "breakglass:index:EmergencyRole" and r.name != "wf"]
    roles = {r.name for r in result.resources if r.parent and r.parent.startswith("role-")}
    assert all(r.parent is not None for r in mine)
    assert all(r.name.startswith(("wf", "breakglass-")) or r.name in roles for r in mine)


def test_every_access_api_route_is_iam_authorized_and_served_by_the_access_api_function(
    result: SynthResult,
) -> None:
    from breakglass.lambdas.approvals import access_api

    routes = [
        r for r in result.by_type("aws:apigatewayv2/route:Route") if r.name.startswith("wf-access-route-")
    ]
    assert sorted(r.inputs["routeKey"] for r in routes) == sorted(access_api.route_keys())
    assert {r.inputs["authorizationType"] for r in routes} == {"AWS_IAM"}
    assert "POST /requests" in access_api.route_keys() and "POST /halts" in access_api.route_keys()
    integration = result.one("aws:apigatewayv2/integration:Integration", "wf-access-integration").inputs
    assert integration["integrationUri"].endswith(":function:breakglass-access-api")
    env = result.one("aws:lambda/function:Function", "breakglass-access-api").inputs["environment"][
        "variables"
    ]
    assert env["BREAKGLASS_STATE_MACHINE_ARN"].endswith(":stateMachine:breakglass-workflow")
    assert env["BREAKGLASS_ACCESS_FUNCTION"] == "breakglass-access"


def test_each_emergency_role_may_call_only_the_halt_routes_its_tier_allows(result: SynthResult) -> None:
    def routes(tier: str) -> list[str]:
        policy = result.one("aws:iam/rolePolicy:RolePolicy", f"wf-{tier}-routes")
        assert policy.inputs["role"] == f"breakglass-emergency-{tier}"
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Action"] == "execute-api:Invoke"
        return sorted(arn.split("/*/", 1)[1] for arn in statement["Resource"])

    # Halting is cheap, resuming is a decision: the auto tier halts, the quorum tier also resumes.
    assert routes("halt") == ["GET/whoami", "POST/halts"]
    assert routes("operator") == ["GET/whoami", "POST/halts", "POST/resumes"]


def test_people_get_managed_policies_for_exactly_their_routes(result: SynthResult) -> None:
    def routes(persona: str) -> set[str]:
        policy = result.one("aws:iam/policy:Policy", f"wf-{persona}-policy")
        assert policy.inputs["name"] == f"breakglass-{persona}"
        statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
        assert statements["FindDeployments"]["Resource"].endswith(":parameter/breakglass/*")
        assumes = "AssumeGrantedEmergencyRoles" in statements
        assert assumes is (persona == "responder")
        return {arn.split("/*/", 1)[1] for arn in statements["CallAccessApi"]["Resource"]}

    assert "POST/requests" in routes("responder") and "POST/requests/*/votes" not in routes("responder")
    assert "POST/requests/*/votes" in routes("approver") and "POST/requests" not in routes("approver")
    assert {"POST/requests/*/review", "POST/enrollments"} <= routes("security")
    assert not any(
        r.startswith("POST/halts") for p in ("responder", "approver", "security") for r in routes(p)
    )


def test_the_reconciler_runs_on_a_schedule_inside_the_access_function(result: SynthResult) -> None:
    rule = result.one("aws:cloudwatch/eventRule:EventRule", "wf-reconcile").inputs
    assert rule["scheduleExpression"] == "rate(5 minutes)"
    target = result.one("aws:cloudwatch/eventTarget:EventTarget", "wf-reconcile-target").inputs
    assert json.loads(target["input"]) == {"action": "reconcile"}
    assert target["arn"].endswith(":function:breakglass-access")
    watch = next(s for s in policy_of(result, "access") if s.get("Sid") == "WatchWorkflowExecutions")
    assert watch["Resource"].endswith(":execution:breakglass-workflow:*")


def test_every_function_role_is_named_so_the_boundary_protects_it_by_name(result: SynthResult) -> None:
    roles = [r for r in result.by_type("aws:iam/role:Role") if r.parent == "wf"]
    assert roles and all(r.inputs["name"].startswith("breakglass-system-") for r in roles)


def test_only_the_access_api_ships_the_bootstrap_admins_and_in_its_archive_not_its_environment(
    tmp_path: Path,
) -> None:
    admins = [f"arn:aws:iam::{ACCOUNT}:role/cloud-admin-{i:02d}" for i in range(80)]
    result = synth(lambda: program(security_admins=admins))
    access_api = result.one("aws:lambda/function:Function", "breakglass-access-api")
    assert access_api.shipped_json(SECURITY_ADMINS_FILE) == admins
    assert not any(
        SECURITY_ADMINS_FILE in f.inputs["code"].assets
        or any(a in str(f.inputs["environment"]) for a in admins)
        for f in result.by_type("aws:lambda/function:Function")
        if f.name != "breakglass-access-api"
    )
    (tmp_path / SECURITY_ADMINS_FILE).write_text(json.dumps(admins))
    assert security_admins_from_archive({TASK_ROOT_VARIABLE: str(tmp_path)}) == tuple(admins)
    (tmp_path / SECURITY_ADMINS_FILE).write_text(json.dumps(["*"]))
    with pytest.raises(ConfigError, match=rf"{SECURITY_ADMINS_FILE}\[0\]: must be an IAM user or role ARN"):
        security_admins_from_archive({TASK_ROOT_VARIABLE: str(tmp_path)})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sender_email": "not-an-email"}, "sender_email: must be an email address"),
        ({"sender_email": None}, "sender_email: is required"),
        ({"alert_topic_arn": None}, "alert_topic_arn: is required"),
        ({"tiers": {"halt": {"approval": "maybe"}}}, "tiers.halt.approval"),
        ({"tiers": {"halt": {"approval": "auto"}}}, "tiers: approval policies (halt) and emergency roles"),
        ({"log_retention_days": 0}, "log_retention_days: must be at least 1"),
        ({"name_prefix": "Bad Prefix"}, "name_prefix:"),
        ({"name_prefix": "ops"}, "name_prefix: use 'breakglass' or 'breakglass-<suffix>'"),
        ({"security_admins": ["*"]}, "security_admins[0]: must be an IAM user or role ARN"),
        ({"reconcile_every_minutes": 0}, "reconcile_every_minutes: must be at least 1"),
        ({"halt_actions": "ai-halt"}, "halt_actions: must be a HaltActions component"),
        ({"tiers_json": "{}"}, "emergency_roles: give either"),
        ({"colour": "red"}, "colour: unknown setting"),
    ],
)
def test_bad_args_raise_errors_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SynthError, match=None) as caught:
        synth(lambda: program(**changes))
    assert message in str(caught.value)


def test_tiers_json_with_role_arns_is_an_alternative_to_the_components() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-halt"
    tiers = {"halt": {"name": "halt", "role_arn": role_arn}}

    def alternative() -> None:
        ApprovalWorkflow(
            "wf",
            args(  # type: ignore[arg-type]
                tiers={"halt": TIERS["halt"]}, tiers_json=json.dumps(tiers), emergency_role_arns=[role_arn]
            ),
        )

    result = synth(alternative)
    statements = policy_of(result, "access")
    grant = next(s for s in statements if "iam:PutRolePolicy" in s["Action"])
    assert grant["Resource"] == [role_arn]
    with pytest.raises(SynthError, match="emergency_role_arns: is required"):
        synth(lambda: ApprovalWorkflow("wf", args(tiers_json="{}")))  # type: ignore[arg-type]


def test_state_machine_role_statements_cover_versions_of_each_function_once() -> None:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
    (invoke, *_rest) = sm.state_machine_role_statements([arn, arn])
    assert invoke["Resource"] == [arn, f"{arn}:*"]
    with pytest.raises(ValueError, match="item kind"):
        sm.table_statements("arn:aws:dynamodb:::table/t", read=("ITEM",))


def test_every_taggable_workflow_resource_is_protected_including_each_functions_role_and_logs(
    result: SynthResult,
) -> None:
    """The boundary denies changes to what carries the protected tag: a Lambda, role or log group
    without it could be rewritten by an admin-tier session (e.g. the access function's code or its
    role's trust), a way to grant itself access that outlives the window."""
    kinds = {
        "aws:lambda/function:Function",
        "aws:iam/role:Role",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:sfn/stateMachine:StateMachine",
        "aws:dynamodb/table:Table",
        "aws:secretsmanager/secret:Secret",
        "aws:kms/key:Key",
        "aws:apigatewayv2/api:Api",
        "aws:apigatewayv2/stage:Stage",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
    }
    taggable = [r for r in result.resources if r.parent == "wf" and r.type in kinds]
    assert {r.type for r in taggable} == kinds
    unprotected = [
        (r.type, r.name) for r in taggable if r.inputs.get("tags", {}).get(PROTECTED_TAG) != "true"
    ]
    assert unprotected == []
    access = result.one("aws:lambda/function:Function", "breakglass-access")
    assert access.inputs["tags"][PROTECTED_TAG] == "true"
    assert result.one("aws:iam/role:Role", "breakglass-access-role").inputs["tags"][PROTECTED_TAG] == "true"


def test_user_tags_reach_the_functions_too_and_cannot_unprotect_them() -> None:
    found = synth(lambda: program(tags={"team": "ml", PROTECTED_TAG: "false"}))
    for resource in found.by_type("aws:lambda/function:Function"):
        assert resource.inputs["tags"] == {"team": "ml", PROTECTED_TAG: "true"}


def test_refusal_floods_on_the_approval_page_and_lost_alerts_alarm(result: SynthResult) -> None:
    alarms = [
        a.inputs
        for a in result.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["namespace"] == "Breakglass"
    ]
    page = {
        a["metricName"]: a
        for a in alarms
        if a["dimensions"]["FunctionName"] == "breakglass-approval-api"
        and a["metricName"] != "AlertPublishFailures"
    }
    assert page["UnauthenticatedRefusals"]["threshold"] == 300 and page["LinkRefusals"]["threshold"] == 20
    lost = {a["dimensions"]["FunctionName"] for a in alarms if a["metricName"] == "AlertPublishFailures"}
    assert lost == {f"breakglass-{f}" for f in FUNCTIONS}
    assert all(a["alarmActions"] == [TOPIC_ARN] and a["treatMissingData"] == "notBreaching" for a in alarms)
