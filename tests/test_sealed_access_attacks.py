"""Attacks on the sealed last resort (SealedAccess), each written as the property it should have.

Every test here is an attack on the quickstart in the emulator (IAM enforced) from the security
review, each naming the finding it proves in its comment or docstring; each was a strict xfail
until its fix, and now states the property the fix holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from breakglass.local import eventbridge
from breakglass.local.world import World, open_world
from breakglass.policies.sealed_access import USER_POLICY_NAME

# Three people who may run the drill: a drill that stops before its sealed step leaves that
# person's drill grant live, so a retry is made by the next one.
DRILLERS = ("rita", "sam", "tess")
PEOPLE = {
    **{person: ("responder", "security") for person in DRILLERS},
    "ann": ("approver",),
    "bob": ("approver",),
}
SEALED = "breakglass-sealed"
HARDWARE_SERIAL = "GAHT12345678"
# A region with STS's regional endpoint active by default that is neither home nor us-east-1.
THIRD_REGION = "eu-central-1"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="attacks", people=PEOPLE) as opened:
        yield opened


def sealed_settings(world: World) -> dict[str, Any]:
    ssm = world.emulator.client("ssm")
    return dict(
        json.loads(ssm.get_parameter(Name=f"/breakglass/{world.name}/sealed_access")["Parameter"]["Value"])
    )


def sealed_topics(world: World) -> set[str]:
    settings = sealed_settings(world)
    return {r["topic_arn"] for r in settings["regions"].values()} | {settings["alert_topic_arn"]}


def heard_of(world: World, before: int, event_name: str) -> set[str]:
    """The sealed topics (and the alert topic) that heard of an ``event_name`` since ``before``."""
    return {
        d.target_arn
        for d in deliveries_since(world, before)
        if d.target_arn in sealed_topics(world)
        and isinstance(d.input, dict)
        and (d.input.get("detail") or {}).get("eventName") == event_name
    }


def deliveries_since(world: World, before: int) -> list[eventbridge.Delivery]:
    return [d for d in eventbridge.deliveries(world.emulator.account_id)[before:] if d.outcome == "delivered"]


def run_check(world: World) -> dict[str, Any]:
    name = sealed_settings(world)["check_function"]
    answer = world.emulator.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    return dict(json.loads(answer["Payload"].read()))


def sealed_step(world: World) -> tuple[int, dict[str, Any], str]:
    """The drill's exit code, its sealed step and its stderr. The drill is retried (by the next
    person) when it stops before the sealed step: its earlier steps are not what is tested here."""
    stderr = ""
    for person in DRILLERS:
        code, document, stderr = rehearse(world, person)
        step = next((s for s in document.get("steps", []) if s["name"] == "sealed"), None)
        if step is not None:
            return code, step, stderr
    raise RuntimeError(f"the drill never reached its sealed step: {stderr}")


def rehearse(world: World, person: str) -> tuple[int, dict[str, Any], str]:
    mfa = ["--mfa-serial", f"arn:aws:iam::{world.emulator.account_id}:mfa/{person}", "--mfa-code", "123456"]
    codes = f"{world.code(person)}\n{world.code(person)}\n"
    with world.cloudtrail_delivery():
        run = world.cli(
            person,
            "drill",
            "--against",
            world.name,
            "--cloudtrail-wait",
            "30",
            "--poll-seconds",
            "0.2",
            *mfa,
            "--json",
            input=codes,
        )
    document = json.loads(run.stdout) if run.stdout.strip() else {}
    return run.exit_code, document, run.stderr


# -- finding 1: an assume through a third region's STS endpoint is silent -------------------------------


def test_a_sealed_assume_through_an_sts_endpoint_no_sealed_rule_hears_is_refused(world: World) -> None:
    """Finding 1: CloudTrail delivers a regional STS call to that region's bus only, and the sealed
    rules listen in home and us-east-1: the trust admits an assume through those regions only."""
    settings = sealed_settings(world)
    iam = world.emulator.client("iam")
    # The same stand-in for the console session as the e2e tests (password + hardware MFA).
    key = iam.create_access_key(UserName=SEALED)["AccessKey"]
    world.emulator.cloudtrail.flush()
    before = len(eventbridge.deliveries(world.emulator.account_id))
    try:
        sts = world.emulator.client_as(
            "sts",
            {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]},
            region_name=THIRD_REGION,
        )
        with pytest.raises(ClientError) as refused:
            sts.assume_role(
                RoleArn=settings["role_arn"],
                RoleSessionName=SEALED,
                SerialNumber=HARDWARE_SERIAL,
                TokenCode="123456",
            )
        world.emulator.cloudtrail.flush()
    finally:
        iam.delete_access_key(UserName=SEALED, AccessKeyId=key["AccessKeyId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # No session, so no review to open; the refusal itself stays unheard (an accepted risk).
    assert not heard_of(world, before, "AssumeRole")


# -- finding 4: the drill's sealed step checks rules by state and target ARN only ----------------------


def test_the_sealed_step_fails_when_a_rules_pattern_no_longer_matches_the_sealed_role(world: World) -> None:
    run_check(world)  # the step also wants a recent run that found nothing (before findings 2 and 3)
    events = world.emulator.client("events")
    name = "breakglass-sealed-assume-home"
    rule = events.describe_rule(Name=name)
    pattern = json.loads(rule["EventPattern"])
    neutered = {
        **pattern,
        "detail": {
            **pattern["detail"],
            "requestParameters": {"roleArn": ["arn:aws:iam::000000000000:role/none"]},
        },
    }
    events.put_rule(Name=name, EventPattern=json.dumps(neutered), State="ENABLED")
    try:
        code, sealed, stderr = sealed_step(world)
    finally:
        events.put_rule(Name=name, EventPattern=rule["EventPattern"], State="ENABLED")
    assert code == 1 and not sealed["ok"], (code, sealed, stderr)


# -- finding 5: the drill counts subscriptions, not whether they deliver --------------------------------


def test_the_sealed_step_fails_when_the_email_subscriptions_filter_out_every_alert(world: World) -> None:
    run_check(world)
    settings = sealed_settings(world)
    sns = world.emulator.client("sns")
    filtered = []
    for region in settings["regions"].values():
        for sub in sns.list_subscriptions_by_topic(TopicArn=region["topic_arn"])["Subscriptions"]:
            if sub["Protocol"] == "email" and sub["SubscriptionArn"].startswith("arn:"):
                sns.set_subscription_attributes(
                    SubscriptionArn=sub["SubscriptionArn"],
                    AttributeName="FilterPolicy",
                    AttributeValue=json.dumps({"never": ["sent"]}),
                )
                filtered.append(sub["SubscriptionArn"])
    assert filtered, "no confirmed subscription to filter"
    try:
        code, sealed, stderr = sealed_step(world)
    finally:
        for arn in filtered:
            sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue="{}"
            )
    assert code == 1 and not sealed["ok"], (code, sealed, stderr)


# -- finding 2: the check knows the assume-only policy by name only -----------------------------------


def test_the_check_finds_the_assume_only_policy_rewritten_to_grant_more(world: World) -> None:
    iam = world.emulator.client("iam")
    original = iam.get_user_policy(UserName=SEALED, PolicyName=USER_POLICY_NAME)["PolicyDocument"]
    original = original if isinstance(original, str) else json.dumps(original)
    backdoor = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=SEALED, PolicyName=USER_POLICY_NAME, PolicyDocument=json.dumps(backdoor))
    try:
        found = run_check(world)
    finally:
        iam.put_user_policy(UserName=SEALED, PolicyName=USER_POLICY_NAME, PolicyDocument=original)
    assert [f for f in found["findings"] if f["user"] == SEALED], found


# -- finding 3: changes to the sealed users alert nobody; the hourly check misses a short-lived key ----


def test_an_access_key_created_and_deleted_between_checks_on_a_sealed_user_alerts(world: World) -> None:
    iam = world.emulator.client("iam")
    run_check(world)
    world.emulator.cloudtrail.flush()
    before = len(eventbridge.deliveries(world.emulator.account_id))
    key = iam.create_access_key(UserName=SEALED)["AccessKey"]
    # ... used here (with the hardware key: GetSessionToken, then AssumeRole in a third region) ...
    iam.delete_access_key(UserName=SEALED, AccessKeyId=key["AccessKeyId"])
    world.emulator.cloudtrail.flush()
    heard = heard_of(world, before, "CreateAccessKey")
    found = run_check(world)
    assert heard or found["findings"], "neither an alert nor a finding"


# -- finding 6: the check watches the users, not the role -------------------------------------------


def test_the_check_finds_the_sealed_roles_trust_opened_to_another_principal(world: World) -> None:
    iam = world.emulator.client("iam")
    role = iam.get_role(RoleName=SEALED)["Role"]
    original = role["AssumeRolePolicyDocument"]
    original = original if isinstance(original, str) else json.dumps(original)
    opened = json.loads(original)
    opened["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": world.people["rita"].arn},
            "Action": "sts:AssumeRole",
        }
    )
    iam.update_assume_role_policy(RoleName=SEALED, PolicyDocument=json.dumps(opened))
    iam.update_role(RoleName=SEALED, MaxSessionDuration=43200)
    try:
        found = run_check(world)
    finally:
        iam.update_assume_role_policy(RoleName=SEALED, PolicyDocument=original)
        iam.update_role(RoleName=SEALED, MaxSessionDuration=role["MaxSessionDuration"])
    assert found["findings"], found


# -- finding 7: a second (FIDO) device is a second way in, outside the safe --------------------------


def test_the_check_finds_a_second_mfa_device_on_a_sealed_user(world: World) -> None:
    iam = world.emulator.client("iam")
    account = world.emulator.account_id
    serials = [
        f"arn:aws:iam::{account}:u2f/user/{SEALED}/safe-key",
        f"arn:aws:iam::{account}:u2f/user/{SEALED}/my-passkey",
    ]
    for serial in serials:
        iam.enable_mfa_device(
            UserName=SEALED, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
        )
    try:
        found = run_check(world)
    finally:
        for serial in serials:
            iam.deactivate_mfa_device(UserName=SEALED, SerialNumber=serial)
    assert found["findings"], found


# -- findings 8 and 9: the record function, fed CloudTrail's events directly ------------------------------

ROLE_ARN = "arn:aws:iam::100000000001:role/breakglass-sealed"


class _Audit:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def write(self, event: Any, *, alert: bool = True) -> str:
        self.events.append(event)
        return f"events/{event.event_id}.json"


class _Store:
    """The workflow's table as the record function sees it: a conditional put, a read, a mark."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}

    def put_request(self, record: Any) -> None:
        from breakglass.lambdas.approvals.store import StoreError

        if record.request_id in self.records:
            raise StoreError(f"request {record.request_id} exists")
        self.records[record.request_id] = record

    def get_request(self, request_id: str) -> Any:
        return self.records.get(request_id)

    def mark_mailed(self, request_id: str) -> None:
        self.records[request_id].mailed = True


