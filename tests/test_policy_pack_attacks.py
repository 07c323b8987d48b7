"""An insider's attempts to get a weakened break-glass stack past the guardrail pack and
``synth --check``: each test is one attack that passed the gate before its rule was fixed, kept as a
guard. The rule functions are called directly where one resource (or a few) says it all; the
programs in ``tests/bad_programs`` carry the attacks that need a whole stack."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.local.synth import synth_directory
from breakglass.local.synth_check import CheckMocks, check_resources, resources_of
from breakglass.policies.boundary import permission_boundary
from breakglass.policies.naming import EMERGENCY_ROLE_TAG
from breakglass.policies.pack import rules
from breakglass.policies.pack.rules import PackConfig, Resource
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
ROLE_NAME = "breakglass-emergency-admin"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/{ROLE_NAME}-boundary"
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/oncall"
CONFIG = PackConfig()
BAD = Path(__file__).parent / "bad_programs"
runner = CliRunner()


@cache
def flawed(flaw: str) -> tuple[Resource, ...]:
    result = synth_directory(BAD, config={"flaw": flaw}, mocks=CheckMocks())
    return tuple(resources_of(result.resources))


def rule_names(findings: list[rules.Finding]) -> set[str]:
    return {f.rule for f in findings}


def trust(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def emergency_role(assume_role_policy: Any = None, **inputs: Any) -> Resource:
    values = {
        "name": ROLE_NAME,
        "assumeRolePolicy": assume_role_policy or trust({"Effect": "Deny", "Principal": "*", "Action": "*"}),
        "permissionsBoundary": BOUNDARY_ARN,
        "maxSessionDuration": 3600,
        "tags": {EMERGENCY_ROLE_TAG: "admin"},
        **inputs,
    }
    return Resource(rules.ROLE, "admin-role", values, {"arn": f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"})


def every_finding(*resources: Resource) -> set[str]:
    return rule_names(rules.check(list(resources), CONFIG))


# --- trust opened in another shape ------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [["*"], {"AWS": ["*"]}, {"AWS": "arn:aws:iam::*:root"}, {"AWS": f"arn:aws:iam::{ACCOUNT}:*"}],
    ids=["list", "aws-list", "any-account-root", "any-role-of-account"],
)
def test_an_open_principal_in_any_shape_or_with_a_wildcard_is_an_open_trust(principal: Any) -> None:
    role = Resource(
        rules.ROLE,
        "app",
        {
            "name": "app",
            "assumeRolePolicy": trust(
                {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
            ),
        },
    )
    assert rule_names(rules.role_trust_not_open(role, CONFIG)) == {"role-trust-not-open"}


@pytest.mark.parametrize("effect", ["allow", "ALLOW"])
def test_an_allow_spelled_in_another_case_is_still_an_allow(effect: str) -> None:
    open_trust = trust({"Effect": effect, "Principal": {"AWS": "*"}, "Action": "sts:assumerole"})
    assert {"role-trust-not-open", "emergency-role-trust-locked"} <= every_finding(emergency_role(open_trust))


def test_a_trust_given_as_a_mapping_rather_than_json_text_is_read_the_same() -> None:
    document = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:*"}]}
    assert {"role-trust-not-open", "emergency-role-trust-locked"} <= every_finding(emergency_role(document))


def test_a_hand_written_grant_that_never_ends_is_a_standing_door_not_a_grant() -> None:
    standing = trust(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ONCALL},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:SourceIdentity": "alice", "sts:RoleSessionName": "alice"},
                "DateLessThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"},
            },
        }
    )
    [finding] = rules.emergency_role_trust_locked(emergency_role(standing), CONFIG)
    assert "DateGreaterThan" in finding.message


def test_a_hand_written_grant_whose_window_is_longer_than_any_tier_allows_is_refused() -> None:
    year = trust(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ONCALL},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:SourceIdentity": "alice", "sts:RoleSessionName": "alice"},
                "DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"},
                "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"},
            },
        }
    )
    [finding] = rules.emergency_role_trust_locked(emergency_role(year), CONFIG)
    assert "window" in finding.message and "longest" in finding.message


# --- emergency roles that hide what they are ------------------------------------------------------------


@pytest.mark.parametrize(
    "inputs",
    [
        {"name": None, "namePrefix": "breakglass-emergency-", "tags": {}},
        {"name": "Breakglass-Emergency-admin", "tags": {}},
        {"tags": {"Breakglass:Emergency-Tier": "admin"}, "name": "ops"},
    ],
    ids=["name-prefix", "name-case", "tag-case"],
)
def test_a_role_named_or_tagged_as_an_emergency_role_in_another_spelling_is_one(
    inputs: dict[str, Any],
) -> None:
    role = emergency_role(permissionsBoundary=None, **inputs)
    assert rules.is_emergency_role(role)
    assert rule_names(rules.emergency_role_boundary(role, CONFIG)) == {"emergency-role-boundary"}


# --- sessions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["43200", 43200.0])
def test_a_session_limit_given_as_text_or_a_float_is_read_as_the_number_it_is(value: Any) -> None:
    role = emergency_role(maxSessionDuration=value)
    assert rule_names(rules.emergency_role_session_limit(role, CONFIG)) == {"emergency-role-session-limit"}


@pytest.mark.parametrize("value", ["12h", [43200], {"seconds": 43200}])
def test_a_session_limit_that_is_not_a_number_is_a_finding_not_a_crash(value: Any) -> None:
    [finding] = rules.emergency_role_session_limit(emergency_role(maxSessionDuration=value), CONFIG)
    assert "not a whole number" in finding.message


# --- a boundary that no longer guards -------------------------------------------------------------------------


def boundary_program(boundary: dict[str, Any], *extra: Resource) -> list[Resource]:
    policy = Resource(
        rules.MANAGED_POLICY, "admin-boundary", {"policy": json.dumps(boundary)}, {"arn": BOUNDARY_ARN}
    )
    return [emergency_role(), policy, *extra]


def test_the_component_s_boundary_keeps_every_guard() -> None:
    assert rules.emergency_role_guards(boundary_program(permission_boundary([])), CONFIG) == []


def test_a_boundary_that_allows_everything_and_only_denies_chaining_is_refused() -> None:
    hollow = {
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"},
        ]
    }
    program = boundary_program(hollow)
    assert rules.role_chaining_opt_in(program, CONFIG) == []  # what passed the gate
    findings = rules.emergency_role_guards(program, CONFIG)
    assert rule_names(findings) == {"emergency-role-guards"}
    assert "cloudtrail:StopLogging" in " ".join(f.message for f in findings)


def test_a_boundary_whose_tamper_deny_is_conditional_does_not_count() -> None:
    boundary = permission_boundary([])
    for statement in boundary["Statement"]:
        if statement.get("Sid") == "DenyAuditTrailChanges":
            statement["Condition"] = {"StringEquals": {"aws:RequestedRegion": "eu-west-3"}}
    assert rule_names(rules.emergency_role_guards(boundary_program(boundary), CONFIG)) == {
        "emergency-role-guards"
    }


@pytest.mark.parametrize(
    ("type_", "inputs"),
    [
        (rules.ROLE_POLICIES_EXCLUSIVE, {"roleName": ROLE_NAME, "policyNames": []}),
        (rules.ATTACHMENTS_EXCLUSIVE, {"roleName": ROLE_NAME, "policyArns": []}),
    ],
)
def test_exclusive_policy_management_of_an_emergency_role_would_strip_the_grant_guards(
    type_: str, inputs: dict[str, Any]
) -> None:
    exclusive = Resource(type_, "admin-exclusive", inputs)
    program = boundary_program(permission_boundary([]), exclusive)
    [finding] = rules.emergency_role_guards(program, CONFIG)
    assert "guard" in finding.message and finding.resource_name == "admin-exclusive"


# --- the audit trail --------------------------------------------------------------------------------------------


def trail(**inputs: Any) -> Resource:
    values = {
        "s3BucketName": "audit",
        "isMultiRegionTrail": True,
        "enableLogFileValidation": True,
        "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
        "eventSelectors": [{"includeManagementEvents": True, "readWriteType": "All"}],
        **inputs,
    }
    return Resource(rules.TRAIL, "trail", values)


@pytest.mark.parametrize(
    "inputs",
    [
        {"eventSelectors": [{"includeManagementEvents": False, "readWriteType": "All"}]},
        {"eventSelectors": [{"includeManagementEvents": True, "readWriteType": "ReadOnly"}]},
        {
            "eventSelectors": [
                {"readWriteType": "All", "excludeManagementEventSources": ["kms.amazonaws.com"]}
            ]
        },
        {"advancedEventSelectors": [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Data"]}]}]},
        {
            "advancedEventSelectors": [
                {
                    "fieldSelectors": [
                        {"field": "eventCategory", "equals": ["Management"]},
                        {"field": "readOnly", "equals": ["true"]},
                    ]
                }
            ]
        },
    ],
    ids=["no-management", "read-only", "kms-excluded", "advanced-data-only", "advanced-read-only"],
)
def test_a_trail_whose_selectors_drop_management_events_is_refused(inputs: dict[str, Any]) -> None:
    assert rules.trail_multi_region_validated_encrypted(trail(), CONFIG) == []
    [finding] = rules.trail_multi_region_validated_encrypted(trail(**inputs), CONFIG)
    assert "management events" in finding.message


def test_a_trail_with_every_management_event_through_an_advanced_selector_passes() -> None:
    selectors = [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}]
    assert rules.trail_multi_region_validated_encrypted(trail(advancedEventSelectors=selectors), CONFIG) == []


def test_a_second_trail_without_validation_is_refused_beside_a_good_one() -> None:
    second = Resource(rules.TRAIL, "quiet", {**trail().inputs, "enableLogFileValidation": False})
    assert rule_names(rules.check([trail(), second], CONFIG)) >= {"trail-multi-region-validated-encrypted"}


# --- the audit bucket ---------------------------------------------------------------------------------------------

AUDIT_BUCKET = Resource(rules.BUCKETS[0], "audit-bucket", {"objectLockEnabled": True}, {"bucket": "audit"})


def lock(type_: str = rules.OBJECT_LOCK[0], **retention: Any) -> Resource:
    return Resource(type_, "lock", {"bucket": "audit", "rule": {"defaultRetention": retention}})


@pytest.mark.parametrize("type_", rules.OBJECT_LOCK)
def test_a_governance_or_short_lock_through_either_lock_resource_is_refused(type_: str) -> None:
    for bad in ({"mode": "GOVERNANCE", "days": 365}, {"mode": "COMPLIANCE", "days": 1}):
        findings = rules.audit_bucket_compliance_lock([AUDIT_BUCKET, lock(type_, **bad), trail()], CONFIG)
        assert rule_names(findings) == {"audit-bucket-compliance-lock"}


@pytest.mark.parametrize("days", ["forever", "30", None])
def test_a_retention_that_is_not_a_number_is_a_finding_or_read_as_one_never_a_crash(days: Any) -> None:
    findings = rules.audit_bucket_compliance_lock([lock(mode="COMPLIANCE", days=days)], CONFIG)
    assert rule_names(findings) == {"audit-bucket-compliance-lock"}


def bucket_policy(*statements: dict[str, Any], bucket: str = "audit") -> Resource:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return Resource(rules.BUCKET_POLICY, "audit-policy", {"bucket": bucket, "policy": document})


@pytest.mark.parametrize(
    "action",
    [
        "s3:PutBucketObjectLockConfiguration",
        "s3:BypassGovernanceRetention",
        "s3:DeleteObjectVersion",
        "s3:*",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
        "s3:PutObjectRetention",
    ],
)
def test_an_audit_bucket_policy_that_allows_unlocking_or_deleting_records_is_refused(action: str) -> None:
    allow = {"Effect": "Allow", "Principal": {"AWS": ONCALL}, "Action": action, "Resource": "*"}
    program = [AUDIT_BUCKET, lock(mode="COMPLIANCE", days=365), trail(), bucket_policy(allow)]
    [finding] = rules.audit_bucket_compliance_lock(program, CONFIG)
    assert finding.resource_name == "audit-policy" and "audit records" in finding.message


def test_a_lifecycle_rule_that_expires_audit_records_before_the_retention_is_refused() -> None:
    lifecycle = Resource(
        rules.LIFECYCLE[0],
        "audit-lifecycle",
        {"bucket": "audit", "rules": [{"status": "Enabled", "expiration": {"days": 7}}]},
    )
    program = [AUDIT_BUCKET, lock(mode="COMPLIANCE", days=365), trail(), lifecycle]
    [finding] = rules.audit_bucket_compliance_lock(program, CONFIG)
    assert finding.resource_name == "audit-lifecycle" and "expires" in finding.message
    disabled = Resource(
        rules.LIFECYCLE[0],
        "audit-lifecycle",
        {"bucket": "audit", "rules": [{"status": "Disabled", "expiration": {"days": 7}}]},
    )
    assert rules.audit_bucket_compliance_lock([*program[:3], disabled], CONFIG) == []


# --- function and state machine roles ------------------------------------------------------------------------------


def function_program(
    *statements: dict[str, Any], trust_service: str = "lambda.amazonaws.com"
) -> list[Resource]:
    role_trust = trust(
        {"Effect": "Allow", "Principal": {"Service": trust_service}, "Action": "sts:AssumeRole"}
    )
    return [
        Resource(
            rules.ROLE,
            "fn-role",
            {"name": "fn", "assumeRolePolicy": role_trust},
            {"arn": "arn:aws:iam::1:role/fn"},
        ),
        Resource(
            "aws:iam/rolePolicy:RolePolicy",
            "fn-policy",
            {"role": "fn", "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})},
        ),
        Resource(rules.FUNCTION, "fn", {"name": "fn", "role": "arn:aws:iam::1:role/fn"}),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:*:*:*:*"},
        {"Effect": "Allow", "Action": "*:*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": "s*:*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": "iam:?*", "Resource": "arn:aws:iam::1:role/x"},
        {"Effect": "allow", "Action": "*", "Resource": "*"},
    ],
    ids=["arn-star", "arn-all-parts", "star-colon-star", "service-glob", "question-star", "lower-allow"],
)
def test_a_wildcard_in_another_spelling_on_a_function_role_is_refused(statement: dict[str, Any]) -> None:
    assert rule_names(rules.lambda_role_no_wildcards(function_program(statement), CONFIG)) == {
        "lambda-role-no-wildcards"
    }


def test_a_function_s_role_is_a_function_role_whatever_its_trust_says() -> None:
    star = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    program = function_program(star, trust_service="ec2.amazonaws.com")
    assert rule_names(rules.lambda_role_no_wildcards(program, CONFIG)) == {"lambda-role-no-wildcards"}


def test_a_managed_policy_attached_through_an_exclusive_attachment_is_read() -> None:
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    fine = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:q"}
    exclusive = Resource(
        rules.ATTACHMENTS_EXCLUSIVE, "fn-exclusive", {"roleName": "fn", "policyArns": [admin]}
    )
    findings = rules.lambda_role_no_wildcards([*function_program(fine), exclusive], CONFIG)
    assert any(admin in f.message for f in findings), findings


# --- anyone may invoke a function ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "inputs"),
    [
        (
            rules.LAMBDA_PERMISSION,
            {"function": "breakglass-access-api", "principal": "*", "action": "lambda:InvokeFunction"},
        ),
        (
            rules.LAMBDA_PERMISSION,
            {
                "function": "breakglass-access-api",
                "principal": "apigateway.amazonaws.com",
                "action": "lambda:InvokeFunction",
            },
        ),
        (rules.FUNCTION_URL, {"functionName": "breakglass-access-api", "authorizationType": "NONE"}),
    ],
    ids=["anyone", "any-api-of-any-account", "public-url"],
)
def test_a_function_anyone_can_invoke_with_a_forged_event_is_refused(
    type_: str, inputs: dict[str, Any]
) -> None:
    assert rule_names(rules.check([Resource(type_, "door", inputs)], CONFIG)) == {"function-invoke-not-open"}


def test_a_service_permission_bound_to_its_source_passes() -> None:
    permission = Resource(
        rules.LAMBDA_PERMISSION,
        "invoke",
        {
            "function": "breakglass-access-api",
            "principal": "apigateway.amazonaws.com",
            "sourceArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:breakglass-access/*/*",
        },
    )
    assert rules.check([permission], CONFIG) == []


# --- routes -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["GET /requests/{id}/votes", "ANY /{proxy+}", "any /requests", "get /requests/{id}/approve"]
)
def test_a_route_added_beside_the_component_that_could_decide_on_a_get_is_refused(key: str) -> None:
    route = Resource(rules.ROUTE, "extra", {"routeKey": key})
    assert rule_names(rules.approval_api_post_only(route, CONFIG)) == {"approval-api-post-only"}


# --- crashes fail closed ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [
        Resource(
            rules.ROLE,
            "odd",
            {
                "name": "odd",
                "assumeRolePolicy": trust({"Effect": "Allow", "Principal": {"AWS": 123}, "Action": 7}),
            },
        ),
        Resource(rules.ROLE, "odd", {"name": ROLE_NAME, "tags": 5, "assumeRolePolicy": "[1, 2]"}),
        Resource(rules.STATE_MACHINE, "odd", {"loggingConfiguration": ["ALL"]}),
        Resource(rules.TRAIL, "odd", {"eventSelectors": "All", "isMultiRegionTrail": True}),
        Resource(
            rules.OBJECT_LOCK[0],
            "odd",
            {"bucket": "audit", "rule": [{"defaultRetention": {"days": {"n": 1}}}]},
        ),
    ],
    ids=["numbers-in-trust", "tags-not-a-map", "logging-a-list", "selectors-text", "days-a-map"],
)
def test_a_resource_of_an_unexpected_shape_never_crashes_the_check(resource: Resource) -> None:
    for finding in rules.check([resource], CONFIG):
        assert finding.rule  # every rule either reads it or reports it; none raises


def test_a_rule_that_raises_is_a_finding_naming_the_rule_and_the_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(resource: Resource, config: PackConfig) -> list[rules.Finding]:
        raise KeyError("surprise")

    monkeypatch.setitem(rules.RESOURCE_RULES, rules.BOUNDARY, broken)  # type: ignore[index]
    findings = rules.check([emergency_role()], CONFIG)
    [crash] = [f for f in findings if f.rule == rules.BOUNDARY]
    assert (
        crash.resource_name == "admin-role"
        and "could not read" in crash.message
        and "KeyError" in crash.message
    )


# --- whole programs (tests/bad_programs) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flaw", "rule"),
    [
        ("hollow-boundary", "emergency-role-guards"),
        ("exclusive-attachments", "emergency-role-guards"),
        ("trail-read-only", "trail-multi-region-validated-encrypted"),
        ("lifecycle-expires-audit", "audit-bucket-compliance-lock"),
        ("bucket-policy-unlock", "audit-bucket-compliance-lock"),
        ("public-function-url", "function-invoke-not-open"),
        ("unknown-trust", "value-known-before-deploy"),
        ("session-limit-text", "emergency-role-session-limit"),
    ],
)
def test_an_attack_added_beside_or_over_the_component_fails_the_gate_naming_its_rule(
    flaw: str, rule: str
) -> None:
    findings = check_resources(flawed(flaw))
    assert rule in {f.rule for f in findings}, [str(f) for f in findings]


def test_the_command_fails_closed_with_one_line_when_a_rule_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(resources: Any, config: PackConfig) -> list[rules.Finding]:
        raise RuntimeError("boom")

    monkeypatch.setitem(rules.STACK_RULES, rules.KMS_RIGHTS, broken)  # type: ignore[index]
    result = runner.invoke(app, ["synth", str(BAD), "--check"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "function-kms-rights: (stack) (stack): the rule could not read" in result.output


@pytest.mark.parametrize(
    "inputs",
    [{"enableLogFileValidation": "false"}, {"isMultiRegionTrail": "false"}, {"enableLogging": "false"}],
)
def test_a_trail_setting_turned_off_as_the_text_false_is_off(inputs: dict[str, Any]) -> None:
    [finding] = rules.trail_multi_region_validated_encrypted(trail(**inputs), CONFIG)
    assert finding.rule == "trail-multi-region-validated-encrypted"


def test_a_trail_that_delivers_to_a_bucket_outside_the_program_cannot_show_it_is_locked() -> None:
    elsewhere = trail(s3BucketName="someone-elses-bucket")
    [finding] = rules.audit_bucket_compliance_lock(
        [AUDIT_BUCKET, lock(mode="COMPLIANCE", days=365), elsewhere], CONFIG
    )
    assert "not in this program" in finding.message


@pytest.mark.parametrize("principal", ["111122223333", f"arn:aws:iam::{ACCOUNT}:role/ops"])
def test_another_account_or_role_may_not_invoke_a_system_function_with_a_forged_event(principal: str) -> None:
    permission = Resource(
        rules.LAMBDA_PERMISSION, "door", {"function": "breakglass-access-api", "principal": principal}
    )
    assert rule_names(rules.check([permission], CONFIG)) == {"function-invoke-not-open"}
    own = Resource(rules.LAMBDA_PERMISSION, "own", {"function": "team-predict", "principal": principal})
    assert rules.check([own], CONFIG) == []


@pytest.mark.parametrize(
    ("flaw", "rule"),
    [
        ("hollow-boundary", "emergency-role-guards"),
        ("trail-read-only", "trail-multi-region-validated-encrypted"),
        ("public-function-url", "function-invoke-not-open"),
        ("bucket-policy-unlock", "audit-bucket-compliance-lock"),
    ],
)
def test_crossguard_refuses_the_same_attacks(flaw: str, rule: str) -> None:
    from test_synth_check import crossguard_violations

    assert rule in crossguard_violations(flawed(flaw))


def test_every_rule_of_the_pack_is_in_the_documented_table() -> None:
    documented = (Path(__file__).parent.parent / "docs" / "policy-pack.md").read_text()
    for rule in (*rules.RESOURCE_RULES, *rules.STACK_RULES):
        assert f"| `{rule}` |" in documented, rule


# --- documents that read two ways, and open resource policies --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],'
            ' "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*"}]}',
            "appears twice",
        ),
        (
            '{"Statement": [{"effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}',
            "spells",
        ),
        ('{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}', "not one JSON document"),
    ],
    ids=["duplicate-statement", "lower-case-effect-key", "truncated"],
)
def test_a_trust_that_reads_two_ways_is_refused(text: str, words: str) -> None:
    role = Resource(rules.ROLE, "app", {"name": "app", "assumeRolePolicy": text})
    findings = rules.check([role], CONFIG)
    assert any(f.rule == "policy-documents-readable" and words in f.message for f in findings), findings


@pytest.mark.parametrize(
    "type_", ["aws:kms/key:Key", "aws:sns/topicPolicy:TopicPolicy", "aws:s3/bucketPolicy:BucketPolicy"]
)
def test_a_resource_policy_that_lets_anyone_in_is_refused_unless_bounded(type_: str) -> None:
    anyone = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt", "sns:Publish"],
        "Resource": "*",
    }
    open_policy = Resource(type_, "door", {"policy": trust(anyone)})
    assert rule_names(rules.resource_policy_not_open(open_policy, CONFIG)) == {"resource-policy-not-open"}
    org = {**anyone, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}
    assert rules.resource_policy_not_open(Resource(type_, "door", {"policy": trust(org)}), CONFIG) == []
    if_exists = {**anyone, "Condition": {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}}
    assert rules.resource_policy_not_open(Resource(type_, "door", {"policy": trust(if_exists)}), CONFIG)


def test_an_inline_policy_that_reads_two_ways_is_refused_too() -> None:
    twice = '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}], "Statement": []}'
    role = Resource(rules.ROLE, "fn-role", {"name": "fn", "inlinePolicies": [{"name": "p", "policy": twice}]})
    assert "policy-documents-readable" in rule_names(rules.check([role], CONFIG))


# --- role chaining through the role's own policies -------------------------------------------------------------


def test_an_inline_grant_of_sts_assume_role_on_an_emergency_role_without_the_opt_in_is_refused() -> None:
    chain = {"Sid": "ChainToOps", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    inline = Resource(
        "aws:iam/rolePolicy:RolePolicy",
        "admin-chain",
        {"role": ROLE_NAME, "policy": json.dumps({"Version": "2012-10-17", "Statement": [chain]})},
    )
    program = boundary_program(permission_boundary([]), inline)
    [finding] = rules.role_chaining_opt_in(program, CONFIG)
    assert "ChainToOps" in finding.message and "did not opt in" in finding.message


def test_a_trust_given_as_a_mapping_with_an_element_in_another_case_is_refused() -> None:
    document = {"statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    role = Resource(rules.ROLE, "app", {"name": "app", "assumeRolePolicy": document})
    findings = rules.check([role], CONFIG)
    assert any(f.rule == "policy-documents-readable" and "'statement'" in f.message for f in findings), (
        findings
    )


@pytest.mark.parametrize("key", ["GET\t/requests/{id}/approve", "GET  /decide", " GET /decide", "GET"])
def test_a_route_key_spaced_to_hide_its_method_is_refused(key: str) -> None:
    route = Resource(rules.ROUTE, "extra", {"routeKey": key})
    assert rule_names(rules.approval_api_post_only(route, CONFIG)) == {"approval-api-post-only"}


def test_a_bucket_locked_by_another_stack_passes_only_when_listed_by_name() -> None:
    elsewhere = trail(s3BucketName="org-audit-logs")
    listed = PackConfig.from_policy_config(
        {"audit-bucket-compliance-lock": {"externalAuditBucketsOptIn": ["org-audit-logs"]}}
    )
    assert rules.audit_bucket_compliance_lock([elsewhere], listed) == []
    other = trail(s3BucketName="someone-elses-bucket")
    assert rule_names(rules.audit_bucket_compliance_lock([other], listed)) == {"audit-bucket-compliance-lock"}
    with pytest.raises(ConfigError) as raised:
        PackConfig.from_policy_config({"audit-bucket-compliance-lock": {"externalAuditBucketsOptIn": ["*"]}})
    assert raised.value.field == "audit-bucket-compliance-lock.externalAuditBucketsOptIn[0]"
