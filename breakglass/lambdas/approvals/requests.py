"""Request validation: the first step of the workflow, and the tiers' approval policy.

A request names a tier, a justification, a ticket (where the tier wants one), a duration and
the requester's TOTP code. :func:`validate_request` checks all of it and returns the
:class:`~breakglass.lambdas.approvals.store.RequestRecord` to store, or raises :class:`RequestRejected`
naming the field that was wrong and what to do. The TOTP code is checked last, so a typo in the
reason never burns a code.

The approval policy per tier (``auto`` or a quorum, approvers, backup approvers, ticket rules,
deadline) is component configuration; the component ships it to the functions as a JSON file of their
archive (``APPROVAL_POLICY_FILE``) and this module parses it for both sides.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from breakglass.contracts import APPROVAL_POLICY_FILE, MAX_WINDOW_SECONDS, iso
from breakglass.lambdas.approvals.store import Enrollment, RequestRecord, same_person
from breakglass.lambdas.approvals.totp import TotpRejected, TotpStore, verify_totp
from breakglass.lambdas.runtime import archive_json
from breakglass.validation import (
    REQUEST_ID,
    REQUEST_ID_HINT,
    USER_ID,
    USER_ID_HINT,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
)

REASON_MIN: Final = 10
REASON_MAX: Final = 1000
TICKET_MAX: Final = 128
# The settings a tier's approval policy accepts (BreakGlass tiers mix them with role settings).
TIER_APPROVAL_KEYS: Final = (
    "approval",
    "approvers",
    "backup_approvers",
    "ticket_required",
    "ticket_pattern",
    "approval_timeout_seconds",
    "may_halt",
    "may_resume",
    "resume_without_quorum_opt_in",
    "max_requests_per_person_per_hour",
    "max_requests_per_hour",
    "review_gate",
    "max_total_seconds",
    "max_start_delay_seconds",
)

# IAM will not issue a session shorter than 15 minutes, so a shorter window is useless.
MIN_DURATION_SECONDS: Final = 900
MIN_APPROVAL_TIMEOUT: Final = 1
MAX_APPROVAL_TIMEOUT: Final = 7 * 24 * 3600
DEFAULT_APPROVAL_TIMEOUT: Final = 3600
MAX_QUORUM: Final = 10
# What a requester sends; who they are comes from AWS (the verified caller), never from here.
REQUEST_FIELDS: Final = ("tier", "reason", "ticket", "duration", "totp", "start_at")
# What a requester sends to extend their granted request (the tier and ticket are the request's).
EXTENSION_FIELDS: Final = ("by", "reason", "totp")
# How far ahead a request may schedule its window's start, unless the tier says otherwise (0 turns
# scheduling off): a shift ahead, not a standing grant parked for days.
DEFAULT_MAX_START_DELAY_SECONDS: Final = 4 * 3600
START_AT_TEXT_MAX: Final = 32
_START_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2})?Z")
DEFAULT_REQUESTS_PER_PERSON_PER_HOUR: Final = 6
DEFAULT_REQUESTS_PER_HOUR: Final = 30
MAX_REQUESTS_PER_HOUR: Final = 1000
# Control characters (bar newline and tab in a reason) would reach emails, pages and audit
# records; bidi overrides could make a reason read differently than it is stored.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
DURATION_TEXT_MAX: Final = 32
_DURATION = re.compile(r"(?:(?P<h>[0-9]{1,9})h)?(?:(?P<m>[0-9]{1,9})m)?(?:(?P<s>[0-9]{1,9})s)?")
_SECONDS = re.compile(r"[0-9]{1,9}")


class RequestRejected(ValueError):
    """A request that will not go further. The class name is the Step Functions error name."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class TierLimits(Protocol):
    """What validation needs from a tier (``breakglass.lambdas.access.grants.Tier`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def max_window_seconds(self) -> int: ...
    @property
    def allowed_requesters(self) -> Sequence[str]: ...


class EnrollmentStore(TotpStore, Protocol):
    def get_enrollment(self, user: str) -> Enrollment | None: ...


# -- the approval policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TierApproval:
    """How one tier is approved. ``quorum`` 0 means ``auto`` (approved at once, approvers told)."""

    quorum: int
    approvers: tuple[str, ...] = ()
    backup_approvers: tuple[str, ...] = ()
    ticket_required: bool = False
    ticket_pattern: str | None = None
    approval_timeout_seconds: int = DEFAULT_APPROVAL_TIMEOUT
    # What an emergency session of the tier may do through the access API's halt routes.
    may_halt: bool = True
    may_resume: bool = False
    # Request rate limits (per rolling clock hour): a flood of requests cannot exhaust a tier.
    max_requests_per_person_per_hour: int = DEFAULT_REQUESTS_PER_PERSON_PER_HOUR
    max_requests_per_hour: int = DEFAULT_REQUESTS_PER_HOUR
    # A requester whose last grant of the tier has no review verdict cannot ask for it again
    # (security may waive that for one request); see breakglass.lambdas.approvals.admission.
    review_gate: bool = False
    # From the first window's start to the last extension's expiry; None: twice the tier's window.
    max_total_seconds: int | None = None
    # How far ahead ``start_at`` may be; 0: the tier takes no scheduled requests.
    max_start_delay_seconds: int = DEFAULT_MAX_START_DELAY_SECONDS

    @property
    def auto(self) -> bool:
        return self.quorum == 0

    @classmethod
    def from_dict(cls, field: str, data: Any) -> TierApproval:
        """Parse one tier's settings; :class:`ConfigError` names ``field.<setting>``."""
        values = require_mapping(field, data)
        reject_unknown_keys(field, values, TIER_APPROVAL_KEYS)
        if "approval" not in values:
            raise ConfigError(f"{field}.approval", 'required: "auto" or the number of approvers needed')
        approval = values["approval"]
        if approval == "auto":
            quorum = 0
        elif isinstance(approval, int) and not isinstance(approval, bool):
            quorum = require_int(f"{field}.approval", approval, minimum=1, maximum=MAX_QUORUM)
        else:
            raise ConfigError(
                f"{field}.approval", f'must be "auto" or a quorum from 1 to {MAX_QUORUM}, got {approval!r}'
            )
        approvers = require_str_list(
            f"{field}.approvers", values.get("approvers", []), pattern=USER_ID, hint=USER_ID_HINT
        )
        backups = require_str_list(
            f"{field}.backup_approvers",
            values.get("backup_approvers", []),
            pattern=USER_ID,
            hint=USER_ID_HINT,
        )
        both = sorted(set(approvers) & set(backups))
        if both:
            raise ConfigError(f"{field}.backup_approvers", f"{both[0]!r} is already a primary approver")
        if quorum and len(approvers) < quorum:
            raise ConfigError(
                f"{field}.approvers",
                f"a quorum of {quorum} needs at least {quorum} approvers, got {len(approvers)}",
            )
        ticket_required = require_bool(f"{field}.ticket_required", values.get("ticket_required", False))
        pattern = values.get("ticket_pattern")
        if pattern is not None:
            require_str(f"{field}.ticket_pattern", pattern, max_length=200)
            try:
                re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                raise ConfigError(
                    f"{field}.ticket_pattern", f"is not a valid regular expression: {exc}"
                ) from exc
        timeout = require_int(
            f"{field}.approval_timeout_seconds",
            values.get("approval_timeout_seconds", DEFAULT_APPROVAL_TIMEOUT),
            minimum=MIN_APPROVAL_TIMEOUT,
            maximum=MAX_APPROVAL_TIMEOUT,
        )
        # Halting is cheap and resuming is a decision: by default only a tier approved by people
        # may resume, and an auto-approved tier needs a named opt-in to.
        may_resume = require_bool(f"{field}.may_resume", values.get("may_resume", quorum > 0))
        opt_in = require_bool(
            f"{field}.resume_without_quorum_opt_in", values.get("resume_without_quorum_opt_in", False)
        )
        if may_resume and quorum == 0 and not opt_in:
            raise ConfigError(
                f"{field}.may_resume",
                "an auto-approved tier may not resume halted models; give resume to a tier with a "
                "quorum, or set resume_without_quorum_opt_in: true to accept the risk",
            )
        per_person = require_int(
            f"{field}.max_requests_per_person_per_hour",
            values.get("max_requests_per_person_per_hour", DEFAULT_REQUESTS_PER_PERSON_PER_HOUR),
            minimum=1,
            maximum=MAX_REQUESTS_PER_HOUR,
        )
        per_tier = require_int(
            f"{field}.max_requests_per_hour",
            values.get("max_requests_per_hour", DEFAULT_REQUESTS_PER_HOUR),
            minimum=per_person,
            maximum=MAX_REQUESTS_PER_HOUR,
        )
        may_halt = require_bool(f"{field}.may_halt", values.get("may_halt", True))
        review_gate = require_bool(f"{field}.review_gate", values.get("review_gate", False))
        if review_gate and may_halt and quorum == 0:
            raise ConfigError(
                f"{field}.review_gate",
                "an auto-approved tier that may halt is how a model is stopped at once: it is never "
                "gated on reviews; gate the tiers approved by people instead",
            )
        total = values.get("max_total_seconds")
        return cls(
            max_total_seconds=None
            if total is None
            else require_int(
                f"{field}.max_total_seconds", total, minimum=MIN_DURATION_SECONDS, maximum=MAX_WINDOW_SECONDS
            ),
            max_start_delay_seconds=require_int(
                f"{field}.max_start_delay_seconds",
                values.get("max_start_delay_seconds", DEFAULT_MAX_START_DELAY_SECONDS),
                minimum=0,
                maximum=MAX_WINDOW_SECONDS,
            ),
            quorum=quorum,
            approvers=approvers,
            backup_approvers=backups,
            ticket_required=ticket_required,
            ticket_pattern=pattern,
            approval_timeout_seconds=timeout,
            may_halt=may_halt,
            may_resume=may_resume,
            max_requests_per_person_per_hour=per_person,
            max_requests_per_hour=per_tier,
            review_gate=review_gate,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "approval": "auto" if self.auto else self.quorum,
            "approvers": list(self.approvers),
            "backup_approvers": list(self.backup_approvers),
            "ticket_required": self.ticket_required,
            "approval_timeout_seconds": self.approval_timeout_seconds,
            "may_halt": self.may_halt,
            "may_resume": self.may_resume,
            "max_requests_per_person_per_hour": self.max_requests_per_person_per_hour,
            "max_requests_per_hour": self.max_requests_per_hour,
            "review_gate": self.review_gate,
        }
        # Only when set: the policy travels in an environment variable of bounded size.
        if self.max_start_delay_seconds != DEFAULT_MAX_START_DELAY_SECONDS:
            data["max_start_delay_seconds"] = self.max_start_delay_seconds
        if self.max_total_seconds is not None:
            data["max_total_seconds"] = self.max_total_seconds
        if self.may_resume and self.auto:
            data["resume_without_quorum_opt_in"] = True
        if self.ticket_pattern is not None:
            data["ticket_pattern"] = self.ticket_pattern
        return data


