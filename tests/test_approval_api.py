"""The approval page and API: GET shows, only a POST with the approver's TOTP decides."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pyotp
import pytest
from emf import captured_metrics
from moto import mock_aws
from test_store import FailingRequestWrites

from breakglass.contracts import (
    ENV_APPROVAL_URL,
    ENV_AUDIT_BUCKET,
    ENV_KMS_KEY,
    ENV_LINK_SECRET_ARN,
    ENV_TABLE,
)
from breakglass.lambdas.approvals import api as approval_api
from breakglass.lambdas.approvals.api import ApprovalDeps, make_handler
from breakglass.lambdas.approvals.links import sign_link
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, Store, create_table
from breakglass.lambdas.approvals.totp import MAX_FAILURES
from breakglass.lambdas.audit.events import AuditWriteError, AuditWriter, parse_record
from breakglass.lambdas.runtime import (
    METRIC_ALERT_PUBLISH_FAILURES,
    METRIC_LINK_REFUSALS,
    METRIC_UNAUTHENTICATED_REFUSALS,
)
from breakglass.local.http_api import build_event

KEY = b"a" * 32
NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
HOST = "approvals.example.com"
ORIGIN = f"https://{HOST}"
SECRETS = {name: pyotp.random_base32() for name in ("alice", "carol", "dave", "erin", "bob")}
RECORD = RequestRecord(
    request_id="req1",
    requester="bob",
    requester_arn="arn:aws:iam::123456789012:user/bob",
    tier="sagemaker-halt",
    reason="<b>endpoint</b> is leaking PII & must stop",
    ticket="INC-1",
    duration_seconds=1800,
    requested_at="2025-03-01T11:59:00Z",
    status="pending",
    quorum=2,
    approvers=("alice", "carol", "dave"),
)


class SpySfn:
    """Records ``send_task_success`` and passes it on to moto's Step Functions."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def send_task_success(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.client.send_task_success(**kwargs)


@dataclass
class World:
    store: Store
    sfn: SpySfn
    deps: ApprovalDeps
    s3: Any

    def handler(self, event: dict[str, Any]) -> dict[str, Any]:
        return make_handler(self.deps)(event, None)

    def audit(self) -> list[dict[str, Any]]:
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="audit").get("Contents", [])]
        events = [
            parse_record(json.loads(self.s3.get_object(Bucket="audit", Key=k)["Body"].read())) for k in keys
        ]
        return [
            {
                "type": e.event_type,
                "actor": e.actor,
                "outcome": e.outcome,
                "request_id": e.request_id,
                **e.details,
            }
            for e in sorted(events, key=lambda e: e.event_time)
        ]

    def audit_keys(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket="audit").get("Contents", [])]

    def with_alerts(self, topic_arn: str | None = None) -> Alerts:
        """Route the audit writer's alerts to a topic whose messages the test can read."""
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        self.deps = replace(
            self.deps, audit=AuditWriter(s3=self.s3, bucket="audit", sns=sns, topic_arn=topic_arn or topic)
        )
        return Alerts(url)


@dataclass
class Alerts:
    url: str

    def received(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        sqs = boto3.client("sqs")
        while True:
            batch = sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                body = json.loads(message["Body"])
                found.append({"subject": body["Subject"], **json.loads(body["Message"])})
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        ddb, kms, s3 = boto3.client("dynamodb"), boto3.client("kms"), boto3.client("s3")
        create_table(ddb, "bg")
        s3.create_bucket(Bucket="audit")
        store = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])
        for user, secret in SECRETS.items():
            roles = ("responder",) if user == "bob" else ("approver",)
            store.put_enrollment(
                Enrollment(user, f"arn:aws:iam::123456789012:user/{user}", f"{user}@example.com", roles),
                secret,
            )
        store.put_request(RECORD)
        store.set_waiting("req1", "task-token-1", RECORD.approvers)
        sfn = SpySfn(boto3.client("stepfunctions"))
        deps = ApprovalDeps(
            store=store,
            link_key=KEY,
            sfn=sfn,
            audit=AuditWriter(s3=s3, bucket="audit"),
            approval_url=ORIGIN,
            clock=lambda: NOW,
        )
        yield World(store, sfn, deps, s3)


