"""The guardrail pack's rules, one by one on good and bad resources, and the CrossGuard pack around them."""

from __future__ import annotations

import json
import runpy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from breakglass.lambdas import archive
from breakglass.lambdas.approvals.access_api import route_keys
from breakglass.policies.boundary import permission_boundary
from breakglass.policies.emergency_role import grant_trust_statements, locked_trust_policy, trust_policy
from breakglass.policies.naming import EMERGENCY_ROLE_TAG, ROLE_CHAINING_OPT_IN, ROLE_CHAINING_TAG
from breakglass.policies.pack import rules
from breakglass.policies.pack.rules import PackConfig, Resource
from breakglass.validation import ConfigError

PACK = Path(rules.__file__).parent
ACCOUNT = "123456789012"
ROLE_NAME = "breakglass-emergency-admin"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/{ROLE_NAME}-boundary"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ops-admin"
CONFIG = PackConfig()
START = datetime(2026, 1, 1, tzinfo=UTC)


def role(trust: Any = None, **inputs: Any) -> Resource:
    values = {
        "name": ROLE_NAME,
        "assumeRolePolicy": json.dumps(trust or locked_trust_policy()),
        "permissionsBoundary": BOUNDARY_ARN,
        "maxSessionDuration": 3600,
        "tags": {EMERGENCY_ROLE_TAG: "admin"},
        **inputs,
    }
    return Resource(rules.ROLE, "admin-role", values, {"arn": f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"})


def rule_names(findings: list[rules.Finding]) -> list[str]:
    return [f.rule for f in findings]


# --- trust --------------------------------------------------------------------------------------


def test_a_locked_emergency_trust_and_a_granted_one_pass() -> None:
    granted = trust_policy(
        grant_trust_statements(
            request_id="req1",
            requester_arn=f"arn:aws:iam::{ACCOUNT}:role/oncall",
            source_identity="alice",
            starts_at=START,
            expires_at=START.replace(hour=1),
            require_mfa=True,
        )
    )
    for trust in (locked_trust_policy(), granted):
        assert rules.emergency_role_trust_locked(role(trust), CONFIG) == []
        assert rules.role_trust_not_open(role(trust), CONFIG) == []


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["arn:aws:iam::1:root", "*"]}])
def test_a_role_that_trusts_everyone_is_refused_whatever_it_is(principal: Any) -> None:
    trust = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
    plain_role = Resource(rules.ROLE, "app", {"name": "app", "assumeRolePolicy": json.dumps(trust)})
    assert rule_names(rules.role_trust_not_open(plain_role, CONFIG)) == ["role-trust-not-open"]


def test_a_trust_that_allows_everyone_but_one_principal_is_open() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    plain_role = Resource(rules.ROLE, "app", {"name": "app", "assumeRolePolicy": json.dumps(trust)})
    assert rule_names(rules.role_trust_not_open(plain_role, CONFIG)) == ["role-trust-not-open"]


def test_an_emergency_trust_statement_naming_two_principals_is_refused() -> None:
    granted = trust_policy(
        grant_trust_statements(
            request_id="req1",
            requester_arn=f"arn:aws:iam::{ACCOUNT}:role/oncall",
            source_identity="alice",
            starts_at=START,
            expires_at=START.replace(hour=1),
            require_mfa=True,
        )
    )
    granted["Statement"][0]["Principal"] = {
        "AWS": [f"arn:aws:iam::{ACCOUNT}:role/oncall", f"arn:aws:iam::{ACCOUNT}:root"]
    }
    [finding] = rules.emergency_role_trust_locked(role(granted), CONFIG)
    assert "does not name one principal" in finding.message


