"""A break-glass stack with one guardrail broken on purpose, chosen by the stack config ``flaw``.

``breakglass synth tests/bad_programs --check --config flaw=<name>`` must fail naming the rule that
flaw breaks (tests/test_synth_check.py); ``flaw=none`` and ``flaw=chaining-with-opt-in`` must pass.
Each flaw is what a hurried edit of a real stack could do: a transformation over the components'
resources, or a component argument.
"""

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
    else:
        return None
    return pulumi.ResourceTransformationResult(props, args.opts)


pulumi.runtime.register_stack_transformation(transformation)

tiers: dict[str, dict[str, Any]] = {}
if flaw == "admin-12h-sessions":
    tiers = {"admin": {"max_session_duration": 12 * 3600}}
elif flaw == "chaining-with-opt-in":
    tiers = {"admin": {"role_chaining_opt_in": [OTHER_ROLE]}}

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