def link(
    approver: str, request_id: str = "req1", *, expires_at: datetime | None = None, key: bytes = KEY
) -> str:
    return sign_link(
        key, request_id=request_id, approver=approver, expires_at=expires_at or NOW + timedelta(hours=1)
    )


def code(user: str, at: datetime = NOW) -> str:
    return pyotp.TOTP(SECRETS[user]).at(at)


def get(world: World, token: str, request_id: str = "req1", method: str = "GET") -> dict[str, Any]:
    target = f"/requests/{request_id}?{urlencode({'token': token})}"
    return world.handler(build_event(method, target, {"host": HOST, "user-agent": "pytest"}, b""))


def post(
    world: World,
    token: str,
    totp: str,
    decision: str = "approve",
    *,
    request_id: str = "req1",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = urlencode({"token": token, "totp": totp, "decision": decision}).encode()
    sent = {"host": HOST, "origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}
    sent.update(headers or {})
    return world.handler(build_event("POST", f"/requests/{request_id}", sent, body))


def title(response: dict[str, Any]) -> str:
    match = re.search(r'<h1 id="title">(.*?)</h1>', response["body"])
    assert match, response["body"]
    return match.group(1)


def stored(world: World) -> RequestRecord:
    record = world.store.get_request("req1")
    assert record is not None
    return record


# --- GET: show, never decide -------------------------------------------------------------------


def test_opening_the_link_shows_the_escaped_details_and_a_post_form(world: World) -> None:
    token = link("alice")
    response = get(world, token)
    body = response["body"]
    assert response["statusCode"] == 200
    for detail in (
        "bob",
        "sagemaker-halt",
        "INC-1",
        "30 min",
        "2025-03-01T11:59:00Z",
        "req1",
        "0 of 2 needed",
    ):
        assert detail in body
    assert "&lt;b&gt;endpoint&lt;/b&gt; is leaking PII &amp; must stop" in body and "<b>endpoint" not in body
    assert '<form method="post" action="req1"' in body
    assert f'name="token" value="{token}"' in body
    assert 'name="decision" value="approve"' in body and 'name="decision" value="deny"' in body


def test_opening_the_link_changes_nothing(world: World) -> None:
    before = stored(world)
    for method in ("GET", "HEAD", "GET"):
        assert get(world, link("alice"), method=method)["statusCode"] == 200
    assert stored(world) == before and stored(world).version == before.version
    assert world.sfn.calls == [] and world.audit() == []
    # The code was not consumed and the link not spent: the decision still works.
    assert post(world, link("alice"), code("alice"))["statusCode"] == 200


def test_head_returns_headers_only(world: World) -> None:
    response = get(world, link("alice"), method="HEAD")
    assert response["statusCode"] == 200 and response["body"] == ""


def test_every_page_carries_the_security_headers_and_no_inline_script(world: World) -> None:
    for response in (get(world, link("alice")), get(world, "garbage"), post(world, link("alice"), "000000")):
        headers = response["headers"]
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert "unsafe-inline" not in csp and "script-src" not in csp
        assert headers["cache-control"] == "no-store"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["strict-transport-security"].startswith("max-age=31536000")
        assert "<script" not in response["body"]
        style = re.search(r"<style>(.*?)</style>", response["body"], re.S)
        assert style
        digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


# --- POST: decisions --------------------------------------------------------------------------


def test_quorum_two_is_reached_by_two_distinct_approvers_and_resumes_the_workflow(world: World) -> None:
    first = post(world, link("alice"), code("alice"))
    assert first["statusCode"] == 200 and "1 of 2 approvals" in first["body"]
    assert stored(world).status == "pending" and world.sfn.calls == []

    second = post(world, link("carol"), code("carol"))
    assert second["statusCode"] == 200 and title(second) == "Approved: your decision was recorded"
    assert stored(world).status == "approved" and stored(world).approvals == ("alice", "carol")
    assert world.sfn.calls == [
        {
            "taskToken": "task-token-1",
            "output": json.dumps({"decision": "approved", "approvals": ["alice", "carol"], "denials": []}),
        }
    ]
    events = world.audit()
    # Same-second events have no order in the bucket: compare as a sorted list.
    assert sorted((e["type"], e["actor"], e["outcome"], e["status"]) for e in events) == [
        ("approval", "alice", "succeeded", "pending"),
        ("approval", "carol", "succeeded", "approved"),
    ]


def test_one_denial_decides_and_resumes_the_workflow_with_denied(world: World) -> None:
    response = post(world, link("dave"), code("dave"), "deny")
    assert response["statusCode"] == 200 and title(response) == "Denied: your decision was recorded"
    assert stored(world).status == "denied"
    assert json.loads(world.sfn.calls[0]["output"]) == {
        "decision": "denied",
        "approvals": [],
        "denials": ["dave"],
    }
    assert [(e["type"], e["actor"], e["outcome"]) for e in world.audit()] == [("denial", "dave", "succeeded")]


def test_after_a_denial_other_approvers_see_the_request_is_decided(world: World) -> None:
    post(world, link("dave"), code("dave"), "deny")
    shown = get(world, link("alice"))
    assert shown["statusCode"] == 409 and title(shown) == "This request is already decided"
    assert "The request is denied." in shown["body"]
    refused = post(world, link("alice"), code("alice"))
    assert refused["statusCode"] == 409 and stored(world).approvals == ()
    assert len(world.sfn.calls) == 1


def _refused(world: World, response: dict[str, Any], status: int, heading: str) -> None:
    assert response["statusCode"] == status, response["body"]
    assert title(response) == heading
    assert stored(world).approvals == () and stored(world).status == "pending"
    assert world.sfn.calls == []


def test_a_forged_link_is_refused_and_counted_but_writes_nothing(world: World) -> None:
    with captured_metrics() as metrics:
        response = post(world, link("alice", key=b"z" * 32), code("alice"))
        _refused(world, response, 403, "This link is not valid")
        assert get(world, link("alice", key=b"z" * 32))["statusCode"] == 403
    assert world.audit() == []
    assert metrics.counts() == {(METRIC_UNAUTHENTICATED_REFUSALS, "forged"): 2}


def test_an_expired_link_is_refused(world: World) -> None:
    expired = link("alice", expires_at=NOW - timedelta(seconds=1))
    _refused(world, get(world, expired), 410, "This link has expired")
    _refused(world, post(world, expired, code("alice")), 410, "This link has expired")


def test_a_used_link_cannot_decide_again(world: World) -> None:
    token = link("alice")
    world.store.claim_link(  # spent by an earlier POST whose vote then lost a race
        approval_api.verify_link(KEY, token, now=NOW).jti, 2_000_000_000
    )
    _refused(world, get(world, token), 409, "This link was already used")
    _refused(world, post(world, token, code("alice")), 409, "This link was already used")


def test_a_link_reused_after_its_vote_is_refused(world: World) -> None:
    token = link("alice")
    assert post(world, token, code("alice"))["statusCode"] == 200
    later = NOW + timedelta(seconds=30)
    again = post(world, token, code("alice", later))
    assert again["statusCode"] == 409 and title(again) == "This link was already used"
    assert stored(world).approvals == ("alice",)


def test_a_link_for_another_request_is_refused(world: World) -> None:
    world.store.put_request(replace(RECORD, request_id="req2"))
    _refused(
        world, post(world, link("alice", "req2"), code("alice")), 403, "This link belongs to another request"
    )
    _refused(world, get(world, link("alice", "req2")), 403, "This link belongs to another request")


def test_a_link_for_someone_who_is_not_an_approver_is_refused(world: World) -> None:
    response = post(world, link("erin"), code("erin"))
    _refused(world, response, 403, "This link was issued to someone who is not an approver of this request")
    assert world.audit()[0]["actor"] == "erin" and world.audit()[0]["refused"] == "wrong-approver"


def test_the_requester_cannot_approve_their_own_request_even_with_a_valid_link(world: World) -> None:
    response = post(world, link("bob"), code("bob"))
    _refused(world, response, 403, "You cannot approve your own request")
    assert [(e["actor"], e["refused"]) for e in world.audit()] == [("bob", "self-approval")]


def _enroll(world: World, user: str, arn: str, email: str, roles: tuple[str, ...] = ("approver",)) -> str:
    secret = pyotp.random_base32()
    world.store.put_enrollment(Enrollment(user, arn, email, roles), secret)
    return pyotp.TOTP(secret).at(NOW)


@pytest.mark.parametrize(
    ("arn", "email"),
    [
        (RECORD.requester_arn, "robert@example.com"),  # bob's own IAM principal under another id
        (RECORD.requester_arn.replace("bob", "BOB"), "robert@example.com"),
        ("arn:aws:iam::123456789012:user/robert", "Bob@Example.com"),  # bob's mailbox
    ],
)
def test_the_requester_enrolled_under_another_id_cannot_approve(world: World, arn: str, email: str) -> None:
    totp = _enroll(world, "robert", arn, email)
    world.store.put_request(replace(RECORD, request_id="req7", approvers=("robert", "alice")))
    token = link("robert", "req7")
    shown = get(world, token, "req7")
    assert shown["statusCode"] == 403 and title(shown) == "You cannot approve your own request"
    refused = post(world, token, totp, request_id="req7")
    assert refused["statusCode"] == 403 and title(refused) == "You cannot approve your own request"
    record = world.store.get_request("req7")
    assert record is not None and record.approvals == () and world.sfn.calls == []
    assert [(e["actor"], e["refused"]) for e in world.audit()] == [("robert", "self-approval")]


def test_an_approver_whose_approving_role_was_removed_cannot_use_an_old_link(world: World) -> None:
    totp = _enroll(
        world, "carol", "arn:aws:iam::123456789012:user/carol", "carol@example.com", ("responder",)
    )
    response = post(world, link("carol"), totp)
    _refused(world, response, 403, "You are not an approver of this request")
    assert [(e["actor"], e["refused"]) for e in world.audit()] == [("carol", "not-an-approver")]


def test_wrong_codes_are_rate_limited_counted_each_and_audited_once_per_reason(world: World) -> None:
    token = link("alice")
    wrong = f"{(int(code('alice')) + 500_000) % 1_000_000:06d}"
    with captured_metrics() as metrics:
        for _ in range(MAX_FAILURES):
            assert post(world, token, wrong)["statusCode"] == 403
        limited = post(world, token, code("alice"))
        post(world, token, code("alice"))
    _refused(world, limited, 429, "Break-glass request by bob")
    assert "too many wrong codes" in limited["body"]
    refusals = [e["refused"] for e in world.audit()]
    assert sorted(refusals) == ["totp-rate-limited", "totp-wrong"]
    assert metrics.counts() == {
        (METRIC_LINK_REFUSALS, "totp-wrong"): MAX_FAILURES,
        (METRIC_LINK_REFUSALS, "totp-rate-limited"): 2,
    }


def test_a_wrong_code_shows_the_form_again_and_leaves_the_link_usable(world: World) -> None:
    token = link("alice")
    wrong = f"{(int(code('alice')) + 1) % 1_000_000:06d}"
    response = post(world, token, wrong)
    _refused(world, response, 403, "Break-glass request by bob")
    assert "the code is wrong" in response["body"] and 'id="decision-form"' in response["body"]
    assert world.audit()[0]["refused"] == "totp-wrong"
    assert post(world, token, code("alice"))["statusCode"] == 200


def test_another_approvers_code_does_not_work(world: World) -> None:
    _refused(world, post(world, link("alice"), code("carol")), 403, "Break-glass request by bob")


def test_a_replayed_code_is_refused(world: World) -> None:
    world.store.put_request(replace(RECORD, request_id="req2"))
    assert post(world, link("alice"), code("alice"))["statusCode"] == 200
    response = post(world, link("alice", "req2"), code("alice"), request_id="req2")
    assert response["statusCode"] == 403 and "already used" in response["body"]
    assert [e["refused"] for e in world.audit() if e["outcome"] == "failed"] == ["totp-replayed"]
    other = world.store.get_request("req2")
    assert other is not None and other.approvals == ()


def test_a_malformed_code_is_a_bad_request(world: World) -> None:
    _refused(world, post(world, link("alice"), "12ab"), 400, "Break-glass request by bob")


def test_an_approver_without_enrollment_is_told_to_enroll(world: World) -> None:
    world.store.put_request(replace(RECORD, request_id="req3", approvers=("frank",)))
    response = post(world, link("frank", "req3"), "123456", request_id="req3")
    assert response["statusCode"] == 403 and title(response) == "You are not enrolled"


def test_a_missing_request_is_not_found(world: World) -> None:
    response = get(world, link("alice", "req404"), request_id="req404")
    assert response["statusCode"] == 404 and title(response) == "No such request"


# --- CSRF, form and routing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"origin": "https://evil.example.net"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}],
)
def test_a_post_from_another_site_is_refused(world: World, headers: dict[str, str]) -> None:
    _refused(world, post(world, link("alice"), code("alice"), headers=headers), 403, "Request refused")
    assert world.audit()[0]["refused"] == "cross-site"


def test_a_same_host_origin_is_accepted_without_a_configured_url(world: World) -> None:
    world.deps = replace(world.deps, approval_url=None)
    headers = {"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080", "sec-fetch-site": "same-origin"}
    assert post(world, link("alice"), code("alice"), headers=headers)["statusCode"] == 200


def test_a_post_without_origin_still_needs_the_signed_token(world: World) -> None:
    event = build_event(
        "POST",
        "/requests/req1",
        {"host": HOST, "content-type": "application/x-www-form-urlencoded"},
        urlencode({"totp": code("alice"), "decision": "approve"}).encode(),
    )
    _refused(world, world.handler(event), 400, "Incomplete form")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", json.dumps({"token": "t", "totp": "123456", "decision": "approve"}).encode()),
        ("application/x-www-form-urlencoded", b"token=t&totp=123456&decision=yes"),
        ("application/x-www-form-urlencoded", b"x" * 9000),
    ],
)
def test_a_post_that_is_not_the_decision_form_is_a_bad_request(
    world: World, content_type: str, body: bytes
) -> None:
    event = build_event("POST", "/requests/req1", {"host": HOST, "content-type": content_type}, body)
    _refused(world, world.handler(event), 400, "Incomplete form")


