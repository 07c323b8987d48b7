"""The DynamoDB store: encrypted secrets, atomic claims, and votes that count exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from breakglass.contracts import ENV_KMS_KEY, ENV_TABLE
from breakglass.lambdas.approvals.store import Enrollment as E
from breakglass.lambdas.approvals.store import (
    NotEnrolled,
    RequestNotFound,
    RequestRecord,
    SpentLink,
    StatusConflict,
    Store,
    StoreError,
    VoteRefused,
    create_table,
)

ALICE = E("alice", "arn:aws:iam::123456789012:user/alice", "alice@example.com", ("approver",))
RECORD = RequestRecord(
    request_id="req1",
    requester="bob",
    requester_arn="arn:aws:iam::123456789012:user/bob",
    tier="sagemaker-halt",
    reason="model is leaking data",
    ticket=None,
    duration_seconds=1800,
    requested_at="2025-03-01T12:00:00Z",
    status="pending",
    quorum=2,
    approvers=("alice", "carol", "dave"),
)


@pytest.fixture
def store() -> Iterator[Store]:
    with mock_aws():
        ddb, kms = boto3.client("dynamodb"), boto3.client("kms")
        create_table(ddb, "bg")
        yield Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])


def test_the_table_has_the_key_schema_and_ttl_attribute_the_component_uses(store: Store) -> None:
    table = store.dynamodb.describe_table(TableName="bg")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    ttl = store.dynamodb.describe_time_to_live(TableName="bg")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl" and ttl["TimeToLiveStatus"] == "ENABLED"


def test_an_enrollment_round_trips_and_its_secret_is_stored_only_encrypted(store: Store) -> None:
    store.put_enrollment(ALICE, "JBSWY3DPEHPK3PXP")
    assert store.get_enrollment("alice") == ALICE
    assert store.totp_secret("alice") == "JBSWY3DPEHPK3PXP"
    raw = store.dynamodb.get_item(TableName="bg", Key={"pk": {"S": "USER#alice"}, "sk": {"S": "ENROLLMENT"}})[
        "Item"
    ]
    assert b"JBSWY3DPEHPK3PXP" not in bytes(raw["totp_secret"]["B"])
    assert "JBSWY3DPEHPK3PXP" not in repr(raw)


def test_a_secret_copied_onto_another_user_does_not_decrypt(store: Store) -> None:
    store.put_enrollment(ALICE, "JBSWY3DPEHPK3PXP")
    item = store.dynamodb.get_item(
        TableName="bg", Key={"pk": {"S": "USER#alice"}, "sk": {"S": "ENROLLMENT"}}
    )["Item"]
    store.dynamodb.put_item(TableName="bg", Item={**item, "pk": {"S": "USER#mallory"}})
    with pytest.raises(Exception, match="InvalidCiphertext"):
        store.totp_secret("mallory")


def test_an_unknown_user_has_no_enrollment_and_no_secret(store: Store) -> None:
    assert store.get_enrollment("nobody") is None
    with pytest.raises(NotEnrolled):
        store.totp_secret("nobody")


def test_totp_steps_are_claimed_only_when_later_than_the_last(store: Store) -> None:
    store.put_enrollment(ALICE, "JBSWY3DPEHPK3PXP")
    assert store.claim_totp_step("alice", 100)
    assert not store.claim_totp_step("alice", 100)
    assert not store.claim_totp_step("alice", 99)
    assert store.claim_totp_step("alice", 101)
    assert not store.claim_totp_step("nobody", 1)


def test_re_enrollment_keeps_the_last_used_step(store: Store) -> None:
    store.put_enrollment(ALICE, "JBSWY3DPEHPK3PXP")
    assert store.claim_totp_step("alice", 100)
    store.put_enrollment(ALICE, "KRSXG5CTMVRXEZLU")
    assert store.totp_secret("alice") == "KRSXG5CTMVRXEZLU"
    assert not store.claim_totp_step("alice", 100)


def test_a_link_is_claimed_once_and_its_marker_expires_by_ttl(store: Store) -> None:
    assert not store.is_link_used("jti-1")
    assert store.claim_link("jti-1", 1_900_000_000)
    assert not store.claim_link("jti-1", 1_900_000_000)
    assert store.is_link_used("jti-1")
    item = store.dynamodb.get_item(TableName="bg", Key={"pk": {"S": "TOKEN#jti-1"}, "sk": {"S": "USED"}})[
        "Item"
    ]
    assert item["ttl"] == {"N": "1900000000"}


def test_concurrent_claims_of_one_link_have_exactly_one_winner(store: Store) -> None:
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(store.claim_link("race", 1))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_a_request_round_trips_and_its_id_cannot_be_reused(store: Store) -> None:
    store.put_request(RECORD)
    assert store.get_request("req1") == RECORD
    assert store.get_request("req2") is None
    with pytest.raises(StoreError, match="exists already"):
        store.put_request(replace(RECORD, reason="other"))


@pytest.mark.parametrize("alias", ["bob", "Bob", "BOB"])
def test_a_request_listing_its_requester_as_approver_is_refused(store: Store, alias: str) -> None:
    with pytest.raises(VoteRefused) as err:
        store.put_request(replace(RECORD, approvers=("alice", alias)))
    assert err.value.reason == "self-approval"
    store.put_request(RECORD)
    with pytest.raises(VoteRefused):
        store.set_waiting("req1", "token-1", ["alice", alias])


def test_the_requester_cannot_vote_under_their_id_in_another_case(store: Store) -> None:
    store.put_request(RECORD)
    store.dynamodb.update_item(  # an approver list written behind the store's back
        TableName="bg",
        Key={"pk": {"S": "REQUEST#req1"}, "sk": {"S": "REQUEST"}},
        UpdateExpression="SET approvers = list_append(approvers, :bob)",
        ExpressionAttributeValues={":bob": {"L": [{"S": "BOB"}]}},
    )
    with pytest.raises(VoteRefused) as err:
        store.record_vote("req1", "BOB", "approve")
    assert err.value.reason == "self-approval"


def test_a_vote_is_retracted_only_while_nothing_was_counted_after_it(store: Store) -> None:
    store.put_request(RECORD)
    first = store.record_vote("req1", "alice", "deny")
    assert store.retract_vote(first, "alice")
    assert store.get_request("req1") == RECORD
    again = store.record_vote("req1", "alice", "approve")
    store.record_vote("req1", "carol", "approve")
    assert not store.retract_vote(again, "alice")
    after = store.get_request("req1")
    assert after is not None and (after.status, after.approvals) == ("approved", ("alice", "carol"))


def test_a_released_link_can_be_claimed_once_more(store: Store) -> None:
    assert store.claim_link("j1", 2_000_000_000)
    store.release_link("j1")
    assert not store.is_link_used("j1")
    assert store.claim_link("j1", 2_000_000_000)
    assert store.is_link_used("j1") and not store.claim_link("j1", 2_000_000_000)


# --- a vote and the link it spends: one transaction -------------------------------------------


class FailingRequestWrites:
    """A DynamoDB client whose writes of a REQUEST item fail (throttled), whatever API carries
    them; everything else passes through. It puts a failure exactly where a vote is counted."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @staticmethod
    def _throttled(operation: str) -> Exception:
        from botocore.exceptions import ClientError

        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}
        return ClientError(error, operation)  # type: ignore[arg-type]

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["Item"]["pk"]["S"].startswith("REQUEST#"):
            raise self._throttled("PutItem")
        return self.client.put_item(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        for entry in kwargs["TransactItems"]:
            for action in entry.values():
                key = action.get("Item") or action.get("Key")
                if key["pk"]["S"].startswith("REQUEST#"):
                    raise self._throttled("TransactWriteItems")
        return self.client.transact_write_items(**kwargs)


def test_a_vote_that_fails_to_be_counted_leaves_its_link_unspent(store: Store) -> None:
    store.put_request(RECORD)
    failing = Store(FailingRequestWrites(store.dynamodb), "bg", store.kms, store.kms_key_id)
    with pytest.raises(Exception, match="injected"):
        failing.record_vote("req1", "alice", "approve", link=SpentLink("jti-a", 2_000_000_000))
    assert not store.is_link_used("jti-a")
    after = store.get_request("req1")
    assert after is not None and after.approvals == ()
    counted = store.record_vote("req1", "alice", "approve", link=SpentLink("jti-a", 2_000_000_000))
    assert counted.approvals == ("alice",) and store.is_link_used("jti-a")


def test_a_vote_carried_by_a_spent_link_is_refused_as_used_and_not_counted(store: Store) -> None:
    store.put_request(RECORD)
    assert store.claim_link("jti-a", 2_000_000_000)
    with pytest.raises(VoteRefused) as err:
        store.record_vote("req1", "alice", "approve", link=SpentLink("jti-a", 2_000_000_000))
    assert err.value.reason == "used"
    after = store.get_request("req1")
    assert after is not None and after.approvals == () and after.version == 0


def test_one_link_raced_by_many_votes_counts_once(store: Store) -> None:
    approvers = tuple(f"approver{i}" for i in range(6))
    store.put_request(replace(RECORD, approvers=approvers, quorum=6))
    outcomes: list[str] = []

    def vote(who: str) -> None:
        try:
            store.record_vote("req1", who, "approve", link=SpentLink("shared", 2_000_000_000))
            outcomes.append("counted")
        except VoteRefused as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=vote, args=(a,)) for a in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = store.get_request("req1")
    assert record is not None and len(record.approvals) == 1
    assert sorted(outcomes) == ["counted"] + ["used"] * 5