class _Ses:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[dict[str, Any]] = []

    def send_email(self, **message: Any) -> dict[str, str]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("Throttling: Maximum sending rate exceeded")
        self.sent.append(message)
        return {"MessageId": f"m{len(self.sent)}"}


def assume_event(
    *, user_arn: str, identity_type: str = "IAMUser", error: str | None = None
) -> dict[str, Any]:
    identity: dict[str, Any] = {"type": identity_type, "arn": user_arn, "accountId": "100000000001"}
    if identity_type == "IAMUser":
        identity["userName"] = user_arn.rsplit("/", 1)[-1]
    detail: dict[str, Any] = {
        "eventID": "0f6e1c6a-1111-2222-3333-444455556666",
        "eventName": "AssumeRole",
        "eventSource": "sts.amazonaws.com",
        "eventTime": "2026-12-01T01:40:00Z",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.1",
        "userIdentity": identity,
        "requestParameters": {"roleArn": ROLE_ARN, "roleSessionName": user_arn.rsplit("/", 1)[-1]},
        "responseElements": None
        if error
        else {"credentials": {"accessKeyId": "ASIA...", "expiration": "Dec 1, 2026, 2:40:00 AM"}},
    }
    if error:
        detail["errorCode"] = error
    return {"id": "e1", "source": "aws.sts", "detail-type": "AWS API Call via CloudTrail", "detail": detail}