def test_other_methods_and_paths_decide_nothing(world: World) -> None:
    assert world.handler(build_event("PUT", "/requests/req1", {"host": HOST}, b""))["statusCode"] == 405
    assert world.handler(build_event("GET", "/admin", {"host": HOST}, b""))["statusCode"] == 404
    assert world.sfn.calls == []


def test_a_stage_prefix_in_the_path_is_understood(world: World) -> None:
    target = f"/prod/requests/req1?{urlencode({'token': link('alice')})}"
    assert world.handler(build_event("GET", target, {"host": HOST}, b""))["statusCode"] == 200


# --- failures are never hidden ------------------------------------------------------------------


def test_an_audit_failure_stops_the_decision_before_the_workflow_hears_of_it(world: World) -> None:
    assert post(world, link("alice"), code("alice"))["statusCode"] == 200
    world.deps = replace(world.deps, audit=AuditWriter(s3=world.s3, bucket="no-such-bucket"))
    with pytest.raises(AuditWriteError):
        post(world, link("carol"), code("carol"))
    assert world.sfn.calls == []
    # The unrecorded vote does not count: the request still waits, as the workflow believes.
    assert stored(world).status == "pending" and stored(world).approvals == ("alice",)


def test_a_vote_whose_audit_write_fails_is_taken_back_and_its_link_works_again(world: World) -> None:
    token = link("alice")
    world.deps = replace(world.deps, audit=AuditWriter(s3=world.s3, bucket="no-such-bucket"))
    with pytest.raises(AuditWriteError):
        post(world, token, code("alice"))
    assert stored(world).approvals == () and stored(world).status == "pending"
    later = NOW + timedelta(seconds=30)
    world.deps = replace(world.deps, audit=AuditWriter(s3=world.s3, bucket="audit"), clock=lambda: later)
    assert get(world, token)["statusCode"] == 200
    assert post(world, token, code("alice", later))["statusCode"] == 200
    assert stored(world).approvals == ("alice",)
    assert [(e["actor"], e["outcome"]) for e in world.audit()] == [("alice", "succeeded")]
    assert post(world, token, code("alice", later + timedelta(seconds=30)))["statusCode"] == 409


