"""EmergencyRole under the Pulumi mock runtime: locked trust, boundary attached, named errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from breakglass.components import EmergencyRole, EmergencyRoleArgs
from breakglass.components.emergency_role import tiers_json
from breakglass.contracts import TIERS_CONFIG_FILE
from breakglass.lambdas.access.grants import Tier, load_tiers
from breakglass.lambdas.runtime import TASK_ROOT_VARIABLE
from breakglass.local.synth import SynthError, SynthResult, synth
from breakglass.policies.emergency_role import GUARD_POLICY_NAME, locked_trust_policy
from breakglass.policies.naming import EMERGENCY_ROLE_TAG, PROTECTED_TAG

ACCOUNT = "123456789012"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:role/oncall-bob"
ADMIN_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
AUDIT_BUCKET = "arn:aws:s3:::bg-audit"


def admin_args(**overrides: Any) -> EmergencyRoleArgs:
    args: dict[str, Any] = {
        "tier": "admin",
        "managed_policy_arns": [ADMIN_ACCESS],
        "allowed_requesters": [ALICE, BOB],
        "protected_arns": [AUDIT_BUCKET],
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


def run(**overrides: Any) -> SynthResult:
    def program() -> None:
        role = EmergencyRole("admin", admin_args(**overrides))
        pulumi.export("tier", role.tier)
        pulumi.export("tiers", tiers_json([role]))

    return synth(program)


def test_the_role_is_created_locked_with_its_boundary_and_permissions() -> None:
    result = run()
    component = result.one("breakglass:index:EmergencyRole")
    role = result.one("aws:iam/role:Role")
    assert role.parent == component.name
    assert role.inputs["name"] == "breakglass-emergency-admin"
    assert json.loads(role.inputs["assumeRolePolicy"]) == locked_trust_policy()
    assert role.inputs["maxSessionDuration"] == 3600
    boundary = result.one("aws:iam/policy:Policy")
    assert role.inputs["permissionsBoundary"] == boundary.outputs["arn"]
    assert boundary.inputs["tags"][PROTECTED_TAG] == "true"
    assert role.inputs["tags"] == {EMERGENCY_ROLE_TAG: "admin", PROTECTED_TAG: "true"}
    document = json.loads(boundary.inputs["policy"])
    named = next(s for s in document["Statement"] if s["Sid"] == "DenyNamedSystemChanges")
    assert named["Resource"] == [AUDIT_BUCKET, f"{AUDIT_BUCKET}/*"]
    attachment = result.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs == {"role": "breakglass-emergency-admin", "policyArn": ADMIN_ACCESS}


def test_the_tier_output_is_what_the_grant_lambdas_load(tmp_path: Path) -> None:
    result = run(
        max_session_duration=7200,
        max_window_seconds=3 * 3600,
        max_mfa_age_seconds=900,
        trust_policy_max_chars=4096,
    )
    tier = Tier.from_dict(result.outputs["tier"])
    assert tier == Tier(
        name="admin",
        role_name="breakglass-emergency-admin",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-admin",
        max_session_seconds=7200,
        max_window_seconds=3 * 3600,
        require_mfa=True,
        allowed_requesters=(ALICE, BOB),
        max_mfa_age_seconds=900,
        trust_policy_max_chars=4096,
    )
    (tmp_path / TIERS_CONFIG_FILE).write_text(result.outputs["tiers"])
    assert load_tiers({TASK_ROOT_VARIABLE: str(tmp_path)}) == {"admin": tier}


def test_inline_permissions_are_separate_policies_next_to_the_guards() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}],
    }
    result = run(managed_policy_arns=[], inline_policies={"halt-models": document})
    policy = result.one("aws:iam/rolePolicy:RolePolicy")
    assert policy.inputs["name"] == "halt-models"
    assert json.loads(policy.inputs["policy"]) == document
    assert result.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []


def test_protected_arns_may_be_outputs_of_other_resources() -> None:
    def program() -> None:
        bucket_arn = pulumi.Output.from_input("arn:aws:s3:::audit-from-output")
        EmergencyRole("admin", admin_args(protected_arns=[bucket_arn]))

    boundary = synth(program).one("aws:iam/policy:Policy")
    named = next(
        s for s in json.loads(boundary.inputs["policy"])["Statement"] if s["Sid"] == "DenyNamedSystemChanges"
    )
    assert "arn:aws:s3:::audit-from-output/*" in named["Resource"]


def test_pulumi_leaves_the_trust_to_grants_after_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    real_role = aws.iam.Role

    class RecordingRole(real_role):  # type: ignore[misc, valid-type]
        def __init__(
            self, resource_name: str, *args: Any, opts: pulumi.ResourceOptions | None = None, **kwargs: Any
        ):
            seen.append(opts.ignore_changes if opts else None)
            super().__init__(resource_name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(aws.iam, "Role", RecordingRole)
    synth(lambda: EmergencyRole("admin", admin_args()))
    # A `pulumi up` during an incident must not reset the trust to locked (grants edit it).
    assert seen == [["assumeRolePolicy"]]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tier": "Admin"}, r"tier: use 1-40 lower-case"),
        ({"allowed_requesters": []}, r"allowed_requesters: must not be empty"),
        ({"allowed_requesters": ["alice"]}, r"allowed_requesters\[0\]: must be an IAM role or user ARN"),
        ({"max_session_duration": 600}, r"max_session_duration: must be at least 900"),
        ({"max_session_duration": 50000}, r"max_session_duration: must be at most 43200"),
        ({"max_window_seconds": 10}, r"max_window_seconds: must be at least 900"),
        ({"require_mfa": "no"}, r"require_mfa: must be true or false"),
        ({"require_mfa": False, "max_mfa_age_seconds": 900}, r"max_mfa_age_seconds: needs require_mfa"),
        (
            {"managed_policy_arns": ["AdministratorAccess"]},
            r"managed_policy_arns\[0\]: must be a managed policy ARN",
        ),
        ({"managed_policy_arns": []}, r"managed_policy_arns: give the tier its permissions"),
        ({"protected_arns": ["bucket"]}, r"protected_arns\[0\]: 'bucket' is not an ARN"),
        ({"tags": {PROTECTED_TAG: "false"}}, rf"tags.{PROTECTED_TAG}: is set by the component"),
        ({"inline_policies": {GUARD_POLICY_NAME: {"Statement": [{}]}}}, r"is reserved for the grant guards"),
        ({"inline_policies": {"p": {"Version": "2012-10-17"}}}, r"inline_policies.p.Statement: must hold"),
        ({"trust_policy_max_chars": 1024}, r"trust_policy_max_chars: must be at least 2048"),
        ({"max_sesion_duration": 3600}, r"max_sesion_duration: unknown setting"),
    ],
)
def test_validation_errors_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SynthError, match=message):
        run(**overrides)


def test_inline_permissions_too_large_to_leave_room_for_guards_are_refused() -> None:
    big = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{i:04d}/*"}
            for i in range(150)
        ],
    }
    with pytest.raises(SynthError, match=r"inline_policies: \d+ characters together, over the 6144 left"):
        run(inline_policies={"big": big})


def test_two_roles_of_one_tier_are_refused_in_the_tiers_value() -> None:
    def program() -> None:
        first = EmergencyRole("a", admin_args())
        second = EmergencyRole("b", admin_args())
        tiers_json([first, second])

    with pytest.raises(SynthError, match=r"tiers: each tier needs its own role; duplicated: \['admin'\]"):
        synth(program)