def parse_policy(data: Any, field: str = "tiers") -> dict[str, TierApproval]:
    values = require_mapping(field, data)
    if not values:
        raise ConfigError(field, "must name at least one tier")
    policy = {str(tier): TierApproval.from_dict(f"{field}.{tier}", spec) for tier, spec in values.items()}
    halting = [tier for tier, approval in policy.items() if approval.may_halt]
    if halting and all(policy[tier].review_gate for tier in halting):
        # Stopping a model must never wait for a review of someone's last access.
        raise ConfigError(
            f"{field}.{halting[0]}.review_gate",
            "every tier that may halt is review-gated; leave one ungated (the auto-approved halt tier)",
        )
    return policy


def policy_to_json(policy: Mapping[str, TierApproval]) -> str:
    return json.dumps({tier: approval.to_dict() for tier, approval in policy.items()}, sort_keys=True)


def load_policy(environ: Mapping[str, str] | None = None) -> dict[str, TierApproval]:
    """The approval policy the component shipped in the function's archive (``APPROVAL_POLICY_FILE``:
    every approver of every tier is too much for Lambda's 4 KB environment)."""
    return parse_policy(archive_json(APPROVAL_POLICY_FILE, environ), APPROVAL_POLICY_FILE)


def total_cap(approval: TierApproval, tier: TierLimits) -> int:
    """The longest a chain of windows (a grant and its extensions) may last on ``tier``."""
    if approval.max_total_seconds is not None:
        return approval.max_total_seconds
    return min(2 * tier.max_window_seconds, MAX_WINDOW_SECONDS)


