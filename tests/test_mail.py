"""Approval emails: one personal signed link per approver, all details, user text escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from breakglass.lambdas.approvals.links import verify_link
from breakglass.lambdas.approvals.mail import (
    QUOTE,
    Notice,
    auto_approve_notice,
    denial_notice,
    grant_notice,
    human_duration,
    one_line,
    quoted,
    send_approval_requests,
    send_notice,
)
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord
from breakglass.lambdas.approvals.templates import escape, plain_text
from breakglass.validation import ConfigError

KEY = b"m" * 32
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SENDER = "breakglass@example.com"
URL = "https://approvals.example.com/"
ALICE = Enrollment("alice", "arn:aws:iam::123456789012:user/alice", "alice@example.com", ("approver",))
CAROL = Enrollment("carol", "arn:aws:iam::123456789012:user/carol", "carol@example.com", ("security",))
RECORD = RequestRecord(
    request_id="req42",
    requester="bob",
    requester_arn="arn:aws:iam::123456789012:user/bob",
    tier="bedrock-halt",
    reason='<script>alert("x")</script> & the model is misbehaving',
    ticket="INC-7",
    duration_seconds=5400,
    requested_at="2025-03-01T11:59:00Z",
    status="pending",
    quorum=2,
    approvers=("alice", "carol"),
)


class RecordingSes:
    """Passes calls to moto's SES and keeps their arguments (moto keeps only the HTML part)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def send_email(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.client.send_email(**kwargs)


@pytest.fixture
def ses() -> Iterator[RecordingSes]:
    with mock_aws():
        client = boto3.client("ses")
        client.verify_email_identity(EmailAddress=SENDER)
        yield RecordingSes(client)


def sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def _send(
    ses: RecordingSes, record: RequestRecord = RECORD, approvers: tuple[Enrollment, ...] = (ALICE, CAROL)
) -> list[str]:
    return send_approval_requests(
        ses, KEY, record, approvers, sender=SENDER, approval_url=URL, now=NOW, link_ttl_seconds=3600
    )


def link_in(body: str) -> str:
    match = re.search(r'href="([^"]+)"', body)
    assert match, "no link in the email"
    return html.unescape(match.group(1))


def test_each_approver_gets_one_email_with_a_link_signed_for_them(ses: RecordingSes) -> None:
    ids = _send(ses)
    messages = sent()
    assert [m.id for m in messages] == ids
    assert [m.destinations["ToAddresses"] for m in messages] == [["alice@example.com"], ["carol@example.com"]]
    for message, approver in zip(messages, ("alice", "carol"), strict=True):
        url = urlsplit(link_in(message.body))
        assert f"{url.scheme}://{url.netloc}{url.path}" == "https://approvals.example.com/requests/req42"
        claims = verify_link(KEY, unquote(parse_qs(url.query)["token"][0]), now=NOW, request_id="req42")
        assert claims.approver == approver
        assert claims.expires_at == NOW + timedelta(hours=1)


def test_the_html_part_shows_every_detail_and_escapes_user_text(ses: RecordingSes) -> None:
    _send(ses)
    body = sent()[0].body
    for detail in (
        "bob",
        "bedrock-halt",
        "INC-7",
        "1 h 30 min",
        "2025-03-01T11:59:00Z",
        "req42",
        "2025-03-01T13:00:00Z",
    ):
        assert detail in body
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; the model is misbehaving" in body


def test_the_text_part_has_the_same_details_and_the_same_link(ses: RecordingSes) -> None:
    _send(ses)
    call = ses.calls[0]
    text = call["Message"]["Body"]["Text"]["Data"]
    assert RECORD.reason in text and "INC-7" in text and "1 h 30 min" in text and "bedrock-halt" in text
    assert link_in(call["Message"]["Body"]["Html"]["Data"]) in text
    assert "decides nothing" in text


