"""The sealed last resort's documents: its role's trust, its users' only right, its alert patterns.

A sealed role is for the moment nothing else works (the workflow, SES, the identity provider or the
home region is down): no request, no approval. What guards it instead:

- its trust admits only the named break-glass IAM users, each with MFA no older than the bound,
  the session named after the user (the console's *Switch role* names it so) and, when a source
  identity is set, that too equal to the user;
- those users may do nothing but assume it (:func:`user_policy`), checked hourly by the sealed
  check, which also alarms on access keys, a password without MFA and virtual (non-hardware) MFA;
- every attempt and every console sign-in of those users alerts at once, from the region where IAM,
  STS and sign-in events arrive (us-east-1) and from the home region (:func:`alert_event_patterns`).

IAM conditions cannot tell hardware MFA from a virtual one: the check looks at the devices.
Pure functions returning dicts; ``json.dumps`` only at the resource boundary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote

Statement = dict[str, Any]

# The region where AWS delivers the events of global services (IAM, STS's global endpoint) and of
# most console sign-ins to EventBridge.
GLOBAL_EVENTS_REGION: Final = "us-east-1"
CLOUDTRAIL_API_CALL: Final = "AWS API Call via CloudTrail"
CONSOLE_SIGN_IN: Final = "AWS Console Sign In via CloudTrail"
ALERT_ASSUME: Final = "sealed-assume"
ALERT_SIGN_IN: Final = "sealed-sign-in"
ALERT_CLASSES: Final = (ALERT_ASSUME, ALERT_SIGN_IN)
SWITCH_ROLE: Final = "SwitchRole"
SIGN_IN_EVENTS: Final = ("ConsoleLogin", SWITCH_ROLE)
# IAM changes to the sealed users or role: IAM delivers its events in us-east-1 only, so these
# rules live there only, and go to the sealed topic (the record function records uses, not these).
ALERT_IAM_USERS: Final = "sealed-iam-users"
ALERT_IAM_ROLE: Final = "sealed-iam-role"
IAM_ALERT_CLASSES: Final = (ALERT_IAM_USERS, ALERT_IAM_ROLE)
# Every IAM write that could make a sealed user usable another way (or hide that it was).
IAM_USER_CHANGES: Final = (
    "AddUserToGroup",
    "AttachUserPolicy",
    "CreateAccessKey",
    "CreateLoginProfile",
    "CreateServiceSpecificCredential",
    "CreateVirtualMFADevice",
    "DeactivateMFADevice",
    "DeleteLoginProfile",
    "DeleteUserPermissionsBoundary",
    "DeleteUserPolicy",
    "DetachUserPolicy",
    "EnableMFADevice",
    "PutUserPermissionsBoundary",
    "PutUserPolicy",
    "ResyncMFADevice",
    "UpdateAccessKey",
    "UpdateLoginProfile",
    "UpdateUser",
    "UploadSSHPublicKey",
    "UploadSigningCertificate",
)
# Every IAM write that changes who may assume the sealed role or what its sessions may do.
IAM_ROLE_CHANGES: Final = (
    "AttachRolePolicy",
    "DeleteRolePermissionsBoundary",
    "DeleteRolePolicy",
    "DetachRolePolicy",
    "PutRolePermissionsBoundary",
    "PutRolePolicy",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "UpdateRoleDescription",
)
# The inline policy each sealed user holds; the check treats anything else as a finding.
USER_POLICY_NAME: Final = "breakglass-sealed-assume-only"
# Findings of the sealed check (the metric's Reason dimension and the log's `finding`).
FINDING_ACCESS_KEY: Final = "access-key"
FINDING_PASSWORD_WITHOUT_MFA: Final = "password-without-mfa"
FINDING_VIRTUAL_MFA: Final = "virtual-mfa"
FINDING_EXTRA_POLICY: Final = "extra-policy"
FINDING_GROUP: Final = "group-membership"
FINDING_MISSING_USER: Final = "missing-user"
FINDING_USER_POLICY_CHANGED: Final = "user-policy-changed"
FINDING_SECOND_MFA: Final = "second-mfa-device"
FINDING_ROLE_CHANGED: Final = "role-changed"
FINDINGS: Final = (
    FINDING_ACCESS_KEY,
    FINDING_PASSWORD_WITHOUT_MFA,
    FINDING_VIRTUAL_MFA,
    FINDING_EXTRA_POLICY,
    FINDING_GROUP,
    FINDING_MISSING_USER,
    FINDING_USER_POLICY_CHANGED,
    FINDING_SECOND_MFA,
    FINDING_ROLE_CHANGED,
)


# SealedAccess's default name prefix (BreakGlass always uses it): the drill looks for this role
# when a deployment publishes no sealed settings.
DEFAULT_NAME_PREFIX: Final = "breakglass"


def role_name(name_prefix: str = DEFAULT_NAME_PREFIX) -> str:
    return f"{name_prefix}-sealed"


def user_arn(*, partition: str, account_id: str, user: str) -> str:
    return f"arn:{partition}:iam::{account_id}:user/{user}"


def alert_regions(home: str) -> list[str]:
    """The regions whose buses hear a sealed assume: the home region and us-east-1 (where STS's
    global endpoint delivers). The sealed trust admits an assume only through these."""
    return sorted({home, GLOBAL_EVENTS_REGION})


def trust_policy(
    user_arns: Mapping[str, str], *, max_mfa_age_seconds: int, regions: Sequence[str]
) -> dict[str, Any]:
    """Per sealed user ``{name: arn}``, an assume statement: that principal, MFA present and fresh,
    the session named after the user, a source identity (if set) equal to it, and the call made
    through the STS endpoint of one of ``regions`` (:func:`alert_regions`); and a statement letting
    that user set only their own name as source identity.

    CloudTrail delivers a regional STS call to that region's bus only: an assume through any other
    region's endpoint would match no sealed rule. Refusing it keeps every *successful* assume loud;
    a refused one in another region stays unheard (docs/sealed-access.md, accepted risks).

    Per-user statements rather than a policy variable: each condition is a literal a reviewer (and
    the tests' evaluator) can read, and one user can never name a session after another.
    """
    if not user_arns:
        raise ValueError("user_arns: a sealed role needs at least one user")
    if not regions:
        raise ValueError("regions: a sealed role needs the regions its alerts listen in")
    statements: list[dict[str, Any]] = []
    for index, (user, arn) in enumerate(sorted(user_arns.items())):
        statements.append(
            {
                "Sid": f"SealedUser{index}",
                "Effect": "Allow",
                "Principal": {"AWS": arn},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "Bool": {"aws:MultiFactorAuthPresent": "true"},
                    "NumericLessThan": {"aws:MultiFactorAuthAge": str(max_mfa_age_seconds)},
                    "StringEquals": {
                        "sts:RoleSessionName": user,
                        # The global endpoint's calls carry us-east-1.
                        "aws:RequestedRegion": sorted(regions),
                    },
                    # The console's Switch role sets no source identity (and these users have no
                    # keys to call STS with one): bound it when present, never require it.
                    "StringEqualsIfExists": {"sts:SourceIdentity": user},
                },
            }
        )
        # STS evaluates sts:SetSourceIdentity only inside an AssumeRole the statement above admitted,
        # and documents neither the session name nor MFA age for it: a condition on a key the action
        # does not see would refuse every assume that sets a source identity. It pins the value only.
        statements.append(
            {
                "Sid": f"SealedUserSource{index}",
                "Effect": "Allow",
                "Principal": {"AWS": arn},
                "Action": "sts:SetSourceIdentity",
                "Condition": {"StringEquals": {"sts:SourceIdentity": user}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def user_policy(role_arn: str) -> dict[str, Any]:
    """What a sealed user may do: assume the sealed role with MFA, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AssumeSealedRoleWithMfa",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Resource": role_arn,
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            }
        ],
    }


