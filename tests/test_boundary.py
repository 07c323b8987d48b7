"""The permission boundary: what no emergency session may do, evaluated with principalmapper.

Every attack here is made with the admin tier (AdministratorAccess), so only the boundary stands
between the session and the system.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from iam_eval import ADMIN_POLICY, session_allowed, session_context

from breakglass.policies.boundary import MANAGED_POLICY_MAX_CHARS, permission_boundary
from breakglass.policies.documents import PolicySizeError, policy_size
from breakglass.policies.naming import PROTECTED_TAG, system_role_name
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-admin"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
INSIDE = START + timedelta(minutes=10)

AUDIT_BUCKET = "arn:aws:s3:::bg-audit"
AUDIT_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GRANT_FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:bg-grant"
WORKFLOW = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:bg-approval"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/bg-state"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/bg-trail"
PROTECTED = [AUDIT_BUCKET, AUDIT_KEY, GRANT_FN, WORKFLOW, TABLE]
BOUNDARY = permission_boundary(PROTECTED)


# --- the boundary: no tampering, even for the admin tier --------------------------------------

TAMPERING: list[tuple[str, str]] = [
    ("cloudtrail:StopLogging", TRAIL),
    ("cloudtrail:DeleteTrail", TRAIL),
    ("cloudtrail:UpdateTrail", TRAIL),
    ("cloudtrail:PutEventSelectors", TRAIL),
    ("s3:DeleteObject", f"{AUDIT_BUCKET}/breakglass-events/dt=2025-03-01/e.json"),
    ("s3:DeleteObjectVersion", f"{AUDIT_BUCKET}/AWSLogs/x.json.gz"),
    ("s3:PutObject", f"{AUDIT_BUCKET}/breakglass-events/forged.json"),
    ("s3:PutObjectRetention", f"{AUDIT_BUCKET}/AWSLogs/x.json.gz"),
    ("s3:PutObjectLegalHold", f"{AUDIT_BUCKET}/AWSLogs/x.json.gz"),
    ("s3:BypassGovernanceRetention", f"{AUDIT_BUCKET}/AWSLogs/x.json.gz"),
    ("s3:PutBucketPolicy", AUDIT_BUCKET),
    ("s3:DeleteBucketPolicy", AUDIT_BUCKET),
    ("s3:PutBucketObjectLockConfiguration", AUDIT_BUCKET),
    ("s3:PutLifecycleConfiguration", AUDIT_BUCKET),
    ("s3:PutBucketVersioning", AUDIT_BUCKET),
    ("s3:DeleteBucket", AUDIT_BUCKET),
    ("kms:DisableKey", AUDIT_KEY),
    ("kms:ScheduleKeyDeletion", AUDIT_KEY),
    ("kms:PutKeyPolicy", AUDIT_KEY),
    ("kms:DisableKeyRotation", AUDIT_KEY),
    ("states:UpdateStateMachine", WORKFLOW),
    ("states:DeleteStateMachine", WORKFLOW),
    ("states:StartExecution", WORKFLOW),
    ("states:SendTaskSuccess", "*"),
    ("lambda:UpdateFunctionCode", GRANT_FN),
    ("lambda:UpdateFunctionConfiguration", GRANT_FN),
    ("lambda:DeleteFunction", GRANT_FN),
    ("lambda:AddPermission", GRANT_FN),
    ("lambda:PutFunctionConcurrency", GRANT_FN),
    ("lambda:InvokeFunction", GRANT_FN),
    ("dynamodb:DeleteTable", TABLE),
    ("dynamodb:PutItem", TABLE),
    ("dynamodb:GetItem", TABLE),
    ("iam:UpdateAssumeRolePolicy", ROLE),
    ("iam:PutRolePolicy", ROLE),
    ("iam:DeleteRolePolicy", ROLE),
    ("iam:AttachRolePolicy", ROLE),
    ("iam:DeleteRolePermissionsBoundary", ROLE),
    ("iam:UpdateRole", ROLE),
    ("iam:TagRole", ROLE),
    ("iam:UpdateAssumeRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-halt"),
    ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-halt"),
    ("iam:CreatePolicyVersion", f"arn:aws:iam::{ACCOUNT}:policy/breakglass-emergency-admin-boundary"),
    ("iam:DeletePolicy", f"arn:aws:iam::{ACCOUNT}:policy/breakglass-emergency-admin-boundary"),
    ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/shadow"),
    ("iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/alice"),
    ("iam:CreateLoginProfile", f"arn:aws:iam::{ACCOUNT}:user/alice"),
    ("iam:UpdateLoginProfile", f"arn:aws:iam::{ACCOUNT}:user/alice"),
]

# Resources the audit and workflow components create carry the protected tag instead of a listing.
TAGGED_TAMPERING: list[tuple[str, str]] = [
    ("lambda:UpdateFunctionCode", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:bg-approve"),
    ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/bg-approve-role"),
    ("sns:SetTopicAttributes", f"arn:aws:sns:us-east-1:{ACCOUNT}:bg-alerts"),
    ("events:DisableRule", f"arn:aws:events:us-east-1:{ACCOUNT}:rule/bg-assume-alert"),
    ("events:RemoveTargets", f"arn:aws:events:us-east-1:{ACCOUNT}:rule/bg-assume-alert"),
    ("logs:DeleteLogGroup", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/bg-grant"),
    ("kms:ScheduleKeyDeletion", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/other"),
    ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:bg-link-key"),
    ("dynamodb:Scan", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/bg-other"),
    ("cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:bg-tripwire"),
]


def admin_session(
    action: str, resource: str, *, tagged: bool = False, tags: dict[str, str] | None = None
) -> bool:
    resource_tags = {PROTECTED_TAG: "true"} if tagged else {}
    resource_tags.update(tags or {})
    context = session_context(
        now=INSIDE,
        source_identity="alice",
        request_id="req1",
        issued_at=INSIDE,
        resource_tags=resource_tags,
    )
    return session_allowed(
        ROLE, action, resource, policies=[ADMIN_POLICY], boundary=BOUNDARY, context=context
    )


@pytest.mark.parametrize(("action", "resource"), TAMPERING)
def test_the_boundary_denies_tampering_even_to_the_admin_tier(action: str, resource: str) -> None:
    assert not admin_session(action, resource)


@pytest.mark.parametrize(("action", "resource"), TAGGED_TAMPERING)
def test_the_boundary_denies_tampering_with_anything_tagged_protected(action: str, resource: str) -> None:
    assert not admin_session(action, resource, tagged=True)
    assert admin_session(action, resource, tagged=False)


@pytest.mark.parametrize(
    ("action", "resource", "tagged"),
    [
        ("sagemaker:DeleteEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/model-a", False),
        ("bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/x", False),
        ("s3:GetObject", f"{AUDIT_BUCKET}/breakglass-events/dt=2025-03-01/e.json", False),
        ("s3:ListBucket", AUDIT_BUCKET, False),
        ("cloudtrail:LookupEvents", "*", False),
        ("iam:GetRole", ROLE, False),
        ("s3:PutObject", "arn:aws:s3:::app-data/x", False),
        # Ordinary incident work on the workload's own principals and compute stays allowed.
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/app", False),
        ("iam:AttachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/app", False),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app", False),
        ("iam:DeleteAccessKey", f"arn:aws:iam::{ACCOUNT}:user/leaked", False),
        ("ec2:RunInstances", f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*", False),
        ("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:app", False),
        ("lambda:UpdateFunctionConfiguration", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:app", False),
        ("sagemaker:UpdateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/model-a", False),
        ("identitystore:ListUsers", "*", False),
    ],
)
def test_the_boundary_leaves_incident_work_and_reading_the_record_allowed(
    action: str, resource: str, tagged: bool
) -> None:
    assert admin_session(action, resource, tagged=tagged)


# --- shadow admins through roles, boundaries, identity providers and Identity Center --------------

APP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SHADOW_ADMINS: list[tuple[str, str]] = [
    ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/backdoor"),
    ("iam:UpdateAssumeRolePolicy", APP_ROLE),
    ("iam:UpdateAssumeRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"),
    ("iam:PutRolePermissionsBoundary", APP_ROLE),
    ("iam:DeleteRolePermissionsBoundary", APP_ROLE),
    ("iam:PutUserPermissionsBoundary", f"arn:aws:iam::{ACCOUNT}:user/bob"),
    ("iam:DeleteUserPermissionsBoundary", f"arn:aws:iam::{ACCOUNT}:user/bob"),
    ("iam:CreateServiceSpecificCredential", f"arn:aws:iam::{ACCOUNT}:user/bob"),
    ("iam:UpdateLoginProfile", f"arn:aws:iam::{ACCOUNT}:user/bob"),
    ("iam:UpdateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/bob"),
    ("iam:CreateOpenIDConnectProvider", f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.example.com"),
    (
        "iam:AddClientIDToOpenIDConnectProvider",
        f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
    ),
    (
        "iam:UpdateOpenIDConnectProviderThumbprint",
        f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
    ),
    ("iam:CreateSAMLProvider", f"arn:aws:iam::{ACCOUNT}:saml-provider/evil"),
    ("iam:UpdateSAMLProvider", f"arn:aws:iam::{ACCOUNT}:saml-provider/okta"),
    ("identitystore:CreateUser", "arn:aws:identitystore::123456789012:identitystore/d-1234567890"),
    ("identitystore:CreateGroupMembership", "arn:aws:identitystore:::group/*"),
    ("sso:CreateAccountAssignment", "arn:aws:sso:::permissionSet/ssoins-1/ps-1"),
]


@pytest.mark.parametrize(("action", "resource"), SHADOW_ADMINS)
def test_the_boundary_denies_shadow_admins_through_roles_and_providers_to_the_admin_tier(
    action: str, resource: str
) -> None:
    assert not admin_session(action, resource)


def test_the_boundary_allows_nothing_the_role_s_own_policies_do_not() -> None:
    context = session_context(now=INSIDE, source_identity="alice", request_id="req1", issued_at=INSIDE)
    read_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}],
    }
    assert session_allowed(
        ROLE, "s3:GetObject", "arn:aws:s3:::app/x", policies=[read_only], boundary=BOUNDARY, context=context
    )
    assert not session_allowed(
        ROLE, "s3:PutObject", "arn:aws:s3:::app/x", policies=[read_only], boundary=BOUNDARY, context=context
    )


def test_bucket_arns_are_protected_with_their_objects() -> None:
    named = next(s for s in BOUNDARY["Statement"] if s["Sid"] == "DenyNamedSystemChanges")
    assert AUDIT_BUCKET in named["Resource"] and f"{AUDIT_BUCKET}/*" in named["Resource"]
    no_named = permission_boundary([])
    assert "DenyNamedSystemChanges" not in [s["Sid"] for s in no_named["Statement"]]


def test_the_boundary_refuses_to_outgrow_the_managed_policy_quota() -> None:
    many = [f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:function-number-{i:04d}" for i in range(80)]
    with pytest.raises(
        PolicySizeError, match=rf"protected_arns: .* over the {MANAGED_POLICY_MAX_CHARS} quota"
    ):
        permission_boundary(many)


def test_the_boundary_leaves_room_for_a_realistic_system() -> None:
    # The five system ARNs above plus 25 more listed functions still fit the managed quota.
    more = [f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:breakglass-function-{i:02d}" for i in range(25)]
    assert policy_size(permission_boundary([*PROTECTED, *more])) <= MANAGED_POLICY_MAX_CHARS


# --- the untaggable parts of the system (security review, finding 4) ------------------------------

MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:breakglass-workflow"
EXECUTION = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:breakglass-workflow:r20250301090000abcdef012345"
SENDER = f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/breakglass@example.com"
ACCESS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{system_role_name('breakglass-access')}"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/app-admin"


@pytest.mark.parametrize(
    "action",
    ["states:StopExecution", "states:StartExecution", "states:UpdateStateMachine", "states:RedriveExecution"],
)
def test_a_session_cannot_stop_or_start_the_workflow_s_executions_which_carry_no_tags(action: str) -> None:
    resource = MACHINE if action in ("states:StartExecution", "states:UpdateStateMachine") else EXECUTION
    assert not admin_session(action, resource)
    # Reading its history stays allowed (the responder may look at their own request's run).
    assert admin_session("states:DescribeExecution", EXECUTION)
    assert admin_session("states:GetExecutionHistory", EXECUTION)


def test_other_state_machines_stay_the_responder_s_to_operate() -> None:
    app = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:ml-pipeline:run-1"
    assert admin_session("states:StopExecution", app)


@pytest.mark.parametrize(
    "action",
    [
        "ses:DeleteIdentity",
        "ses:DeleteEmailIdentity",
        "ses:SendEmail",
        "ses:SendRawEmail",
        "ses:PutIdentityPolicy",
    ],
)
def test_a_session_can_neither_silence_nor_impersonate_the_approval_emails(action: str) -> None:
    assert not admin_session(action, SENDER)
    assert not admin_session(action, "*")


def test_role_chaining_is_denied_by_default_because_a_chained_session_outlives_the_grant() -> None:
    assert not admin_session("sts:AssumeRole", OTHER_ROLE)
    assert not admin_session("sts:AssumeRole", "arn:aws:iam::210987654321:role/anything")


def test_a_tier_may_opt_in_to_chaining_into_named_roles_only() -> None:
    boundary = permission_boundary(PROTECTED, role_chaining_to=[OTHER_ROLE])
    context = session_context(now=INSIDE, source_identity="alice", request_id="req1", issued_at=INSIDE)

    def allowed(resource: str) -> bool:
        return session_allowed(
            ROLE, "sts:AssumeRole", resource, policies=[ADMIN_POLICY], boundary=boundary, context=context
        )

    assert allowed(OTHER_ROLE)
    assert not allowed(f"arn:aws:iam::{ACCOUNT}:role/another")
    assert not allowed(f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-halt")


def test_a_chaining_opt_in_must_name_roles() -> None:
    with pytest.raises(ConfigError, match=r"role_chaining_to\[0\]"):
        permission_boundary(role_chaining_to=["*"])


def test_a_session_cannot_pass_or_change_a_system_function_s_role_even_untagged() -> None:
    # iam:PassRole cannot be conditioned on the role's tags: the system's roles are protected by name.
    for action in ("iam:PassRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy"):
        assert not admin_session(action, ACCESS_ROLE)
    assert admin_session("iam:GetRole", ACCESS_ROLE)
    assert admin_session("iam:PassRole", OTHER_ROLE)


def test_a_session_cannot_decrypt_with_the_system_s_keys() -> None:
    # The workflow's key encrypts TOTP secrets and the link key: reading ciphertext is not enough.
    assert not admin_session("kms:Decrypt", AUDIT_KEY)
    assert not admin_session("kms:Decrypt", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/workflow", tagged=True)
    assert admin_session("kms:DescribeKey", AUDIT_KEY)


def test_no_protected_function_can_be_invoked_by_a_session() -> None:
    halt = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ai-halt"
    assert not admin_session("lambda:InvokeFunction", halt, tagged=True)
    assert not admin_session("lambda:InvokeFunction", GRANT_FN)
    assert admin_session("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:app")


def test_a_session_may_call_the_access_api_whose_routes_authorize_themselves() -> None:
    route = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/$default/POST/halts"
    assert admin_session("execute-api:Invoke", route, tagged=True)


def test_a_session_cannot_touch_a_grant_guard_page() -> None:
    from breakglass.policies.emergency_role import guard_page_arn

    for action in ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DetachRolePolicy"):
        assert not admin_session(action, guard_page_arn(ROLE, 1))
