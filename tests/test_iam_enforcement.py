"""IAM as the emulator enforces it: moto's checks, completed where the package depends on them.

Statement evaluation (conditions on the keys the emulator knows, principals naming accounts and
role sessions, an Allow that does not apply) is tested on documents; enforcement on calls to a
running emulator: resources resolved per service, session facts moto's STS drops, the trust's
extra STS actions, the end-of-window deny following the emulator's clock, and the switch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from breakglass.contracts import iso, utc_now
from breakglass.local.emulator import Emulator
from breakglass.local.iam_conditions import Decision, lower_keys, policy_decision, principal_matches

ACCOUNT = "111122223333"


def known(key: str) -> bool:
    return key in ("aws:currenttime", "aws:sourceidentity", "aws:tagkeys", "aws:principaltag/team")


def decide(statements: list[dict[str, Any]], action: str = "s3:GetObject", **context: list[str]) -> Decision:
    document = {"Version": "2012-10-17", "Statement": statements}
    return policy_decision(document, action, "arn:aws:s3:::bucket/key", lower_keys(context), known)


# -- statements, on documents --------------------------------------------------------------------


def test_a_conditional_deny_applies_only_when_its_condition_holds() -> None:
    deny = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
    }
    allow = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    assert decide([allow, deny], **{"aws:CurrentTime": ["2029-12-31T23:59:59Z"]}) is Decision.ALLOW
    assert decide([allow, deny], **{"aws:CurrentTime": ["2030-01-01T00:00:01Z"]}) is Decision.DENY


def test_an_allow_that_does_not_apply_is_not_a_deny() -> None:
    # moto answers "denied" for an Allow whose condition fails, denying what another one allows.
    scoped = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceIdentity": "bob"}},
    }
    plain = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}
    assert decide([scoped, plain], **{"aws:SourceIdentity": ["alice"]}) is Decision.ALLOW
    assert decide([scoped], **{"aws:SourceIdentity": ["alice"]}) is Decision.NOT_APPLICABLE


def test_missing_keys_follow_iam_null_negation_and_set_rules() -> None:
    def holds(operator: str, key: str, value: Any, **context: list[str]) -> bool:
        statement = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {operator: {key: value}}}
        return decide([statement], **context) is Decision.DENY

    assert holds("Null", "aws:SourceIdentity", "true")
    assert not holds("Null", "aws:SourceIdentity", "true", **{"aws:SourceIdentity": ["alice"]})
    assert holds("StringNotEquals", "aws:SourceIdentity", "alice")  # absent: a negated operator holds
    assert not holds("StringEquals", "aws:SourceIdentity", "alice")
    assert holds("StringEqualsIfExists", "aws:SourceIdentity", "alice")
    assert holds("ForAllValues:StringEquals", "aws:TagKeys", ["team"])
    assert not holds("ForAnyValue:StringEquals", "aws:TagKeys", ["team"])
    assert not holds(
        "ForAllValues:StringEquals", "aws:TagKeys", ["team"], **{"aws:TagKeys": ["team", "extra"]}
    )


def test_a_key_the_emulator_cannot_know_is_taken_to_hold_as_moto_takes_it() -> None:
    tagged = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/breakglass:protected": "true"}},
    }
    assert decide([tagged]) is Decision.DENY


def test_condition_keys_are_case_insensitive() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "S3:getobject",
        "Resource": "*",
        "Condition": {"StringEquals": {"AWS:SourceIdentity": "alice"}},
    }
    assert decide([statement], **{"aws:sourceidentity": ["alice"]}) is Decision.ALLOW


def test_a_principal_names_accounts_roles_sessions_and_services() -> None:
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall/alice"
    assert principal_matches({"AWS": f"arn:aws:iam::{ACCOUNT}:role/oncall"}, session)
    assert principal_matches({"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/oncall"}, session)
    assert principal_matches({"AWS": ACCOUNT}, session)
    assert principal_matches({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert not principal_matches({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}, session)
    assert not principal_matches({"AWS": "arn:aws:iam::999999999999:root"}, session)
    assert principal_matches({"Service": ["events.amazonaws.com"]}, "events.amazonaws.com")
    assert not principal_matches({"Service": "events.amazonaws.com"}, session)


# -- enforcement, on a running emulator --------------------------------------------------------------


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(enforce_iam=True) as emu:
        yield emu


def user(emulator: Emulator, name: str, *statements: dict[str, Any]) -> dict[str, str]:
    iam = emulator.client("iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document(*statements))
    return dict(iam.create_access_key(UserName=name)["AccessKey"])


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(*args, **kwargs)
    return str(error.value.response["Error"]["Code"])


def test_the_admin_can_call_every_protocol_with_signatures_intact(emulator: Emulator) -> None:
    # query (IAM, STS, SNS), JSON (DynamoDB, KMS), REST-JSON (Lambda) and REST-XML (S3) calls.
    emulator.client("sts").get_caller_identity()
    emulator.client("iam").list_roles()
    emulator.client("sns").list_topics()
    emulator.client("kms").list_keys()
    emulator.client("dynamodb").list_tables()
    emulator.client("lambda").list_functions()
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="signatures")
    s3.put_object(
        Bucket="signatures", Key="a key/with spaces+plus.json", Body=b"{}", ChecksumAlgorithm="SHA256"
    )
    assert s3.get_object(Bucket="signatures", Key="a key/with spaces+plus.json")["Body"].read() == b"{}"


def test_an_unsigned_call_is_refused(emulator: Emulator) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        emulator.endpoint_url,
        data=b"Action=ListRoles&Version=2010-05-08",
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded", "host": "iam.amazonaws.com"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 403 and b"MissingAuthenticationToken" in error.value.read()


def test_an_item_action_is_checked_against_its_table(emulator: Emulator) -> None:
    dynamodb = emulator.client("dynamodb")
    for table in ("mine", "theirs"):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    mine = f"arn:aws:dynamodb:us-east-1:{emulator.account_id}:table/mine"
    keys = user(emulator, "reader", {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": mine})
    client = emulator.client_as("dynamodb", keys)
    client.get_item(TableName="mine", Key={"pk": {"S": "x"}})
    assert refused(client.get_item, TableName="theirs", Key={"pk": {"S": "x"}}) == "AccessDeniedException"
    assert refused(client.put_item, TableName="mine", Item={"pk": {"S": "x"}}) == "AccessDeniedException"
    # A transaction is its item actions: a Put inside one needs dynamodb:PutItem.
    transaction = [{"Put": {"TableName": "mine", "Item": {"pk": {"S": "y"}}}}]
    assert refused(client.transact_write_items, TransactItems=transaction) == "AccessDeniedException"


def test_decrypt_is_checked_against_the_key_named_in_the_ciphertext(emulator: Emulator) -> None:
    kms = emulator.client("kms")
    allowed_key = kms.create_key()["KeyMetadata"]
    other_key = kms.create_key()["KeyMetadata"]
    keys = user(
        emulator, "decrypter", {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": allowed_key["Arn"]}
    )
    client = emulator.client_as("kms", keys)
    mine = kms.encrypt(KeyId=allowed_key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    theirs = kms.encrypt(KeyId=other_key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=mine)["Plaintext"] == b"secret"
    assert refused(client.decrypt, CiphertextBlob=theirs) == "AccessDeniedException"
    assert base64.b64encode(mine)  # a real blob, not a stub


def test_a_source_identity_needs_set_source_identity_in_the_trust(emulator: Emulator) -> None:
    iam = emulator.client("iam")
    role = f"arn:aws:iam::{emulator.account_id}:role/no-source-identity"
    keys = user(emulator, "carol", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role})
    carol = f"arn:aws:iam::{emulator.account_id}:user/carol"
    iam.create_role(
        RoleName="no-source-identity",
        AssumeRolePolicyDocument=document(
            {"Effect": "Allow", "Principal": {"AWS": carol}, "Action": "sts:AssumeRole"}
        ),
    )
    sts = emulator.client_as("sts", keys)
    sts.assume_role(RoleArn=role, RoleSessionName="carol")
    assert (
        refused(sts.assume_role, RoleArn=role, RoleSessionName="carol", SourceIdentity="carol")
        == "AccessDenied"
    )


@pytest.fixture(scope="module")
def windowed(emulator: Emulator) -> dict[str, Any]:
    """A role shaped like a granted emergency role: a trust open until ``expires`` to dave as
    himself, and a deny-all for his sessions once ``expires`` has passed."""
    iam = emulator.client("iam")
    account = emulator.account_id
    role = f"arn:aws:iam::{account}:role/breakglass-emergency-window"
    keys = user(emulator, "dave", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role})
    expires = utc_now() + timedelta(hours=1)
    iam.create_role(
        RoleName="breakglass-emergency-window",
        AssumeRolePolicyDocument=document(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:user/dave"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"sts:SourceIdentity": "dave"},
                    "DateLessThan": {"aws:CurrentTime": iso(expires)},
                },
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:user/dave"},
                "Action": ["sts:SetSourceIdentity", "sts:TagSession"],
            },
        ),
    )
    iam.put_role_policy(
        RoleName="breakglass-emergency-window",
        PolicyName="work",
        PolicyDocument=document({"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}),
    )
    iam.put_role_policy(
        RoleName="breakglass-emergency-window",
        PolicyName="guard",
        PolicyDocument=document(
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "DateGreaterThan": {"aws:CurrentTime": iso(expires)},
                    "StringEquals": {"aws:SourceIdentity": "dave"},
                },
            }
        ),
    )
    return {"role": role, "keys": keys, "expires": expires}


def test_the_trust_admits_only_the_source_identity_it_names(
    emulator: Emulator, windowed: dict[str, Any]
) -> None:
    sts = emulator.client_as("sts", windowed["keys"])
    code = refused(
        sts.assume_role, RoleArn=windowed["role"], RoleSessionName="dave", SourceIdentity="someone"
    )
    assert code == "AccessDenied"


def test_a_session_works_inside_its_window_and_is_denied_once_the_clock_passes_it(
    emulator: Emulator, windowed: dict[str, Any]
) -> None:
    sts = emulator.client_as("sts", windowed["keys"])
    session = sts.assume_role(RoleArn=windowed["role"], RoleSessionName="dave", SourceIdentity="dave")
    assert session["SourceIdentity"] == "dave"
    iam = emulator.client_as("iam", session["Credentials"])
    iam.list_roles()
    emulator.fast_forward(windowed["expires"] + timedelta(seconds=1))
    assert refused(iam.list_roles) == "AccessDenied"
    # And the trust's window has closed too.
    assert (
        refused(sts.assume_role, RoleArn=windowed["role"], RoleSessionName="dave", SourceIdentity="dave")
        == "AccessDenied"
    )


def test_with_enforcement_off_any_signed_call_goes_through() -> None:
    with Emulator(enforce_iam=False) as emulator:
        keys = user(emulator, "nobody")
        emulator.client_as("iam", keys).list_roles()


def test_a_task_token_answer_is_checked_against_the_state_machine_waiting_for_it(emulator: Emulator) -> None:
    import time

    iam = emulator.client("iam")
    queue_url = emulator.client("sqs").create_queue(QueueName="approvals")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:us-east-1:{emulator.account_id}:approvals"
    iam.create_role(
        RoleName="waiter",
        AssumeRolePolicyDocument=document(
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ),
    )
    iam.put_role_policy(
        RoleName="waiter",
        PolicyName="send",
        PolicyDocument=document({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}),
    )
    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    sfn = emulator.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="waits",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{emulator.account_id}:role/waiter",
    )["stateMachineArn"]
    other = f"arn:aws:states:us-east-1:{emulator.account_id}:stateMachine:other"
    answer = {"Effect": "Allow", "Action": "states:SendTaskSuccess"}
    right = emulator.client_as("stepfunctions", user(emulator, "approver", {**answer, "Resource": machine}))
    wrong = emulator.client_as("stepfunctions", user(emulator, "outsider", {**answer, "Resource": other}))
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    sqs = emulator.client("sqs")
    deadline = time.monotonic() + 30
    messages: list[Any] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    token = json.loads(messages[0]["Body"])["token"]
    assert refused(wrong.send_task_success, taskToken=token, output="{}") == "AccessDeniedException"
    right.send_task_success(taskToken=token, output="{}")
    while (
        sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