def eligible_approvers(approval: TierApproval, requester: str, *, backup: bool = False) -> tuple[str, ...]:
    """Who may vote on ``requester``'s request: never the requester, whatever the configuration."""
    people: Iterable[str] = (
        (*approval.approvers, *approval.backup_approvers) if backup else approval.approvers
    )
    return tuple(p for p in dict.fromkeys(people) if not same_person(p, requester))


# -- one request ------------------------------------------------------------------------------------


def parse_duration(field: str, value: Any) -> int:
    """Seconds from ``"30m"``, ``"1h"``, ``"1h30m"``, ``"900s"``, ``"900"`` or an int.

    ASCII digits only (``str.isdigit`` and ``\\d`` admit "²", "①" or Arabic-Indic digits) and
    bounded: at most :data:`DURATION_TEXT_MAX` characters and :data:`MAX_WINDOW_SECONDS`, so no
    input reaches ``int()`` or an error message in a form that raises instead of refusing.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and value.strip() and len(value) <= DURATION_TEXT_MAX:
        text = value.strip().lower()
        match = _DURATION.fullmatch(text)
        if _SECONDS.fullmatch(text):
            seconds = int(text)
        elif match is not None and any(match.groupdict().values()):
            parts = {k: int(v or 0) for k, v in match.groupdict().items()}
            seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
        else:
            raise ConfigError(field, f'{value!r} is not a duration: use e.g. "30m", "1h", "1h30m" or seconds')
    else:
        shown = repr(value) if isinstance(value, str | int | float) and len(repr(value)) <= 40 else "that"
        raise ConfigError(
            field, f'must be a duration such as "30m", "1h" or a number of seconds, got {shown}'
        )
    if seconds < MIN_DURATION_SECONDS:
        got = f", got {seconds} s" if seconds > -MAX_WINDOW_SECONDS else ""  # str() of a huge int raises
        raise ConfigError(field, f"must be at least {MIN_DURATION_SECONDS // 60} minutes{got}")
    if seconds > MAX_WINDOW_SECONDS:
        raise ConfigError(field, f"must be at most {MAX_WINDOW_SECONDS // 86400} days")
    return seconds


def parse_start_at(field: str, value: Any, now: datetime) -> datetime:
    """When a scheduled window opens: ``"2026-12-01T09:00:00Z"`` (UTC) or ``"+2h"`` from ``now``.

    Whole seconds, strictly in the future; bounded text, so nothing reaches a parser that raises.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > START_AT_TEXT_MAX:
        raise ConfigError(field, 'must be a UTC time such as "2026-12-01T09:00:00Z" or "+2h" from now')
    text = value.strip()
    if text.startswith("+"):
        match = _DURATION.fullmatch(text[1:].lower())
        if match is None or not any(match.groupdict().values()):
            raise ConfigError(field, f'{value!r} is not a delay: use e.g. "+30m", "+2h" or "+1h30m"')
        parts = {k: int(v or 0) for k, v in match.groupdict().items()}
        seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
        if seconds > MAX_WINDOW_SECONDS:
            raise ConfigError(field, f"must be at most {MAX_WINDOW_SECONDS // 86400} days ahead")
        moment = now.replace(microsecond=0) + timedelta(seconds=seconds)
    elif _START_ISO.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError as exc:
            raise ConfigError(field, f"{value!r} is not a real date and time") from exc
    else:
        raise ConfigError(
            field, f'{value!r} is not a start time: use UTC like "2026-12-01T09:00:00Z", or "+2h"'
        )
    if moment <= now:
        raise ConfigError(field, f"{iso(moment)} is not in the future (now {iso(now)})")
    return moment