def test_taking_a_vote_back_releases_its_link_in_the_same_write(store: Store) -> None:
    store.put_request(RECORD)
    counted = store.record_vote("req1", "alice", "deny", link=SpentLink("jti-a", 2_000_000_000))
    assert store.retract_vote(counted, "alice", link="jti-a")
    after = store.get_request("req1")
    assert after is not None and (after.status, after.denials) == ("pending", ())
    assert not store.is_link_used("jti-a")


def test_a_vote_that_cannot_be_taken_back_keeps_its_link_spent(store: Store) -> None:
    store.put_request(RECORD)
    first = store.record_vote("req1", "alice", "approve", link=SpentLink("jti-a", 2_000_000_000))
    store.record_vote("req1", "carol", "approve", link=SpentLink("jti-c", 2_000_000_000))
    assert not store.retract_vote(first, "alice", link="jti-a")
    assert store.is_link_used("jti-a")


def test_each_refusal_of_a_link_is_claimed_once_per_reason_until_released(store: Store) -> None:
    assert store.claim_refusal_record("jti-a", "used", 2_000_000_000)
    assert not store.claim_refusal_record("jti-a", "used", 2_000_000_000)
    assert store.claim_refusal_record("jti-a", "totp-wrong", 2_000_000_000)
    assert store.claim_refusal_record("jti-b", "used", 2_000_000_000)
    store.release_refusal_record("jti-a", "used")
    assert store.claim_refusal_record("jti-a", "used", 2_000_000_000)
    # Refusal markers never make the link itself look spent.
    assert not store.is_link_used("jti-a")