def alert_event_patterns(*, role_arn: str, user_arns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """EventBridge patterns: any AssumeRole of the sealed role (refused ones too), any console
    sign-in or Switch role (successful or not) of a sealed user."""
    return {
        ALERT_ASSUME: {
            "source": ["aws.sts"],
            "detail-type": [CLOUDTRAIL_API_CALL],
            "detail": {
                "eventSource": ["sts.amazonaws.com"],
                "eventName": ["AssumeRole"],
                "requestParameters": {"roleArn": [role_arn]},
            },
        },
        ALERT_SIGN_IN: {
            "source": ["aws.signin"],
            "detail-type": [CONSOLE_SIGN_IN],
            # The console's Switch role may be logged as SwitchRole by sign-in, not only as AssumeRole.
            "detail": {"eventName": list(SIGN_IN_EVENTS), "userIdentity": {"arn": sorted(user_arns)}},
        },
    }


def normalised(document: Any) -> Any:
    """A policy document in a form two equal policies share: parsed (IAM may return it as
    URL-encoded JSON), a lone string where IAM accepts a list of one, lists sorted, no ``Sid``
    (a label, not a right), statements in a canonical order."""
    if isinstance(document, str):
        text = unquote(document) if document.lstrip().startswith("%") else document
        document = json.loads(text)
    if not isinstance(document, Mapping):
        raise ValueError("a policy document is a JSON object")
    return _canonical(document)


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        found = {str(k): _canonical(v) for k, v in value.items() if k != "Sid"}
        if "Statement" in found and not isinstance(found["Statement"], list):
            found["Statement"] = [found["Statement"]]
        return found
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if len(items) == 1 and isinstance(items[0], str):
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return str(value).lower() if isinstance(value, bool) else str(value)


def same_policy(found: Any, expected: Mapping[str, Any]) -> bool:
    """Whether ``found`` (as IAM returns it) grants exactly ``expected``."""
    try:
        return bool(normalised(found) == normalised(expected))
    except (TypeError, ValueError):
        return False


def iam_change_patterns(*, role_name: str, user_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """EventBridge patterns (us-east-1): any IAM write on a sealed user, any on the sealed role
    (refused ones too: an attempt is worth knowing)."""
    return {
        ALERT_IAM_USERS: _iam_pattern(IAM_USER_CHANGES, {"userName": sorted(user_names)}),
        ALERT_IAM_ROLE: _iam_pattern(IAM_ROLE_CHANGES, {"roleName": [role_name]}),
    }


def _iam_pattern(event_names: Sequence[str], parameters: Mapping[str, list[str]]) -> dict[str, Any]:
    return {
        "source": ["aws.iam"],
        "detail-type": [CLOUDTRAIL_API_CALL],
        "detail": {
            "eventSource": ["iam.amazonaws.com"],
            "eventName": sorted(event_names),
            "requestParameters": dict(parameters),
        },
    }


def check_statements(
    *,
    user_arns: Sequence[str],
    role_arn: str,
    partition: str,
    account_id: str,
    metrics_namespace: str,
) -> list[Statement]:
    """The sealed check's rights: read the sealed users' keys, password, MFA devices and policies
    (those users only), read the sealed role's trust and policies (that role only), list virtual
    MFA devices (no resource-level form) and put its metrics."""
    return [
        {
            "Sid": "ReadSealedUsers",
            "Effect": "Allow",
            "Action": [
                "iam:GetUser",
                "iam:ListAccessKeys",
                "iam:GetLoginProfile",
                "iam:ListMFADevices",
                "iam:ListAttachedUserPolicies",
                "iam:ListUserPolicies",
                "iam:ListGroupsForUser",
                "iam:GetUserPolicy",
            ],
            "Resource": sorted(user_arns),
        },
        {
            "Sid": "ReadSealedRole",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:ListAttachedRolePolicies",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
            ],
            "Resource": role_arn,
        },
        {
            # ListVirtualMFADevices has no resource-level form (the Service Authorization Reference
            # lists no resource type): a statement naming mfa/* ARNs never matches the call.
            "Sid": "ListVirtualMfaDevices",
            "Effect": "Allow",
            "Action": "iam:ListVirtualMFADevices",
            "Resource": "*",
        },
        {
            # PutMetricData has no resource-level form; the namespace condition bounds it.
            "Sid": "PutSealedCheckMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": metrics_namespace}},
        },
    ]