@dataclass(frozen=True)
class AccessRequest:
    """A request as the requester sent it, checked for shape (not yet against the tier)."""

    request_id: str
    tier: str
    requester: str
    reason: str
    ticket: str | None
    duration_seconds: int
    totp: str
    start_at: str | None = None  # as sent; checked against the clock and the tier by validate_request

    @classmethod
    def from_input(cls, data: Any, *, request_id: str, requester: str) -> AccessRequest:
        """Parse the body a requester sent; ``requester`` is the verified caller's user id."""
        values = require_mapping("request", data)
        reject_unknown_keys("", values, REQUEST_FIELDS)
        for name in ("tier", "reason", "duration", "totp"):
            if values.get(name) in (None, ""):
                raise ConfigError(name, "is required")
        ticket = values.get("ticket")
        return cls(
            request_id=require_str("request_id", request_id, pattern=REQUEST_ID, hint=REQUEST_ID_HINT),
            tier=require_str("tier", values["tier"], max_length=64),
            requester=require_str("requester", requester, pattern=USER_ID, hint=USER_ID_HINT),
            reason=require_str("reason", values["reason"]).strip(),
            ticket=require_str("ticket", ticket, max_length=TICKET_MAX).strip()
            if ticket not in (None, "")
            else None,
            duration_seconds=parse_duration("duration", values["duration"]),
            totp=require_str("totp", values["totp"], max_length=16),
            start_at=require_str("start_at", values["start_at"], max_length=START_AT_TEXT_MAX)
            if values.get("start_at") not in (None, "")
            else None,
        )


