"""The one way this package deploys a Lambda: its own role, its own policy, its own log group.

Every function gets a dedicated execution role whose only permissions are the statements the
caller passes (least privilege per function) plus writing to its own log group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from breakglass.lambdas import archive
from breakglass.policies.naming import system_role_name

PYTHON_RUNTIME = "python3.12"
LOG_RETENTION_DAYS = 365


def lambda_code(files: Mapping[str, str] | None = None) -> pulumi.AssetArchive:
    """The deployment package every breakglass function shares (handlers differ by entry point),
    plus ``files`` (archive path -> text): a function's own configuration, fixed per deployment."""
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {
        name: pulumi.FileAsset(str(path)) for name, path in archive.shipped_files().items()
    }
    for name, folder in archive.vendored_packages().items():
        assets[name] = pulumi.FileArchive(str(folder))
    for name, text in (files or {}).items():
        if name in assets or name.startswith("breakglass/"):
            raise ValueError(f"{name} would replace the package's own code in the archive")
        assets[name] = pulumi.StringAsset(text)
    return pulumi.AssetArchive(assets)


LAMBDA_TRUST_POLICY: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass
class DeployedFunction:
    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup


def python_function(
    name: str,
    *,
    handler: str,
    description: str,
    statements: pulumi.Input[Sequence[Mapping[str, Any]]],
    environment: Mapping[str, pulumi.Input[str]] | None = None,
    files: pulumi.Input[Mapping[str, str]] | None = None,
    timeout: int = 60,
    memory_size: int = 256,
    kms_key_arn: pulumi.Input[str] | None = None,
    reserved_concurrent_executions: int | None = None,
    parent: pulumi.Resource,
) -> DeployedFunction:
    """Create ``name`` (function, role, inline policy, log group) as children of ``parent``.

    ``statements`` are the function's own IAM statements; they may contain Outputs (ARNs).
    ``handler`` is a dotted path such as ``breakglass.lambdas.halt.handler``. ``files`` (archive
    path -> text) are added to the function's archive, read by the handler under ``LAMBDA_TASK_ROOT``.
    """
    opts = pulumi.ResourceOptions(parent=parent)
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=f"/aws/lambda/{name}",
        retention_in_days=LOG_RETENTION_DAYS,
        kms_key_id=kms_key_arn,
        opts=opts,
    )
    role = aws.iam.Role(
        f"{name}-role",
        # Named, not auto-named: the emergency roles' boundary protects the system's roles by name
        # (iam:PassRole cannot be conditioned on a role's tags).
        name=system_role_name(name),
        assume_role_policy=json.dumps(LAMBDA_TRUST_POLICY),
        description=f"Execution role of {name}: {description}"[:1000],
        opts=opts,
    )
    log_statement = log_group.arn.apply(
        lambda arn: {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{arn}:*",
        }
    )
    policy_document = pulumi.Output.all(log_statement, statements).apply(
        lambda parts: json.dumps({"Version": "2012-10-17", "Statement": [parts[0], *parts[1]]})
    )
    policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document, opts=opts)
    function = aws.lambda_.Function(
        name,
        name=name,
        description=description[:256],
        runtime=PYTHON_RUNTIME,
        handler=handler,
        code=lambda_code() if files is None else pulumi.Output.from_input(files).apply(lambda_code),
        role=role.arn,
        timeout=timeout,
        memory_size=memory_size,
        reserved_concurrent_executions=reserved_concurrent_executions,
        architectures=["arm64"],
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(environment)) if environment else None,
        kms_key_arn=kms_key_arn,
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[log_group, policy]),
    )
    return DeployedFunction(function=function, role=role, log_group=log_group)
