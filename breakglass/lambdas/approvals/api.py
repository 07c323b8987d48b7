"""The approval page and its API (API Gateway HTTP API, payload format 2.0).

``GET /requests/<id>?token=<signed link>`` shows the request and a form; it never decides
anything, because mail scanners and link previews open links. ``POST /requests/<id>`` with the
form fields ``token``, ``totp`` and ``decision`` (``approve`` / ``deny``) records a vote:

1. the request must be same-origin (``Origin`` / ``Sec-Fetch-Site`` when the browser sends them)
   and carry the signed link in its body, so a cross-site page cannot forge a decision;
2. the link must be genuine, unexpired and for this request; its approver must be one of the
   request's approvers, still enrolled with an approving role, and not the requester under any
   name (user id in any case, same IAM principal or same email); the request must be pending;
3. the approver's TOTP code must be right, unused (claimed in the store) and not past the
   wrong-code limit;
4. the link is spent (single use) and the vote counted in one transaction: both or neither;
5. the vote is audited, and when it decides the request (quorum reached or any denial) the
   waiting workflow gets ``send_task_success`` with the decision. A vote whose audit record
   cannot be written is taken back and its link made usable again (one transaction): no vote
   counts unrecorded. Once the record is stored the vote stands, whatever happens to its alert.

A wrong or replayed code shows the form again and leaves the link unspent.

Refusals cost an attacker more than they cost us (security review finding 3):

- without a genuine signed link (junk, forged or expired tokens, cross-site posts, bad forms,
  unknown routes, malformed events) a refusal writes nothing: it is counted, one JSON log line
  that is also a CloudWatch metric (``UnauthenticatedRefusals``), and alerted on its rate only;
- with a genuine link, a refusal is counted (``LinkRefusals``) and audited once per (link,
  reason), claimed in the store first, so even a leaked link cannot flood the locked bucket; only
  the reasons in :data:`IMMEDIATE_ALERT_REASONS` alert one by one (bounded by the links issued);
- text from the request (the path's request id, form fields, headers) never becomes an S3 key,
  the request id of a record or an alert subject: records name the request the link was signed
  for, and only the package's own vocabulary reaches subjects and metric dimensions.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

import boto3

from breakglass.contracts import ENV_APPROVAL_URL, iso, utc_now
from breakglass.lambdas.approvals.links import LinkClaims, LinkRejected, link_key_from_env, verify_link
from breakglass.lambdas.approvals.mail import APPROVING_ROLES, expiry_text, human_duration
from breakglass.lambdas.approvals.store import RequestRecord, SpentLink, Store, VoteRefused, same_person
from breakglass.lambdas.approvals.templates import Markup, render, style_hash, stylesheet
from breakglass.lambdas.approvals.totp import TotpRejected, verify_totp
from breakglass.lambdas.approvals.votes import resume_workflow, vote_event
from breakglass.lambdas.audit.events import AuditEvent, AuditWriteError
from breakglass.lambdas.runtime import (
    METRIC_LINK_REFUSALS,
    METRIC_UNAUTHENTICATED_REFUSALS,
    audit_writer_from_env,
    count,
    get_logger,
    log_fields,
)
from breakglass.validation import REQUEST_ID

log = get_logger("breakglass.approval_api")

MAX_BODY_BYTES: Final = 8192
# How long a spent-link marker outlives the link itself (clock skew between writers).
USED_MARKER_GRACE_SECONDS: Final = 86400
_REQUEST_PATH: Final = re.compile(r"^(?:/[^/]+)*?/requests/(?P<id>[^/]+)/?$")
_REQUEST_ID: Final = re.compile(REQUEST_ID)
_USER_AGENT_MAX: Final = 200

# Refusals of a genuine link that alert one by one, at once (each (link, reason) once): the
# requester trying to decide their own request, someone whose approving role was removed using
# an old link, wrong codes up to the lockout on someone's link (the mailbox may be compromised),
# and a genuine link posted from another site (the link left the approver's mailbox). Every other
# refusal is stored (once per link and reason) and alerted in aggregate by the rate alarms on
# the LinkRefusals and UnauthenticatedRefusals metrics.
IMMEDIATE_ALERT_REASONS: Final = frozenset(
    {"self-approval", "not-an-approver", "totp-rate-limited", "cross-site"}
)


class AuditSink(Protocol):
    def write(self, event: AuditEvent, *, alert: bool = True) -> str: ...


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    source_ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class ApprovalDeps:
    """What the handler works with; built from the environment in Lambda, passed in by tests."""

    store: Store
    link_key: bytes
    sfn: Any
    audit: AuditSink
    approval_url: str | None = None
    clock: Callable[[], datetime] = field(default=utc_now)


@dataclass(frozen=True)
class Outcome:
    """A page a person sees: what happened and what to do next."""

    status: int
    title: str
    message: str
    advice: str
    kind: str = "error"


# Every refusal a person can meet, keyed by the reason the services report.
OUTCOMES: Final[dict[str, Outcome]] = {
    "malformed": Outcome(
        400,
        "This link is incomplete",
        "The link is missing part of its address.",
        "Open it again from the email; if your mail program broke it across lines, copy the whole address.",
    ),
    "forged": Outcome(
        403,
        "This link is not valid",
        "The link was not issued by break-glass, or it was altered.",
        "Use the link from your approval email. If you did not get it from break-glass, tell your security team.",
    ),
    "expired": Outcome(
        410,
        "This link has expired",
        "Approval links work for a limited time and this one is past it.",
        "Nothing was decided. If access is still needed, the requester must submit a new request.",
    ),
    "cross-request": Outcome(
        403,
        "This link belongs to another request",
        "The link was issued for a different request than the one in the address.",
        "Open the link exactly as it appears in your email.",
    ),
    "wrong-approver": Outcome(
        403,
        "This link was issued to someone who is not an approver of this request",
        "Only the approvers chosen for this request can decide it.",
        "Nothing was decided. If you should be an approver, ask your security team to check the tier's approvers.",
    ),
    "not-an-approver": Outcome(
        403,
        "You are not an approver of this request",
        "Only the approvers chosen for this request can decide it.",
        "Nothing was decided. If you should be an approver, ask your security team to check the tier's approvers.",
    ),
    "self-approval": Outcome(
        403,
        "You cannot approve your own request",
        "The requester can never decide their own request, whatever the configuration.",
        "Nothing was decided. Another approver must review it.",
    ),
    "used": Outcome(
        409,
        "This link was already used",
        "Each approval link records one decision, and this one has been spent.",
        "The decision already recorded stands. Nothing was changed.",
    ),
    "already-voted": Outcome(
        409,
        "You have already voted on this request",
        "Each approver decides once.",
        "Your earlier decision stands. Nothing was changed.",
    ),
    "already-decided": Outcome(
        409,
        "This request is already decided",
        "The request is no longer waiting for approvals.",
        "Nothing was changed.",
    ),
    "round-closed": Outcome(
        409,
        "Your vote came after the approval deadline",
        "The approval round closed just before your vote reached the workflow, so it cannot decide "
        "this request: a late vote never grants access.",
        "Your vote is on record. The request ends without access; if access is still needed, the "
        "requester must submit a new request.",
    ),
    "not-found": Outcome(
        404,
        "No such request",
        "There is no request with this id.",
        "Open the link exactly as it appears in your email.",
    ),
    "not-enrolled": Outcome(
        403,
        "You are not enrolled",
        "Approving needs an enrolled authenticator, and none is on record for you.",
        "Ask your security team to enroll you (breakglass enroll), then open the link again.",
    ),
    "cross-site": Outcome(
        403,
        "Request refused",
        "The decision was not sent from the approval page itself.",
        "Open the link from your email and use the buttons on that page.",
    ),
    "bad-form": Outcome(
        400,
        "Incomplete form",
        "The decision form was incomplete or not sent as a form.",
        "Open the link from your email again and use the buttons on that page.",
    ),
    "no-route": Outcome(
        404,
        "Not found",
        "There is nothing at this address.",
        "Open the link exactly as it appears in your email.",
    ),
    "method": Outcome(
        405,
        "Method not allowed",
        "This page only opens (GET) and decides (POST).",
        "Use the page in a browser.",
    ),
}


def security_headers() -> dict[str, str]:
    return {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": (
            f"default-src 'none'; style-src {style_hash()}; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "cache-control": "no-store",
        "pragma": "no-cache",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "strict-transport-security": "max-age=31536000; includeSubDomains",
    }


def page(status: int, title: str, content: Markup) -> dict[str, Any]:
    body = render("page.html", title=title, css=Markup(stylesheet()), content=content)
    return {"statusCode": status, "headers": security_headers(), "body": str(body), "isBase64Encoded": False}


def outcome_page(reason: str, *, detail: str | None = None) -> dict[str, Any]:
    outcome = OUTCOMES[reason]
    details = (
        render("message.html", kind="note", message=detail, advice="", details="") if detail else Markup("")
    )
    content = render(
        "message.html", kind=outcome.kind, message=outcome.message, advice=outcome.advice, details=details
    )
    return page(outcome.status, outcome.title, content)


def parse_event(event: Mapping[str, Any]) -> HttpRequest:
    """An API Gateway HTTP API (payload 2.0) event as a request."""
    http = event.get("requestContext", {}).get("http", {})
    raw_body = event.get("body") or ""
    if not isinstance(raw_body, str):  # API Gateway always sends text (base64 for binary)
        raise TypeError("body: must be a string")
    body = base64.b64decode(raw_body) if event.get("isBase64Encoded") else raw_body.encode()
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return HttpRequest(
        method=str(http.get("method") or "GET").upper(),
        path=str(event.get("rawPath") or http.get("path") or "/"),
        query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
        headers=headers,
        body=body,
        source_ip=str(http.get("sourceIp") or ""),
        user_agent=str(http.get("userAgent") or ""),
    )


def _same_origin(request: HttpRequest, approval_url: str | None) -> bool:
    """False when the browser says the POST came from another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # non-browser clients; the signed token in the body still binds the POST
    if origin == "null":
        # Under Referrer-Policy no-referrer, Chromium sends "Origin: null" even on the page's own
        # form POST; only the browser's Sec-Fetch-Site can then vouch for it.
        return site == "same-origin"
    try:
        parsed = urlsplit(origin)
        allowed = urlsplit(approval_url) if approval_url else None
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 host): not an origin we know
        return False
    if allowed is not None and (parsed.scheme, parsed.netloc) == (allowed.scheme, allowed.netloc):
        return True
    return bool(parsed.netloc) and parsed.netloc == request.headers.get("host")


