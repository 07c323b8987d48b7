"""Approval emails (HTML and plain text, one signed link per approver) and plain notices.

Sent with SES (v1 ``send_email``). Every piece of user text is escaped in the HTML part; in the
text part a multi-line reason is indented so it cannot pose as the email's own lines (a fake
"Review and decide" link); the subject is stripped of line breaks so it cannot inject headers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from breakglass.contracts import iso
from breakglass.lambdas.approvals.links import sign_link
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, same_person
from breakglass.lambdas.approvals.templates import render
from breakglass.validation import ConfigError, require_int, require_str

# Who may receive an approval link: approvers, and security staff acting as backup approvers.
APPROVING_ROLES: Final = ("approver", "security")
MIN_LINK_TTL: Final = 60
MAX_LINK_TTL: Final = 7 * 24 * 3600
_SUBJECT_MAX: Final = 200


def human_duration(seconds: int) -> str:
    """``5400`` -> ``"1 h 30 min"`` (for people reading an email, not for parsing)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def one_line(text: str, limit: int = _SUBJECT_MAX) -> str:
    # \s covers \v, \f, \x1c-\x1f, \x85, \u2028 and \u2029 too: every line break a mailer may honour.
    flat = re.sub(r"[\s\x00-\x1f\x7f]+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def approval_link(approval_url: str, request_id: str, token: str) -> str:
    """Where an approver opens ``request_id``: ``<approval_url>/requests/<id>?token=<token>``."""
    return f"{approval_url.rstrip('/')}/requests/{quote(request_id, safe='')}?token={quote(token, safe='')}"


def expiry_text(record: RequestRecord) -> str:
    return f"{human_duration(record.duration_seconds)} after access is granted (never later than the tier allows)"


def quorum_text(record: RequestRecord) -> str:
    if record.quorum <= 0:
        return "The tier approves this automatically; you are being told, and may still deny."
    return f"{record.quorum} approval(s) needed; {len(record.approvals)} given so far."


def _indented(text: str) -> str:
    """Continuation lines aligned under the first, so none starts at the left margin."""
    return "\n".join(line if i == 0 else f"{'':16}{line}" for i, line in enumerate(text.splitlines()))


def approval_text(record: RequestRecord, url: str, link_expires: str) -> str:
    return "\n".join(
        [
            f"{record.requester} asks for emergency (break-glass) access. {quorum_text(record)}",
            "",
            f"Requester:      {record.requester} ({record.requester_arn})",
            f"Tier:           {record.tier}",
            f"Reason:         {_indented(record.reason)}",
            f"Ticket:         {record.ticket or '(none)'}",
            f"Duration:       {human_duration(record.duration_seconds)}",
            f"Access expires: {expiry_text(record)}",
            f"Requested at:   {record.requested_at}",
            f"Request:        {record.request_id}",
            "",
            "Review and decide (approve or deny with your authenticator code):",
            url,
            "",
            f"Opening the link decides nothing. It is yours alone, works once and expires at {link_expires}.",
            "If you did not expect this email, do not act on it and tell your security team.",
        ]
    )


def send_notice(ses: Any, *, sender: str, to: Sequence[str], subject: str, text: str, html: str) -> str:
    """Send one email (HTML + text) to ``to``; return the SES message id."""
    require_str("sender", sender)
    recipients = [require_str(f"to[{i}]", r) for i, r in enumerate(to)]
    if not recipients:
        raise ConfigError("to", "must name at least one recipient")
    response = ses.send_email(
        Source=sender,
        Destination={"ToAddresses": recipients},
        Message={
            "Subject": {"Data": one_line(subject), "Charset": "UTF-8"},
            "Body": {"Text": {"Data": text, "Charset": "UTF-8"}, "Html": {"Data": html, "Charset": "UTF-8"}},
        },
    )
    return str(response["MessageId"])


def send_approval_requests(
    ses: Any,
    key: bytes,
    record: RequestRecord,
    approvers: Sequence[Enrollment],
    *,
    sender: str,
    approval_url: str,
    now: datetime,
    link_ttl_seconds: int,
) -> list[str]:
    """Email each approver their own signed link for ``record``; return the SES message ids.

    Every approver must be one of the request's approvers (never the requester) and hold an
    approving role; a link for anyone else would be refused when used, so it is not sent.
    """
    require_int("link_ttl_seconds", link_ttl_seconds, minimum=MIN_LINK_TTL, maximum=MAX_LINK_TTL)
    require_str("approval_url", approval_url, pattern=r"https?://\S+", hint="must be an http(s) URL")
    for i, approver in enumerate(approvers):
        if same_person(approver.user, record.requester):
            raise ConfigError(f"approvers[{i}]", "the requester can never approve their own request")
        if approver.user not in record.approvers:
            raise ConfigError(
                f"approvers[{i}]", f"{approver.user!r} is not an approver of {record.request_id}"
            )
        if not set(approver.roles) & set(APPROVING_ROLES):
            raise ConfigError(f"approvers[{i}]", f"{approver.user!r} holds no approving role")
    expires_at = now + timedelta(seconds=link_ttl_seconds)
    link_expires = iso(expires_at)
    subject = f"Break-glass request by {record.requester} for {record.tier}: your decision is needed"
    message_ids = []
    for approver in approvers:
        token = sign_link(key, request_id=record.request_id, approver=approver.user, expires_at=expires_at)
        url = approval_link(approval_url, record.request_id, token)
        html = render(
            "email.html",
            requester=record.requester,
            requester_arn=record.requester_arn,
            quorum_line=quorum_text(record),
            tier=record.tier,
            reason=record.reason,
            ticket=record.ticket or "(none)",
            duration=human_duration(record.duration_seconds),
            expiry=expiry_text(record),
            requested_at=record.requested_at,
            request_id=record.request_id,
            url=url,
            link_expires=link_expires,
        )
        text = approval_text(record, url, link_expires)
        message_ids.append(
            send_notice(ses, sender=sender, to=[approver.email], subject=subject, text=text, html=str(html))
        )
    return message_ids
