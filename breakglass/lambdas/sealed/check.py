"""The sealed check (hourly): are the sealed users still exactly what the stack made them?

For each sealed user, a finding when it has any access key, a console password without an MFA
device, a virtual (non-hardware) MFA device, any policy but its own assume-only one (attached,
inline, or through a group), or when it no longer exists. Each finding is logged and counted
(``SealedAccessFindings`` by reason, EMF like every other function); the run also puts
``SealedCheckRuns`` (1) and ``SealedCheckFindings`` (the total) with ``PutMetricData`` so the
alarms can see both a finding and a check that stopped running, and so
``breakglass drill --against`` can tell when it last ran and what it found.

MFA devices: virtual devices have serials ``arn:aws:iam::ACCOUNT:mfa/NAME``; hardware TOTP tokens
have the token's serial number and FIDO security keys ``arn:aws:iam::ACCOUNT:u2f/...``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.exceptions import ClientError

from breakglass.contracts import ENV_SEALED_USERS, utc_now
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
    FINDING_VIRTUAL_MFA,
    USER_POLICY_NAME,
)

log = get_logger(__name__)
METRIC_FINDINGS: Final = METRIC_SEALED_ACCESS_FINDINGS  # EMF, per finding, Reason = the finding
METRIC_CHECK_RUNS: Final = "SealedCheckRuns"  # PutMetricData, 1 per run
METRIC_CHECK_FINDINGS: Final = "SealedCheckFindings"  # PutMetricData, the run's total


@dataclass(frozen=True)
class Finding:
    user: str
    finding: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"user": self.user, "finding": self.finding, "detail": self.detail}


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchEntity", "NoSuchEntityException")


def check_user(iam: Any, user: str) -> list[Finding]:
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
    attached = iam.list_attached_user_policies(UserName=user).get("AttachedPolicies", [])
    found += [Finding(user, FINDING_EXTRA_POLICY, f"attached {p.get('PolicyArn')}") for p in attached]
    inline = iam.list_user_policies(UserName=user).get("PolicyNames", [])
    found += [
        Finding(user, FINDING_EXTRA_POLICY, f"inline {name}") for name in inline if name != USER_POLICY_NAME
    ]
    groups = iam.list_groups_for_user(UserName=user).get("Groups", [])
    found += [Finding(user, FINDING_GROUP, f"member of group {g.get('GroupName')}") for g in groups]
    return found


def run_check(iam: Any, cloudwatch: Any, users: Sequence[str], *, function: str) -> dict[str, Any]:
    """Check every user, log and count each finding, put the run's metrics; return the findings."""
    findings = [f for user in users for f in check_user(iam, user)]
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
    return run_check(boto3.client("iam"), boto3.client("cloudwatch"), users, function=function_name())


__all__: Sequence[str] = [
    "METRIC_CHECK_FINDINGS",
    "METRIC_CHECK_RUNS",
    "METRIC_FINDINGS",
    "check_user",
    "run_check",
]
