"""`breakglass synth --check`: the examples pass, each crafted flaw fails naming its rule, parliament's
allow-list stays narrow."""

from __future__ import annotations

import json
import runpy
import sys
from functools import cache
from pathlib import Path

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.local.synth import synth_directory
from breakglass.local.synth_check import (
    PARLIAMENT_ALLOWED,
    CheckMocks,
    MissingDependency,
    check_directory,
    check_resources,
    lint,
    resources_of,
)
from breakglass.policies.naming import ROLE_CHAINING_OPT_IN, ROLE_CHAINING_TAG
from breakglass.policies.pack.rules import PackConfig, Resource

ROOT = Path(__file__).parent.parent
BAD = Path(__file__).parent / "bad_programs"
runner = CliRunner()


@cache
def flawed(flaw: str) -> tuple[Resource, ...]:
    result = synth_directory(BAD, config={"flaw": flaw}, mocks=CheckMocks())
    return tuple(resources_of(result.resources))


# Every Python program under examples/ (the TypeScript and YAML ones go through the provider).
PYTHON_EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/__main__.py"))


def test_the_python_examples_are_the_ones_the_readme_promises() -> None:
    assert PYTHON_EXAMPLES == ["existing-trail", "many-targets", "quickstart", "sagemaker-bedrock", "tiers"]


@pytest.mark.parametrize("example", PYTHON_EXAMPLES)
def test_every_example_passes_with_zero_findings(example: str) -> None:
    assert check_directory(ROOT / "examples" / example) == []


def test_the_command_prints_one_ok_line_and_exits_0_for_the_quickstart() -> None:
    result = runner.invoke(app, ["synth", str(ROOT / "examples" / "quickstart"), "--check"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == [
        f"OK: {ROOT / 'examples' / 'quickstart'} passes the breakglass guardrail pack and parliament (0 findings)"
    ]


@pytest.mark.parametrize(
    ("flaw", "rules"),
    [
        ("open-trust", {"role-trust-not-open", "emergency-role-trust-locked"}),
        ("governance-lock", {"audit-bucket-compliance-lock"}),
        ("admin-12h-sessions", {"emergency-role-session-limit"}),
        ("star-lambda-role", {"lambda-role-no-wildcards"}),
        ("get-approval-route", {"approval-api-post-only"}),
        ("missing-kms-rights", {"function-kms-rights"}),
        ("chaining-without-opt-in", {"role-chaining-opt-in"}),
    ],
)
def test_a_crafted_flaw_fails_naming_exactly_the_rule_it_breaks(flaw: str, rules: set[str]) -> None:
    findings = check_resources(flawed(flaw))
    assert {f.rule for f in findings} == rules, [str(f) for f in findings]


@pytest.mark.parametrize("flaw", ["none", "chaining-with-opt-in"])
def test_the_same_stack_without_a_flaw_or_with_the_chaining_opt_in_passes(flaw: str) -> None:
    assert check_resources(flawed(flaw)) == []


def test_a_tier_that_opts_in_to_role_chaining_says_so_on_its_role() -> None:
    roles = {r.name: r for r in flawed("chaining-with-opt-in") if r.type == "aws:iam/role:Role"}
    assert roles["breakglass-admin-role"].inputs["tags"][ROLE_CHAINING_TAG] == ROLE_CHAINING_OPT_IN
    assert ROLE_CHAINING_TAG not in roles["breakglass-operator-role"].inputs["tags"]


def test_the_check_s_mocks_give_the_arns_policies_name_the_format_aws_uses() -> None:
    outputs = {r.type: r.outputs for r in flawed("none")}
    assert (
        ":secretsmanager:us-east-1:123456789012:secret:" in outputs["aws:secretsmanager/secret:Secret"]["arn"]
    )
    assert ":events:us-east-1:123456789012:rule/" in outputs["aws:cloudwatch/eventRule:EventRule"]["arn"]
    assert ":ses:us-east-1:123456789012:identity/" in outputs["aws:ses/emailIdentity:EmailIdentity"]["arn"]
    assert outputs["aws:apigatewayv2/api:Api"]["executionArn"].startswith("arn:aws:execute-api:us-east-1:")


def test_the_pack_config_raises_the_session_limit_for_a_team_that_chose_12_hours() -> None:
    assert check_resources(flawed("admin-12h-sessions"), PackConfig(max_session_seconds=43200)) == []


def test_a_finding_is_one_line_naming_rule_and_resource_and_the_command_exits_1() -> None:
    result = runner.invoke(app, ["synth", str(BAD), "--check", "--config", "flaw=get-approval-route"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(
        "approval-api-post-only: aws:apigatewayv2/route:Route breakglass-approvals-route-post: "
        "route 'GET /requests/{id}/approve'"
    )
    assert lines[-1] == f"1 finding(s) in {BAD}"


def test_the_policy_config_file_is_read_and_a_bad_one_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"emergency-role-session-limit": {"maxSessionSeconds": 60}}))
    result = runner.invoke(app, ["synth", str(BAD), "--check", "--policy-config", str(config)])
    assert result.exit_code == 2
    assert "emergency-role-session-limit.maxSessionSeconds: must be at least 900" in result.output
    config.write_text("{not json")
    result = runner.invoke(app, ["synth", str(BAD), "--check", "--policy-config", str(config)])
    assert result.exit_code == 2 and "not JSON" in result.output and "Traceback" not in result.output


# --- parliament --------------------------------------------------------------------------------


def document_resource(type_: str, statements: list[dict[str, object]], key: str = "policy") -> Resource:
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return Resource(type_, "doc", {key: document}, {"arn": "arn:aws:iam::123456789012:role/doc"})


def test_resource_star_is_allowed_in_a_key_policy_only() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    assert lint([document_resource("aws:kms/key:Key", [statement])]) == []
    identity = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}
    [finding] = lint([document_resource("aws:iam/rolePolicy:RolePolicy", [identity])])
    assert finding.rule == "parliament" and "RESOURCE_STAR" in finding.message


