"""Pure builders of the audit trail's policy documents and alert rule patterns.

Everything here returns plain dicts (``json.dumps`` happens at the resource boundary) so the
documents can be linted, evaluated and read in review without Pulumi.
"""

from __future__ import annotations

from typing import Any, Final

from breakglass.policies.documents import POLICY_VERSION, Document, Statement, deny_insecure_transport
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX

CLOUDTRAIL_DETAIL_TYPE: Final = "AWS API Call via CloudTrail"

# Object-level actions that would remove or shorten an audit record; denied to every principal.
# s3:BypassGovernanceRetention is listed so an opted-in GOVERNANCE bucket is still not erasable
# through the API (only a bucket policy change by the account can re-allow it, which alerts).
DENIED_OBJECT_ACTIONS: Final = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:BypassGovernanceRetention",
)
# Bucket-level actions that would delete the bucket or weaken its lock; denied to every principal.
DENIED_BUCKET_ACTIONS: Final = (
    "s3:DeleteBucket",
    "s3:PutBucketObjectLockConfiguration",
)

# The alert classes, one EventBridge rule each. Order is the order rules are created in.
ALERT_EMERGENCY_ASSUME: Final = "emergency-assume"
ALERT_TRAIL_TAMPERING: Final = "trail-tampering"
ALERT_BUCKET_TAMPERING: Final = "bucket-tampering"
ALERT_GUARDRAIL_DELETION: Final = "guardrail-deletion"
ALERT_KEY_TAMPERING: Final = "key-tampering"
ALERT_CLASSES: Final = (
    ALERT_EMERGENCY_ASSUME,
    ALERT_TRAIL_TAMPERING,
    ALERT_BUCKET_TAMPERING,
    ALERT_GUARDRAIL_DELETION,
    ALERT_KEY_TAMPERING,
)

ASSUME_EVENT_NAMES: Final = ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity")
TRAIL_TAMPERING_EVENT_NAMES: Final = ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors")
# CloudTrail records PutBucketLifecycleConfiguration calls as "PutBucketLifecycle"; both names are
# listed so the rule does not depend on which one a given API version logs.
BUCKET_TAMPERING_EVENT_NAMES: Final = (
    "PutBucketPolicy",
    "DeleteBucketPolicy",
    "PutBucketLifecycle",
    "PutBucketLifecycleConfiguration",
    "DeleteBucketLifecycle",
    "PutObjectLockConfiguration",
    "PutBucketVersioning",
    "PutBucketPublicAccessBlock",
    "DeleteBucketPublicAccessBlock",
    "PutBucketEncryption",
    "DeleteBucketEncryption",
)
GUARDRAIL_EVENT_NAMES: Final = ("DeleteGuardrail",)
KEY_TAMPERING_EVENT_NAMES: Final = (
    "DisableKey",
    "ScheduleKeyDeletion",
    "PutKeyPolicy",
    "DisableKeyRotation",
)


def trail_arn(*, partition: str, region: str, account_id: str, trail_name: str) -> str:
    """The ARN CloudTrail gives ``trail_name``: known before the trail exists, so policies can name it."""
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{trail_name}"


def emergency_role_arn_patterns(prefix: str = EMERGENCY_ROLE_PREFIX) -> list[str]:
    """Wildcards matching every emergency role ARN, in any partition and account, with or without a path."""
    return [f"arn:*:iam::*:role/{prefix}*", f"arn:*:iam::*:role/*/{prefix}*"]


def cloudtrail_delivery_statements(*, bucket_arn: str, account_id: str, trail_arn: str) -> list[Statement]:
    """What a bucket policy must grant CloudTrail so ``trail_arn`` (and only it) can deliver logs.

    Also the statements to add to an existing bucket when this component creates a trail into it.
    """
    source = {"aws:SourceArn": trail_arn}
    return [
        {
            "Sid": "AWSCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": source},
        },
        {
            "Sid": "AWSCloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **source}},
        },
    ]


