"""A break-glass stack with one guardrail broken on purpose, chosen by the stack config ``flaw``.

``breakglass synth tests/bad_programs --check --config flaw=<name>`` must fail naming the rule that
flaw breaks (tests/test_synth_check.py); ``flaw=none`` and ``flaw=chaining-with-opt-in`` must pass.
Each flaw is what a hurried edit of a real stack could do: a transformation over the components'
resources, or a component argument. The flaws after ``chaining-without-opt-in`` are an insider's
attempts to get past the gate (tests/test_policy_pack_attacks.py): a resource added beside the
component, or an edit shaped to dodge a rule.
"""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from breakglass import BreakGlass

ACCOUNT = "123456789012"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ops-admin"
flaw = pulumi.Config().get("flaw") or "none"


def edit_document(value: Any, edit: Callable[[dict[str, Any]], None]) -> pulumi.Output[str]:
    def apply(text: str) -> str:
        document = json.loads(text)
        edit(document)
        return json.dumps(document)

    return pulumi.Output.from_input(value).apply(apply)


def open_trust(document: dict[str, Any]) -> None:
    document["Statement"] = [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]


def allow_everything(document: dict[str, Any]) -> None:
    document["Statement"].append({"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"})


def drop_audit_key(document: dict[str, Any]) -> None:
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "UseAuditKey"]


def chain_anywhere_but(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        if statement.get("Sid") == "DenyRoleChaining":
            statement.pop("Resource", None)
            statement["NotResource"] = [OTHER_ROLE]


def hollow_boundary(document: dict[str, Any]) -> None:
    # Keeps the one deny the chaining rule looks for and drops every other guard.
    document["Statement"] = [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "DenyRoleChaining", "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"},
    ]


def allow_unlocking(document: dict[str, Any]) -> None:
    document["Statement"].append(
        {
            "Sid": "OpsMayFixTheLock",
            "Effect": "Allow",
            "Principal": {"AWS": OTHER_ROLE},
            "Action": ["s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration"],
            "Resource": "arn:aws:s3:::breakglass-audit-bucket",
        }
    )


def unknown_until_deploy(value: str) -> pulumi.Output[str]:
    # What a value read from elsewhere at deploy time looks like offline: not known.
    loop = asyncio.get_event_loop()
    text, known = loop.create_future(), loop.create_future()
    text.set_result(value)
    known.set_result(False)
    return pulumi.Output(set(), text, known)


def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    props = dict(args.props)
    if flaw == "open-trust" and args.name == "breakglass-admin-role":
        props["assume_role_policy"] = edit_document(props["assume_role_policy"], open_trust)
    elif (
        flaw == "governance-lock"
        and args.type_ == "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
    ):
        props["rule"] = aws.s3.BucketObjectLockConfigurationRuleArgs(
            default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                mode="GOVERNANCE", days=365
            )
        )
    elif flaw == "star-lambda-role" and args.name == "breakglass-deny-policy":
        props["policy"] = edit_document(props["policy"], allow_everything)
    elif flaw == "missing-kms-rights" and args.name == "breakglass-deny-policy":
        props["policy"] = edit_document(props["policy"], drop_audit_key)
    elif flaw == "get-approval-route" and args.name == "breakglass-approvals-route-post":
        props["route_key"] = "GET /requests/{id}/approve"
    elif flaw == "chaining-without-opt-in" and args.name == "breakglass-admin-boundary":
        props["policy"] = edit_document(props["policy"], chain_anywhere_but)
    elif flaw == "hollow-boundary" and args.name == "breakglass-admin-boundary":
        props["policy"] = edit_document(props["policy"], hollow_boundary)
    elif flaw == "trail-read-only" and args.type_ == "aws:cloudtrail/trail:Trail":
        props["event_selectors"] = [
            aws.cloudtrail.TrailEventSelectorArgs(include_management_events=True, read_write_type="ReadOnly")
        ]
    elif flaw == "lifecycle-expires-audit" and args.name == "breakglass-audit-lifecycle":
        props["rules"] = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="tidy-up", status="Enabled", expiration={"days": 30}, filter={"prefix": ""}
            )
        ]
    elif flaw == "bucket-policy-unlock" and args.name == "breakglass-audit-bucket-policy":
        props["policy"] = edit_document(props["policy"], allow_unlocking)
    elif flaw == "unknown-trust" and args.name == "breakglass-admin-role":
        props["assume_role_policy"] = pulumi.Output.from_input(props["assume_role_policy"]).apply(
            unknown_until_deploy
        )
    elif flaw == "session-limit-text" and args.name == "breakglass-admin-role":
        props["max_session_duration"] = "43200"
    else:
        return None
    return pulumi.ResourceTransformationResult(props, args.opts)


pulumi.runtime.register_stack_transformation(transformation)

tiers: dict[str, dict[str, Any]] = {}
if flaw == "admin-12h-sessions":
    tiers = {"admin": {"max_session_duration": 12 * 3600}}
elif flaw == "chaining-with-opt-in":
    tiers = {"admin": {"role_chaining_opt_in": [OTHER_ROLE]}}

if flaw == "exclusive-attachments":
    aws.iam.RolePolicyAttachmentsExclusive(
        "breakglass-admin-exclusive",
        role_name="breakglass-emergency-admin",
        policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    )
elif flaw == "public-function-url":
    aws.lambda_.FunctionUrl(
        "breakglass-access-api-url", function_name="breakglass-access-api", authorization_type="NONE"
    )

BreakGlass(
    "breakglass",
    {
        "deployment": "flawed",
        "requesters": [f"arn:aws:iam::{ACCOUNT}:role/oncall-ml"],
        "approvers": ["ann", "bob", "cat"],
        "security_admins": [f"arn:aws:iam::{ACCOUNT}:role/cloud-admin"],
        "sender_email": "breakglass@example.com",
        "alert_emails": ["security@example.com"],
        "tiers": tiers,
    },
)
