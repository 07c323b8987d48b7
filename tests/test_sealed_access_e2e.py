"""The sealed last resort on the emulator: a sealed user with MFA assumes the sealed role; the
alerts go out in both regions' rules, the record and the mandatory review land in the locked bucket,
security reviews it like any request; the hourly check finds what should not be there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from breakglass.local import eventbridge
from breakglass.local.world import World, open_world
from breakglass.policies.sealed_access import USER_POLICY_NAME

PEOPLE = {"rita": ("responder",), "ann": ("approver",), "bob": ("approver",), "sec": ("security",)}
SEALED = "breakglass-sealed"
HARDWARE_SERIAL = "GAHT12345678"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="sealed", people=PEOPLE) as opened:
        yield opened


def sealed_settings(world: World) -> dict[str, Any]:
    ssm = world.emulator.client("ssm")
    return dict(
        json.loads(ssm.get_parameter(Name=f"/breakglass/{world.name}/sealed_access")["Parameter"]["Value"])
    )


def console_session(world: World, user: str) -> dict[str, str]:
    """What the console holds after a password + MFA sign-in (the emulator has no console: an
    access key stands in for it, removed again by the caller)."""
    key = world.emulator.client("iam").create_access_key(UserName=user)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def assume_sealed(world: World, user: str, *, session_name: str | None = None, mfa: bool = True) -> Any:
    settings = sealed_settings(world)
    sts = world.emulator.client_as("sts", console_session(world, user))
    extra = {"SerialNumber": HARDWARE_SERIAL, "TokenCode": "123456"} if mfa else {}
    return sts.assume_role(RoleArn=settings["role_arn"], RoleSessionName=session_name or user, **extra)


def drop_keys(world: World, user: str) -> None:
    """End the stand-in console session (after CloudTrail recorded its calls: the emulator's
    recorder names a caller by a key that still exists)."""
    world.emulator.cloudtrail.flush()
    iam = world.emulator.client("iam")
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])


def delivered_to(world: World, arn: str, after: int) -> list[eventbridge.Delivery]:
    found = eventbridge.deliveries(world.emulator.account_id)[after:]
    return [d for d in found if d.target_arn == arn and d.outcome == "delivered"]


def run_check(world: World) -> dict[str, Any]:
    name = sealed_settings(world)["check_function"]
    answer = world.emulator.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    return dict(json.loads(answer["Payload"].read()))


def test_a_sealed_assume_alerts_in_both_regions_records_the_use_and_opens_a_mandatory_review(
    world: World,
) -> None:
    settings = sealed_settings(world)
    before = len(eventbridge.deliveries(world.emulator.account_id))
    emails_before = len(world.emulator.sent_emails())
    session = assume_sealed(world, SEALED)
    drop_keys(world, SEALED)
    assert session["AssumedRoleUser"]["Arn"].endswith(f":assumed-role/breakglass-sealed/{SEALED}")
    for where in ("home", "global"):
        topic = settings["regions"][where]["topic_arn"]
        # The us-east-1 topic also hears the stand-in key's CreateAccessKey/DeleteAccessKey.
        (delivery,) = [
            d for d in delivered_to(world, topic, before) if d.input["detail"]["eventName"] == "AssumeRole"
        ]
        assert delivery.input["detail"]["requestParameters"]["roleArn"] == settings["role_arn"]
    assert len(delivered_to(world, settings["alert_topic_arn"], before)) >= 1
    mails = world.emulator.sent_emails()[emails_before:]
    assert any("security@example.com" in m.destinations["ToAddresses"] for m in mails)
    # One email for the use, though both regions' functions saw it (the second finds its record).
    assert len([m for m in mails if "AssumeRole (succeeded)" in str(m.subject)]) == 1

    uses = [e for e in world.audit_events() if e.event_type == "sealed-use" and e.outcome == "succeeded"]
    assert len(uses) == 1 and uses[0].actor == SEALED and uses[0].tier == "sealed"
    request_id = str(uses[0].request_id)
    kinds = [(e.event_type, e.outcome) for e in world.audit_events(request_id)]
    assert ("review", "opened") in kinds
    unreviewed = world.cli("sec", "status", request_id, "--json")
    assert unreviewed.exit_code == 0 and unreviewed.json()["tier"] == "sealed"
    review = world.cli(
        "sec", "audit", "review", request_id, "--verdict", "accepted", "--totp", world.code("sec")
    )
    assert review.exit_code == 0, review.stderr
    assert ("review", "accepted") in [(e.event_type, e.outcome) for e in world.audit_events(request_id)]


def test_the_same_event_seen_by_both_regions_rules_is_recorded_once(world: World) -> None:
    uses = [e for e in world.audit_events() if e.event_type == "sealed-use" and e.outcome == "succeeded"]
    assert len({e.event_id for e in uses}) == len({e.request_id for e in uses})


def test_a_session_named_after_someone_else_is_refused_and_still_alerts(world: World) -> None:
    settings = sealed_settings(world)
    before = len(eventbridge.deliveries(world.emulator.account_id))
    with pytest.raises(ClientError) as refused:
        assume_sealed(world, SEALED, session_name="ann")
    drop_keys(world, SEALED)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    heard = delivered_to(world, settings["regions"]["global"]["topic_arn"], before)
    assert any(d.input["detail"]["eventName"] == "AssumeRole" for d in heard)
    failed = [e for e in world.audit_events() if e.event_type == "sealed-use" and e.outcome == "failed"]
    assert failed and all(e.request_id is None for e in failed)


def test_a_sealed_assume_without_mfa_is_refused(world: World) -> None:
    with pytest.raises(ClientError) as refused:
        assume_sealed(world, SEALED, mfa=False)
    drop_keys(world, SEALED)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_responder_cannot_assume_the_sealed_role(world: World) -> None:
    person = world.people["rita"]
    sts = world.emulator.client_as(
        "sts", {"AccessKeyId": person.access_key_id, "SecretAccessKey": person.secret_access_key}
    )
    with pytest.raises(ClientError):
        sts.assume_role(
            RoleArn=sealed_settings(world)["role_arn"],
            RoleSessionName="rita",
            SerialNumber=HARDWARE_SERIAL,
            TokenCode="123456",
        )


def test_a_console_sign_in_of_a_sealed_user_is_delivered_to_both_topics(world: World) -> None:
    settings = sealed_settings(world)
    before = len(eventbridge.deliveries(world.emulator.account_id))
    user_arn = f"arn:aws:iam::{world.emulator.account_id}:user/{SEALED}"
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": user_arn, "userName": SEALED},
        "eventTime": "2026-12-01T02:13:00Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9",
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"MFAUsed": "Yes", "LoginTo": "https://console.aws.amazon.com/"},
        "eventID": "0b8a3c1e-5d1f-4f36-9a3e-7f1b2c3d4e5f",
        "eventType": "AwsConsoleSignIn",
    }
    from breakglass.local import calls

    with calls.working_for(world.emulator.scope):
        from moto.events.models import events_backends

        events_backends[world.emulator.account_id]["us-east-1"].put_events(
            [
                {
                    "Source": "aws.signin",
                    "DetailType": "AWS Console Sign In via CloudTrail",
                    "Detail": json.dumps(detail),
                }
            ]
        )
    for where in ("home", "global"):
        assert delivered_to(world, settings["regions"][where]["topic_arn"], before)
    signins = [
        e
        for e in world.audit_events()
        if e.event_type == "sealed-use" and e.details["event_name"] == "ConsoleLogin"
    ]
    assert signins and signins[0].request_id is None  # a sign-in grants nothing: no review


def test_the_check_finds_an_access_key_a_password_without_mfa_a_virtual_mfa_and_an_extra_policy(
    world: World,
) -> None:
    iam = world.emulator.client("iam")
    assert run_check(world)["findings"] == []
    iam.create_access_key(UserName=SEALED)
    iam.create_login_profile(UserName=SEALED, Password="Correct-Horse-9")
    extra = iam.create_policy(
        PolicyName="sealed-extra",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_user_policy(UserName=SEALED, PolicyArn=extra)
    virtual = iam.create_virtual_mfa_device(VirtualMFADeviceName=SEALED)["VirtualMFADevice"]["SerialNumber"]
    try:
        found = {f["finding"] for f in run_check(world)["findings"]}
        assert {"access-key", "extra-policy"} <= found and "password-without-mfa" in found
        iam.enable_mfa_device(
            UserName=SEALED, SerialNumber=virtual, AuthenticationCode1="123456", AuthenticationCode2="654321"
        )
        found = {f["finding"] for f in run_check(world)["findings"]}
        assert "virtual-mfa" in found and "password-without-mfa" not in found
    finally:
        drop_keys(world, SEALED)
        iam.delete_login_profile(UserName=SEALED)
        iam.detach_user_policy(UserName=SEALED, PolicyArn=extra)
        if iam.list_mfa_devices(UserName=SEALED)["MFADevices"]:
            iam.deactivate_mfa_device(UserName=SEALED, SerialNumber=virtual)
    assert run_check(world)["findings"] == []
    assert iam.list_user_policies(UserName=SEALED)["PolicyNames"] == [USER_POLICY_NAME]


def test_the_auditor_sees_an_unreviewed_sealed_use_in_the_named_query_and_its_report(
    world: World, tmp_path: Path
) -> None:
    assume_sealed(world, SEALED)
    drop_keys(world, SEALED)
    opened = [e for e in world.audit_events() if e.event_type == "review" and e.tier == "sealed"]
    reviewed = {
        e.request_id for e in world.audit_events() if e.event_type == "review" and e.outcome == "accepted"
    }
    (request_id,) = {e.request_id for e in opened} - reviewed
    copy = tmp_path / "copy"
    assert world.cli("sec", "audit", "sync", str(copy), "--json").exit_code == 0
    listed = world.cli("sec", "audit", "query", "unreviewed_events", "--local", str(copy), "--json")
    assert listed.exit_code == 0, listed.stderr
    assert request_id in listed.stdout
    report = world.cli(
        "sec", "audit", "report", str(request_id), "--local", str(copy), "--out", str(tmp_path)
    )
    assert report.exit_code == 0, report.stderr
    page = next(tmp_path.glob(f"*{request_id}*.html")).read_text()
    assert "sealed-use" in page and SEALED in page
