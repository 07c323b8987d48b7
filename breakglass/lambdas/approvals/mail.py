"""Every email break-glass sends: approval requests (one signed link per approver) and the
workflow's notices (auto-approval, denial, grant), each with an HTML and a plain-text part.

Sent with SES (v1 ``send_email``). Untrusted text (a reason, a ticket, anything a request or a
state carried) goes through one routine, :func:`~breakglass.lambdas.approvals.templates.plain_text`
(line breaks normalized; controls, invisible and direction-changing characters removed), then:

- in HTML parts, the templates escape it;
- in text parts, a block (the reason) is :func:`quoted`: every line starts with ``  | `` so none
  can pose as the email's own lines (a fake "Review and decide" link, a fake system line), and a
  field (ticket, ids) is :func:`one_line`, after its label, never at the left margin;
- subjects are :func:`one_line` too (no header injection) and name only validated values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from breakglass.contracts import iso, utc_now
from breakglass.lambdas.approvals.links import sign_link
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, same_person
from breakglass.lambdas.approvals.templates import Markup, escape, plain_text, render
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


QUOTE: Final = "  | "
_LABEL_WIDTH: Final = 16


def one_line(text: object, limit: int = _SUBJECT_MAX) -> str:
    """Untrusted text as one bounded line (a subject, a field after its label)."""
    # \s covers \v, \f, \x1c-\x1f, \x85, \u2028 and \u2029 too: every line break a mailer may honour.
    flat = re.sub(r"[\s\x00-\x1f\x7f]+", " ", plain_text(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quoted(text: object) -> str:
    """Untrusted text as a visibly quoted block: every line (blank ones too) starts with
    :data:`QUOTE`, so none reaches the left margin where the email's own lines are."""
    lines = plain_text(text).split("\n") or [""]
    return "\n".join(f"{QUOTE}{line}".rstrip() for line in lines)


def _field(label: str, value: object) -> str:
    return f"{label + ':':<{_LABEL_WIDTH}}{one_line(value, 500)}"


def approval_link(approval_url: str, request_id: str, token: str) -> str:
    """Where an approver opens ``request_id``: ``<approval_url>/requests/<id>?token=<token>``."""
    return f"{approval_url.rstrip('/')}/requests/{quote(request_id, safe='')}?token={quote(token, safe='')}"