@dataclass(frozen=True)
class ValidatedRequest:
    """What the workflow goes on with: the record to store and the tier's approval settings."""

    record: RequestRecord
    approval: TierApproval

    def state(self) -> dict[str, Any]:
        return state_of(self.record, self.approval)


def state_of(record: RequestRecord, approval: TierApproval) -> dict[str, Any]:
    """The small part the state machine carries (handlers reload the rest from the table)."""
    return {
        "request_id": record.request_id,
        "tier": record.tier,
        "requester": record.requester,
        "quorum": record.quorum,
        "duration_seconds": record.duration_seconds,
        "approval_timeout_seconds": approval.approval_timeout_seconds,
    }


def validate_request(
    store: EnrollmentStore,
    tiers: Mapping[str, TierLimits],
    policy: Mapping[str, TierApproval],
    data: Any,
    *,
    request_id: str,
    requester: Enrollment,
    now: datetime,
    before_totp: Callable[[AccessRequest, TierApproval], None] | None = None,
) -> ValidatedRequest:
    """Check a request end to end; raise :class:`RequestRejected` naming the field otherwise.

    ``requester`` is the enrolled person AWS verified as the caller. ``before_totp`` runs after
    every other check and before the code is spent (the request entry claims its rate limits
    there), so neither a typo nor a refusal for load burns the requester's code.
    """
    try:
        request = AccessRequest.from_input(data, request_id=request_id, requester=requester.user)
        tier, approval = _tier_of(request.tier, tiers, policy)
        check_reason(request.reason)
        _check_ticket(request, approval)
        if request.duration_seconds > tier.max_window_seconds:
            raise ConfigError(
                "duration",
                f"tier {tier.name!r} allows at most {_human(tier.max_window_seconds)}, "
                f"asked for {_human(request.duration_seconds)}",
            )
        start_at = _scheduled_start(request, tier, approval, now)
        if "responder" not in requester.roles:
            raise ConfigError("requester", f"{requester.user!r} is enrolled but not as a responder")
        if requester.principal_arn not in tier.allowed_requesters:
            raise ConfigError(
                "requester",
                f"{requester.user!r} ({requester.principal_arn}) may not request tier {tier.name!r}; "
                "ask the cloud team to add you to the tier's allowed requesters",
            )
        approvers = eligible_approvers(approval, request.requester)
        if (
            approval.quorum
            and len(eligible_approvers(approval, request.requester, backup=True)) < approval.quorum
        ):
            raise ConfigError(
                "tier",
                f"tier {tier.name!r} needs {approval.quorum} approvers besides you and has fewer; "
                "ask the cloud team to add approvers",
            )
        if before_totp is not None:
            before_totp(request, approval)
        verify_totp(store, request.requester, request.totp, now=now)
    except ConfigError as exc:
        raise RequestRejected(exc.field or "request", exc.problem) from exc
    except TotpRejected as exc:
        raise RequestRejected("totp", str(exc)) from exc
    record = RequestRecord(
        request_id=request.request_id,
        requester=request.requester,
        requester_arn=requester.principal_arn,
        tier=request.tier,
        reason=request.reason,
        ticket=request.ticket,
        duration_seconds=request.duration_seconds,
        requested_at=iso(now),
        status="pending",
        quorum=approval.quorum,
        approvers=approvers,
        start_at=iso(start_at) if start_at is not None else None,
    )
    return ValidatedRequest(record=record, approval=approval)


