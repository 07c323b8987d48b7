"""Tagging every child of a component as part of the break-glass system.

The emergency roles' boundary denies anything but reading on resources tagged
``PROTECTED_TAG=true``, and invoking any of them unless they are also tagged
``RESPONDER_INVOCABLE_TAG=true``. A transformation on the component tags every taggable
descendant, including the ones ``python_function`` creates (functions, their roles and log
groups), so no child is forgotten: an untagged function or role could be rewritten by an
admin-tier session.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pulumi

from breakglass.policies.naming import PROTECTED_TAG, RESPONDER_INVOCABLE_TAG

LAMBDA_FUNCTION = "aws:lambda/function:Function"


def protect_children(
    tags: Mapping[str, str] | None = None, *, responder_invocable: Collection[str] = ()
) -> pulumi.ResourceTransformation:
    """A transformation giving every taggable resource ``tags`` and ``PROTECTED_TAG=true``.

    Lambda functions named (Pulumi resource name) in ``responder_invocable`` also get
    ``RESPONDER_INVOCABLE_TAG=true``: the only protected functions an emergency session may
    invoke. A resource's own tags win over ``tags``; neither can unset the system's tags, and
    nothing outside ``responder_invocable`` can claim to be invocable.
    """
    base = dict(tags or {})
    invocable = frozenset(responder_invocable)

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if "tags" not in args.props:
            return None
        is_invocable = args.type_ == LAMBDA_FUNCTION and args.name in invocable
        system = {PROTECTED_TAG: "true"}
        if is_invocable:
            system[RESPONDER_INVOCABLE_TAG] = "true"

        def merge(own: Mapping[str, str] | None) -> dict[str, str]:
            merged = {**base, **(own or {}), **system}
            if not is_invocable:
                merged.pop(RESPONDER_INVOCABLE_TAG, None)
            return merged

        merged = pulumi.Output.from_input(args.props["tags"] or {}).apply(merge)
        return pulumi.ResourceTransformationResult({**args.props, "tags": merged}, args.opts)

    return transform


__all__ = ["protect_children"]