def test_an_emergency_trust_that_admits_a_named_principal_without_the_grant_conditions_is_refused() -> None:
    trust = {
        "Statement": [
            {
                "Sid": "Oncall",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/oncall"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:SourceIdentity": "alice"}},
            }
        ]
    }
    [finding] = rules.emergency_role_trust_locked(role(trust), CONFIG)
    assert "sts:RoleSessionName" in finding.message and "aws:CurrentTime" in finding.message
    assert "sts:SourceIdentity equal" not in finding.message


def test_an_if_exists_source_identity_does_not_count_as_pinning_it() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/oncall"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEqualsIfExists": {"sts:SourceIdentity": "alice"},
                    "StringEquals": {"sts:RoleSessionName": "alice"},
                    "DateLessThan": {"aws:CurrentTime": "2026-01-01T01:00:00Z"},
                },
            }
        ]
    }
    [finding] = rules.emergency_role_trust_locked(role(trust), CONFIG)
    assert "sts:SourceIdentity" in finding.message


@pytest.mark.parametrize("action", ["sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML", "sts:*"])
def test_an_emergency_role_that_trusts_an_identity_provider_is_refused(action: str) -> None:
    # A grant only ever adds sts:AssumeRole for one principal; a federated trust would admit every
    # user of the provider, with none of the grant's conditions.
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.example.com"},
                "Action": action,
                "Condition": {"StringEquals": {"token.actions.example.com:aud": "sts.amazonaws.com"}},
            }
        ]
    }
    findings = rules.emergency_role_trust_locked(role(trust), CONFIG)
    assert any("only through sts:AssumeRole" in f.message for f in findings), findings


def test_a_role_named_as_an_emergency_role_is_one_even_without_the_tier_tag() -> None:
    untagged = role(
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]}, tags={}
    )
    assert rules.is_emergency_role(untagged)
    assert "emergency-role-trust-locked" in rule_names(rules.emergency_role_trust_locked(untagged, CONFIG))


# --- boundary and sessions ------------------------------------------------------------------------


def test_an_emergency_role_without_a_boundary_is_refused() -> None:
    assert rules.emergency_role_boundary(role(), CONFIG) == []
    assert rule_names(rules.emergency_role_boundary(role(permissionsBoundary=None), CONFIG)) == [
        "emergency-role-boundary"
    ]


def test_sessions_over_the_configured_maximum_are_refused_and_the_maximum_is_configurable() -> None:
    twelve_hours = role(maxSessionDuration=43200)
    assert rule_names(rules.emergency_role_session_limit(twelve_hours, CONFIG)) == [
        "emergency-role-session-limit"
    ]
    assert rules.emergency_role_session_limit(twelve_hours, PackConfig(max_session_seconds=43200)) == []
    assert rules.emergency_role_session_limit(role(maxSessionDuration=3600), CONFIG) == []


def test_other_roles_are_not_held_to_the_emergency_rules() -> None:
    app = Resource(rules.ROLE, "app", {"name": "app", "maxSessionDuration": 43200})
    assert rules.emergency_role_session_limit(app, CONFIG) == []
    assert rules.emergency_role_boundary(app, CONFIG) == []


# --- audit bucket, trail, state machine ------------------------------------------------------------


def lock(mode: str, days: int) -> Resource:
    return Resource(
        rules.OBJECT_LOCK[0],
        "audit-lock",
        {"bucket": "audit", "rule": {"defaultRetention": {"mode": mode, "days": days}}},
    )


def trail(**inputs: Any) -> Resource:
    values = {
        "s3BucketName": "audit",
        "isMultiRegionTrail": True,
        "enableLogFileValidation": True,
        "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
        **inputs,
    }
    return Resource(rules.TRAIL, "trail", values)


AUDIT_BUCKET = Resource(rules.BUCKETS[0], "audit-bucket", {"objectLockEnabled": True}, {"bucket": "audit"})


def test_a_compliance_lock_with_enough_retention_passes() -> None:
    assert rules.audit_bucket_compliance_lock([AUDIT_BUCKET, lock("COMPLIANCE", 365), trail()], CONFIG) == []


