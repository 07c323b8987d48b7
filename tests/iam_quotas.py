"""The IAM quotas and preconditions AWS enforces and moto does not, around a moto IAM client.

moto accepts a trust policy of any size, inline policies beyond 10,240 characters together, an
eleventh managed policy on a role and deleting a managed policy that is still attached or still has
old versions. AWS refuses each. Grant storage is designed around exactly those limits, so tests and
the capacity benchmark run it against this wrapper: a write AWS would refuse raises the
``ClientError`` AWS would raise (same error code), and nothing is written.

Sizes are counted as IAM counts them: the JSON without insignificant whitespace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from breakglass.policies.documents import policy_size

TRUST_POLICY_MAX_CHARS = 2048
INLINE_POLICIES_MAX_CHARS = 10240
MANAGED_POLICY_MAX_CHARS = 6144
MANAGED_POLICIES_PER_ROLE = 10
POLICY_VERSIONS_MAX = 5


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        text = value if value.lstrip().startswith("{") else unquote(value)
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    return dict(value)


class QuotaIam:
    """A moto IAM client that refuses what AWS refuses (see the module docstring); it also counts
    every call by operation name, so a test can say how many writes an operation made."""

    def __init__(
        self,
        iam: Any,
        *,
        trust_policy_max_chars: int = TRUST_POLICY_MAX_CHARS,
        managed_policies_per_role: int = MANAGED_POLICIES_PER_ROLE,
    ) -> None:
        self._iam = iam
        self.trust_policy_max_chars = trust_policy_max_chars
        self.managed_policies_per_role = managed_policies_per_role
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._iam, name)
        if callable(attribute):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                return attribute(*args, **kwargs)

            return counted
        return attribute

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def update_assume_role_policy(self, *, RoleName: str, PolicyDocument: str) -> Any:
        self._count("update_assume_role_policy")
        size = policy_size(_document(PolicyDocument))
        if size > self.trust_policy_max_chars:
            raise _error(
                "LimitExceeded",
                f"Cannot exceed quota for ACLSizePerRole: {self.trust_policy_max_chars}",
                "UpdateAssumeRolePolicy",
            )
        return self._iam.update_assume_role_policy(RoleName=RoleName, PolicyDocument=PolicyDocument)

    def put_role_policy(self, *, RoleName: str, PolicyName: str, PolicyDocument: str) -> Any:
        self._count("put_role_policy")
        total = policy_size(_document(PolicyDocument))
        for name in self._iam.list_role_policies(RoleName=RoleName)["PolicyNames"]:
            if name != PolicyName:
                other = self._iam.get_role_policy(RoleName=RoleName, PolicyName=name)["PolicyDocument"]
                total += policy_size(_document(other))
        if total > INLINE_POLICIES_MAX_CHARS:
            raise _error(
                "LimitExceeded",
                f"Maximum policy size of {INLINE_POLICIES_MAX_CHARS} bytes exceeded for role {RoleName}",
                "PutRolePolicy",
            )
        return self._iam.put_role_policy(
            RoleName=RoleName, PolicyName=PolicyName, PolicyDocument=PolicyDocument
        )

    def _check_managed_size(self, document: str, operation: str) -> None:
        if policy_size(_document(document)) > MANAGED_POLICY_MAX_CHARS:
            raise _error(
                "LimitExceeded",
                f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_MAX_CHARS}",
                operation,
            )

    def create_policy(self, **kwargs: Any) -> Any:
        self._count("create_policy")
        self._check_managed_size(kwargs["PolicyDocument"], "CreatePolicy")
        return self._iam.create_policy(**kwargs)

    def create_policy_version(self, **kwargs: Any) -> Any:
        self._count("create_policy_version")
        self._check_managed_size(kwargs["PolicyDocument"], "CreatePolicyVersion")
        versions = self._iam.list_policy_versions(PolicyArn=kwargs["PolicyArn"])["Versions"]
        if len(versions) >= POLICY_VERSIONS_MAX:
            raise _error(
                "LimitExceeded",
                "A managed policy can have up to 5 versions. Before you create a new version, you must "
                "delete an existing version.",
                "CreatePolicyVersion",
            )
        return self._iam.create_policy_version(**kwargs)

    def attach_role_policy(self, *, RoleName: str, PolicyArn: str) -> Any:
        self._count("attach_role_policy")
        attached = self.attached(RoleName)
        if PolicyArn not in attached and len(attached) >= self.managed_policies_per_role:
            raise _error(
                "LimitExceeded",
                f"Cannot exceed quota for PoliciesPerRole: {self.managed_policies_per_role}",
                "AttachRolePolicy",
            )
        return self._iam.attach_role_policy(RoleName=RoleName, PolicyArn=PolicyArn)

    def delete_policy(self, *, PolicyArn: str) -> Any:
        self._count("delete_policy")
        policy = self._iam.get_policy(PolicyArn=PolicyArn)["Policy"]
        if policy.get("AttachmentCount", 0):
            raise _error("DeleteConflict", "Cannot delete a policy attached to entities.", "DeletePolicy")
        versions = self._iam.list_policy_versions(PolicyArn=PolicyArn)["Versions"]
        if any(not v["IsDefaultVersion"] for v in versions):
            raise _error(
                "DeleteConflict",
                "This policy has more than one version. Before you delete a policy, "
                "you must delete the policy's versions.",
                "DeletePolicy",
            )
        return self._iam.delete_policy(PolicyArn=PolicyArn)

    # --- reading helpers for tests -------------------------------------------------------------

    def attached(self, role_name: str) -> list[str]:
        page = self._iam.list_attached_role_policies(RoleName=role_name)
        return [p["PolicyArn"] for p in page["AttachedPolicies"]]

    def managed_document(self, arn: str) -> Mapping[str, Any]:
        version = self._iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        return _document(
            self._iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        )
