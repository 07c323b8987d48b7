"""The sealed check (hourly): are the sealed users and role still exactly what the stack made them?

For each sealed user, a finding when it has any access key, a console password without an MFA
device, a virtual (non-hardware) MFA device, more than one MFA device (a second key is a way in
outside the safe), any policy but its own assume-only one (attached, inline, or through a group),
that policy saying anything but assuming the role, or when it no longer exists. For the role, a
finding when its trust, its attached or inline policies or its longest session differ from what
the stack made (documents compared normalised, never by name). Each finding is logged and counted
(``SealedAccessFindings`` by reason, EMF like every other function); the run also puts
``SealedCheckRuns`` (1) and ``SealedCheckFindings`` (the total) with ``PutMetricData`` so the
alarms can see both a finding and a check that stopped running, and so
``breakglass drill --against`` can tell when it last ran and what it found.

MFA devices: virtual devices have serials ``arn:aws:iam::ACCOUNT:mfa/NAME``; hardware TOTP tokens
have the token's serial number and FIDO security keys ``arn:aws:iam::ACCOUNT:u2f/...``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.exceptions import ClientError

from breakglass.contracts import ENV_SEALED_ROLE_ARN, ENV_SEALED_ROLE_BASELINE, ENV_SEALED_USERS, utc_now
from breakglass.lambdas.runtime import (
    DIMENSION_FUNCTION,
    METRIC_SEALED_ACCESS_FINDINGS,
    METRICS_NAMESPACE,
    count,
    function_name,
    get_logger,
    log_fields,
)
from breakglass.lambdas.sealed.use import env_json_list
from breakglass.policies.sealed_access import (
    FINDING_ACCESS_KEY,
    FINDING_EXTRA_POLICY,
    FINDING_GROUP,
    FINDING_MISSING_USER,
    FINDING_PASSWORD_WITHOUT_MFA,
    FINDING_ROLE_CHANGED,
    FINDING_SECOND_MFA,
    FINDING_USER_POLICY_CHANGED,
    FINDING_VIRTUAL_MFA,
    USER_POLICY_NAME,
    same_policy,
    trust_policy,
    user_policy,
)

log = get_logger(__name__)
METRIC_FINDINGS: Final = METRIC_SEALED_ACCESS_FINDINGS  # EMF, per finding, Reason = the finding
METRIC_CHECK_RUNS: Final = "SealedCheckRuns"  # PutMetricData, 1 per run
METRIC_CHECK_FINDINGS: Final = "SealedCheckFindings"  # PutMetricData, the run's total


@dataclass(frozen=True)
class RoleBaseline:
    """What the stack made the sealed role: the check recomputes its documents from this."""

    role_arn: str
    managed_policy_arns: tuple[str, ...]
    max_session_seconds: int
    max_mfa_age_seconds: int
    regions: tuple[str, ...]

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RoleBaseline:
        role_arn = environ.get(ENV_SEALED_ROLE_ARN) or ""
        raw = json.loads(environ.get(ENV_SEALED_ROLE_BASELINE) or "null")
        if not role_arn or not isinstance(raw, dict):
            raise RuntimeError(f"{ENV_SEALED_ROLE_ARN} and {ENV_SEALED_ROLE_BASELINE} are required")
        return cls(
            role_arn=role_arn,
            managed_policy_arns=tuple(raw["managed_policy_arns"]),
            max_session_seconds=int(raw["max_session_seconds"]),
            max_mfa_age_seconds=int(raw["max_mfa_age_seconds"]),
            regions=tuple(raw["regions"]),
        )


@dataclass(frozen=True)
class Finding:
    user: str
    finding: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"user": self.user, "finding": self.finding, "detail": self.detail}


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchEntity", "NoSuchEntityException")


def check_user(iam: Any, user: str, role_arn: str) -> list[Finding]:
    """Every finding for one sealed user (read-only calls on that user only)."""
    try:
        iam.get_user(UserName=user)
    except ClientError as exc:
        if _not_found(exc):
            return [Finding(user, FINDING_MISSING_USER, "the user does not exist")]
        raise
    found: list[Finding] = []
    keys = iam.list_access_keys(UserName=user).get("AccessKeyMetadata", [])
    found += [
        Finding(user, FINDING_ACCESS_KEY, f"access key {k.get('AccessKeyId')} ({k.get('Status')})")
        for k in keys
    ]
    devices = [
        str(d.get("SerialNumber", "")) for d in iam.list_mfa_devices(UserName=user).get("MFADevices", [])
    ]
    try:
        iam.get_login_profile(UserName=user)
        has_password = True
    except ClientError as exc:
        if not _not_found(exc):
            raise
        has_password = False
    if has_password and not devices:
        found.append(Finding(user, FINDING_PASSWORD_WITHOUT_MFA, "a console password and no MFA device"))
    found += [
        Finding(user, FINDING_VIRTUAL_MFA, f"virtual MFA device {serial}: use a hardware key")
        for serial in devices
        if ":mfa/" in serial
    ]
    if len(devices) > 1:
        found.append(
            Finding(
                user,
                FINDING_SECOND_MFA,
                f"{len(devices)} MFA devices ({', '.join(devices)}): one key, in the safe",
            )
        )
    attached = iam.list_attached_user_policies(UserName=user).get("AttachedPolicies", [])
    found += [Finding(user, FINDING_EXTRA_POLICY, f"attached {p.get('PolicyArn')}") for p in attached]
    inline = iam.list_user_policies(UserName=user).get("PolicyNames", [])
    found += [
        Finding(user, FINDING_EXTRA_POLICY, f"inline {name}") for name in inline if name != USER_POLICY_NAME
    ]
    if USER_POLICY_NAME in inline:
        document = iam.get_user_policy(UserName=user, PolicyName=USER_POLICY_NAME)["PolicyDocument"]
        if not same_policy(document, user_policy(role_arn)):
            found.append(
                Finding(
                    user,
                    FINDING_USER_POLICY_CHANGED,
                    f"inline {USER_POLICY_NAME} grants more than assuming the role",
                )
            )
    groups = iam.list_groups_for_user(UserName=user).get("Groups", [])
    found += [Finding(user, FINDING_GROUP, f"member of group {g.get('GroupName')}") for g in groups]
    return found


def check_role(iam: Any, baseline: RoleBaseline, users: Sequence[str]) -> list[Finding]:
    """Every finding for the sealed role (read-only calls on that role only); reported under
    ``role/NAME``. The expected trust names the users' current ARNs (a missing user is its own
    finding)."""
    name, subject = baseline.role_name, f"role/{baseline.role_name}"
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if _not_found(exc):
            return [Finding(subject, FINDING_ROLE_CHANGED, "the sealed role does not exist")]
        raise
    found: list[Finding] = []
    arns: dict[str, str] = {}
    for user in users:
        try:
            arns[user] = str(iam.get_user(UserName=user)["User"]["Arn"])
        except ClientError as exc:
            if not _not_found(exc):
                raise
    expected = trust_policy(arns, max_mfa_age_seconds=baseline.max_mfa_age_seconds, regions=baseline.regions)
    if arns and not same_policy(role.get("AssumeRolePolicyDocument"), expected):
        found.append(
            Finding(subject, FINDING_ROLE_CHANGED, "its trust differs from the sealed users' statements")
        )
    session = int(role.get("MaxSessionDuration") or 0)
    if session != baseline.max_session_seconds:
        found.append(
            Finding(
                subject,
                FINDING_ROLE_CHANGED,
                f"max session {session} s, expected {baseline.max_session_seconds} s",
            )
        )
    attached = {
        str(p.get("PolicyArn"))
        for p in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", [])
    }
    if attached != set(baseline.managed_policy_arns):
        found.append(
            Finding(
                subject,
                FINDING_ROLE_CHANGED,
                f"attached {sorted(attached)}, expected {sorted(baseline.managed_policy_arns)}",
            )
        )
    found += [
        Finding(subject, FINDING_ROLE_CHANGED, f"inline {p}")
        for p in iam.list_role_policies(RoleName=name).get("PolicyNames", [])
    ]
    return found


def run_check(
    iam: Any, cloudwatch: Any, users: Sequence[str], baseline: RoleBaseline, *, function: str
) -> dict[str, Any]:
    """Check every user and the role, log and count each finding, put the run's metrics; return
    the findings."""
    findings = [f for user in users for f in check_user(iam, user, baseline.role_arn)]
    findings += check_role(iam, baseline, users)
    for f in findings:
        count(
            METRIC_FINDINGS,
            f.finding,
            "sealed access finding",
            level=logging.ERROR,
            user=f.user,
            finding=f.finding,
            detail=f.detail,
        )
    dimensions = [{"Name": DIMENSION_FUNCTION, "Value": function}]
    moment = utc_now()
    cloudwatch.put_metric_data(
        Namespace=METRICS_NAMESPACE,
        MetricData=[
            {"MetricName": METRIC_CHECK_RUNS, "Dimensions": dimensions, "Value": 1, "Timestamp": moment},
            {
                "MetricName": METRIC_CHECK_FINDINGS,
                "Dimensions": dimensions,
                "Value": len(findings),
                "Timestamp": moment,
            },
        ],
    )
    result = {"users": list(users), "findings": [f.as_json() for f in findings]}
    log.info("sealed check", extra=log_fields(users=len(users), findings=len(findings)))
    return result


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    users = env_json_list(ENV_SEALED_USERS, os.environ)
    baseline = RoleBaseline.from_env(os.environ)
    return run_check(
        boto3.client("iam"), boto3.client("cloudwatch"), users, baseline, function=function_name()
    )


__all__: Sequence[str] = [
    "METRIC_CHECK_FINDINGS",
    "METRIC_CHECK_RUNS",
    "METRIC_FINDINGS",
    "RoleBaseline",
    "check_role",
    "check_user",
    "run_check",
]