def test_a_governance_lock_is_refused() -> None:
    [finding] = rules.audit_bucket_compliance_lock([AUDIT_BUCKET, lock("GOVERNANCE", 365)], CONFIG)
    assert finding.rule == "audit-bucket-compliance-lock" and "GOVERNANCE" in finding.message


def test_retention_under_the_configured_minimum_is_refused_and_years_count() -> None:
    assert rule_names(rules.audit_bucket_compliance_lock([lock("COMPLIANCE", 30)], CONFIG)) == [
        "audit-bucket-compliance-lock"
    ]
    assert (
        rules.audit_bucket_compliance_lock([lock("COMPLIANCE", 30)], PackConfig(min_retention_days=30)) == []
    )
    in_years = Resource(
        rules.OBJECT_LOCK[0],
        "lock",
        {"bucket": "audit", "rule": {"defaultRetention": {"mode": "COMPLIANCE", "years": 2}}},
    )
    assert rules.audit_bucket_compliance_lock([in_years], PackConfig(min_retention_days=730)) == []


def test_a_trail_bucket_without_any_lock_is_refused() -> None:
    [finding] = rules.audit_bucket_compliance_lock([AUDIT_BUCKET, trail()], CONFIG)
    assert finding.resource_name == "audit-bucket" and "without an Object Lock" in finding.message


@pytest.mark.parametrize(
    ("missing", "words"),
    [
        ({"isMultiRegionTrail": False}, "multi-region"),
        ({"enableLogFileValidation": None}, "validate"),
        ({"kmsKeyId": ""}, "KMS"),
    ],
)
def test_a_trail_that_is_single_region_unvalidated_or_unencrypted_is_refused(
    missing: dict[str, Any], words: str
) -> None:
    assert rules.trail_multi_region_validated_encrypted(trail(), CONFIG) == []
    [finding] = rules.trail_multi_region_validated_encrypted(trail(**missing), CONFIG)
    assert words in finding.message


def test_a_trail_that_does_not_log_is_refused() -> None:
    [finding] = rules.trail_multi_region_validated_encrypted(trail(enableLogging=False), CONFIG)
    assert "not logging" in finding.message


def test_a_state_machine_must_log() -> None:
    logged = Resource(
        rules.STATE_MACHINE, "sm", {"loggingConfiguration": {"level": "ALL", "logDestination": "arn:log:*"}}
    )
    assert rules.state_machine_logs(logged, CONFIG) == []
    for logging in ({}, {"level": "OFF", "logDestination": "arn:log:*"}, {"level": "ALL"}):
        silent = Resource(rules.STATE_MACHINE, "sm", {"loggingConfiguration": logging})
        assert rule_names(rules.state_machine_logs(silent, CONFIG)) == ["state-machine-logs"]


# --- routes -----------------------------------------------------------------------------------------


def route(key: str) -> Resource:
    return Resource(rules.ROUTE, "route", {"routeKey": key})


@pytest.mark.parametrize(
    "key", ["GET /requests/{id}/approve", "ANY /requests/{id}", "$default", "GET /decide"]
)
def test_a_route_that_could_decide_on_a_get_is_refused(key: str) -> None:
    assert rule_names(rules.approval_api_post_only(route(key), CONFIG)) == ["approval-api-post-only"]


def test_a_stack_s_own_get_route_passes_only_when_listed_as_an_opt_in_and_any_stays_refused() -> None:
    opted = PackConfig.from_policy_config(
        {"approval-api-post-only": {"readOnlyGetRoutesOptIn": ["GET /predict"]}}
    )
    assert rule_names(rules.approval_api_post_only(route("GET /predict"), CONFIG)) == [
        "approval-api-post-only"
    ]
    assert rules.approval_api_post_only(route("GET /predict"), opted) == []
    assert rule_names(rules.approval_api_post_only(route("ANY /predict"), opted)) == [
        "approval-api-post-only"
    ]
    for key in ("POST /requests/{id}", "ANY /predict", "$default"):
        with pytest.raises(ConfigError) as raised:
            PackConfig.from_policy_config({"approval-api-post-only": {"readOnlyGetRoutesOptIn": [key]}})
        assert raised.value.field == "approval-api-post-only.readOnlyGetRoutesOptIn[0]"