def test_set_waiting_records_the_task_token_and_the_approvers(store: Store) -> None:
    store.put_request(RECORD)
    store.set_waiting("req1", "token-1", ["alice", "erin"], execution_arn="arn:exec")
    record = store.get_request("req1")
    assert record is not None
    assert (record.task_token, record.approvers, record.execution_arn) == (
        "token-1",
        ("alice", "erin"),
        "arn:exec",
    )
    with pytest.raises(VoteRefused):
        store.set_waiting("req1", "token-2", ["bob"])
    with pytest.raises(RequestNotFound):
        store.set_waiting("req9", "token", ["alice"])


def test_quorum_two_is_approved_by_the_second_distinct_approver(store: Store) -> None:
    store.put_request(RECORD)
    first = store.record_vote("req1", "alice", "approve")
    assert (first.status, first.approvals) == ("pending", ("alice",))
    second = store.record_vote("req1", "carol", "approve")
    assert (second.status, second.approvals) == ("approved", ("alice", "carol"))
    assert store.get_request("req1") == second


def test_one_denial_is_final(store: Store) -> None:
    store.put_request(RECORD)
    store.record_vote("req1", "alice", "approve")
    denied = store.record_vote("req1", "carol", "deny")
    assert (denied.status, denied.denials) == ("denied", ("carol",))
    with pytest.raises(VoteRefused) as err:
        store.record_vote("req1", "dave", "approve")
    assert err.value.reason == "already-decided"