def _form(request: HttpRequest) -> dict[str, str] | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded" or len(request.body) > MAX_BODY_BYTES:
        return None
    try:
        fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items() if len(v) == 1}


def _confirm_page(
    record: RequestRecord, claims: LinkClaims, token: str, *, error: str | None = None, status: int = 200
) -> dict[str, Any]:
    error_html = render("message.html", kind="error", message=error, advice="", details="") if error else ""
    content = render(
        "confirm.html",
        error=Markup(error_html),
        requester=record.requester,
        requester_arn=record.requester_arn,
        tier=record.tier,
        reason=record.reason,
        ticket=record.ticket or "(none)",
        duration=human_duration(record.duration_seconds),
        expiry=expiry_text(record),
        requested_at=record.requested_at,
        progress=(
            "automatic (you may still deny)"
            if record.quorum <= 0
            else f"{len(record.approvals)} of {record.quorum} needed"
        ),
        request_id=record.request_id,
        action=record.request_id,  # relative: resolves to this same path, whatever the stage prefix
        token=token,
        approver=claims.approver,
        link_expires=iso(claims.expires_at),
    )
    return page(status, f"Break-glass request by {record.requester}", content)


def _precheck(record: RequestRecord | None, claims: LinkClaims) -> str | None:
    """The reason this link cannot decide the request now, without changing anything."""
    if record is None:
        return "not-found"
    if same_person(claims.approver, record.requester):
        return "self-approval"
    if claims.approver not in record.approvers:
        return "wrong-approver"
    if claims.approver in record.approvals or claims.approver in record.denials:
        return "already-voted"
    if record.status != "pending":
        return "already-decided"
    return None


