"""Tagging every child of a component as part of the break-glass system.

The emergency roles' boundary denies anything but reading on resources tagged
``PROTECTED_TAG=true`` (and invoking any protected function). A transformation on the component
tags every taggable descendant, including the ones ``python_function`` creates (functions, their
roles and log groups), so no child is forgotten: an untagged function or role could be rewritten by
an admin-tier session.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from breakglass.policies.naming import PROTECTED_TAG


def protect_children(tags: Mapping[str, str] | None = None) -> pulumi.ResourceTransformation:
    """A transformation giving every taggable resource ``tags`` and ``PROTECTED_TAG=true``.

    A resource's own tags win over ``tags``; neither can unset the system's tag.
    """
    base = dict(tags or {})

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if "tags" not in args.props:
            return None

        def merge(own: Mapping[str, str] | None) -> dict[str, str]:
            return {**base, **(own or {}), PROTECTED_TAG: "true"}

        merged = pulumi.Output.from_input(args.props["tags"] or {}).apply(merge)
        return pulumi.ResourceTransformationResult({**args.props, "tags": merged}, args.opts)

    return transform


__all__ = ["protect_children"]
