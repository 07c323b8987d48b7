"""BreakGlass: the whole system with production-safe defaults, published for the command by name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from breakglass import BreakGlass
from breakglass.cli.deployment import from_parameters
from breakglass.contracts import (
    APPROVAL_POLICY_FILE,
    LAMBDA_ENVIRONMENT_MAX_BYTES,
    SSM_KEYS,
    SSM_VALUE_MAX,
    TIERS_CONFIG_FILE,
    environment_bytes,
    ssm_parameter_name,
)
from breakglass.local.synth import SynthError, SynthResult, synth

ACCOUNT = "123456789012"
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/oncall-ml"


def args(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "deployment": "prod",
        "requesters": [ONCALL],
        "approvers": ["ann", "bob", "cat"],
        "sender_email": "breakglass@example.com",
        "halt_targets": [{"id": "chat", "endpoint_name": "chat-prod", "invoker_roles": ["chat-api"]}],
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def program(**changes: Any) -> None:
    BreakGlass("bg", args(**changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result() -> SynthResult:
    return synth(program)


def approval_policy(result: SynthResult) -> dict[str, Any]:
    access = result.one("aws:lambda/function:Function", "breakglass-access")
    return dict(access.shipped_json(APPROVAL_POLICY_FILE))


def tiers(result: SynthResult) -> dict[str, Any]:
    access = result.one("aws:lambda/function:Function", "breakglass-access")
    return dict(access.shipped_json(TIERS_CONFIG_FILE))


def test_the_default_tiers_are_halt_operator_admin_and_drill_with_safe_approvals(result: SynthResult) -> None:
    policy = approval_policy(result)
    assert sorted(policy) == ["admin", "drill", "halt", "operator"]
    assert (policy["halt"]["approval"], policy["halt"]["may_halt"], policy["halt"]["may_resume"]) == (
        "auto",
        True,
        False,
    )
    assert (policy["operator"]["approval"], policy["operator"]["may_resume"]) == (1, True)
    assert (policy["admin"]["approval"], policy["admin"]["ticket_required"]) == (2, True)
    assert (policy["drill"]["approval"], policy["drill"]["may_halt"], policy["drill"]["may_resume"]) == (
        "auto",
        False,
        False,
    )
    windows = {t: v["max_window_seconds"] for t, v in tiers(result).items()}
    assert windows == {"halt": 3600, "operator": 7200, "admin": 3600, "drill": 1800}
    assert tiers(result)["admin"]["max_mfa_age_seconds"] == 900


def test_every_tier_role_is_locked_and_bounded(result: SynthResult) -> None:
    roles = {
        r.inputs["name"]: r
        for r in result.by_type("aws:iam/role:Role")
        if r.inputs["name"].startswith("breakglass-emergency-")
    }
    assert sorted(roles) == [
        "breakglass-emergency-admin",
        "breakglass-emergency-drill",
        "breakglass-emergency-halt",
        "breakglass-emergency-operator",
    ]
    for role in roles.values():
        assert [s["Effect"] for s in json.loads(role.inputs["assumeRolePolicy"])["Statement"]] == ["Deny"]
        assert role.inputs["permissionsBoundary"]


def test_the_deployment_publishes_what_the_command_needs_under_its_name(result: SynthResult) -> None:
    parameters = {p.inputs["name"]: p.inputs for p in result.by_type("aws:ssm/parameter:Parameter")}
    assert set(parameters) == {ssm_parameter_name("prod", key) for key in SSM_KEYS}
    published = json.loads(parameters[ssm_parameter_name("prod", "tiers")]["insecureValue"])
    assert published["admin"]["quorum"] == 2 and published["halt"]["may_resume"] is False
    assert published["operator"]["role_arn"].endswith(":role/breakglass-emergency-operator")
    assert json.loads(parameters[ssm_parameter_name("prod", "halt_targets")]["insecureValue"]) == [
        {"id": "chat", "modes": ["deny-invoke"]}
    ]
    assert parameters[ssm_parameter_name("prod", "access_api_url")]["insecureValue"].startswith("https://")


def test_a_long_target_list_is_published_in_pages_ssm_can_hold_and_read_back_whole() -> None:
    fleet = [
        {"id": f"model-{i:03d}", "endpoint_name": f"model-{i:03d}", "invoker_roles": [f"fleet-{i % 25}"]}
        for i in range(500)
    ]
    found = synth(lambda: program(halt_targets=fleet))
    values = {
        p.inputs["name"].rsplit("/", 1)[-1]: p.inputs["insecureValue"]
        for p in found.by_type("aws:ssm/parameter:Parameter")
    }
    pages = sorted(key for key in values if key.startswith("halt_targets"))
    assert len(pages) > 1 and "halt_targets.2" in pages
    assert max(len(values[key]) for key in values) <= SSM_VALUE_MAX
    read = from_parameters("prod", values)
    assert [t.id for t in read.halt_targets] == [t["id"] for t in fleet]


def test_the_published_tiers_do_not_grow_with_the_requesters_and_fit_ssm() -> None:
    # Fifty people as requesters (tests/test_load.py) once made the tiers 9,232 characters.
    many = [f"arn:aws:iam::123456789012:user/responder-{i:03d}" for i in range(50)]
    found = synth(lambda: program(requesters=many))
    parameters = {p.inputs["name"]: p.inputs for p in found.by_type("aws:ssm/parameter:Parameter")}
    text = parameters[ssm_parameter_name("prod", "tiers")]["insecureValue"]
    assert len(text) <= SSM_VALUE_MAX and "responder-" not in text
    assert all("allowed_requesters" not in tier for tier in json.loads(text).values())
    # Who may ask is still the access function's to decide.
    assert tiers(found)["admin"]["allowed_requesters"] == many


def test_a_dashboard_shows_grants_requests_executions_halts_and_alarms(result: SynthResult) -> None:
    dashboard = result.one("aws:cloudwatch/dashboard:Dashboard").inputs
    assert dashboard["dashboardName"] == "breakglass-prod"
    titles = [w["properties"]["title"] for w in json.loads(dashboard["dashboardBody"])["widgets"]]
    assert any("grants" in t.lower() for t in titles) and any("aborted" in t.lower() for t in titles)
    assert any("halts" in t.lower() for t in titles) and any("alarms" in t.lower() for t in titles)


def test_the_halt_actions_are_wired_to_the_access_api(result: SynthResult) -> None:
    api = result.one("aws:lambda/function:Function", "breakglass-access-api").inputs["environment"][
        "variables"
    ]
    assert (
        api["BREAKGLASS_HALT_FUNCTION"] == "bg-ai-halt"
        and api["BREAKGLASS_RESUME_FUNCTION"] == "bg-ai-resume"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"tiers": {"admin": {"max_window_seconds": 4 * 3600}}},
            "tiers.admin.max_window_seconds: admin windows are at most 3600",
        ),
        ({"tiers": {"admin": {"approval": 1}}}, "tiers.admin.approval: admin needs at least 2 approvers"),
        ({"tiers": {"halt": {"may_resume": True}}}, "may_resume: an auto-approved tier may not resume"),
        ({"tiers": {"admin": {"review_gate": False}}}, "tiers.admin.review_gate: admin is review-gated"),
        (
            {"tiers": {"halt": {"review_gate": True}}},
            "tiers.halt.review_gate: an auto-approved tier that may halt",
        ),
        (
            {"tiers": {"ops2": {"approval": 1}}},
            "tiers.ops2.managed_policy_arns: a new tier needs its permissions",
        ),
        ({"tiers": {"halt": {"colour": "red"}}}, "tiers.halt.colour: unknown setting"),
        (
            {"tiers": {"halt": {"max_total_seconds": 1800}}},
            "tiers.halt.max_total_seconds: must be at least the tier's max_window_seconds (3600)",
        ),
        ({"tiers": {"halt": {"max_start_delay_seconds": -1}}}, "tiers.halt.max_start_delay_seconds:"),
        ({"deployment": "Prod!"}, "deployment:"),
        ({"requesters": None}, "requesters: is required"),
        ({"tripwires": [{"name": "t"}], "halt_targets": []}, "tripwires: need halt_targets"),
    ],
)
def test_weaker_settings_need_a_named_opt_in_and_bad_ones_name_the_field(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SynthError) as caught:
        synth(lambda: program(**changes))
    assert message in str(caught.value)


def test_named_opt_ins_allow_the_weaker_admin_settings() -> None:
    found = synth(
        lambda: program(
            tiers={"admin": {"max_window_seconds": 4 * 3600, "approval": 1, "review_gate": False}},
            admin_long_window_opt_in=True,
            admin_single_approver_opt_in=True,
            admin_without_review_gate_opt_in=True,
        )
    )
    assert approval_policy(found)["admin"]["approval"] == 1
    assert approval_policy(found)["admin"]["review_gate"] is False


def test_only_admin_is_review_gated_by_default_and_the_command_is_told(result: SynthResult) -> None:
    gated = {tier: settings["review_gate"] for tier, settings in approval_policy(result).items()}
    assert gated == {"halt": False, "operator": False, "admin": True, "drill": False}
    parameters = {p.inputs["name"]: p.inputs for p in result.by_type("aws:ssm/parameter:Parameter")}
    published = json.loads(parameters[ssm_parameter_name("prod", "tiers")]["insecureValue"])
    assert published["admin"]["review_gate"] is True and published["operator"]["review_gate"] is False


def test_a_default_tier_can_be_removed_and_a_new_one_added() -> None:
    found = synth(
        lambda: program(
            tiers={
                "admin": None,
                "drill": None,
                "readonly": {
                    "approval": 1,
                    "managed_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
                },
            }
        )
    )
    assert sorted(approval_policy(found)) == ["halt", "operator", "readonly"]


def test_sixty_requesters_forty_approvers_and_ten_tiers_leave_every_function_environment_small() -> None:
    requesters = [f"arn:aws:iam::{ACCOUNT}:role/oncall/ml-platform-responder-{i:02d}" for i in range(60)]
    approvers = [f"approver-{i:02d}" for i in range(40)]
    extra = {
        f"team{i}": {"approval": 1, "managed_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}
        for i in range(6)
    }
    result = synth(lambda: program(requesters=requesters, approvers=approvers, tiers=extra))
    functions = result.by_type("aws:lambda/function:Function")
    sizes = {
        f.name: environment_bytes((f.inputs.get("environment") or {}).get("variables") or {})
        for f in functions
    }
    # Half the limit: room for longer names, prefixes and ARNs than this test's.
    assert max(sizes.values()) < LAMBDA_ENVIRONMENT_MAX_BYTES // 2, sizes
    access = result.one("aws:lambda/function:Function", "breakglass-access")
    assert len(access.shipped_json(TIERS_CONFIG_FILE)) == 10
    assert all(
        sorted(t["allowed_requesters"]) == sorted(requesters)
        for t in access.shipped_json(TIERS_CONFIG_FILE).values()
    )
    assert all(p["approvers"] == approvers for p in access.shipped_json(APPROVAL_POLICY_FILE).values())