@pytest.mark.parametrize(
    ("voter", "decision", "reason"),
    [
        ("bob", "approve", "self-approval"),
        ("mallory", "approve", "not-an-approver"),
        ("alice", "maybe", "bad-decision"),
    ],
)
def test_votes_that_do_not_count_are_refused_with_their_reason(
    store: Store, voter: str, decision: str, reason: str
) -> None:
    store.put_request(RECORD)
    with pytest.raises(VoteRefused) as err:
        store.record_vote("req1", voter, decision)
    assert err.value.reason == reason
    assert store.get_request("req1") == RECORD


def test_the_requester_cannot_approve_even_if_listed_as_approver_by_mistake(store: Store) -> None:
    store.put_request(RECORD)
    # Simulate a corrupted approver list written behind the store's back.
    store.dynamodb.update_item(
        TableName="bg",
        Key={"pk": {"S": "REQUEST#req1"}, "sk": {"S": "REQUEST"}},
        UpdateExpression="SET approvers = list_append(approvers, :bob)",
        ExpressionAttributeValues={":bob": {"L": [{"S": "bob"}]}},
    )
    with pytest.raises(VoteRefused) as err:
        store.record_vote("req1", "bob", "approve")
    assert err.value.reason == "self-approval"


def test_an_approver_votes_once(store: Store) -> None:
    store.put_request(RECORD)
    store.record_vote("req1", "alice", "approve")
    with pytest.raises(VoteRefused) as err:
        store.record_vote("req1", "alice", "approve")
    assert err.value.reason == "already-voted"


def test_a_vote_on_a_missing_request_is_refused(store: Store) -> None:
    with pytest.raises(VoteRefused) as err:
        store.record_vote("nope", "alice", "approve")
    assert err.value.reason == "not-found"


def test_concurrent_votes_are_all_counted_and_decide_once(store: Store) -> None:
    approvers = tuple(f"approver{i}" for i in range(6))
    store.put_request(replace(RECORD, approvers=approvers, quorum=6))
    decided: list[str] = []

    def vote(who: str) -> None:
        decided.append(store.record_vote("req1", who, "approve").status)

    threads = [threading.Thread(target=vote, args=(a,)) for a in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = store.get_request("req1")
    assert record is not None
    assert sorted(record.approvals) == sorted(approvers) and record.status == "approved"
    assert decided.count("approved") == 1


def test_status_moves_only_from_the_expected_status(store: Store) -> None:
    store.put_request(RECORD)
    store.set_status("req1", "approved", expected="pending")
    with pytest.raises(StatusConflict, match="is approved, expected pending"):
        store.set_status("req1", "denied", expected="pending")
    store.set_status("req1", "granted")
    record = store.get_request("req1")
    assert record is not None and record.status == "granted"
    with pytest.raises(RequestNotFound):
        store.set_status("req9", "granted")
    with pytest.raises(ValueError, match="status"):
        store.set_status("req1", "finished")


def test_a_vote_after_the_workflow_moved_the_request_on_is_refused(store: Store) -> None:
    store.put_request(RECORD)
    store.set_status("req1", "expired", expected="pending")
    with pytest.raises(VoteRefused) as err:
        store.record_vote("req1", "alice", "approve")
    assert err.value.reason == "already-decided"


def test_a_record_converts_to_json_ready_data_and_back() -> None:
    data = RECORD.to_dict()
    assert data["approvers"] == ["alice", "carol", "dave"]
    assert RequestRecord.from_dict(data) == RECORD


@mock_aws
def test_the_store_is_configured_from_the_environment() -> None:
    kms = boto3.client("kms")
    create_table(boto3.client("dynamodb"), "from-env")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    store = Store.from_env({ENV_TABLE: "from-env", ENV_KMS_KEY: key})
    store.put_enrollment(ALICE, "JBSWY3DPEHPK3PXP")
    assert store.totp_secret("alice") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(RuntimeError, match=ENV_KMS_KEY):
        Store.from_env({ENV_TABLE: "from-env"})