def audit_bucket_policy(*, bucket_arn: str, account_id: str, trail_arn: str | None) -> Document:
    """The locked bucket's policy: TLS only, no deletes, no lock changes; CloudTrail may deliver.

    ``trail_arn`` is None when no trail delivers here (an existing trail writes elsewhere).
    """
    objects = f"{bucket_arn}/*"
    statements: list[Statement] = [
        deny_insecure_transport("s3:*", [bucket_arn, objects]),
        {
            "Sid": "DenyDeletingAuditRecords",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(DENIED_OBJECT_ACTIONS),
            "Resource": objects,
        },
        {
            "Sid": "DenyDeletingOrUnlockingTheBucket",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(DENIED_BUCKET_ACTIONS),
            "Resource": bucket_arn,
        },
    ]
    if trail_arn is not None:
        statements += cloudtrail_delivery_statements(
            bucket_arn=bucket_arn, account_id=account_id, trail_arn=trail_arn
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def audit_key_policy(*, partition: str, region: str, account_id: str, trail_arn: str | None) -> Document:
    """The audit KMS key's policy.

    In a key policy ``"Resource": "*"`` means "this key"; it is the only form KMS accepts.
    Services get only what they need, each pinned to this account (and CloudTrail to the trail):
    CloudTrail encrypts log files; EventBridge rules and CloudWatch alarms publish to the
    encrypted alert topic (SNS asks the publisher's principal for the data key); CloudWatch Logs
    may encrypt this account's log groups (functions that audit can keep their logs under the key).
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    same_account = {"StringEquals": {"aws:SourceAccount": account_id}}
    statements: list[Statement] = [
        {
            # Without this statement IAM policies in the account cannot grant use of the key,
            # and the key becomes unmanageable.
            "Sid": "EnableIamPoliciesOfThisAccount",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
    ]
    if trail_arn is not None:
        statements += [
            {
                "Sid": "AllowCloudTrailToEncryptLogs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{partition}:cloudtrail:*:{account_id}:trail/*"
                        )
                    },
                },
            },
            {
                "Sid": "AllowCloudTrailToDescribeKey",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
            },
        ]
    statements += [
        {
            "Sid": "AllowAlertPublishersToUseEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": same_account,
        },
        {
            "Sid": "AllowCloudWatchLogsOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
            ],
            "Resource": "*",
            # StringLike, not ArnLike: encryption context values are strings to KMS. DescribeKey
            # carries no encryption context, so it cannot be granted under this condition.
            "Condition": {
                "StringLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                    )
                }
            },
        },
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def alert_topic_policy(*, topic_arn: str, partition: str, account_id: str) -> Document:
    """The alert topic's policy: this account manages it; its rules and alarms publish; TLS only."""
    same_account = {"StringEquals": {"aws:SourceAccount": account_id}}
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AllowThisAccountToUseTheTopic",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": [
                    "sns:GetTopicAttributes",
                    "sns:ListSubscriptionsByTopic",
                    "sns:Subscribe",
                    "sns:Publish",
                ],
                "Resource": topic_arn,
            },
            {
                "Sid": "AllowEventBridgeRulesOfThisAccountToPublish",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": same_account,
            },
            {
                "Sid": "AllowCloudWatchAlarmsOfThisAccountToPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": same_account,
            },
            deny_insecure_transport("sns:Publish", topic_arn),
        ],
    }


def dead_letter_queue_policy(*, queue_arn: str, rule_arns: list[str]) -> Document:
    """The alert rules' dead-letter queue: only those rules may send to it."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AllowAlertRulesToDeadLetter",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
            }
        ],
    }


def _cloudtrail_pattern(source: str, event_names: tuple[str, ...], **detail: Any) -> Document:
    return {
        "source": [source],
        "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
        "detail": {
            "eventSource": [f"{source.removeprefix('aws.')}.amazonaws.com"],
            "eventName": list(event_names),
            **detail,
        },
    }


def alert_event_patterns(
    *, bucket_name: str, kms_key_arn: str | None, role_prefix: str = EMERGENCY_ROLE_PREFIX
) -> dict[str, Document]:
    """One EventBridge pattern per alert class, keyed by class.

    Failed calls match too (no ``errorCode`` filter): an attempt to tamper is itself the alert.
    ``kms_key_arn`` None leaves out the key rule (the key is not known, so nothing to watch).
    """
    patterns: dict[str, Document] = {
        ALERT_EMERGENCY_ASSUME: _cloudtrail_pattern(
            "aws.sts",
            ASSUME_EVENT_NAMES,
            requestParameters={
                "roleArn": [{"wildcard": pattern} for pattern in emergency_role_arn_patterns(role_prefix)]
            },
        ),
        ALERT_TRAIL_TAMPERING: _cloudtrail_pattern("aws.cloudtrail", TRAIL_TAMPERING_EVENT_NAMES),
        ALERT_BUCKET_TAMPERING: _cloudtrail_pattern(
            "aws.s3", BUCKET_TAMPERING_EVENT_NAMES, requestParameters={"bucketName": [bucket_name]}
        ),
        ALERT_GUARDRAIL_DELETION: _cloudtrail_pattern("aws.bedrock", GUARDRAIL_EVENT_NAMES),
    }
    if kms_key_arn is not None:
        patterns[ALERT_KEY_TAMPERING] = _cloudtrail_pattern(
            "aws.kms", KEY_TAMPERING_EVENT_NAMES, resources={"ARN": [kms_key_arn]}
        )
    return patterns


def audit_writer_statements(
    *, bucket_arn: str, prefix: str, kms_key_arn: str | None, topic_arn: str | None
) -> list[Statement]:
    """The least a function needs to write audit events (and publish them as alerts).

    The one builder of these rights: every function that writes audit events gets them from here
    (``breakglass.policies.kms_rights`` checks the result). ``kms_key_arn`` None means the events
    are not written under a customer managed key, so no key statement is needed.
    """
    statements: list[Statement] = [
        {
            "Sid": "WriteAuditEvents",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{prefix.strip('/')}/*",
        },
    ]
    if kms_key_arn:
        statements.append(
            {
                # GenerateDataKey for SSE-KMS puts and encrypted-topic publishes; Decrypt because SNS
                # asks for it when a publisher sends to a KMS-encrypted topic.
                "Sid": "UseAuditKey",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": kms_key_arn,
            }
        )
    if topic_arn:
        statements.append(
            {"Sid": "PublishAuditAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn}
        )
    return statements