def _scheduled_start(
    request: AccessRequest, tier: TierLimits, approval: TierApproval, now: datetime
) -> datetime | None:
    if request.start_at is None:
        return None
    if approval.max_start_delay_seconds == 0:
        raise ConfigError("start_at", f"tier {tier.name!r} takes no scheduled requests: leave out --start-at")
    start = parse_start_at("start_at", request.start_at, now)
    horizon = timedelta(seconds=approval.max_start_delay_seconds)
    if start - now > horizon:
        raise ConfigError(
            "start_at",
            f"tier {tier.name!r} schedules at most {_human(approval.max_start_delay_seconds)} ahead; "
            f"{iso(start)} is later than {iso(now + horizon)}",
        )
    return start


def mint_request_id(now: datetime) -> str:
    """A new request id: the time to the second (so ids sort by age) and 40 random bits.

    Never taken from a requester: ids become IAM statement ids, session tags and S3 keys. They are
    not secrets; the store refuses a duplicate. 23 characters keep two grants of the longest SSO
    principals inside the default 2048-character trust quota.
    """
    stamp = now.strftime("%y%m%d%H%M%S")
    return f"r{stamp}{secrets.token_hex(5)}"


def _tier_of(
    name: str, tiers: Mapping[str, TierLimits], policy: Mapping[str, TierApproval]
) -> tuple[TierLimits, TierApproval]:
    if name not in tiers or name not in policy:
        known = ", ".join(sorted(set(tiers) & set(policy))) or "none"
        raise ConfigError("tier", f"unknown tier {name!r}; known tiers: {known}")
    return tiers[name], policy[name]


def check_reason(reason: str) -> None:
    """A justification (of a request, an extension, a waiver): plain text of REASON_MIN to
    REASON_MAX characters; :class:`ConfigError` on ``reason`` otherwise."""
    if _CONTROL.search(reason):
        raise ConfigError("reason", "must be plain text: remove control or direction-changing characters")
    if len(reason) < REASON_MIN:
        raise ConfigError("reason", f"say why you need access in at least {REASON_MIN} characters")
    if len(reason) > REASON_MAX:
        raise ConfigError("reason", f"must be at most {REASON_MAX} characters, got {len(reason)}")


def _check_ticket(request: AccessRequest, approval: TierApproval) -> None:
    if request.ticket is None:
        if approval.ticket_required:
            raise ConfigError("ticket", f"tier {request.tier!r} requires an incident ticket")
        return
    if _CONTROL.search(request.ticket) or re.search(r"[\n\t]", request.ticket):
        raise ConfigError("ticket", "must be one line of plain text, e.g. INC-4242")
    if approval.ticket_pattern and not re.fullmatch(approval.ticket_pattern, request.ticket):
        raise ConfigError(
            "ticket",
            f"{request.ticket!r} does not look like a ticket of tier {request.tier!r} ({approval.ticket_pattern})",
        )


def human(seconds: int) -> str:
    """``5400`` -> ``"1h30m"`` (how durations are typed, for refusals)."""
    return _human(seconds)


def _human(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