def test_a_sealed_use_whose_first_email_failed_is_mailed_on_the_retry() -> None:
    from breakglass.lambdas.sealed.use import SealedDeps, parse_event, record_use

    ses = _Ses(failures=1)
    deps = SealedDeps(
        audit=_Audit(),  # type: ignore[arg-type]
        role_arn=ROLE_ARN,
        users=(SEALED,),
        alert_emails=("security@example.com",),
        sender="breakglass@example.com",
        ses=ses,
        store=_Store(),  # type: ignore[arg-type]
    )
    use = parse_event(assume_event(user_arn=f"arn:aws:iam::100000000001:user/{SEALED}"), role_arn=ROLE_ARN)
    with pytest.raises(RuntimeError):
        record_use(deps, use)  # the function fails; EventBridge retries the same event
    record_use(deps, use)
    assert ses.sent, "the sealed use was never emailed"
    # Once mailed, a further redelivery is a duplicate: no second email.
    assert record_use(deps, use).get("duplicate") and len(ses.sent) == 1


def test_any_session_of_the_sealed_role_opens_a_mandatory_review_whoever_took_it() -> None:
    from breakglass.lambdas.sealed.use import SealedDeps, parse_event, record_use

    audit = _Audit()
    deps = SealedDeps(audit=audit, role_arn=ROLE_ARN, users=(SEALED,))  # type: ignore[arg-type]
    event = assume_event(
        user_arn="arn:aws:sts::100000000001:assumed-role/some-admin/mallory", identity_type="AssumedRole"
    )
    done = record_use(deps, parse_event(event, role_arn=ROLE_ARN))
    assert done["request_id"], done
    assert ("review", "opened") in [(e.event_type, e.outcome) for e in audit.events]
    assert all("NOT A SEALED USER" in (e.reason or "") for e in audit.events), audit.events