def test_a_trust_policy_is_linted_as_the_identity_statement_it_is_equivalent_to() -> None:
    trust = [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AsumeRole"}
    ]
    [finding] = lint([document_resource("aws:iam/role:Role", trust, key="assumeRolePolicy")])
    assert "UNKNOWN_ACTION" in finding.message and finding.message.startswith("assumeRolePolicy:")
    fine = [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert lint([document_resource("aws:iam/role:Role", fine, key="assumeRolePolicy")]) == []


def test_a_task_token_answer_on_every_resource_is_still_reported() -> None:
    # The allow-list accepts the state machine ARN parliament does not know, not anything else.
    star = {"Effect": "Allow", "Action": "states:SendTaskSuccess", "Resource": "arn:aws:s3:::bucket"}
    assert [f.rule for f in lint([document_resource("aws:iam/rolePolicy:RolePolicy", [star])])] == [
        "parliament"
    ]


def test_every_allow_list_entry_says_why() -> None:
    assert all(len(entry.reason) > 60 for entry in PARLIAMENT_ALLOWED)


def test_without_parliament_the_check_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "parliament", None)
    with pytest.raises(MissingDependency, match=r"breakglass\[policy\]"):
        lint([])


# --- the same rules through CrossGuard ------------------------------------------------------------


def crossguard_violations(resources: tuple[Resource, ...]) -> set[str]:
    """Run every policy of the pack as Pulumi would, over a program's registered state."""
    pack = runpy.run_path(
        str(ROOT / "breakglass" / "policies" / "pack" / "__main__.py"), run_name="pack_under_test"
    )
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    state = [
        PolicyResource(
            r.type,
            unknown_checking_proxy(json.loads(json.dumps(r.outputs, default=str))),
            r.urn,
            r.name,
            options,
            None,
            None,
            [],
            {},
        )
        for r in resources
    ]
    violated: set[str] = set()
    for policy in pack["policies"]():

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            violated.add(name)

        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                props = unknown_checking_proxy(json.loads(json.dumps(r.inputs, default=str)))
                policy.validate(
                    ResourceValidationArgs(r.type, props, r.urn, r.name, options, None, {}), report
                )
        else:
            policy.validate(StackValidationArgs(state, {}), report)
    return violated


@pytest.mark.parametrize(
    ("flaw", "rules"),
    [
        ("none", set()),
        ("governance-lock", {"audit-bucket-compliance-lock"}),
        ("missing-kms-rights", {"function-kms-rights"}),
    ],
)
def test_crossguard_runs_the_same_rules_with_the_same_verdicts(flaw: str, rules: set[str]) -> None:
    assert crossguard_violations(flawed(flaw)) == rules