def test_a_deciding_vote_before_any_task_waits_is_kept_for_the_workflow_to_take(world: World) -> None:
    world.store.put_request(replace(RECORD, request_id="req5", quorum=1))
    response = post(world, link("alice", "req5"), code("alice"), request_id="req5")
    assert response["statusCode"] == 200, response
    assert world.store.get_request("req5").status == "approved"  # type: ignore[union-attr]
    # Nothing to answer yet: AwaitApproval hands this decision to its task when it starts waiting.
    assert world.sfn.calls == []


# --- the deployed entry point --------------------------------------------------------------------


def test_the_lambda_handler_is_configured_from_its_environment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_arn = boto3.client("secretsmanager").create_secret(Name="link-key", SecretBinary=KEY)["ARN"]
    for name, value in {
        ENV_TABLE: "bg",
        ENV_KMS_KEY: world.store.kms_key_id,
        ENV_LINK_SECRET_ARN: secret_arn,
        ENV_AUDIT_BUCKET: "audit",
        ENV_APPROVAL_URL: ORIGIN,
    }.items():
        monkeypatch.setenv(name, value)
    now = datetime.now(UTC)
    token = sign_link(KEY, request_id="req1", approver="alice", expires_at=now + timedelta(hours=1))
    shown = approval_api.handler(
        build_event("GET", f"/requests/req1?token={token}", {"host": HOST}, b""), None
    )
    assert shown["statusCode"] == 200
    body = urlencode(
        {"token": token, "totp": pyotp.TOTP(SECRETS["alice"]).now(), "decision": "deny"}
    ).encode()
    headers = {"host": HOST, "origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}
    decided = approval_api.handler(build_event("POST", "/requests/req1", headers, body), None)
    assert decided["statusCode"] == 200, decided["body"]
    assert stored(world).status == "denied"
    assert [(e["type"], e["actor"]) for e in world.audit()] == [("denial", "alice")]


class ClosedRoundSfn(SpySfn):
    """Step Functions answering as AWS does when the waiting task's deadline has already passed."""

    def __init__(self, code: str) -> None:
        super().__init__(client=None)
        self.code = code

    def send_task_success(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls.append(kwargs)
        raise ClientError({"Error": {"Code": self.code, "Message": "closed"}}, "SendTaskSuccess")


@pytest.mark.parametrize("error_code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_deciding_vote_that_reaches_a_closed_round_is_kept_and_explained_not_a_server_error(
    world: World, error_code: str
) -> None:
    world.deps = replace(world.deps, sfn=ClosedRoundSfn(error_code))
    response = post(world, link("dave"), code("dave"), "deny")
    assert response["statusCode"] == 409, response["body"]
    assert title(response) == "Your vote came after the approval deadline"
    assert stored(world).status == "denied" and stored(world).denials == ("dave",)
    assert sorted((e["type"], e["actor"], e["outcome"]) for e in world.audit()) == [
        ("denial", "dave", "failed"),
        ("denial", "dave", "succeeded"),
    ]


def test_any_other_step_functions_error_on_resume_is_raised(world: World) -> None:
    from botocore.exceptions import ClientError

    world.deps = replace(world.deps, sfn=ClosedRoundSfn("AccessDeniedException"))
    with pytest.raises(ClientError):
        post(world, link("dave"), code("dave"), "deny")


# --- the internet cannot write the locked bucket or page security (review finding 3) ----------


def _junk_events() -> dict[str, dict[str, Any]]:
    form = {"host": HOST, "origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}

    def posted(path: str, body: dict[str, str], headers: dict[str, str] = form) -> dict[str, Any]:
        return build_event("POST", path, headers, urlencode(body).encode())

    vote = {"totp": "123456", "decision": "approve"}
    return {
        "malformed": posted("/requests/req1", {**vote, "token": "junk"}),
        "forged": posted("/requests/req1", {**vote, "token": link("alice", key=b"z" * 32)}),
        "expired": posted(
            "/requests/req1", {**vote, "token": link("alice", expires_at=NOW - timedelta(seconds=1))}
        ),
        "cross-site": posted(
            "/requests/req1", {**vote, "token": "junk"}, {**form, "origin": "https://evil.example.net"}
        ),
        "bad-form": posted("/requests/req1", {"token": "junk", "decision": "maybe"}),
        "no-route": posted("/requests/REQ1%0aSubject:%20pwned", {**vote, "token": "junk"}),
        "method": build_event("DELETE", "/requests/req1", {"host": HOST}, b""),
        "bad-event": {
            "requestContext": {"http": {"method": "POST"}},
            "body": 12,
            "rawPath": "/requests/req1",
        },
    }


@pytest.mark.parametrize("reason", sorted(_junk_events()))
def test_a_refusal_without_a_genuine_link_writes_no_locked_object_and_sends_no_alert(
    world: World, reason: str
) -> None:
    alerts = world.with_alerts()
    with captured_metrics() as metrics:
        response = world.handler(_junk_events()[reason])
    assert response["statusCode"] in (400, 403, 404, 405, 410)
    assert world.audit_keys() == [] and alerts.received() == []
    assert metrics.counts() == {(METRIC_UNAUTHENTICATED_REFUSALS, reason): 1}
    (line,) = metrics.lines
    assert line["Reason"] == reason and "Subject" not in json.dumps(line.get("path_request_id"))
    assert stored(world).approvals == () and world.sfn.calls == []


def test_a_flood_of_junk_posts_is_counted_and_stores_nothing(world: World) -> None:
    alerts = world.with_alerts()
    events = _junk_events()
    with captured_metrics() as metrics:
        for i in range(200):
            world.handler(events[sorted(events)[i % len(events)]])
    assert world.audit_keys() == [] and alerts.received() == []
    assert metrics.total(METRIC_UNAUTHENTICATED_REFUSALS) == 200


def test_the_paths_request_id_never_becomes_the_request_id_of_a_record(world: World) -> None:
    world.store.put_request(replace(RECORD, request_id="victim"))
    with captured_metrics() as metrics:
        refused = post(world, link("alice"), code("alice"), request_id="victim")
    assert refused["statusCode"] == 403 and title(refused) == "This link belongs to another request"
    # On record under the request the link was signed for, not the one the attacker typed.
    assert [(e["request_id"], e["refused"]) for e in world.audit()] == [("req1", "cross-request")]
    assert all("victim" not in key for key in world.audit_keys())
    assert metrics.counts() == {(METRIC_LINK_REFUSALS, "cross-request"): 1}


def test_a_leaked_link_replayed_many_times_is_audited_once_per_reason(world: World) -> None:
    token = link("alice")
    assert post(world, token, code("alice"))["statusCode"] == 200
    with captured_metrics() as metrics:
        for i in range(1, 21):
            replay = post(world, token, code("alice", NOW + timedelta(seconds=30 * i)))
            assert replay["statusCode"] == 409 and title(replay) == "This link was already used"
    assert sorted((e["outcome"], e.get("refused")) for e in world.audit()) == [
        ("failed", "used"),
        ("succeeded", None),
    ]
    assert metrics.counts() == {(METRIC_LINK_REFUSALS, "used"): 20}


def test_only_an_attempt_to_approve_ones_own_request_alerts_at_once(world: World) -> None:
    alerts = world.with_alerts()
    own = link("bob")
    post(world, own, code("bob"))  # the requester with a genuine link: alert now
    post(world, own, code("bob", NOW + timedelta(seconds=30)))  # once per link and reason
    post(world, link("erin"), code("erin"))  # not an approver of this request: aggregated
    post(world, link("alice"), f"{(int(code('alice')) + 1) % 1_000_000:06d}")  # a wrong code
    received = alerts.received()
    assert [(a["subject"], a["actor"], json.loads(a["details"])["refused"]) for a in received] == [
        ("break-glass approval: failed", "bob", "self-approval")
    ]
    assert sorted(e.get("refused") for e in world.audit()) == [
        "self-approval",
        "totp-wrong",
        "wrong-approver",
    ]


def test_a_refusal_whose_audit_write_fails_is_recorded_on_the_next_attempt(world: World) -> None:
    own = link("bob")
    world.deps = replace(world.deps, audit=AuditWriter(s3=world.s3, bucket="no-such-bucket"))
    with pytest.raises(AuditWriteError):
        post(world, own, code("bob"))
    world.deps = replace(world.deps, audit=AuditWriter(s3=world.s3, bucket="audit"))
    post(world, own, code("bob", NOW + timedelta(seconds=30)))
    assert [(e["actor"], e["refused"]) for e in world.audit()] == [("bob", "self-approval")]


def test_a_cross_site_post_with_a_genuine_link_is_on_record_once_and_alerts(world: World) -> None:
    alerts = world.with_alerts()
    token = link("alice")
    for _ in range(3):
        response = post(world, token, code("alice"), headers={"origin": "https://evil.example.net"})
        _refused(world, response, 403, "Request refused")
    assert [(e["actor"], e["refused"]) for e in world.audit()] == [("alice", "cross-site")]
    assert [a["actor"] for a in alerts.received()] == ["alice"]


# --- the record and the state never disagree (review finding 9) -------------------------------


def test_a_failed_alert_never_takes_back_a_vote_whose_record_is_stored(world: World) -> None:
    world.with_alerts(topic_arn="arn:aws:sns:us-east-1:123456789012:deleted-topic")
    with captured_metrics() as metrics:
        first = post(world, link("alice"), code("alice"))
        second = post(world, link("carol"), code("carol"))
    assert first["statusCode"] == 200 and second["statusCode"] == 200
    assert stored(world).status == "approved" and stored(world).approvals == ("alice", "carol")
    assert len(world.sfn.calls) == 1
    assert sorted((e["actor"], e["status"]) for e in world.audit()) == [
        ("alice", "pending"),
        ("carol", "approved"),
    ]
    assert metrics.counts(METRIC_ALERT_PUBLISH_FAILURES) == {(METRIC_ALERT_PUBLISH_FAILURES, "NotFound"): 2}


# --- a link is spent only with its vote (suspected item a) -------------------------------------


def test_a_vote_that_fails_after_its_link_would_be_claimed_leaves_the_link_usable(world: World) -> None:
    token = link("alice")
    failing = Store(FailingRequestWrites(world.store.dynamodb), "bg", world.store.kms, world.store.kms_key_id)
    healthy = world.deps
    world.deps = replace(healthy, store=failing)
    with pytest.raises(Exception, match="injected"):
        post(world, token, code("alice"))
    assert stored(world).approvals == () and world.audit() == []
    later = NOW + timedelta(seconds=30)
    world.deps = replace(healthy, clock=lambda: later)
    assert get(world, token)["statusCode"] == 200
    assert post(world, token, code("alice", later))["statusCode"] == 200
    assert stored(world).approvals == ("alice",)


def test_metric_lines_name_no_text_from_the_request(world: World) -> None:
    hostile = build_event(
        "POST",
        "/requests/req1",
        {
            "host": HOST,
            "origin": ORIGIN,
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": "x" * 5000,
        },
        urlencode({"token": "A" * 3000, "totp": "1", "decision": "approve"}).encode(),
    )
    with captured_metrics() as metrics:
        world.handler(hostile)
    (line,) = metrics.lines
    assert line["Reason"] == "malformed" and len(line["user_agent"]) <= 200
    assert "A" * 100 not in json.dumps(line)


def test_an_unparsable_origin_is_refused_as_cross_site_not_a_server_error(world: World) -> None:
    with captured_metrics() as metrics:
        response = post(world, "junk", "123456", headers={"origin": "http://[::1"})
    assert response["statusCode"] == 403 and title(response) == "Request refused"
    assert metrics.counts() == {(METRIC_UNAUTHENTICATED_REFUSALS, "cross-site"): 1}