def test_a_multi_line_reason_cannot_pose_as_the_emails_own_link_in_the_text_part(ses: RecordingSes) -> None:
    reason = "model is misbehaving\n\nReview and decide (approve or deny with your authenticator code):\nhttps://evil.example/x"
    _send(ses, replace(RECORD, reason=reason), (ALICE,))
    text = ses.calls[0]["Message"]["Body"]["Text"]["Data"]
    margin = [line for line in text.splitlines() if line.startswith(("Review and decide", "https://"))]
    assert len(margin) == 2 and margin[1].startswith(URL)
    assert "https://evil.example/x" in text


@pytest.mark.parametrize("brk", ["\r\n", "\u2028", "\x85", "\x0b"])
def test_the_subject_names_requester_and_tier_and_cannot_carry_line_breaks(
    ses: RecordingSes, brk: str
) -> None:
    _send(ses, replace(RECORD, requester="bob", tier=f"tier{brk}Bcc: evil@example.com"), (ALICE,))
    subject = ses.calls[0]["Message"]["Subject"]["Data"]
    assert subject.splitlines() == [subject] and "\x0b" not in subject
    assert subject.startswith("Break-glass request by bob")


def test_a_request_without_ticket_says_none(ses: RecordingSes) -> None:
    _send(ses, replace(RECORD, ticket=None), (ALICE,))
    assert "(none)" in sent()[0].body


