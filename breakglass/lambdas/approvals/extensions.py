"""Extending a granted window: a new request, approved again, whose window starts where the old ends.

``breakglass extend ID --by 30m --reason ...`` reaches :func:`submit_extension` through the access
API. The extension is a request of its own (a minted id, its own execution, its own trust
statements and guard) that names the request it extends; the old grant is never edited, so the old
window's guard still ends the old sessions at the old expiry, and the new sessions (tagged with the
new id) live until the new expiry. It goes through the tier's own approval path: auto tiers stay
auto, quorum tiers need a quorum again and the requester never counts.

Refused, each with the field and what to do: a caller who is not the original requester (the
verified caller, never a body field); a request that is not granted, whose window has ended or
that was revoked, or whose window has not opened yet (nothing of it was used: an extension then
would park access beyond the tier's scheduling horizon); a grant that already has a live (pending or granted) extension (extend that one
once granted: extensions chain); a ``by`` over the tier's window; a chain whose total, from the
first window's start to the new expiry, would pass the tier's ``max_total_seconds``; a wrong code.
Rate limits apply as to requests. Checks run before the code is spent.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from breakglass.contracts import RequestStatus, iso, parse_iso
from breakglass.lambdas.approvals.admission import AdmissionRefused, IndexEntry
from breakglass.lambdas.approvals.chains import LIVE, ancestors, chain_start, descendants
from breakglass.lambdas.approvals.intake import IntakeDeps, start_workflow
from breakglass.lambdas.approvals.mail import WITHDRAWN
from breakglass.lambdas.approvals.requests import (
    EXTENSION_FIELDS,
    RequestRejected,
    check_reason,
    eligible_approvers,
    human,
    mint_request_id,
    parse_duration,
    total_cap,
)
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, StatusConflict, Store, same_person
from breakglass.lambdas.approvals.totp import TotpRejected, verify_totp
from breakglass.lambdas.approvals.votes import CLOSED_TASK_ERRORS
from breakglass.lambdas.audit.events import AuditEvent, AuditWriter
from breakglass.lambdas.runtime import get_logger, log_fields
from breakglass.validation import ConfigError, reject_unknown_keys, require_mapping, require_str

log = get_logger("breakglass.extensions")

# The cause of the denial of an extension that lost the race for its grant's extension slot.
NOT_LINKED: Final = "not-linked"


class ExtensionRefused(RequestRejected):
    """An extension that will not go further; ``status`` is the HTTP status the access API answers."""

    def __init__(self, status: int, field: str, problem: str) -> None:
        self.status = status
        super().__init__(field, problem)


def _window(record: RequestRecord) -> str:
    return f"{record.starts_at} to {record.expires_at}"


def _check_parent(
    store: Store, person: Enrollment, parent: RequestRecord | None, parent_id: str, now: datetime
) -> RequestRecord:
    if parent is None:
        raise ExtensionRefused(404, "request_id", f"no request {parent_id}: use the id break-glass printed")
    if not same_person(person.user, parent.requester):
        raise ExtensionRefused(
            403,
            "request_id",
            f"only the requester of {parent.request_id} may extend it; ask for your own access",
        )
    if parent.status != RequestStatus.GRANTED or not parent.expires_at or not parent.starts_at:
        raise ExtensionRefused(
            409,
            "request_id",
            f"request {parent.request_id} is {parent.status}: only a granted window can be extended; "
            "ask for new access: breakglass request --tier ...",
        )
    if parse_iso(parent.expires_at) <= now:
        raise ExtensionRefused(
            409,
            "request_id",
            f"the window of {parent.request_id} ended at {parent.expires_at}; ask for new access: "
            "breakglass request --tier ...",
        )
    if parse_iso(parent.starts_at) > now:
        # Nothing of it was used yet: "more time" would park access beyond the tier's scheduling
        # horizon (the extension opens at the parent's expiry), a standing grant in waiting.
        raise ExtensionRefused(
            409,
            "request_id",
            f"the window of {parent.request_id} has not opened yet (it opens at {parent.starts_at}); "
            f"extend it once it is open (breakglass extend {parent.request_id})",
        )
    latest = store.get_request(parent.extended_by) if parent.extended_by else None
    if latest is not None and latest.status in LIVE:
        raise ExtensionRefused(
            409,
            "request_id",
            f"request {parent.request_id} already has extension {latest.request_id} ({latest.status}); "
            f"one at a time: once it is granted, extend it instead (breakglass extend {latest.request_id})",
        )
    return parent


def submit_extension(deps: IntakeDeps, person: Enrollment, parent_id: str, body: Any) -> RequestRecord:
    """Admit, store and start ``person``'s extension of ``parent_id``; :class:`ExtensionRefused`
    (or :class:`RequestRejected` for the code) names the field. Refusals are audited."""
    now = deps.clock()
    request_id = mint_request_id(now)
    parent = deps.store.get_request(parent_id)
    try:
        record, parent = _validated(deps, person, parent_id, parent, body, request_id=request_id, now=now)
    except RequestRejected as exc:
        _audit(
            deps.audit, person.user, request_id, parent, "failed", field=exc.field, problem=exc.problem[:500]
        )
        raise
    deps.store.put_request(record)
    if not deps.store.link_extension(parent.request_id, record.request_id, replaces=parent.extended_by):
        # Another extension (or a revoke) got there first: this one never runs.
        deps.store.set_status(record.request_id, RequestStatus.DENIED)
        problem = (
            f"request {parent.request_id} changed meanwhile (extended or revoked); check it and try again"
        )
        _audit(deps.audit, person.user, request_id, parent, "failed", field="request_id", problem=problem)
        # Stored denied like any denied request, so recorded like one (the approvals query, the report).
        deps.audit.write(
            AuditEvent(
                event_type="denial",
                actor="system",
                outcome="succeeded",
                request_id=record.request_id,
                requester=record.requester,
                tier=record.tier,
                details={"cause": NOT_LINKED, "extends": parent.request_id},
            )
        )
        raise ExtensionRefused(409, "request_id", problem)
    deps.admission.index(
        IndexEntry(
            request_id=record.request_id,
            requested_at=record.requested_at,
            requester=record.requester,
            tier=record.tier,
        ),
        now=now,
    )
    _audit(
        deps.audit,
        person.user,
        record.request_id,
        parent,
        "pending",
        by_seconds=record.duration_seconds,
        window_start=record.start_at,
        window_end=_end(record),
        quorum=record.quorum,
        approvers=list(record.approvers),
        reason=record.reason,
    )
    start_workflow(deps, record)
    log.info(
        "extension admitted",
        extra=log_fields(request_id=record.request_id, extends=parent.request_id, tier=record.tier),
    )
    return record


def _end(record: RequestRecord) -> str | None:
    if not record.start_at:
        return None
    return iso(parse_iso(record.start_at) + timedelta(seconds=record.duration_seconds))


def _validated(
    deps: IntakeDeps,
    person: Enrollment,
    parent_id: str,
    parent: RequestRecord | None,
    body: Any,
    *,
    request_id: str,
    now: datetime,
) -> tuple[RequestRecord, RequestRecord]:
    """The extension to store and the request it extends; ExtensionRefused otherwise."""
    try:
        values = require_mapping("body", body)
        # No tier, no requester, no window in the body: they all come from the extended request.
        reject_unknown_keys("", values, EXTENSION_FIELDS)
        for name in EXTENSION_FIELDS:
            if values.get(name) in (None, ""):
                raise ConfigError(name, "is required")
        by = parse_duration("by", values["by"])
        reason = require_str("reason", values["reason"]).strip()
        check_reason(reason)
        totp = require_str("totp", values["totp"], max_length=16)
    except ConfigError as exc:
        raise ExtensionRefused(400, exc.field or "body", exc.problem) from exc
    parent = _check_parent(deps.store, person, parent, parent_id, now)
    tier = deps.tiers.get(parent.tier)
    approval = deps.policy.get(parent.tier)
    if tier is None or approval is None:
        raise ExtensionRefused(409, "tier", f"tier {parent.tier!r} is no longer configured")
    if person.principal_arn not in tier.allowed_requesters or "responder" not in person.roles:
        raise ExtensionRefused(
            403, "requester", f"{person.user!r} may no longer request tier {tier.name!r}; ask the cloud team"
        )
    if by > tier.max_window_seconds:
        raise ExtensionRefused(
            400,
            "by",
            f"tier {tier.name!r} allows at most {human(tier.max_window_seconds)} per window, asked for {human(by)}",
        )
    first = chain_start(deps.store, parent)
    start = parse_iso(str(parent.expires_at))
    cap = total_cap(approval, tier)
    total = int((start + timedelta(seconds=by) - (first or start)).total_seconds())
    if total > cap:
        room = max(cap - int((start - (first or start)).total_seconds()), 0)
        raise ExtensionRefused(
            400,
            "by",
            f"tier {tier.name!r} allows at most {human(cap)} from the first window's start "
            f"({iso(first or start)}) to the last expiry; {human(room) if room else 'nothing'} is left",
        )
    approvers = eligible_approvers(approval, person.user)
    if approval.quorum and len(eligible_approvers(approval, person.user, backup=True)) < approval.quorum:
        raise ExtensionRefused(
            409, "tier", f"tier {tier.name!r} needs {approval.quorum} approvers besides you and has fewer"
        )
    try:
        deps.admission.take_rate(
            tier.name,
            person.user.casefold(),
            now=now,
            per_person=approval.max_requests_per_person_per_hour,
            per_tier=approval.max_requests_per_hour,
        )
    except AdmissionRefused as exc:
        raise ExtensionRefused(429, exc.field or "tier", exc.problem) from exc
    try:
        verify_totp(deps.store, person.user, totp, now=now)
    except TotpRejected as exc:
        raise ExtensionRefused(429 if exc.reason == "rate-limited" else 403, "totp", str(exc)) from exc
    return RequestRecord(
        request_id=request_id,
        requester=person.user,
        requester_arn=person.principal_arn,
        tier=parent.tier,
        reason=reason,
        ticket=parent.ticket,
        duration_seconds=by,
        requested_at=iso(now),
        status=RequestStatus.PENDING,
        quorum=approval.quorum,
        approvers=approvers,
        start_at=parent.expires_at,
        extends=parent.request_id,
        extends_starts_at=parent.starts_at,
        chain_starts_at=iso(first) if first else parent.starts_at,
        chain_window=len(ancestors(deps.store, parent)) + 2,
        chain_cap_seconds=cap,
    ), parent


def _audit(
    audit: AuditWriter,
    actor: str,
    request_id: str,
    parent: RequestRecord | None,
    outcome: str,
    **details: Any,
) -> None:
    reason = details.pop("reason", None)
    audit.write(
        AuditEvent(
            event_type="extension",
            actor=actor,
            outcome=outcome,
            request_id=request_id,
            requester=actor,
            tier=parent.tier if parent else None,
            reason=reason,
            ticket=parent.ticket if parent else None,
            window_start=details.get("window_start"),
            expires_at=details.get("window_end"),
            details={
                "extends": parent.request_id if parent else None,
                "extended_window": _window(parent) if parent and parent.starts_at else None,
                **details,
            },
        )
    )


def withdraw_pending(
    store: Store, audit: AuditWriter, sfn: Any, revoked: RequestRecord, actor: str
) -> list[str]:
    """After ``revoked`` was revoked early: its extensions still waiting for votes are withdrawn
    (denied, their workflow told so); granted ones were revoked with it by the access function."""
    withdrawn = []
    for record in descendants(store, revoked):
        if record.status != RequestStatus.PENDING:
            continue
        try:
            store.set_status(record.request_id, RequestStatus.DENIED, expected=RequestStatus.PENDING)
        except StatusConflict:  # decided meanwhile: the grant step refuses it (its original is revoked)
            continue
        audit.write(
            AuditEvent(
                event_type="denial",
                actor=actor,
                outcome="succeeded",
                request_id=record.request_id,
                requester=record.requester,
                tier=record.tier,
                details={"cause": WITHDRAWN, "extends": record.extends, "revoked": revoked.request_id},
            )
        )
        if record.task_token:
            _hand_over(sfn, record.task_token)
        withdrawn.append(record.request_id)
    return withdrawn


def _hand_over(sfn: Any, task_token: str) -> None:
    try:
        sfn.send_task_success(taskToken=task_token, output=json.dumps({"decision": WITHDRAWN}))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in CLOSED_TASK_ERRORS:
            raise
