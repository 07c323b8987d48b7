"""The permission boundary every emergency role carries: what no emergency session may do.

Pure builders returning dicts. The boundary allows what the role's own policies allow and denies
tampering with the audit trail, with the break-glass system itself and creating access that would
outlive the window (see docs/security.md for the threat model each statement answers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from breakglass.policies.documents import check_size, document, policy_size
from breakglass.policies.naming import PROTECTED_TAG, REQUEST_ID_SESSION_TAG, SYSTEM_NAME_PREFIX
from breakglass.validation import ConfigError

MANAGED_POLICY_MAX_CHARS: Final = 6144

# Audit trail: any trail, any event data store. An emergency session never needs to change one.
TRAIL_TAMPERING: Final = (
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:Put*",
    "cloudtrail:Delete*",
    "cloudtrail:Update*",
    "cloudtrail:AddTags",
    "cloudtrail:RemoveTags",
    "cloudtrail:StopEventDataStoreIngestion",
)
# Shadow admins: identities, credentials and trusts that would outlive the window.
# - Roles as well as users: a role the session creates, or an existing powerful role whose trust it
#   rewrites, trusting the responder's everyday principal or an outside account is access after
#   expiry (iam:CreateRole, iam:UpdateAssumeRolePolicy).
# - Boundaries: replacing or removing one unbounds an existing user or role.
# - Identity providers: a new or re-pointed OIDC/SAML provider (or a new client id on one) lets an
#   outside identity assume every role that trusts that provider.
# - IAM Identity Center (IAM prefixes ``identitystore`` and ``sso``, the API's ``sso-admin``): in
#   scope only for the writes that create a principal or give one an account (CreateUser,
#   CreateGroupMembership, CreateAccountAssignment), since each makes a person who can sign in after
#   expiry. Editing permission sets is left to the tier's own policies: it only works in the
#   management or delegated-admin account, is administration a responder may need, and like every
#   other call surfaces in session_actions and the post-event review.
# What stays possible (documented in docs/emergency-roles.md): changing the policies of existing
# non-system principals, and compute that runs as an existing role (iam:PassRole).
SHADOW_ADMIN_ACTIONS: Final = (
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreateServiceSpecificCredential",
    "iam:UploadSigningCertificate",
    "iam:UploadSSHPublicKey",
    "iam:AddUserToGroup",
    "iam:CreateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:CreateOpenIDConnectProvider",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:CreateSAMLProvider",
    "iam:UpdateSAMLProvider",
    "identitystore:CreateUser",
    "identitystore:CreateGroupMembership",
    "sso:CreateAccountAssignment",
)
# Answering the workflow's task tokens would let a session approve requests (these actions take
# no resource ARN, so they are denied everywhere).
WORKFLOW_ANSWERS: Final = ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat")
# The approval emails' sender: deleting or re-pointing an SES identity stops every approval email;
# sending from it phishes approvers from the trusted address. SES identities cannot be protected
# by tag for every action, and an AI incident never needs email configuration: denied outright.
MAIL_TAMPERING: Final = (
    "ses:Send*",
    "ses:Delete*",
    "ses:Put*",
    "ses:Set*",
    "ses:Update*",
    "ses:Create*",
    "ses:Verify*",
)
# Role chaining: a session of another role assumed from the emergency session lasts up to an hour
# and is not a session of the emergency role, so neither the expiry guard nor an early revoke ends
# it. Denied unless the tier names the roles it may chain to (each one reintroduces that lag).
ROLE_CHAINING: Final = ("sts:AssumeRole",)
# On the system's own resources (named by ARN, tagged PROTECTED_TAG=true, or named with the
# system's prefix) a session may only read: everything else is denied, so an action AWS adds
# tomorrow is denied too. Not readable: table items and secrets (link signing keys, TOTP state),
# and nothing is decrypted with the system's keys (they protect TOTP secrets and link keys).
READ_ONLY_ACTIONS: Final = (
    "s3:Get*",
    "s3:List*",
    "kms:Describe*",
    "kms:Get*",
    "kms:List*",
    "iam:Get*",
    "iam:List*",
    "states:Describe*",
    "states:List*",
    "states:Get*",
    "lambda:Get*",
    "lambda:List*",
    "dynamodb:Describe*",
    "dynamodb:List*",
    "sns:Get*",
    "sns:List*",
    "events:Describe*",
    "events:List*",
    "logs:Describe*",
    "logs:Get*",
    "logs:FilterLogEvents",
    "cloudwatch:Describe*",
    "cloudwatch:Get*",
    "cloudwatch:List*",
    "cloudtrail:Describe*",
    "cloudtrail:Get*",
    "cloudtrail:List*",
    "cloudtrail:LookupEvents",
)
# Calling the access API's routes (halt, resume) is how an emergency session acts on models: the
# API authorizes each route itself (verified caller, tier, live grant).
API_CALLS: Final = ("execute-api:Invoke",)
# The namespace of the system's metrics (runtime.METRICS_NAMESPACE; policies cannot import lambdas).
SYSTEM_METRICS_NAMESPACE: Final = "Breakglass"

_S3_BUCKET_ARN = re.compile(r"arn:aws[a-z-]*:s3:::[^/]+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


def system_name_arns(partition: str) -> list[str]:
    """Everything the system names with its prefix: roles (emergency roles and every function's
    and the state machine's execution role), managed policies (boundaries, guard pages), functions
    (also tagged; by name too, so no session ever invokes one directly), the workflow's state
    machines, executions and activities, which cannot carry tags at all, and the sealed alert
    topics with their subscriptions (a subscription carries no tag, and a filter policy set on
    one, or an unsubscribe, silences the sealed alerts while the address stays listed)."""
    prefix = SYSTEM_NAME_PREFIX
    return [
        f"arn:{partition}:iam::*:role/{prefix}*",
        f"arn:{partition}:iam::*:policy/{prefix}*",
        f"arn:{partition}:lambda:*:*:function:{prefix}*",
        f"arn:{partition}:states:*:*:stateMachine:{prefix}*",
        f"arn:{partition}:states:*:*:execution:{prefix}*",
        f"arn:{partition}:states:*:*:express:{prefix}*",
        f"arn:{partition}:states:*:*:activity:{prefix}*",
        f"arn:{partition}:sns:*:*:{prefix}sealed-*",
    ]


def permission_boundary(
    protected_arns: Sequence[str] = (),
    *,
    partition: str = "aws",
    role_chaining_to: Sequence[str] = (),
) -> dict[str, Any]:
    """The boundary every emergency role carries, whatever its permissions.

    Allows everything the role's own policies allow, and denies: changing any trail; anything but
    reading on the system's resources (explicit ``protected_arns``, anything tagged
    ``PROTECTED_TAG=true``, and everything named with the system's prefix: roles, which also keeps
    ``iam:PassRole`` of a function's role away from a session, policies, state machines and their
    executions); invoking any protected function; email configuration and sending; shadow admins
    (users, credentials, roles, trusts, boundaries, identity providers, Identity Center
    principals); answering workflow task tokens; role chaining except to ``role_chaining_to``; and
    any call by a session without a source identity or request-id tag.
    """
    for i, arn in enumerate(role_chaining_to):
        if not _ROLE_ARN.fullmatch(arn):
            raise ConfigError(f"role_chaining_to[{i}]", f"must be an IAM role ARN, got {arn!r}")
    arns = list(protected_arns)
    for arn in protected_arns:
        if _S3_BUCKET_ARN.fullmatch(arn):
            arns.append(f"{arn}/*")  # object-level actions name the objects, not the bucket
    chaining: dict[str, Any] = (
        {"NotResource": list(role_chaining_to)} if role_chaining_to else {"Resource": "*"}
    )
    statements: list[dict[str, Any]] = [
        {"Sid": "AllowWhatTheRolePoliciesAllow", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "DenyAuditTrailChanges", "Effect": "Deny", "Action": list(TRAIL_TAMPERING), "Resource": "*"},
        {"Sid": "DenyShadowAdmins", "Effect": "Deny", "Action": list(SHADOW_ADMIN_ACTIONS), "Resource": "*"},
        {"Sid": "DenyWorkflowAnswers", "Effect": "Deny", "Action": list(WORKFLOW_ANSWERS), "Resource": "*"},
        {"Sid": "DenyMailChanges", "Effect": "Deny", "Action": list(MAIL_TAMPERING), "Resource": "*"},
        {"Sid": "DenyRoleChaining", "Effect": "Deny", "Action": list(ROLE_CHAINING), **chaining},
        {
            "Sid": "DenySystemNamedChanges",
            "Effect": "Deny",
            "NotAction": list(READ_ONLY_ACTIONS),
            "Resource": system_name_arns(partition),
        },
        {
            "Sid": "DenyTaggedSystemChanges",
            "Effect": "Deny",
            "NotAction": [*READ_ONLY_ACTIONS, *API_CALLS],
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{PROTECTED_TAG}": "true"}},
        },
        {
            # The system's own metrics (the sealed check's runs and findings feed its alarms and
            # the drill): PutMetricData has no resource, so the namespace names them.
            "Sid": "DenySystemMetricForgery",
            "Effect": "Deny",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": SYSTEM_METRICS_NAMESPACE}},
        },
        {
            # Sessions always carry both (the trust requires them); without them, no guard
            # could ever match the session, so such a session gets nothing.
            "Sid": "DenySessionsWithoutSourceIdentity",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Null": {"aws:SourceIdentity": "true"}},
        },
        {
            "Sid": "DenySessionsWithoutRequestTag",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Null": {f"aws:PrincipalTag/{REQUEST_ID_SESSION_TAG}": "true"}},
        },
    ]
    if arns:
        statements.insert(
            7,
            {
                "Sid": "DenyNamedSystemChanges",
                "Effect": "Deny",
                "NotAction": list(READ_ONLY_ACTIONS),
                "Resource": arns,
            },
        )
    boundary = document(statements)
    check_size(
        "protected_arns",
        policy_size(boundary),
        MANAGED_POLICY_MAX_CHARS,
        "the permission boundary",
        "protect fewer resources by ARN and tag them with "
        f"{PROTECTED_TAG}=true instead (the tag is protected without listing)",
    )
    return boundary
