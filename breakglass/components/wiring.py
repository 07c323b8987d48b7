"""Small pieces every component wires the same way: where it runs, parts it is given or creates,
and who may invoke its functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pulumi
import pulumi_aws as aws

R = TypeVar("R")


@dataclass(frozen=True)
class Where:
    """The partition, region and account the component is deployed into (provider lookups)."""

    partition: pulumi.Output[str]
    region: pulumi.Output[str]
    account: pulumi.Output[str]

    @classmethod
    def of(cls, parent: pulumi.Resource) -> Where:
        invoke = pulumi.InvokeOutputOptions(parent=parent)
        return cls(
            partition=aws.get_partition_output(opts=invoke).partition,
            region=aws.get_region_output(opts=invoke).region,
            account=aws.get_caller_identity_output(opts=invoke).account_id,
        )


def existing_or_new(
    given: pulumi.Input[str] | None, create: Callable[[], tuple[R, pulumi.Output[str]]]
) -> tuple[R | None, pulumi.Output[str]]:
    """A part the caller may bring (an organization's bucket, key, trail...) or the component creates.

    Returns ``(None, given)`` when it is given, else what ``create`` returns: the resource it
    created and the value other resources refer to it by (its name or ARN).
    """
    if given is not None:
        return None, pulumi.Output.from_input(given)
    return create()


def allow_invoke(
    resource_name: str,
    function: aws.lambda_.Function,
    *,
    principal: str,
    source_arn: pulumi.Input[str],
    parent: pulumi.Resource,
) -> aws.lambda_.Permission:
    """Let one service (``events.amazonaws.com``, ``apigateway.amazonaws.com``) invoke ``function``
    from ``source_arn`` only: a permission without a source would admit any rule or API."""
    return aws.lambda_.Permission(
        resource_name,
        action="lambda:InvokeFunction",
        function=function.name,
        principal=principal,
        source_arn=source_arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def rate(minutes: int) -> str:
    """An EventBridge schedule expression (AWS refuses ``rate(1 minutes)``)."""
    return f"rate({minutes} minute{'s' if minutes > 1 else ''})"


__all__ = ["Where", "allow_invoke", "existing_or_new", "rate"]
