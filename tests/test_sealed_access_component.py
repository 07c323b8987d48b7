"""SealedAccess: its documents evaluated (who may assume, with what), its settings refused with
the field named, and what it registers (two regions of alerts, the check, its alarms)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from iam_eval import assume_context, can_assume, session_allowed, session_context
from parliament import analyze_policy_string

from breakglass.components import BreakGlass
from breakglass.components.breakglass import BreakGlassConfig
from breakglass.components.sealed_access import SealedAccess, SealedAccessArgs, SealedAccessConfig
from breakglass.local.synth import ACCOUNT_ID, SynthError, SynthResult, synth
from breakglass.policies.sealed_access import (
    ALERT_ASSUME,
    ALERT_SIGN_IN,
    GLOBAL_EVENTS_REGION,
    USER_POLICY_NAME,
    alert_event_patterns,
    trust_policy,
    user_policy,
)
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/breakglass-sealed"
ANNA = f"arn:aws:iam::{ACCOUNT}:user/bg-anna"
BEN = f"arn:aws:iam::{ACCOUNT}:user/bg-ben"
RESPONDER = f"arn:aws:iam::{ACCOUNT}:user/rita"
NOW = datetime(2026, 12, 1, 2, 13, tzinfo=UTC)
TRUST = trust_policy(
    {"bg-anna": ANNA, "bg-ben": BEN}, max_mfa_age_seconds=900, regions=["eu-west-1", "us-east-1"]
)
TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT_ID}:breakglass-alerts"


def context(
    session: str,
    *,
    mfa: bool | None = True,
    age: int = 60,
    source: str | None = None,
    region: str = "eu-west-1",
) -> dict[str, Any]:
    found = assume_context(now=NOW, source_identity=source, request_id=None, mfa=mfa, mfa_age_seconds=age)
    found["sts:RoleSessionName"] = session
    found["aws:RequestedRegion"] = region
    return found


def test_a_sealed_user_with_fresh_mfa_and_a_session_named_after_them_may_assume() -> None:
    assert can_assume(TRUST, ROLE, ANNA, context("bg-anna"))
    assert can_assume(TRUST, ROLE, BEN, context("bg-ben", source="bg-ben"))


def test_a_sealed_assume_through_an_sts_endpoint_no_sealed_rule_listens_in_is_refused() -> None:
    assert can_assume(TRUST, ROLE, ANNA, context("bg-anna", region="us-east-1"))
    assert not can_assume(TRUST, ROLE, ANNA, context("bg-anna", region="eu-central-1"))
    assumes = [s for s in TRUST["Statement"] if s["Action"] == "sts:AssumeRole"]
    assert len(assumes) == 2
    assert all(
        s["Condition"]["StringEquals"]["aws:RequestedRegion"] == ["eu-west-1", "us-east-1"] for s in assumes
    )


def test_the_source_identity_statement_pins_only_keys_sts_evaluates_for_that_action() -> None:
    sources = [s for s in TRUST["Statement"] if s["Action"] == "sts:SetSourceIdentity"]
    assert [s["Condition"] for s in sources] == [
        {"StringEquals": {"sts:SourceIdentity": "bg-anna"}},
        {"StringEquals": {"sts:SourceIdentity": "bg-ben"}},
    ]


def test_a_principal_that_is_not_a_sealed_user_is_refused() -> None:
    assert not can_assume(TRUST, ROLE, RESPONDER, context("rita"))
    assert not can_assume(TRUST, ROLE, RESPONDER, context("bg-anna"))


def test_a_sealed_user_without_mfa_or_with_stale_mfa_is_refused() -> None:
    assert not can_assume(TRUST, ROLE, ANNA, context("bg-anna", mfa=None))
    assert not can_assume(TRUST, ROLE, ANNA, context("bg-anna", mfa=False))
    assert not can_assume(TRUST, ROLE, ANNA, context("bg-anna", age=901))


def test_a_sealed_user_naming_the_session_or_source_identity_after_another_is_refused() -> None:
    assert not can_assume(TRUST, ROLE, ANNA, context("bg-ben"))
    assert not can_assume(TRUST, ROLE, ANNA, context("bg-anna", source="bg-ben"))


def test_a_sealed_user_may_assume_the_sealed_role_with_mfa_and_do_nothing_else() -> None:
    policy = user_policy(ROLE)
    with_mfa = {**session_context(now=NOW, source_identity=None, request_id=None, issued_at=NOW)}
    with_mfa["aws:MultiFactorAuthPresent"] = "true"
    assert session_allowed(ANNA, "sts:AssumeRole", ROLE, policies=[policy], boundary=None, context=with_mfa)
    without = {**with_mfa, "aws:MultiFactorAuthPresent": "false"}
    assert not session_allowed(
        ANNA, "sts:AssumeRole", ROLE, policies=[policy], boundary=None, context=without
    )
    other = f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-admin"
    assert not session_allowed(
        ANNA, "sts:AssumeRole", other, policies=[policy], boundary=None, context=with_mfa
    )
    assert not session_allowed(
        ANNA, "iam:CreateAccessKey", ANNA, policies=[policy], boundary=None, context=with_mfa
    )


def test_the_documents_pass_parliament() -> None:
    for document in (user_policy(ROLE),):
        findings = analyze_policy_string(json.dumps(document)).findings
        assert [f.issue for f in findings] == []


def test_the_alert_patterns_match_any_assume_of_the_role_and_any_sign_in_of_the_users() -> None:
    patterns = alert_event_patterns(role_arn=ROLE, user_arns=[BEN, ANNA])
    assert patterns[ALERT_ASSUME]["detail"]["requestParameters"] == {"roleArn": [ROLE]}
    assert "errorCode" not in patterns[ALERT_ASSUME]["detail"]  # refused attempts alert too
    assert patterns[ALERT_SIGN_IN]["detail"]["userIdentity"] == {"arn": [ANNA, BEN]}
    assert patterns[ALERT_SIGN_IN]["source"] == ["aws.signin"]


def args(**overrides: Any) -> SealedAccessArgs:
    base: dict[str, Any] = {
        "users": ["bg-anna", "bg-ben"],
        "managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "alert_topic_arn": TOPIC,
        "alert_emails": ["security@example.com", "ann@example.com"],
        "audit_bucket_name": "audit-bucket",
    }
    base.update(overrides)
    return base  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"users": []}, "users"),
        ({"users": ["bg-anna", "bg-anna"]}, "users"),
        ({"users": ["no spaces"]}, "users"),
        ({"managed_policy_arns": None}, "managed_policy_arns"),
        ({"managed_policy_arns": ["AdministratorAccess"]}, "managed_policy_arns"),
        ({"alert_emails": []}, "alert_emails"),
        ({"max_session_seconds": 60}, "max_session_seconds"),
        ({"max_mfa_age_seconds": 10}, "max_mfa_age_seconds"),
        ({"request_table_name": "t"}, "request_table_arn"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as refused:
        SealedAccessConfig.from_args(args(**overrides))
    assert refused.value.field.startswith(field)


def run(**overrides: Any) -> SynthResult:
    return synth(lambda: SealedAccess("sealed", args(**overrides)))


def test_it_creates_the_users_without_keys_or_passwords_each_holding_only_the_assume_policy() -> None:
    result = run()
    users = sorted(r.inputs["name"] for r in result.by_type("aws:iam/user:User"))
    assert users == ["bg-anna", "bg-ben"]
    assert not result.by_type("aws:iam/accessKey:AccessKey") and not result.by_type(
        "aws:iam/userLoginProfile:UserLoginProfile"
    )
    policies = result.by_type("aws:iam/userPolicy:UserPolicy")
    assert {p.inputs["name"] for p in policies} == {USER_POLICY_NAME} and len(policies) == 2
    role = result.one("aws:iam/role:Role", "sealed-role")
    assert role.inputs["maxSessionDuration"] == 3600
    statements = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assumes = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert [s["Condition"]["StringEquals"]["sts:RoleSessionName"] for s in assumes] == [
        "bg-anna",
        "bg-ben",
    ]


def test_alerts_live_in_the_home_region_and_in_us_east_1_each_with_its_own_topic_and_emails() -> None:
    result = run()
    providers = [r for r in result.resources if r.type == "pulumi:providers:aws"]
    assert [p.inputs.get("region") for p in providers] == [GLOBAL_EVENTS_REGION]
    rules = sorted(r.inputs["name"] for r in result.by_type("aws:cloudwatch/eventRule:EventRule"))
    assert rules == [
        "breakglass-sealed-assume-global",
        "breakglass-sealed-assume-home",
        "breakglass-sealed-check",
        "breakglass-sealed-iam-role-global",
        "breakglass-sealed-iam-users-global",
        "breakglass-sealed-sign-in-global",
        "breakglass-sealed-sign-in-home",
    ]
    emails = [r.inputs["endpoint"] for r in result.by_type("aws:sns/topicSubscription:TopicSubscription")]
    assert sorted(emails) == sorted(["security@example.com", "ann@example.com"] * 2)
    targets = [r.inputs["arn"] for r in result.by_type("aws:cloudwatch/eventTarget:EventTarget")]
    assert targets.count(TOPIC) == 2  # the home rules also alert the home alert topic


def test_the_check_reads_only_the_sealed_users_and_two_alarms_watch_it() -> None:
    result = run()
    policy = json.loads(
        result.one("aws:iam/rolePolicy:RolePolicy", "breakglass-sealed-check-policy").inputs["policy"]
    )
    reads = next(s for s in policy["Statement"] if s.get("Sid") == "ReadSealedUsers")
    assert reads["Resource"] == [
        f"arn:aws:iam::{ACCOUNT_ID}:user/bg-anna",
        f"arn:aws:iam::{ACCOUNT_ID}:user/bg-ben",
    ]
    role_reads = next(s for s in policy["Statement"] if s.get("Sid") == "ReadSealedRole")
    assert role_reads["Resource"] == f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-sealed"
    for statement in (reads, role_reads):
        assert all(
            not a.startswith(("iam:Create", "iam:Delete", "iam:Put", "iam:Attach", "iam:Update"))
            for a in statement["Action"]
        )
    alarms = {r.inputs["name"]: r.inputs for r in result.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["breakglass-sealed-findings"]["alarmActions"] == [TOPIC]
    assert alarms["breakglass-sealed-check-not-running"]["treatMissingData"] == "breaching"


# -- in BreakGlass ------------------------------------------------------------------------------------


def breakglass_args(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "deployment": "prod",
        "requesters": [f"arn:aws:iam::{ACCOUNT_ID}:user/rita"],
        "approvers": ["ann", "bob"],
        "sender_email": "breakglass@example.com",
        "alert_emails": ["security@example.com"],
        "sealed_access": {
            "users": ["bg-anna"],
            "managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
            "alert_emails": ["ann@example.com", "security@example.com"],
        },
    }
    base.update(changes)
    return base


def test_in_breakglass_it_uses_the_stacks_topic_bucket_sender_and_table_and_alerts_everyone_once() -> None:
    result = synth(lambda: BreakGlass("bg", breakglass_args()))  # type: ignore[arg-type]
    function = result.one("aws:lambda/function:Function", "breakglass-sealed-use-home")
    variables = function.inputs["environment"]["variables"]
    assert variables["BREAKGLASS_SENDER_EMAIL"] == "breakglass@example.com"
    assert variables["BREAKGLASS_TABLE"] and variables["BREAKGLASS_ALERT_TOPIC_ARN"].endswith(
        ":breakglass-alerts"
    )
    assert json.loads(variables["BREAKGLASS_SEALED_ALERT_EMAILS"]) == [
        "security@example.com",
        "ann@example.com",
    ]
    published = result.one("aws:ssm/parameter:Parameter", "bg-param-sealed-access").inputs
    assert published["name"] == "/breakglass/prod/sealed_access"
    settings = json.loads(published["insecureValue"])
    assert settings["users"] == ["bg-anna"] and set(settings["regions"]) == {"home", "global"}
    assert settings["regions"]["global"]["region"] == GLOBAL_EVENTS_REGION


def test_without_sealed_access_breakglass_creates_and_publishes_none() -> None:
    result = synth(lambda: BreakGlass("bg", breakglass_args(sealed_access=None)))  # type: ignore[arg-type]
    assert not result.by_type("breakglass:index:SealedAccess")
    assert not [p for p in result.by_type("aws:ssm/parameter:Parameter") if p.name.endswith("sealed-access")]


def test_a_bad_sealed_setting_in_breakglass_names_the_field_under_sealed_access() -> None:
    with pytest.raises(ConfigError) as refused:
        BreakGlassConfig.from_args(breakglass_args(sealed_access={"users": ["a"], "colour": "red"}))
    assert refused.value.field == "sealed_access.colour"
    with pytest.raises(SynthError, match=r"sealed_access\.managed_policy_arns: is required"):
        synth(lambda: BreakGlass("bg", breakglass_args(sealed_access={"users": ["a"]})))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "action",
    [
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:EnableMFADevice",
        "iam:DeactivateMFADevice",
        "iam:AttachUserPolicy",
        "iam:PutUserPolicy",
        "iam:AddUserToGroup",
        "iam:UntagUser",
        "iam:DeleteUser",
    ],
)
def test_an_admin_tier_session_cannot_make_a_sealed_user_its_own_way_back_in(action: str) -> None:
    # Without this, an emergency session could add a key and a phone MFA to a sealed user and
    # assume the sealed role after its grant ended. The users carry the protected tag.
    from iam_eval import ADMIN_POLICY

    from breakglass.policies.boundary import permission_boundary
    from breakglass.policies.naming import PROTECTED_TAG

    admin = f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-admin"
    context = session_context(
        now=NOW, source_identity="rita", request_id="r1", issued_at=NOW, resource_tags={PROTECTED_TAG: "true"}
    )
    assert not session_allowed(
        admin, action, ANNA, policies=[ADMIN_POLICY], boundary=permission_boundary(), context=context
    )
    # The tag is what refuses it: the same session may attach a policy to an untagged user.
    untagged = session_context(now=NOW, source_identity="rita", request_id="r1", issued_at=NOW)
    assert session_allowed(
        admin,
        "iam:AttachUserPolicy",
        BEN,
        policies=[ADMIN_POLICY],
        boundary=permission_boundary(),
        context=untagged,
    )


def test_the_sealed_users_and_role_carry_the_protected_tag() -> None:
    from breakglass.policies.naming import PROTECTED_TAG

    result = run()
    tagged = [*result.by_type("aws:iam/user:User"), result.one("aws:iam/role:Role", "sealed-role")]
    assert all(r.inputs["tags"][PROTECTED_TAG] == "true" for r in tagged)


def test_the_check_compares_policies_by_what_they_grant_not_by_name_or_layout() -> None:
    from urllib.parse import quote

    from breakglass.policies.sealed_access import same_policy

    expected = user_policy(ROLE)
    relaid = json.loads(json.dumps(expected))
    statement = relaid["Statement"][0]
    statement.pop("Sid")
    statement["Action"] = list(reversed(statement["Action"]))
    assert same_policy(quote(json.dumps(relaid)), expected)
    assert same_policy(TRUST, json.loads(json.dumps(TRUST)))
    widened = json.loads(json.dumps(expected))
    widened["Statement"][0]["Resource"] = "*"
    assert not same_policy(widened, expected)
    assert not same_policy({"Version": "2012-10-17", "Statement": []}, expected)
    assert not same_policy("not json", expected)