@pytest.mark.parametrize(
    ("approvers", "field", "problem"),
    [
        (
            (Enrollment("bob", RECORD.requester_arn, "bob@example.com", ("approver",)),),
            "approvers[0]",
            "own request",
        ),
        (
            (Enrollment("Bob", RECORD.requester_arn, "bob@example.com", ("approver",)),),
            "approvers[0]",
            "own request",
        ),
        ((ALICE, replace(CAROL, user="erin")), "approvers[1]", "not an approver"),
        ((replace(ALICE, roles=("responder",)),), "approvers[0]", "no approving role"),
    ],
)
def test_no_link_is_sent_to_someone_who_could_not_use_it(
    ses: RecordingSes, approvers: tuple[Enrollment, ...], field: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as err:
        _send(ses, RECORD, approvers)
    assert err.value.field == field
    assert sent() == []


def test_link_lifetime_and_approval_url_are_validated(ses: RecordingSes) -> None:
    with pytest.raises(ConfigError, match="link_ttl_seconds"):
        send_approval_requests(
            ses, KEY, RECORD, (ALICE,), sender=SENDER, approval_url=URL, now=NOW, link_ttl_seconds=10
        )
    with pytest.raises(ConfigError, match="approval_url"):
        send_approval_requests(
            ses, KEY, RECORD, (ALICE,), sender=SENDER, approval_url="ftp://x", now=NOW, link_ttl_seconds=600
        )


def test_an_unverified_sender_is_an_error_not_a_silent_drop(ses: RecordingSes) -> None:
    with pytest.raises(Exception, match="not verified"):
        send_approval_requests(
            ses,
            KEY,
            RECORD,
            (ALICE,),
            sender="other@example.com",
            approval_url=URL,
            now=NOW,
            link_ttl_seconds=600,
        )


def test_a_notice_goes_to_all_recipients_with_both_parts(ses: RecordingSes) -> None:
    message_id = send_notice(
        ses,
        sender=SENDER,
        to=["a@example.com", "b@example.com"],
        subject="Granted",
        text="t",
        html="<p>h</p>",
    )
    (message,) = sent()
    assert message.id == message_id and message.destinations["ToAddresses"] == [
        "a@example.com",
        "b@example.com",
    ]
    assert ses.calls[0]["Message"]["Body"]["Text"]["Data"] == "t"
    with pytest.raises(ConfigError, match="to"):
        send_notice(ses, sender=SENDER, to=[], subject="x", text="t", html="h")


@pytest.mark.parametrize(
    ("seconds", "text"), [(900, "15 min"), (3600, "1 h"), (5400, "1 h 30 min"), (45, "45 s")]
)
def test_durations_read_naturally(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


# --- one escaping routine for every email (review finding 11) ----------------------------------

HOSTILE_REASON = (
    "model is misbehaving\n"
    "\n"
    "Request:        req999 APPROVED by security\n"
    "Review and decide: https://evil.example/approve\r\n"
    "\x1b[31mSYSTEM: no action needed\u2028\u202egnp.exe\x00\x07\tend"
)
HOSTILE = replace(RECORD, reason=HOSTILE_REASON, quorum=0)


def _margin_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(QUOTE)]


def _assert_quoted(text: str) -> None:
    """Every fragment of the hostile reason appears, but only inside the quoted block."""
    for fragment in ("Request:        req999", "Review and decide: https://evil.example", "SYSTEM:"):
        assert fragment in text
        assert not any(fragment in line for line in _margin_lines(text)), fragment
    for hidden in ("\x1b", "\x00", "\x07", "\u202e", "\u2028", "\r"):
        assert hidden not in text


@pytest.mark.parametrize(
    "notice",
    [
        auto_approve_notice(HOSTILE),
        denial_notice(replace(HOSTILE, denials=("alice",)), "denied"),
        denial_notice(HOSTILE, "timed_out"),
        grant_notice(
            HOSTILE, {"role_arn": "arn:aws:iam::123456789012:role/x", "expires_at": "2025-03-01T13:00:00Z"}
        ),
    ],
    ids=["auto-approve", "denied", "timed-out", "granted"],
)
def test_every_notice_quotes_each_line_of_the_reason_and_strips_hidden_characters(notice: Notice) -> None:
    _assert_quoted(notice.text)
    assert "<script" not in notice.html and "\u202e" not in notice.html and "\x1b" not in notice.html
    assert "req42" in notice.html and "req42" in notice.text
    assert notice.subject.splitlines() == [notice.subject]


def test_the_approval_request_text_quotes_each_line_of_the_reason(ses: RecordingSes) -> None:
    _send(ses, replace(RECORD, reason=HOSTILE_REASON), (ALICE,))
    _assert_quoted(ses.calls[0]["Message"]["Body"]["Text"]["Data"])
    assert "\u202e" not in ses.calls[0]["Message"]["Body"]["Html"]["Data"]


def test_a_quoted_block_marks_blank_lines_too_so_the_quote_cannot_be_ended() -> None:
    assert quoted("a\n\nb") == f"{QUOTE}a\n{QUOTE.rstrip()}\n{QUOTE}b"
    assert quoted("one\u2029two\x85three\r\nfour") == "\n".join(
        f"{QUOTE}{w}" for w in ("one", "two", "three", "four")
    )


def test_pages_and_emails_clean_untrusted_text_the_same_way() -> None:
    dirty = "a\u202eb\x00c\u2028d"
    assert plain_text(dirty) == "abc\nd"
    assert str(escape(dirty)) == "abc\nd"
    assert one_line(dirty) == "abc d"
    assert quoted(dirty) == f"{QUOTE}abc\n{QUOTE}d"


def test_the_workflows_auto_approve_email_is_the_quoted_notice(ses: RecordingSes) -> None:
    from breakglass.lambdas.approvals import workflow
    from breakglass.lambdas.approvals.store import Store, create_table
    from breakglass.lambdas.audit.events import AuditWriter

    ddb, kms, s3 = boto3.client("dynamodb"), boto3.client("kms"), boto3.client("s3")
    create_table(ddb, "bg")
    s3.create_bucket(Bucket="audit")
    store = Store(ddb, "bg", kms, kms.create_key()["KeyMetadata"]["KeyId"])
    store.put_enrollment(ALICE, "JBSWY3DPEHPK3PXP")
    store.put_request(replace(HOSTILE, approvers=("alice",)))
    deps = workflow.WorkflowDeps(
        store=store,
        audit=AuditWriter(s3=s3, bucket="audit"),
        ses=ses,
        iam=None,
        tiers={},
        policy={},
        sender=SENDER,
        approval_url=URL,
        link_key=lambda: KEY,
    )
    workflow.auto_approve(deps, "req42")
    (call,) = ses.calls
    expected = auto_approve_notice(replace(HOSTILE, approvers=("alice",)))
    assert call["Message"]["Body"]["Text"]["Data"] == expected.text
    assert call["Message"]["Subject"]["Data"] == expected.subject
    _assert_quoted(call["Message"]["Body"]["Text"]["Data"])
