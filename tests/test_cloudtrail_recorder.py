"""The emulator's CloudTrail recorder writes real-format records that the named queries read.

A responder's emergency session is made without the approval workflow: an IAM user assumes a role
named like an emergency role, with a source identity and a session tag, and makes a few calls
(one refused). After ``flush()`` the records are in the trail's bucket, laid out and gzipped as
CloudTrail delivers them, and ``session_actions`` / ``emergency_sessions`` return them.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from breakglass.contracts import iso, utc_now
from breakglass.local.athena import run_named_query
from breakglass.local.emulator import Emulator

ROLE = "breakglass-emergency-test"
TRAIL = "audit-trail"
REQUEST_TAG = "breakglass:request-id"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(enforce_iam=True) as emu:
        yield emu


@pytest.fixture(scope="module")
def bucket(emulator: Emulator) -> str:
    name = f"audit-{emulator.account_id}"
    emulator.client("s3").create_bucket(Bucket=name)
    cloudtrail = emulator.client("cloudtrail")
    cloudtrail.create_trail(Name=TRAIL, S3BucketName=name, IsMultiRegionTrail=True)
    cloudtrail.start_logging(Name=TRAIL)
    return name


@pytest.fixture(scope="module")
def session(emulator: Emulator, bucket: str) -> dict[str, Any]:
    """alice's emergency session (source identity alice, request tag r1), and what it did."""
    iam = emulator.client("iam")
    account = emulator.account_id
    role_arn = f"arn:aws:iam::{account}:role/{ROLE}"
    for user in ("alice", "mallory"):
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user,
            PolicyName="assume-emergency-roles",
            PolicyDocument=document({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}),
        )
    alice_arn = f"arn:aws:iam::{account}:user/alice"
    iam.create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=document(
            {
                "Effect": "Allow",
                "Principal": {"AWS": alice_arn},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                "Condition": {"StringEquals": {"sts:SourceIdentity": "alice"}},
            }
        ),
    )
    iam.put_role_policy(
        RoleName=ROLE,
        PolicyName="work",
        PolicyDocument=document(
            {"Effect": "Allow", "Action": ["iam:GetRole", "sagemaker:ListEndpoints"], "Resource": "*"}
        ),
    )
    keys = {user: iam.create_access_key(UserName=user)["AccessKey"] for user in ("alice", "mallory")}

    with pytest.raises(ClientError, match="AccessDenied"):
        emulator.client_as("sts", keys["mallory"]).assume_role(
            RoleArn=role_arn, RoleSessionName="mallory", SourceIdentity="mallory"
        )
    assumed = emulator.client_as("sts", keys["alice"]).assume_role(
        RoleArn=role_arn,
        RoleSessionName="alice",
        SourceIdentity="alice",
        Tags=[{"Key": REQUEST_TAG, "Value": "r1"}],
        DurationSeconds=900,
    )
    credentials = assumed["Credentials"]
    emulator.client_as("sts", credentials).get_caller_identity()
    emulator.client_as("iam", credentials).get_role(RoleName=ROLE)
    emulator.client_as("sagemaker", credentials).list_endpoints()
    with pytest.raises(ClientError, match="AccessDenied"):
        emulator.client_as("iam", credentials).create_user(UserName="backdoor")
    return {"credentials": credentials, "assumed": assumed, "role_arn": role_arn, "alice_arn": alice_arn}


@pytest.fixture(scope="module")
def delivered(emulator: Emulator, bucket: str, session: dict[str, Any]) -> list[str]:
    return emulator.cloudtrail.flush()


@pytest.fixture(scope="module")
def local_copy(
    emulator: Emulator, bucket: str, delivered: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return emulator.copy_bucket(bucket, tmp_path_factory.mktemp("audit-bucket"))


def records_in(emulator: Emulator, bucket: str, keys: list[str]) -> list[dict[str, Any]]:
    s3 = emulator.client("s3")
    found: list[dict[str, Any]] = []
    for key in keys:
        found.extend(
            json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))["Records"]
        )
    return found


