"""The approval page in a real browser: headless Chromium, the link from the captured email.

Chromium comes from Debian (``make browser``); this test fails, never skips, without it.
The workflow side is a real moto Step Functions execution waiting on a task token.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pyotp
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from playwright.sync_api import Browser, Page, sync_playwright

from breakglass.lambdas.approvals.api import ApprovalDeps, make_handler
from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.approvals.mail import send_approval_requests
from breakglass.lambdas.approvals.store import RequestRecord, Store, create_table
from breakglass.lambdas.audit.events import AuditWriter, parse_record
from breakglass.local.http_api import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SENDER = "breakglass@example.com"
KEY = b"browser-test-link-key-0123456789abcdef"
REASON = "Fraud model <approves> everything & must be halted"


class SpySfn:
    """Records ``send_task_success`` and passes it on to moto's Step Functions."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def send_task_success(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.client.send_task_success(**kwargs)


@dataclass
class Scene:
    store: Store
    sfn: SpySfn
    s3: Any
    execution_arn: str
    task_token: str
    secrets: dict[str, str]
    links: dict[str, str]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run `make browser` (CI installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


def _wait_for(predicate: Any, what: str) -> Any:
    for _ in range(200):
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _start_waiting_execution(sfn: Any, sqs: Any) -> tuple[str, str]:
    """A real moto execution parked on ``.waitForTaskToken``; returns (execution arn, token)."""
    queue = sqs.create_queue(QueueName="approval-tokens")["QueueUrl"]
    definition = {
        "StartAt": "AwaitApproval",
        "States": {
            "AwaitApproval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="approval", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="reqbrowser")["executionArn"]
    message = _wait_for(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), "the task token")[0]
    return execution, json.loads(message["Body"])["token"]


@pytest.fixture
def scene() -> Iterator[tuple[Scene, str]]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        ddb, kms, s3, ses = (boto3.client(n) for n in ("dynamodb", "kms", "s3", "ses"))
        create_table(ddb, "bg")
        s3.create_bucket(Bucket="audit")
        ses.verify_email_identity(EmailAddress=SENDER)
        store = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])
        secrets = {}
        for user, roles in (("bob", ["responder"]), ("alice", ["approver"]), ("carol", ["approver"])):
            uri = enroll(store, user, f"arn:aws:iam::123456789012:user/{user}", f"{user}@example.com", roles)
            secrets[user] = parse_qs(urlsplit(uri).query)["secret"][0]
        sfn = SpySfn(boto3.client("stepfunctions"))
        execution, token = _start_waiting_execution(sfn.client, boto3.client("sqs"))
        record = RequestRecord(
            request_id="reqbrowser",
            requester="bob",
            requester_arn="arn:aws:iam::123456789012:user/bob",
            tier="fraud-model-halt",
            reason=REASON,
            ticket="INC-2025-0042",
            duration_seconds=2700,
            requested_at="2025-03-01T12:00:00Z",
            status="pending",
            quorum=2,
            approvers=("alice", "carol"),
        )
        store.put_request(record)
        store.set_waiting("reqbrowser", token, ["alice", "carol"], execution_arn=execution)
        deps = ApprovalDeps(store=store, link_key=KEY, sfn=sfn, audit=AuditWriter(s3=s3, bucket="audit"))
        # No configured URL: the Origin check compares with the Host the browser sent.
        with serve(make_handler(deps)) as url:
            send_approval_requests(
                ses,
                KEY,
                _record_of(store),
                [e for e in (store.get_enrollment("alice"), store.get_enrollment("carol")) if e],
                sender=SENDER,
                approval_url=url,
                now=datetime.now(UTC),
                link_ttl_seconds=900,
            )
            links = {}
            for message in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages:
                href = re.search(r'href="([^"]+)"', message.body)
                assert href, "the approval email has no link"
                links[message.destinations["ToAddresses"][0].split("@")[0]] = html.unescape(href.group(1))
            yield Scene(store, sfn, s3, execution, token, secrets, links), url


def _record_of(store: Store) -> RequestRecord:
    record = store.get_request("reqbrowser")
    assert record is not None
    return record


def _record(scene: Scene) -> RequestRecord:
    return _record_of(scene.store)


def _approve_in_browser(page: Page, link: str, secret: str) -> None:
    page.goto(link)
    assert page.locator("#requester").inner_text() == "bob"
    assert page.locator("#tier").inner_text() == "fraud-model-halt"
    assert page.locator("#reason").inner_text() == REASON  # shown as text, not parsed as markup
    assert page.locator("#ticket").inner_text() == "INC-2025-0042"
    assert page.locator("#duration").inner_text() == "45 min"
    page.fill("#totp", pyotp.TOTP(secret).now())
    page.click("#approve")
    page.wait_for_selector("#message")


def test_approvers_open_the_emailed_link_type_their_code_approve_and_the_workflow_proceeds(
    browser: Browser, scene: tuple[Scene, str]
) -> None:
    world, _ = scene
    page = browser.new_page()
    try:
        _approve_in_browser(page, world.links["alice"], world.secrets["alice"])
        assert page.locator("#title").inner_text() == "Approved: your decision was recorded"
        assert "1 of 2 approvals so far" in page.locator("#message").inner_text()
        assert world.sfn.calls == [] and _record(world).approvals == ("alice",)

        _approve_in_browser(page, world.links["carol"], world.secrets["carol"])
        assert page.locator("#title").inner_text() == "Approved: your decision was recorded"
        assert "has all its approvals" in page.locator("#message").inner_text()
    finally:
        page.close()

    record = _record(world)
    assert (record.status, record.approvals) == ("approved", ("alice", "carol"))
    expected_output = {"decision": "approved", "approvals": ["alice", "carol"], "denials": []}
    assert len(world.sfn.calls) == 1
    assert world.sfn.calls[0]["taskToken"] == world.task_token
    assert json.loads(world.sfn.calls[0]["output"]) == expected_output
    sfn = world.sfn.client
    finished = _wait_for(
        lambda: (d := sfn.describe_execution(executionArn=world.execution_arn))["status"] != "RUNNING" and d,
        "the execution to finish",
    )
    assert finished["status"] == "SUCCEEDED" and json.loads(finished["output"]) == expected_output
    keys = [o["Key"] for o in world.s3.list_objects_v2(Bucket="audit")["Contents"]]
    events = [
        parse_record(json.loads(world.s3.get_object(Bucket="audit", Key=k)["Body"].read())) for k in keys
    ]
    assert sorted((e.event_type, e.actor, e.outcome) for e in events) == [
        ("approval", "alice", "succeeded"),
        ("approval", "carol", "succeeded"),
    ]


def test_opening_the_link_in_a_browser_decides_nothing(browser: Browser, scene: tuple[Scene, str]) -> None:
    world, _ = scene
    before = _record(world)
    page = browser.new_page()
    try:
        for _ in range(2):  # a mail scanner and then the person, say
            response = page.goto(world.links["alice"])
            assert response is not None and response.status == 200
            assert page.locator("#request-id").inner_text() == "reqbrowser"
            assert response.headers["x-frame-options"] == "DENY"
    finally:
        page.close()
    after = _record(world)
    assert after == before and after.version == before.version
    assert world.sfn.calls == []
    assert world.sfn.client.describe_execution(executionArn=world.execution_arn)["status"] == "RUNNING"
    assert world.s3.list_objects_v2(Bucket="audit").get("KeyCount", 0) == 0
