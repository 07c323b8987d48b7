"""Evaluate generated IAM documents offline with principalmapper's local authorization check.

principalmapper (``principalmapper.querying.query_interface.local_check_authorization_full``)
implements IAM's evaluation order for one principal: explicit denies in identity policies, the
resource policy (a role's trust policy for ``sts:*`` on the role), the permission boundary
(deny, then the allow intersection), then the identity policies' allows. It evaluates
String*/Bool/Date*/Numeric*/Arn*/Null conditions with ``IfExists`` and ``ForAllValues``, and
Action/NotAction wildcards. That covers every document the emergency role uses, including trust
policies for AssumeRole and ``aws:TokenIssueTime``, so no home-made evaluator is needed.

It imports ``Mapping`` and friends from ``collections`` (removed in Python 3.10); the shim below
puts the ``collections.abc`` names back before importing it.

Assuming a role is three authorizations in one call (``sts:AssumeRole`` plus
``sts:SetSourceIdentity`` when a source identity is set plus ``sts:TagSession`` when tags are
passed); :func:`can_assume` checks each against the trust policy, as STS does. Every AssumeRole
call names its session (``RoleSessionName`` is a required parameter), so the context always
carries ``sts:RoleSessionName``: the person's user id by default, as ``assume`` sends it.
"""

from __future__ import annotations

import collections
import collections.abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from principalmapper.common import Node, Policy  # noqa: E402
from principalmapper.querying.query_interface import local_check_authorization_full  # noqa: E402

from breakglass.contracts import iso  # noqa: E402
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG  # noqa: E402

ACCOUNT = "123456789012"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _node(arn: str, policies: Sequence[Mapping[str, Any]], boundary: Mapping[str, Any] | None) -> Node:
    is_role = ":role/" in arn
    return Node(
        arn=arn,
        id_value="AIDA" + arn.rsplit("/", 1)[-1].upper(),
        attached_policies=[Policy(f"{arn}-policy-{i}", f"p{i}", dict(p)) for i, p in enumerate(policies)],
        group_memberships=None,
        trust_policy={} if is_role else None,
        instance_profile=None,
        num_access_keys=0,
        active_password=False,
        is_admin=False,
        permissions_boundary=Policy("boundary", "boundary", dict(boundary)) if boundary is not None else None,
        has_mfa=False,
        tags={},
    )


def assume_context(
    *,
    now: datetime,
    source_identity: str | None,
    request_id: str | None,
    mfa: bool | None = None,
    mfa_age_seconds: int | None = None,
    extra_tags: Mapping[str, str] | None = None,
    role_session_name: str | None = None,
) -> dict[str, Any]:
    """The request context of ``sts:AssumeRole`` as STS builds it (absent keys stay absent).
    ``role_session_name`` defaults to the source identity (what ``assume`` sends), else "session"."""
    session_name = role_session_name or source_identity or "session"
    context: dict[str, Any] = {"aws:CurrentTime": iso(now), "sts:RoleSessionName": session_name}
    if source_identity is not None:
        context["sts:SourceIdentity"] = source_identity
    tags = dict(extra_tags or {})
    if request_id is not None:
        tags[REQUEST_ID_SESSION_TAG] = request_id
    for key, value in tags.items():
        context[f"aws:RequestTag/{key}"] = value
    if tags:
        context["aws:TagKeys"] = list(tags)
    if mfa is not None:
        context["aws:MultiFactorAuthPresent"] = "true" if mfa else "false"
        if mfa and mfa_age_seconds is not None:
            context["aws:MultiFactorAuthAge"] = str(mfa_age_seconds)
    return context


def can_assume(
    trust: Mapping[str, Any], role_arn: str, principal_arn: str, context: Mapping[str, Any]
) -> bool:
    """Would STS let ``principal_arn`` assume ``role_arn`` with this request context?"""
    caller = _node(principal_arn, [ADMIN_POLICY], None)
    actions = ["sts:AssumeRole"]
    if "sts:SourceIdentity" in context:
        actions.append("sts:SetSourceIdentity")
    if "aws:TagKeys" in context:
        actions.append("sts:TagSession")
    return all(
        local_check_authorization_full(caller, action, role_arn, dict(context), dict(trust), ACCOUNT)
        for action in actions
    )


def session_context(
    *,
    now: datetime,
    source_identity: str | None,
    request_id: str | None,
    issued_at: datetime,
    resource_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The context of an API call made with an emergency role session."""
    context: dict[str, Any] = {"aws:CurrentTime": iso(now), "aws:TokenIssueTime": iso(issued_at)}
    if source_identity is not None:
        context["aws:SourceIdentity"] = source_identity
    if request_id is not None:
        context[f"aws:PrincipalTag/{REQUEST_ID_SESSION_TAG}"] = request_id
    for key, value in (resource_tags or {}).items():
        context[f"aws:ResourceTag/{key}"] = value
    return context


def session_allowed(
    role_arn: str,
    action: str,
    resource: str,
    *,
    policies: Sequence[Mapping[str, Any]],
    boundary: Mapping[str, Any] | None,
    context: Mapping[str, Any],
) -> bool:
    """Would a session of ``role_arn`` (its policies and boundary) be allowed ``action`` on ``resource``?"""
    return bool(
        local_check_authorization_full(_node(role_arn, policies, boundary), action, resource, dict(context))
    )