def inspect_statements(
    *, rule_arns: Sequence[str], topic_arns: Sequence[str], alarm_arns: Sequence[str], role_arn: str
) -> list[Statement]:
    """Security's read rights for ``breakglass drill --against``'s sealed-access step: the rules,
    their targets, the topics' subscriptions, the alarms, the check's metrics and whether the
    sealed role exists (a role without published settings fails the step). Nothing else."""
    return [
        {
            "Sid": "InspectSealedRole",
            "Effect": "Allow",
            "Action": "iam:GetRole",
            "Resource": role_arn,
        },
        {
            "Sid": "InspectSealedRules",
            "Effect": "Allow",
            "Action": ["events:DescribeRule", "events:ListTargetsByRule"],
            "Resource": sorted(rule_arns),
        },
        {
            "Sid": "InspectSealedTopics",
            "Effect": "Allow",
            "Action": ["sns:ListSubscriptionsByTopic", "sns:GetTopicAttributes"],
            "Resource": sorted(topic_arns),
        },
        {
            # GetSubscriptionAttributes has no resource-level form (no resource type in the Service
            # Authorization Reference): subscription ARNs in Resource never match the call. Read only.
            "Sid": "InspectSealedSubscriptions",
            "Effect": "Allow",
            "Action": "sns:GetSubscriptionAttributes",
            "Resource": "*",
        },
        {
            "Sid": "InspectSealedAlarms",
            "Effect": "Allow",
            "Action": "cloudwatch:DescribeAlarms",
            "Resource": sorted(alarm_arns),
        },
        {
            # Metric reads have no resource-level form.
            "Sid": "ReadSealedCheckMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:GetMetricStatistics",
            "Resource": "*",
        },
    ]
