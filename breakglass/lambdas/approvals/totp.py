"""TOTP second factor for requesters and approvers (RFC 6238, 30 s steps, one step of drift).

A code is accepted once: the time step it matched is claimed in the store, which only accepts
a step later than the last one that person used. So a code cannot be replayed, and an older
code still inside the drift window cannot be used after a newer one.

Guessing is rate-limited per person: at most :data:`MAX_FAILURES` wrong codes per
:data:`LOCKOUT_SECONDS` window (a 6-digit code is otherwise brute-forced within hours by anyone
holding an approval link).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Protocol

import pyotp
from pyotp.exceptions import OTPVerificationError

from breakglass.lambdas.approvals.store import NotEnrolled

STEP_SECONDS: Final = 30
DIGITS: Final = 6
VALID_WINDOW: Final = 1  # steps either side of now: tolerates clock drift of up to 30 s

MAX_FAILURES: Final = 5
LOCKOUT_SECONDS: Final = 900

REASONS: Final = ("not-enrolled", "malformed", "rate-limited", "wrong", "replayed")


class TotpStore(Protocol):
    def totp_secret(self, user: str) -> str: ...
    def claim_totp_step(self, user: str, step: int) -> bool: ...
    def reserve_totp_attempt(self, user: str, window: int, *, limit: int, ttl: int) -> bool: ...
    def release_totp_attempt(self, user: str, window: int) -> None: ...


class TotpRejected(ValueError):
    """The code does not count. ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def totp_for(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def matched_step(secret: str, code: str, *, now: datetime) -> int | None:
    """The time step ``code`` belongs to within the window around ``now``, or None."""
    try:
        # pyotp compares in constant time and reports the step it matched.
        return totp_for(secret).verify_and_get_timecode(code, for_time=now, valid_window=VALID_WINDOW)
    except OTPVerificationError:
        return None


def verify_totp(store: TotpStore, user: str, code: str, *, now: datetime) -> None:
    """Accept ``code`` for ``user`` at ``now`` exactly once; raise :class:`TotpRejected` otherwise."""
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware")
    normalized = code.replace(" ", "") if isinstance(code, str) else ""
    if not re.fullmatch(rf"[0-9]{{{DIGITS}}}", normalized):  # \d admits non-ASCII digits
        raise TotpRejected("malformed", f"the code must be {DIGITS} digits from your authenticator app")
    try:
        secret = store.totp_secret(user)
    except NotEnrolled as exc:
        raise TotpRejected("not-enrolled", f"{user!r} is not enrolled for break-glass access") from exc
    window = int(now.timestamp()) // LOCKOUT_SECONDS
    if not store.reserve_totp_attempt(user, window, limit=MAX_FAILURES, ttl=(window + 2) * LOCKOUT_SECONDS):
        raise TotpRejected(
            "rate-limited",
            f"too many wrong codes: wait up to {LOCKOUT_SECONDS // 60} minutes, then try the current code",
        )
    step = matched_step(secret, normalized, now=now)
    if step is None:  # the reserved attempt stays used up
        raise TotpRejected(
            "wrong",
            "the code is wrong or too old: check your authenticator app's clock and try the current code",
        )
    store.release_totp_attempt(user, window)
    if not store.claim_totp_step(user, step):
        raise TotpRejected("replayed", "this code was already used: wait for the next code and try again")
