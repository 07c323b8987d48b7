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
from breakglass.policies.naming import (
    EMERGENCY_ROLE_PREFIX,
    PROTECTED_TAG,
    REQUEST_ID_SESSION_TAG,
    RESPONDER_INVOCABLE_TAG,
)

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
# On the system's own resources (named by ARN, tagged PROTECTED_TAG=true, or an emergency role
# or its boundary by name prefix) a session may only read: everything else is denied, so an
# action AWS adds tomorrow is denied too. Not readable either: table items and secrets (link
# signing keys, TOTP state: reading them would let a session forge approvals).
READ_ONLY_ACTIONS: Final = (
    "s3:Get*",
    "s3:List*",
    "kms:Describe*",
    "kms:Get*",
    "kms:List*",
    "kms:Decrypt",
    "iam:Get*",
    "iam:List*",
    "states:Describe*",
    "states:List*",
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
# Exempted from the tagged read-only deny, and then denied on every protected resource that is not
# also tagged RESPONDER_INVOCABLE_TAG=true: responders run the halt and resume Lambdas with their
# emergency role, never the workflow's own functions (the access function would revoke, deny or
# record errors on other requests). On ARNs named explicitly, invoking is denied outright.
INVOKE_ACTIONS: Final = ("lambda:InvokeFunction",)

_S3_BUCKET_ARN = re.compile(r"arn:aws[a-z-]*:s3:::[^/]+")


def permission_boundary(protected_arns: Sequence[str] = (), *, partition: str = "aws") -> dict[str, Any]:
    """The boundary every emergency role carries, whatever its permissions.

    Allows everything the role's own policies allow, and denies: changing any trail; anything but
    reading on the system's resources (explicit ``protected_arns``, anything tagged
    ``PROTECTED_TAG=true``, every emergency role and its boundary by name prefix), where invoking
    is allowed only on functions also tagged ``RESPONDER_INVOCABLE_TAG=true`` and never on explicit
    ARNs; shadow admins (users, credentials, roles, trusts, boundaries, identity providers,
    Identity Center principals); answering workflow task tokens; and any call by a session without
    a source identity or request-id tag.
    """
    arns = list(protected_arns)
    for arn in protected_arns:
        if _S3_BUCKET_ARN.fullmatch(arn):
            arns.append(f"{arn}/*")  # object-level actions name the objects, not the bucket
    statements: list[dict[str, Any]] = [
        {"Sid": "AllowWhatTheRolePoliciesAllow", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "DenyAuditTrailChanges", "Effect": "Deny", "Action": list(TRAIL_TAMPERING), "Resource": "*"},
        {"Sid": "DenyShadowAdmins", "Effect": "Deny", "Action": list(SHADOW_ADMIN_ACTIONS), "Resource": "*"},
        {"Sid": "DenyWorkflowAnswers", "Effect": "Deny", "Action": list(WORKFLOW_ANSWERS), "Resource": "*"},
        {
            "Sid": "DenyEmergencyRoleChanges",
            "Effect": "Deny",
            "NotAction": ["iam:Get*", "iam:List*"],
            "Resource": [
                f"arn:{partition}:iam::*:role/{EMERGENCY_ROLE_PREFIX}*",
                f"arn:{partition}:iam::*:policy/{EMERGENCY_ROLE_PREFIX}*",
            ],
        },
        {
            "Sid": "DenyTaggedSystemChanges",
            "Effect": "Deny",
            "NotAction": [*READ_ONLY_ACTIONS, *INVOKE_ACTIONS],
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{PROTECTED_TAG}": "true"}},
        },
        {
            # StringNotEquals is true when the resource lacks the key, so an untagged protected
            # function is denied too; only both tags together let a session invoke.
            "Sid": "DenyInvokingProtectedFunctions",
            "Effect": "Deny",
            "Action": list(INVOKE_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{PROTECTED_TAG}": "true"},
                "StringNotEquals": {f"aws:ResourceTag/{RESPONDER_INVOCABLE_TAG}": "true"},
            },
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
            5,
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