def expiry_text(record: RequestRecord) -> str:
    """When access would end; for an extension, both windows; for a scheduled request, when it opens."""
    if record.start_at is None:
        return f"{human_duration(record.duration_seconds)} after access is granted (never later than the tier allows)"
    start = datetime.strptime(record.start_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    end = iso(start + timedelta(seconds=record.duration_seconds))
    if record.extends:
        return (
            f"extension of request {record.extends} (window {record.extends_starts_at} to {record.start_at}): "
            f"the new window runs from {record.start_at} to {end}{chain_text(record, end)}"
        )
    return f"scheduled: the window opens at {record.start_at} and ends at {end}"


def chain_text(record: RequestRecord, end: str) -> str:
    """How long the person's access has already lasted, for an extension's approvers: a chain of
    short extensions must not look like one short window. Empty for a record stored without it."""
    if not record.chain_starts_at:
        return ""
    since = datetime.strptime(record.chain_starts_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    total = int((datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - since).total_seconds())
    window = f", window {record.chain_window}" if record.chain_window else ""
    cap = f" of the {human_duration(record.chain_cap_seconds)} cap" if record.chain_cap_seconds else ""
    return f"; access since {record.chain_starts_at}{window}, {human_duration(total)}{cap} used if approved"


def quorum_text(record: RequestRecord) -> str:
    if record.quorum <= 0:
        return "The tier approves this automatically; you are being told, and may still deny."
    return f"{record.quorum} approval(s) needed; {len(record.approvals)} given so far."


def approval_text(record: RequestRecord, url: str, link_expires: str) -> str:
    return "\n".join(
        [
            f"{one_line(record.requester)} asks for emergency (break-glass) access. {quorum_text(record)}",
            "",
            _field("Requester", f"{record.requester} ({record.requester_arn})"),
            _field("Tier", record.tier),
            "Reason (as the requester wrote it):",
            quoted(record.reason),
            _field("Ticket", record.ticket or "(none)"),
            _field("Duration", human_duration(record.duration_seconds)),
            _field("Access expires", expiry_text(record)),
            _field("Requested at", record.requested_at),
            _field("Request", record.request_id),
            "",
            "Review and decide (approve or deny with your authenticator code):",
            url,
            "",
            f"Or from a terminal: breakglass approve {record.request_id} (or breakglass deny {record.request_id})",
            "",
            f"Opening the link decides nothing. It is yours alone, works once and expires at {link_expires}.",
            "If you did not expect this email, do not act on it and tell your security team.",
        ]
    )


# -- the workflow's notices ------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One email, both parts built from the same facts with the same escaping."""

    subject: str
    text: str
    html: str


def _notice(subject: str, summary: str, facts: Sequence[tuple[str, object]], advice: Sequence[str]) -> Notice:
    """A notice: a summary line, labelled facts, advice. Only ``Reason`` is a quoted block; every
    other fact is one line after its label. The summary and advice are this module's own words
    around validated values (ids, tier names)."""
    lines = [one_line(summary, 1000), ""]
    rows = []
    for label, value in facts:
        if label == "Reason":
            lines += ["Reason (as the requester wrote it):", quoted(value)]
        else:
            lines.append(_field(label, value))
        rows.append(
            Markup(f'<tr><th align="left">{escape(label)}</th>')
            + Markup(f'<td style="white-space:pre-wrap">{escape(value)}</td></tr>')
        )
    lines += ["", *(one_line(line, 1000) for line in advice)]
    html = render(
        "notice.html",
        title=one_line(subject),
        summary=summary,
        rows=Markup("\n".join(rows)),
        advice=" ".join(advice),
    )
    return Notice(subject=one_line(subject), text="\n".join(lines), html=str(html))


def _request_facts(record: RequestRecord) -> list[tuple[str, object]]:
    facts: list[tuple[str, object]] = [
        ("Requester", f"{record.requester} ({record.requester_arn})"),
        ("Tier", record.tier),
        ("Reason", record.reason),
        ("Ticket", record.ticket or "(none)"),
        ("Duration", human_duration(record.duration_seconds)),
        ("Request", record.request_id),
    ]
    if record.start_at is not None:
        facts.append(("Window", expiry_text(record)))
    return facts


def auto_approve_notice(record: RequestRecord) -> Notice:
    """To a tier's approvers: the tier granted a request without approval (``auto``)."""
    return _notice(
        f"Break-glass: {record.requester} was granted {record.tier} automatically",
        f"{record.requester} received emergency access to tier {record.tier} without approval "
        "(the tier is configured for automatic approval).",
        _request_facts(record),
        [
            f"If this looks wrong, revoke it early (breakglass revoke {record.request_id}) "
            "and tell your security team."
        ],
    )


# An extension whose original grant was revoked before the extension was decided.
WITHDRAWN: Final = "withdrawn"
DENY_CAUSES: Final = ("denied", "timed_out", WITHDRAWN)


def denial_notice(record: RequestRecord, cause: str) -> Notice:
    """To the requester: the request is denied, by approvers (``denied``) or the deadline."""
    if cause not in DENY_CAUSES:
        raise ValueError(f"cause: must be one of {', '.join(DENY_CAUSES)}, got {cause!r}")
    why = {
        "denied": f"denied by {', '.join(record.denials)}",
        "timed_out": "not approved before the deadline (backup approvers were asked too)",
        WITHDRAWN: f"withdrawn: request {record.extends}, which it extends, was revoked",
    }[cause]
    return _notice(
        f"Break-glass request for {record.tier} denied",
        f"Your request {record.request_id} for tier {record.tier} was {why}.",
        _request_facts(record),
        ["A denial is final. If access is still needed, submit a new request with more detail."],
    )


def grant_notice(record: RequestRecord, granted: Mapping[str, Any]) -> Notice:
    """To the requester: access is open, until when, and how to use and end it."""
    role_arn, expires_at = one_line(granted.get("role_arn")), one_line(granted.get("expires_at"))
    starts_at = one_line(granted.get("starts_at"))
    later = record.start_at is not None and starts_at > iso(utc_now())
    opens = f"from {starts_at} " if later else ""
    return _notice(
        f"Break-glass access to {record.tier} granted {opens}until {expires_at}",
        f"Your request {record.request_id} was approved: you may assume {role_arn} {opens}until {expires_at}."
        + (f" It extends request {record.extends}." if record.extends else ""),
        [("Role", role_arn), ("Opens", starts_at), ("Until", expires_at), *_request_facts(record)],
        [
            (f"From {starts_at}, run" if later else "Run") + f": breakglass assume {record.request_id}",
            "Sessions end at the expiry whatever their duration. Revoke early when you are done: "
            f"breakglass revoke {record.request_id}",
        ],
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


def sealed_use_notice(
    *, user: str, event_name: str, role_arn: str, at: str, source_ip: str, outcome: str, request_id: str
) -> Notice:
    """To approvers and security: the sealed last resort was used (or tried), outside the workflow."""
    what = (
        "signed in to the console" if event_name == "ConsoleLogin" else f"assumed the sealed role {role_arn}"
    )
    return _notice(
        f"Break-glass SEALED access: {user} {event_name} ({outcome})",
        f"The break-glass user {user} {what} at {at} ({outcome}). No request or approval precedes this.",
        [
            ("User", user),
            ("Call", event_name),
            ("Role", role_arn or "(none)"),
            ("When", at),
            ("From", source_ip),
            ("Review", request_id or "(none: nothing was granted)"),
        ],
        [
            "If nobody you know is handling an outage that needs it, treat it as an incident now.",
            f"Security records the mandatory review: breakglass audit review {request_id}"
            if request_id
            else "Find out who tried it; the sealed check lists the users' credentials.",
        ],
    )