# -- finding 10: what the drill and security read is not protected from an admin-tier session -----------


def _admin_boundary(world: World) -> tuple[str, dict[str, Any]]:
    iam = world.emulator.client("iam")
    role = iam.get_role(RoleName="breakglass-emergency-admin")["Role"]
    arn = role["PermissionsBoundary"]["PermissionsBoundaryArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return role["Arn"], json.loads(document) if isinstance(document, str) else dict(document)


def _sealed_settings_parameter(world: World) -> tuple[str, dict[str, str]]:
    name = f"/breakglass/{world.name}/sealed_access"
    ssm = world.emulator.client("ssm")
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    arn = f"arn:aws:ssm:{world.emulator.region}:{world.emulator.account_id}:parameter{name}"
    return arn, {t["Key"]: t["Value"] for t in tags}


def _check_log_group(world: World) -> tuple[str, dict[str, str]]:
    name = f"/aws/lambda/{sealed_settings(world)['check_function']}"
    tags = world.emulator.client("logs").list_tags_log_group(logGroupName=name).get("tags", {})
    return f"arn:aws:logs:{world.emulator.region}:{world.emulator.account_id}:log-group:{name}", dict(tags)


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ssm:DeleteParameter", _sealed_settings_parameter),
        ("ssm:PutParameter", _sealed_settings_parameter),
        ("logs:DeleteLogGroup", _check_log_group),
        ("logs:PutRetentionPolicy", _check_log_group),
    ],
)
def test_an_admin_tier_session_cannot_blind_the_drill_or_erase_the_checks_log(
    world: World, action: str, resource: Any
) -> None:
    from iam_eval import ADMIN_POLICY, session_allowed, session_context

    from breakglass.contracts import utc_now

    role_arn, boundary = _admin_boundary(world)
    arn, tags = resource(world)
    now = utc_now()
    context = session_context(
        now=now, source_identity="rita", request_id="r1", issued_at=now, resource_tags=tags
    )
    assert not session_allowed(
        role_arn, action, arn, policies=[ADMIN_POLICY], boundary=boundary, context=context
    )


def test_the_sealed_step_fails_when_the_sealed_role_exists_but_its_settings_are_gone(world: World) -> None:
    """Finding 10: a deleted settings parameter (by anyone outside the boundary) does not make the
    drill say 'skipped': the sealed role is still there, unwatched by the drill."""
    ssm = world.emulator.client("ssm")
    name = f"/breakglass/{world.name}/sealed_access"
    parameter = ssm.get_parameter(Name=name)["Parameter"]
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    ssm.delete_parameter(Name=name)
    try:
        code, sealed, stderr = sealed_step(world)
    finally:
        ssm.put_parameter(Name=name, Value=parameter["Value"], Type=parameter["Type"], Tags=tags)
    assert code == 1 and not sealed["ok"], (code, sealed, stderr)
    assert "breakglass-sealed" in json.dumps(sealed), sealed


# -- what held: the sealed alerts themselves, evaluated with the tags the deployment gave them ------------