def test_the_records_are_delivered_as_gzipped_files_in_cloudtrails_layout(
    emulator: Emulator, bucket: str, delivered: list[str]
) -> None:
    account = emulator.account_id
    layout = re.compile(
        rf"AWSLogs/{account}/CloudTrail/us-east-1/\d{{4}}/\d{{2}}/\d{{2}}/"
        rf"{account}_CloudTrail_us-east-1_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz"
    )
    assert delivered and all(layout.fullmatch(key) for key in delivered)
    for key in delivered:
        stamp = re.search(r"_(\d{4})(\d{2})(\d{2})T\d{4}Z_", key)
        assert stamp is not None and f"/{stamp.group(1)}/{stamp.group(2)}/{stamp.group(3)}/" in key
    assert records_in(emulator, bucket, delivered)


def test_the_sessions_records_name_its_role_source_identity_and_mfa(
    emulator: Emulator, bucket: str, session: dict[str, Any], delivered: list[str]
) -> None:
    account = emulator.account_id
    by_session = [
        r
        for r in records_in(emulator, bucket, delivered)
        if r["userIdentity"].get("arn") == f"arn:aws:sts::{account}:assumed-role/{ROLE}/alice"
    ]
    assert {r["eventName"] for r in by_session} == {
        "GetCallerIdentity",
        "GetRole",
        "ListEndpoints",
        "CreateUser",
    }
    record = next(r for r in by_session if r["eventName"] == "GetRole")
    identity = record["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["accessKeyId"] == session["credentials"]["AccessKeyId"]
    assert identity["principalId"] == session["assumed"]["AssumedRoleUser"]["AssumedRoleId"]
    context = identity["sessionContext"]
    assert context["sessionIssuer"] == {
        "type": "Role",
        "principalId": identity["principalId"].split(":")[0],
        "arn": session["role_arn"],
        "accountId": account,
        "userName": ROLE,
    }
    assert context["sourceIdentity"] == "alice"
    assert context["attributes"]["mfaAuthenticated"] == "false"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", context["attributes"]["creationDate"])
    assert record["eventSource"] == "iam.amazonaws.com" and record["awsRegion"] == "us-east-1"
    assert record["requestParameters"] == {"roleName": ROLE}
    assert record["eventVersion"] == "1.09" and record["eventType"] == "AwsApiCall"
    assert (record["readOnly"], record["managementEvent"], record["recipientAccountId"]) == (
        True,
        True,
        account,
    )
    assert record["sourceIPAddress"] == "127.0.0.1" and record["userAgent"].startswith("Boto3/")
    assert record["requestID"] and record["eventID"] and record["responseElements"] is None


def test_a_refused_call_is_recorded_with_its_error(
    emulator: Emulator, bucket: str, delivered: list[str]
) -> None:
    (refused,) = [
        r
        for r in records_in(emulator, bucket, delivered)
        if r["eventName"] == "CreateUser" and r.get("errorCode")
    ]
    assert refused["errorCode"] == "AccessDenied"
    assert "iam:CreateUser" in refused["errorMessage"]
    assert refused["readOnly"] is False


def test_the_assume_role_record_carries_the_request_and_the_session_it_opened(
    emulator: Emulator, bucket: str, session: dict[str, Any], delivered: list[str]
) -> None:
    (assume,) = [
        r
        for r in records_in(emulator, bucket, delivered)
        if r["eventName"] == "AssumeRole" and not r.get("errorCode")
    ]
    assert assume["userIdentity"]["arn"] == session["alice_arn"]
    assert assume["userIdentity"]["type"] == "IAMUser" and assume["userIdentity"]["userName"] == "alice"
    assert assume["requestParameters"]["sourceIdentity"] == "alice"
    assert assume["requestParameters"]["durationSeconds"] == 900
    assert assume["requestParameters"]["tags"] == [{"key": REQUEST_TAG, "value": "r1"}]
    assert assume["responseElements"]["sourceIdentity"] == "alice"
    assert assume["responseElements"]["credentials"]["accessKeyId"] == session["credentials"]["AccessKeyId"]
    assert assume["resources"] == [
        {"accountId": emulator.account_id, "type": "AWS::IAM::Role", "ARN": session["role_arn"]}
    ]


def test_calls_made_before_the_trail_logged_are_not_delivered(
    emulator: Emulator, bucket: str, delivered: list[str]
) -> None:
    names = {r["eventName"] for r in records_in(emulator, bucket, delivered)}
    assert "CreateBucket" not in names and "CreateTrail" not in names
    assert "StartLogging" in names  # the call that turned logging on is the first one logged


def test_a_second_flush_writes_nothing_already_delivered(emulator: Emulator, delivered: list[str]) -> None:
    assert emulator.cloudtrail.flush() == []


def test_session_actions_returns_what_the_session_did(local_copy: Path) -> None:
    now = utc_now()
    result = run_named_query(
        "session_actions",
        local_copy,
        {
            "start": iso(now - timedelta(hours=1)),
            "end": iso(now + timedelta(hours=1)),
            "source_identity": "alice",
        },
    )
    rows = result.records()
    # Calls within one second come in eventID order, as in Athena: compared as a set.
    assert sorted(r["event_name"] for r in rows) == [
        "CreateUser",
        "GetCallerIdentity",
        "GetRole",
        "ListEndpoints",
    ]
    assert {r["role_arn"] for r in rows} == {rows[0]["role_arn"]} and rows[0]["role_arn"].endswith(
        f":role/{ROLE}"
    )
    assert [r["error_code"] for r in rows if r["event_name"] == "CreateUser"] == ["AccessDenied"]


def test_emergency_sessions_returns_the_assume_and_the_refused_attempt(
    local_copy: Path, session: dict[str, Any]
) -> None:
    rows = run_named_query("emergency_sessions", local_copy).records()
    assert sorted(
        (r["caller_arn"].rsplit("/", 1)[-1], r["source_identity"], r["error_code"]) for r in rows
    ) == [
        ("alice", "alice", None),
        ("mallory", "mallory", "AccessDenied"),
    ]
    assert {r["role_arn"] for r in rows} == {session["role_arn"]}
    (alice,) = [r for r in rows if r["error_code"] is None]
    assert alice["role_session_name"] == "alice" and alice["mfa"] is False


def test_stopping_the_trail_is_the_last_call_it_delivers() -> None:
    with Emulator(enforce_iam=True) as emulator:
        emulator.client("s3").create_bucket(Bucket="stopped-trail")
        cloudtrail = emulator.client("cloudtrail")
        cloudtrail.create_trail(Name="stopped", S3BucketName="stopped-trail")
        cloudtrail.start_logging(Name="stopped")
        emulator.client("iam").list_users()
        cloudtrail.stop_logging(Name="stopped")
        emulator.client("iam").list_roles()
        names = [r["eventName"] for r in records_in(emulator, "stopped-trail", emulator.cloudtrail.flush())]
    assert sorted(names) == ["ListUsers", "StartLogging", "StopLogging"]


# -- CloudTrail's events on the buses --------------------------------------------------------------


def test_each_recorded_management_call_reaches_its_regions_bus_but_get_list_describe_do_not(
    emulator: Emulator,
) -> None:
    from breakglass.local import eventbridge

    events = emulator.client("events")
    sqs = emulator.client("sqs")
    queue = sqs.create_queue(QueueName="iam-calls")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"]}
    rule = events.put_rule(Name="iam-calls", EventPattern=json.dumps(pattern))["RuleArn"]
    events.put_targets(Rule="iam-calls", Targets=[{"Id": "q", "Arn": queue_arn}])
    emulator.cloudtrail.flush()
    before = len(eventbridge.deliveries(emulator.account_id))
    iam = emulator.client("iam")
    iam.create_user(UserName="bus-rider")
    iam.get_user(UserName="bus-rider")
    emulator.cloudtrail.flush()
    names = [
        d.input["detail"]["eventName"]
        for d in eventbridge.deliveries(emulator.account_id)[before:]
        if d.rule_arn == rule
    ]
    assert names == ["CreateUser"]