def test_the_read_only_get_paths_are_exactly_the_gets_the_handlers_serve() -> None:
    # The approval page's GET shows the form (lambdas/approvals/api.py); the access API's GETs read.
    served = {key.split(" ", 1)[1] for key in route_keys() if key.startswith("GET ")} | {"/requests/{id}"}
    assert set(rules.READ_ONLY_GET_PATHS) == served
    for key in route_keys():
        assert rules.approval_api_post_only(route(key), CONFIG) == [], key


# --- function and state machine roles ------------------------------------------------------------------


def function_role(*statements: dict[str, Any], service: str = "lambda.amazonaws.com") -> list[Resource]:
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    }
    return [
        Resource(
            rules.ROLE,
            "fn-role",
            {"name": "fn", "assumeRolePolicy": json.dumps(trust)},
            {"arn": "arn:aws:iam::1:role/fn"},
        ),
        Resource(
            "aws:iam/rolePolicy:RolePolicy",
            "fn-policy",
            {"role": "fn", "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})},
        ),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        {"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "S3", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Sid": "Not", "Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
    ],
    ids=["star", "service-star", "resource-star", "not-action", "metrics-without-namespace"],
)
def test_a_function_role_with_wildcards_beyond_the_justified_list_is_refused(
    statement: dict[str, Any],
) -> None:
    assert rule_names(rules.lambda_role_no_wildcards(function_role(statement), CONFIG)) == [
        "lambda-role-no-wildcards"
    ]
    # The same statement on the state machine's role too.
    states = function_role(statement, service="states.amazonaws.com")
    assert rule_names(rules.lambda_role_no_wildcards(states, CONFIG)) == ["lambda-role-no-wildcards"]


def test_every_justified_resource_star_action_passes_and_a_deny_never_counts() -> None:
    justified = [
        {
            "Effect": "Allow",
            "Action": action,
            "Resource": "*",
            **(
                {"Condition": {"StringEquals": {key: "Breakglass"}}}
                if (key := rules.RESOURCE_STAR_CONDITIONS.get(action))
                else {}
            ),
        }
        for action in rules.RESOURCE_STAR_ALLOWED
    ]
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    assert rules.lambda_role_no_wildcards(function_role(*justified, deny), CONFIG) == []
    assert all(len(reason) > 40 for reason in rules.RESOURCE_STAR_ALLOWED.values())


@pytest.mark.parametrize("attach", ["managedPolicyArns", "attachment"])
def test_a_function_role_holding_a_policy_whose_text_is_outside_the_program_is_refused(attach: str) -> None:
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    program = function_role(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:q"}
    )
    if attach == "attachment":
        program.append(
            Resource(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "fn-admin",
                {"role": "fn", "policyArn": admin},
            )
        )
    else:
        program[0] = Resource(
            rules.ROLE, "fn-role", {**program[0].inputs, "managedPolicyArns": [admin]}, program[0].outputs
        )
    [finding] = rules.lambda_role_no_wildcards(program, CONFIG)
    assert admin in finding.message and "outside the program" in finding.message


def test_a_person_s_role_is_not_a_function_role() -> None:
    person = function_role({"Effect": "Allow", "Action": "*", "Resource": "*"}, service="ec2.amazonaws.com")
    assert rules.lambda_role_no_wildcards(person, CONFIG) == []


# --- KMS rights -----------------------------------------------------------------------------------------


def kms_program(*statements: dict[str, Any]) -> list[Resource]:
    key = "arn:aws:kms:us-east-1:1:key/k"
    topic = Resource(
        "aws:sns/topic:Topic", "alerts", {"kmsMasterKeyId": key}, {"arn": "arn:aws:sns:us-east-1:1:alerts"}
    )
    key_resource = Resource("aws:kms/key:Key", "key", {}, {"arn": key, "keyId": "k"})
    function = Resource(
        rules.FUNCTION,
        "fn",
        {"name": "fn", "role": "arn:aws:iam::1:role/fn"},
        {"arn": "arn:aws:lambda:us-east-1:1:function:fn"},
    )
    publish = {"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:1:alerts"}
    return [*function_role(publish, *statements), key_resource, topic, function]


def test_a_function_that_publishes_to_an_encrypted_topic_without_the_key_rights_is_refused() -> None:
    findings = rules.function_kms_rights(kms_program(), CONFIG)
    assert {f.rule for f in findings} == {"function-kms-rights"} and len(findings) == 2
    assert {f.resource_name for f in findings} == {"fn"}
    rights = {
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "arn:aws:kms:us-east-1:1:key/k",
    }
    assert rules.function_kms_rights(kms_program(rights), CONFIG) == []


# --- role chaining -----------------------------------------------------------------------------------------


def chaining_program(boundary: dict[str, Any], *, opted_in: bool) -> list[Resource]:
    tags = {EMERGENCY_ROLE_TAG: "admin", **({ROLE_CHAINING_TAG: ROLE_CHAINING_OPT_IN} if opted_in else {})}
    policy = Resource(
        rules.MANAGED_POLICY, "admin-boundary", {"policy": json.dumps(boundary)}, {"arn": BOUNDARY_ARN}
    )
    return [role(tags=tags), policy]


def test_the_component_s_boundary_denies_chaining_and_passes() -> None:
    assert rules.role_chaining_opt_in(chaining_program(permission_boundary([]), opted_in=False), CONFIG) == []


def test_a_boundary_that_lets_a_role_chain_needs_the_tier_s_opt_in() -> None:
    chaining = permission_boundary([], role_chaining_to=[OTHER_ROLE])
    [finding] = rules.role_chaining_opt_in(chaining_program(chaining, opted_in=False), CONFIG)
    assert finding.rule == "role-chaining-opt-in" and "did not opt in" in finding.message
    assert rules.role_chaining_opt_in(chaining_program(chaining, opted_in=True), CONFIG) == []


def test_a_boundary_without_the_chaining_deny_is_refused_even_with_the_opt_in() -> None:
    open_boundary = permission_boundary([])
    open_boundary["Statement"] = [s for s in open_boundary["Statement"] if s.get("Sid") != "DenyRoleChaining"]
    [finding] = rules.role_chaining_opt_in(chaining_program(open_boundary, opted_in=True), CONFIG)
    assert "does not deny sts:AssumeRole" in finding.message


def test_a_boundary_outside_the_program_cannot_vouch_for_the_role() -> None:
    [finding] = rules.role_chaining_opt_in([role()], CONFIG)
    assert "not in this program" in finding.message


# --- unknown values (a CrossGuard preview) -------------------------------------------------------------------


def test_a_rule_that_reads_an_unknown_value_says_nothing_rather_than_guess() -> None:
    unknown = Resource(
        rules.ROLE,
        "admin-role",
        {"name": ROLE_NAME, "tags": {EMERGENCY_ROLE_TAG: "admin"}, "permissionsBoundary": None},
        unknown=frozenset({"permissionsBoundary"}),
    )
    assert rules.emergency_role_boundary(unknown, CONFIG) == []
    assert rules.role_chaining_opt_in([unknown], CONFIG) == []


# --- config ---------------------------------------------------------------------------------------------------


def test_the_pack_config_reads_pulumi_s_policy_config_format_and_names_a_bad_field() -> None:
    config = PackConfig.from_policy_config(
        {
            "emergency-role-session-limit": {"maxSessionSeconds": 7200},
            "audit-bucket-compliance-lock": {"minRetentionDays": 2555},
            "state-machine-logs": "advisory",
        }
    )
    assert config == PackConfig(max_session_seconds=7200, min_retention_days=2555)
    with pytest.raises(ConfigError) as raised:
        PackConfig.from_policy_config({"audit-bucket-compliance-lock": {"minRetentionDays": "forever"}})
    assert raised.value.field == "audit-bucket-compliance-lock.minRetentionDays"


# --- the CrossGuard pack ----------------------------------------------------------------------------------------


def pack_module() -> dict[str, Any]:
    # Run as a module, not as __main__: PolicyPack(...) would start the analyzer server.
    return runpy.run_path(str(PACK / "__main__.py"), run_name="breakglass_pack_under_test")


def test_the_pack_registers_one_policy_per_rule_of_the_right_kind() -> None:
    policies = pack_module()["policies"]()
    kinds = {p.name: type(p) for p in policies}
    assert kinds == {
        **{name: ResourceValidationPolicy for name in rules.RESOURCE_RULES},
        **{name: StackValidationPolicy for name in rules.STACK_RULES},
    }
    for policy in policies:
        assert policy.description == rules.description(policy.name)
    configured = {p.name for p in policies if p.config_schema is not None}
    assert configured == {
        "emergency-role-session-limit",
        "audit-bucket-compliance-lock",
        "approval-api-post-only",
    }


def test_the_pack_reports_a_violation_through_crossguard_with_its_config() -> None:
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

    module = pack_module()
    [policy] = [p for p in module["policies"]() if p.name == "emergency-role-session-limit"]
    props = {"name": ROLE_NAME, "tags": {EMERGENCY_ROLE_TAG: "admin"}, "maxSessionDuration": 43200}
    reported: list[str] = []

    def args(config: dict[str, Any]) -> ResourceValidationArgs:
        options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
        return ResourceValidationArgs(
            rules.ROLE, unknown_checking_proxy(props), "urn:x", "admin-role", options, None, config
        )

    policy.validate(args({"maxSessionSeconds": 3600}), lambda message, urn=None: reported.append(message))
    assert len(reported) == 1 and "43200" in reported[0]
    policy.validate(args({"maxSessionSeconds": 43200}), lambda message, urn=None: reported.append(message))
    assert len(reported) == 1


def test_crossguard_props_with_unknown_values_become_plain_with_the_unknown_keys_named() -> None:
    resource = pack_module()["resource"](
        rules.ROLE,
        "admin-role",
        "urn:x",
        unknown_checking_proxy(
            {"name": ROLE_NAME, "permissionsBoundary": UNKNOWN_STRING_VALUE, "tags": {"a": "b"}}
        ),
    )
    assert resource.unknown == {"permissionsBoundary"}
    assert resource.inputs["tags"] == {"a": "b"} and isinstance(resource.inputs["tags"], dict)


def test_the_pack_is_runnable_by_pulumi_and_never_shipped_to_a_lambda() -> None:
    project = (PACK / "PulumiPolicy.yaml").read_text()
    assert "runtime: python" in project
    shipped = archive.shipped_files()
    assert not [name for name in shipped if "/pack/" in name]
    assert "breakglass/policies/kms_rights.py" in shipped


def test_the_chaining_opt_in_tag_comes_from_the_tier_setting_and_cannot_be_set_by_hand() -> None:
    from breakglass.components.emergency_role import EmergencyRoleConfig

    with pytest.raises(ConfigError) as raised:
        EmergencyRoleConfig.from_args(
            {
                "tier": "admin",
                "allowed_requesters": [f"arn:aws:iam::{ACCOUNT}:role/oncall"],
                "managed_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
                "tags": {ROLE_CHAINING_TAG: ROLE_CHAINING_OPT_IN},
            }
        )
    assert raised.value.field.startswith("tags")