class ApprovalApi:
    def __init__(self, deps: ApprovalDeps) -> None:
        self.deps = deps

    def handle(self, request: HttpRequest) -> dict[str, Any]:
        match = _REQUEST_PATH.match(request.path)
        if match is None or not _REQUEST_ID.fullmatch(match.group("id")):
            # Not a request id the system could have minted: nothing to look up, nothing to record.
            return self.unauthenticated(request, "no-route")
        request_id = match.group("id")
        if request.method in ("GET", "HEAD"):
            response = self.show(request_id, request)
            if request.method == "HEAD":
                response["body"] = ""
            return response
        if request.method == "POST":
            return self.decide(request_id, request)
        return self.unauthenticated(request, "method", request_id)

    # -- refusals ----------------------------------------------------------------------------------

    @staticmethod
    def unauthenticated(
        request: HttpRequest | None, reason: str, path_request_id: str | None = None, *, page: str = ""
    ) -> dict[str, Any]:
        """Refuse without a genuine link: count it (log line + metric), write nothing, alert
        nothing. The path's request id is logged as what it is (shape-checked, never a record's)."""
        fields: dict[str, Any] = {"refused": reason}
        if request is not None:
            fields.update(
                method=request.method[:16],
                source_ip=request.source_ip[:64],
                user_agent=request.user_agent[:_USER_AGENT_MAX],
            )
        if path_request_id is not None:
            fields["path_request_id"] = path_request_id
        count(METRIC_UNAUTHENTICATED_REFUSALS, reason, "refused without a genuine link", **fields)
        return outcome_page(page or reason)

    def _link_refusal(
        self,
        claims: LinkClaims,
        reason: str,
        record: RequestRecord | None,
        *,
        decision: str | None,
        request: HttpRequest,
    ) -> None:
        """Count a refusal of a genuine link; for a decision (POST), audit it once per (link,
        reason), alerting at once only for :data:`IMMEDIATE_ALERT_REASONS`."""
        count(
            METRIC_LINK_REFUSALS,
            reason,
            "decision refused" if decision else "page refused",
            request_id=claims.request_id,
            approver=claims.approver,
            decision=decision,
            method=request.method[:16],
            source_ip=request.source_ip[:64],
        )
        if decision is None:
            return  # opening a page changes nothing, not even the audit trail
        store = self.deps.store
        if not store.claim_refusal_record(
            claims.jti, reason, claims.expires_epoch + USED_MARKER_GRACE_SECONDS
        ):
            return  # this link was already refused for this reason, and that is on record
        event = AuditEvent(
            event_type="denial" if decision == "deny" else "approval",
            actor=claims.approver,
            outcome="failed",
            request_id=claims.request_id,  # the request the link was signed for, never the path's
            requester=record.requester if record else None,
            tier=record.tier if record else None,
            details={"refused": reason, "decision": decision},
        )
        try:
            self.deps.audit.write(event, alert=reason in IMMEDIATE_ALERT_REASONS)
        except AuditWriteError:
            store.release_refusal_record(claims.jti, reason)  # not on record: let a retry record it
            raise

    def _refuse(
        self,
        claims: LinkClaims,
        reason: str,
        record: RequestRecord | None,
        *,
        decision: str | None,
        request: HttpRequest,
        page: str | None = None,
    ) -> dict[str, Any]:
        self._link_refusal(claims, reason, record, decision=decision, request=request)
        detail = f"The request is {record.status}." if record and reason == "already-decided" else None
        return outcome_page(page or reason, detail=detail)

    def _refusal(self, record: RequestRecord | None, claims: LinkClaims) -> str | None:
        """Why this link cannot decide now (read-only). A spent link is named as such first."""
        if record is not None and self.deps.store.is_link_used(claims.jti):
            return "used"
        return _precheck(record, claims) or self._identity_refusal(record, claims)

    def _identity_refusal(self, record: RequestRecord | None, claims: LinkClaims) -> str | None:
        """Refuse an approver who is the requester under another id, or no longer approves."""
        if record is None:
            return "not-found"
        store = self.deps.store
        approver = store.get_enrollment(claims.approver)
        if approver is None:
            return "not-enrolled"
        requester = store.get_enrollment(record.requester)
        arns = {record.requester_arn.casefold()} | (
            {requester.principal_arn.casefold()} if requester else set()
        )
        if approver.principal_arn.casefold() in arns or (
            requester is not None and approver.email.casefold() == requester.email.casefold()
        ):
            return "self-approval"
        if not set(approver.roles) & set(APPROVING_ROLES):
            return "not-an-approver"
        return None

    def _verified(
        self, request: HttpRequest, token: str, request_id: str
    ) -> tuple[LinkClaims | None, str | None]:
        """The claims of a genuine, unexpired link and, if it cannot be used on this path, why
        (``cross-request``); ``(None, reason)`` when there is no genuine link at all."""
        try:
            claims = verify_link(self.deps.link_key, token, now=self.deps.clock())
        except LinkRejected as exc:
            return None, exc.reason
        return claims, ("cross-request" if claims.request_id != request_id else None)

    # -- GET: show, never decide -------------------------------------------------------------------

    def show(self, request_id: str, request: HttpRequest) -> dict[str, Any]:
        """The confirmation page. Read-only: nothing is claimed, spent, counted or recorded."""
        token = request.query.get("token", "")
        claims, problem = self._verified(request, token, request_id)
        if claims is None:
            return self.unauthenticated(request, problem or "malformed", request_id)
        if problem is not None:
            return self._refuse(claims, problem, None, decision=None, request=request)
        record = self.deps.store.get_request(request_id)
        refusal = self._refusal(record, claims)
        if refusal is not None or record is None:
            return self._refuse(claims, refusal or "not-found", record, decision=None, request=request)
        log.info("approval page shown", extra=log_fields(request_id=request_id, approver=claims.approver))
        return _confirm_page(record, claims, token)

    # -- POST: decide --------------------------------------------------------------------------------

    def decide(self, request_id: str, request: HttpRequest) -> dict[str, Any]:
        form = _form(request)
        decision = form.get("decision") if form else None
        if not _same_origin(request, self.deps.approval_url):
            # A genuine link posted from another site left its approver's mailbox: on record (once).
            claims, problem = self._verified(request, (form or {}).get("token", ""), request_id)
            if claims is None or problem is not None or decision not in ("approve", "deny"):
                return self.unauthenticated(request, "cross-site", request_id)
            return self._refuse(claims, "cross-site", None, decision=decision, request=request)
        if form is None or decision not in ("approve", "deny") or not form.get("token"):
            return self.unauthenticated(request, "bad-form", request_id)
        token, code = form["token"], form.get("totp", "")
        claims, problem = self._verified(request, token, request_id)
        if claims is None:
            return self.unauthenticated(request, problem or "malformed", request_id)
        if problem is not None:
            return self._refuse(claims, problem, None, decision=decision, request=request)
        store = self.deps.store
        record = store.get_request(claims.request_id)
        refusal = self._refusal(record, claims)
        if refusal is not None or record is None:
            return self._refuse(claims, refusal or "not-found", record, decision=decision, request=request)
        now = self.deps.clock()
        try:
            verify_totp(store, claims.approver, code, now=now)
        except TotpRejected as exc:
            self._link_refusal(claims, f"totp-{exc.reason}", record, decision=decision, request=request)
            if exc.reason == "not-enrolled":
                return outcome_page("not-enrolled")
            # The link is not spent: the approver can type the current code and try again.
            status = {"malformed": 400, "rate-limited": 429}.get(exc.reason, 403)
            return _confirm_page(record, claims, token, error=str(exc), status=status)
        spent = SpentLink(claims.jti, claims.expires_epoch + USED_MARKER_GRACE_SECONDS)
        try:
            # Spending the link and counting the vote are one transaction: both or neither.
            updated = store.record_vote(claims.request_id, claims.approver, decision, link=spent)
        except VoteRefused as exc:
            # Lost a race with another vote or the workflow (e.g. the deadline passed).
            page = "wrong-approver" if exc.reason == "not-an-approver" else exc.reason
            return self._refuse(claims, exc.reason, record, page=page, decision=decision, request=request)
        decided = updated.status in ("approved", "denied")
        try:
            self._audit_vote(updated, claims.approver, decision)
        except AuditWriteError:
            self._take_back(updated, claims)
            raise
        if decided and not self._resume_workflow(updated):
            return self._refuse(claims, "round-closed", updated, decision=decision, request=request)
        log.info(
            "vote recorded",
            extra=log_fields(
                request_id=updated.request_id,
                approver=claims.approver,
                decision=decision,
                status=updated.status,
            ),
        )
        return self._result_page(updated, decision)

    def _take_back(self, updated: RequestRecord, claims: LinkClaims) -> None:
        """Undo a vote whose audit write failed, so it neither counts nor spends the link (one
        transaction: both or neither)."""
        if self.deps.store.retract_vote(updated, claims.approver, link=claims.jti):
            log.error(
                "vote taken back: its audit record could not be written",
                extra=log_fields(request_id=updated.request_id, approver=claims.approver),
            )
        else:
            # A later vote was counted on top of it; that vote's audit record lists this one.
            log.error(
                "vote stands without its own audit record: a later vote was counted after it",
                extra=log_fields(request_id=updated.request_id, approver=claims.approver),
            )

    def _audit_vote(self, updated: RequestRecord, approver: str, decision: str) -> None:
        self.deps.audit.write(vote_event(updated, approver, decision, channel="approval-page"))

    def _resume_workflow(self, record: RequestRecord) -> bool:
        """Hand the decision to the waiting workflow; False if its approval round already closed."""
        return resume_workflow(self.deps.sfn, record)

    @staticmethod
    def _result_page(record: RequestRecord, decision: str) -> dict[str, Any]:
        if decision == "deny":
            title = "Denied: your decision was recorded"
            message = f"The request by {record.requester} is denied. A denial is final."
        elif record.status == "approved":
            title = "Approved: your decision was recorded"
            message = f"The request by {record.requester} has all its approvals; access is being granted."
        else:
            title = "Approved: your decision was recorded"
            message = (
                f"{len(record.approvals)} of {record.quorum} approvals so far; "
                "the request waits for the other approvers."
            )
        content = render(
            "message.html", kind="ok", message=message, advice="You can close this page.", details=""
        )
        return page(200, title, content)


def deps_from_env(environ: Mapping[str, str] | None = None, *, session: Any = None) -> ApprovalDeps:
    env = os.environ if environ is None else environ
    boto = session or boto3
    return ApprovalDeps(
        store=Store.from_env(env, session=session),
        link_key=link_key_from_env(env, session=session),
        sfn=boto.client("stepfunctions"),
        audit=audit_writer_from_env(env, session=session),
        approval_url=env.get(ENV_APPROVAL_URL) or None,
    )


def make_handler(deps: ApprovalDeps) -> Callable[[Mapping[str, Any], Any], dict[str, Any]]:
    """A Lambda-style handler bound to ``deps`` (tests and the local drill use this)."""
    api = ApprovalApi(deps)

    def _handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        try:
            request = parse_event(event)
        except (binascii.Error, ValueError, AttributeError, TypeError):
            return api.unauthenticated(None, "bad-event", page="bad-form")
        return api.handle(request)

    return _handler


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: API Gateway HTTP API (payload 2.0) -> HTML response."""
    return make_handler(deps_from_env())(event, context)


__all__ = ["ApprovalApi", "ApprovalDeps", "HttpRequest", "deps_from_env", "handler", "make_handler"]
