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

from collections.abc import Mapping, Sequence
from typing import Any, Final

Statement = dict[str, Any]

# The region where AWS delivers the events of global services (IAM, STS's global endpoint) and of
# most console sign-ins to EventBridge.
GLOBAL_EVENTS_REGION: Final = "us-east-1"
CLOUDTRAIL_API_CALL: Final = "AWS API Call via CloudTrail"
CONSOLE_SIGN_IN: Final = "AWS Console Sign In via CloudTrail"
ALERT_ASSUME: Final = "sealed-assume"
ALERT_SIGN_IN: Final = "sealed-sign-in"
ALERT_CLASSES: Final = (ALERT_ASSUME, ALERT_SIGN_IN)
# The inline policy each sealed user holds; the check treats anything else as a finding.
USER_POLICY_NAME: Final = "breakglass-sealed-assume-only"
# Findings of the sealed check (the metric's Reason dimension and the log's `finding`).
FINDING_ACCESS_KEY: Final = "access-key"
FINDING_PASSWORD_WITHOUT_MFA: Final = "password-without-mfa"
FINDING_VIRTUAL_MFA: Final = "virtual-mfa"
FINDING_EXTRA_POLICY: Final = "extra-policy"
FINDING_GROUP: Final = "group-membership"
FINDING_MISSING_USER: Final = "missing-user"
FINDINGS: Final = (
    FINDING_ACCESS_KEY,
    FINDING_PASSWORD_WITHOUT_MFA,
    FINDING_VIRTUAL_MFA,
    FINDING_EXTRA_POLICY,
    FINDING_GROUP,
    FINDING_MISSING_USER,
)


def user_arn(*, partition: str, account_id: str, user: str) -> str:
    return f"arn:{partition}:iam::{account_id}:user/{user}"


def trust_policy(user_arns: Mapping[str, str], *, max_mfa_age_seconds: int) -> dict[str, Any]:
    """One statement per sealed user ``{name: arn}``: that principal, MFA present and fresh, the
    session named after the user, and a source identity (if set) equal to it.

    Per-user statements rather than a policy variable: each condition is a literal a reviewer (and
    the tests' evaluator) can read, and one user can never name a session after another.
    """
    if not user_arns:
        raise ValueError("user_arns: a sealed role needs at least one user")
    statements = [
        {
            "Sid": f"SealedUser{index}",
            "Effect": "Allow",
            "Principal": {"AWS": arn},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "NumericLessThan": {"aws:MultiFactorAuthAge": str(max_mfa_age_seconds)},
                "StringEquals": {"sts:RoleSessionName": user},
                # The console's Switch role sets no source identity (and these users have no keys
                # to call STS with one): bound it when present, never require it.
                "StringEqualsIfExists": {"sts:SourceIdentity": user},
            },
        }
        for index, (user, arn) in enumerate(sorted(user_arns.items()))
    ]
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
    sign-in (successful or not) of a sealed user."""
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
            "detail": {"eventName": ["ConsoleLogin"], "userIdentity": {"arn": sorted(user_arns)}},
        },
    }


def check_statements(
    *, user_arns: Sequence[str], partition: str, account_id: str, metrics_namespace: str
) -> list[Statement]:
    """The sealed check's rights: read the sealed users' keys, password, MFA devices and policies
    (those users only), list virtual MFA devices (no resource-level form) and put its metrics."""
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
            ],
            "Resource": sorted(user_arns),
        },
        {
            "Sid": "ListVirtualMfaDevices",
            "Effect": "Allow",
            "Action": "iam:ListVirtualMFADevices",
            "Resource": f"arn:{partition}:iam::{account_id}:mfa/*",
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
    *, rule_arns: Sequence[str], topic_arns: Sequence[str], alarm_arns: Sequence[str]
) -> list[Statement]:
    """Security's read rights for ``breakglass drill --against``'s sealed-access step: the rules,
    their targets, the topics' subscriptions, the alarms and the check's metrics. Nothing else."""
    return [
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
