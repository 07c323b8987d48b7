"""Where sealed alerts fire when the home region is not us-east-1: CloudTrail hands each call to
the bus of the region it was made in, so a call to STS's global endpoint (us-east-1) reaches only
the us-east-1 rules and a call to the home region's STS endpoint only the home rules. Both alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from breakglass.components import AuditTrail, SealedAccess
from breakglass.local import eventbridge
from breakglass.local.deploy import Deployment, deploy
from breakglass.local.emulator import Emulator

HOME = "eu-west-1"
USER = "bg-anna"


def program() -> None:
    import pulumi

    audit = AuditTrail("audit", {"alert_emails": ["security@example.com"]})
    sealed = SealedAccess(
        "sealed",
        {
            "users": [USER],
            "managed_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "alert_topic_arn": audit.alert_topic_arn,
            "alert_emails": ["security@example.com"],
            "audit_bucket_name": audit.bucket_name,
            "audit_kms_key_arn": audit.kms_key_arn,
        },
    )
    pulumi.export("published", sealed.published)


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Emulator, Deployment]]:
    with Emulator(region=HOME, enforce_iam=True) as emulator:
        yield emulator, deploy(program, emulator)


def settings(deployment: Deployment) -> dict[str, Any]:
    return dict(json.loads(deployment.output("published")))


def assume_from(emulator: Emulator, role_arn: str, sts_region: str) -> set[str]:
    """The topics that heard of one sealed assume made through STS in ``sts_region``."""
    iam = emulator.client("iam")
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    before = len(eventbridge.deliveries(emulator.account_id))
    try:
        sts = emulator.client_as(
            "sts",
            {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]},
            region_name=sts_region,
        )
        sts.assume_role(
            RoleArn=role_arn, RoleSessionName=USER, SerialNumber="GAHT12345678", TokenCode="123456"
        )
        emulator.cloudtrail.flush()
    finally:
        iam.delete_access_key(UserName=USER, AccessKeyId=key["AccessKeyId"])
    return {
        d.target_arn
        for d in eventbridge.deliveries(emulator.account_id)[before:]
        if d.outcome == "delivered" and ":sns:" in d.target_arn
    }


def test_the_home_regions_alerts_are_created_in_the_home_region_and_the_others_in_us_east_1(
    deployed: tuple[Emulator, Deployment],
) -> None:
    _, deployment = deployed
    regions = settings(deployment)["regions"]
    assert regions["home"]["region"] == HOME and f":sns:{HOME}:" in regions["home"]["topic_arn"]
    assert regions["global"]["region"] == "us-east-1" and ":sns:us-east-1:" in regions["global"]["topic_arn"]
    assert ":lambda:us-east-1:" in regions["global"]["record_function_arn"]


def test_an_assume_through_the_global_sts_endpoint_alerts_from_us_east_1(
    deployed: tuple[Emulator, Deployment],
) -> None:
    emulator, deployment = deployed
    found = settings(deployment)
    heard = assume_from(emulator, found["role_arn"], "us-east-1")
    assert found["regions"]["global"]["topic_arn"] in heard
    assert found["regions"]["home"]["topic_arn"] not in heard


def test_an_assume_through_the_home_regions_sts_endpoint_alerts_from_home_and_the_alert_topic(
    deployed: tuple[Emulator, Deployment],
) -> None:
    emulator, deployment = deployed
    found = settings(deployment)
    heard = assume_from(emulator, found["role_arn"], HOME)
    assert {found["regions"]["home"]["topic_arn"], found["alert_topic_arn"]} <= heard
    assert found["regions"]["global"]["topic_arn"] not in heard


def test_the_us_east_1_record_function_writes_to_the_home_regions_bucket(
    deployed: tuple[Emulator, Deployment],
) -> None:
    emulator, deployment = deployed
    found = settings(deployment)
    assume_from(emulator, found["role_arn"], "us-east-1")
    records = [
        d
        for d in eventbridge.deliveries(emulator.account_id)
        if d.target_arn == found["regions"]["global"]["record_function_arn"]
    ]
    assert records and records[-1].outcome == "delivered", records[-1].response
    assert records[-1].response["outcome"] == "succeeded"