def _tagged(world: World, kind: str) -> tuple[str, dict[str, str]]:
    settings = sealed_settings(world)
    home = settings["regions"]["home"]
    if kind == "rule":
        arn = world.emulator.client("events").describe_rule(Name=home["rules"][0])["Arn"]
        tags = world.emulator.client("events").list_tags_for_resource(ResourceARN=arn)["Tags"]
    elif kind == "topic":
        arn = home["topic_arn"]
        tags = world.emulator.client("sns").list_tags_for_resource(ResourceArn=arn)["Tags"]
    elif kind == "subscription":
        listed = world.emulator.client("sns").list_subscriptions_by_topic(TopicArn=home["topic_arn"])
        arn = next(
            s["SubscriptionArn"] for s in listed["Subscriptions"] if s["SubscriptionArn"].startswith("arn:")
        )
        tags = []  # a subscription carries no tag: only its name protects it
    elif kind == "alarm":
        cloudwatch = world.emulator.client("cloudwatch")
        arn = cloudwatch.describe_alarms(AlarmNames=settings["alarms"][:1])["MetricAlarms"][0]["AlarmArn"]
        tags = cloudwatch.list_tags_for_resource(ResourceARN=arn)["Tags"]
    else:
        iam = world.emulator.client("iam")
        arn = iam.get_user(UserName=SEALED)["User"]["Arn"]
        tags = iam.list_user_tags(UserName=SEALED)["Tags"]
    return arn, {t["Key"]: t["Value"] for t in tags}


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("events:DisableRule", "rule"),
        ("events:DeleteRule", "rule"),
        ("events:PutRule", "rule"),
        ("events:RemoveTargets", "rule"),
        ("events:PutTargets", "rule"),
        ("sns:SetTopicAttributes", "topic"),
        ("sns:DeleteTopic", "topic"),
        ("sns:RemovePermission", "topic"),
        ("sns:Subscribe", "topic"),
        ("sns:Unsubscribe", "subscription"),
        ("sns:SetSubscriptionAttributes", "subscription"),
        ("cloudwatch:DeleteAlarms", "alarm"),
        ("cloudwatch:DisableAlarmActions", "alarm"),
        ("cloudwatch:PutMetricAlarm", "alarm"),
        ("iam:PutUserPolicy", "user"),
        ("iam:CreateLoginProfile", "user"),
        ("iam:EnableMFADevice", "user"),
        ("iam:DeactivateMFADevice", "user"),
    ],
)
def test_an_admin_tier_session_cannot_silence_the_sealed_alerts_or_open_a_sealed_user(
    world: World, action: str, kind: str
) -> None:
    from iam_eval import ADMIN_POLICY, session_allowed, session_context

    from breakglass.contracts import utc_now

    role_arn, boundary = _admin_boundary(world)
    arn, tags = _tagged(world, kind)
    now = utc_now()
    context = session_context(
        now=now, source_identity="rita", request_id="r1", issued_at=now, resource_tags=tags
    )
    assert not session_allowed(
        role_arn, action, arn, policies=[ADMIN_POLICY], boundary=boundary, context=context
    )


def test_a_console_switch_role_to_the_sealed_role_logged_as_switch_role_opens_a_mandatory_review() -> None:
    from breakglass.lambdas.sealed.use import SealedDeps, parse_event, record_use

    audit = _Audit()
    deps = SealedDeps(audit=audit, role_arn=ROLE_ARN, users=(SEALED,))  # type: ignore[arg-type]
    event = assume_event(user_arn=f"arn:aws:iam::100000000001:user/{SEALED}")
    detail = event["detail"]
    event.update(source="aws.signin", **{"detail-type": "AWS Console Sign In via CloudTrail"})
    detail.update(
        eventName="SwitchRole",
        eventSource="signin.amazonaws.com",
        requestParameters=None,
        responseElements={"SwitchRole": "Success"},
        additionalEventData={"SwitchTo": ROLE_ARN, "MFAUsed": "Yes"},
    )
    done = record_use(deps, parse_event(event, role_arn=ROLE_ARN))
    assert done["request_id"], done
    assert ("review", "opened") in [(e.event_type, e.outcome) for e in audit.events]
    detail.update(responseElements={"SwitchRole": "Failure"}, eventID="another")
    refused = record_use(deps, parse_event(event, role_arn=ROLE_ARN))
    assert refused["outcome"] == "failed" and not refused["request_id"]


def test_an_admin_tier_session_cannot_forge_the_sealed_checks_metrics(world: World) -> None:
    from iam_eval import ADMIN_POLICY, session_allowed, session_context

    from breakglass.contracts import utc_now
    from breakglass.lambdas.runtime import METRICS_NAMESPACE

    role_arn, boundary = _admin_boundary(world)
    now = utc_now()
    context = session_context(now=now, source_identity="rita", request_id="r1", issued_at=now)
    forged = {**context, "cloudwatch:namespace": METRICS_NAMESPACE}
    assert not session_allowed(
        role_arn, "cloudwatch:PutMetricData", "*", policies=[ADMIN_POLICY], boundary=boundary, context=forged
    )
    own = {**context, "cloudwatch:namespace": "MyTeam/Models"}
    assert session_allowed(
        role_arn, "cloudwatch:PutMetricData", "*", policies=[ADMIN_POLICY], boundary=boundary, context=own
    )
