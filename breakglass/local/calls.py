"""Which emulator a piece of work belongs to, for the thread doing it.

moto's backends are process-wide, but several emulators may run in one process (tests, the
drill, benchmarks), each with its own server, account and IAM setting. The server's request
middleware (:mod:`breakglass.local.emulator`) marks each request's thread with the emulator that
received it; code that runs inside that request (the IAM check, an in-process Lambda, the
CloudTrail recorder) reads it here. Work the emulator starts itself outside a request (API Gateway
and EventBridge invoking a function) marks its thread the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class CallScope:
    """What a thread working for one emulator needs to know about it."""

    endpoint_url: str
    account_id: str
    region: str
    enforce_iam: bool
    # Whether a shortened Wait state moves the package's clock to the moment it waited for.
    advance_clock: bool = True


_LOCAL = threading.local()


def current() -> CallScope | None:
    """The emulator this thread works for, or None outside any emulator's work."""
    scope: CallScope | None = getattr(_LOCAL, "scope", None)
    return scope


@contextmanager
def working_for(scope: CallScope) -> Iterator[CallScope]:
    """Mark this thread as working for ``scope`` (nested marks restore the outer one)."""
    previous = getattr(_LOCAL, "scope", None)
    _LOCAL.scope = scope
    try:
        yield scope
    finally:
        _LOCAL.scope = previous


# Running emulators by account, for work that starts on a thread no request marked (moto's Step
# Functions interpreter runs executions on threads of its own). Several emulators may share moto's
# default account; the one started last answers for it.
_RUNNING: dict[str, list[CallScope]] = {}
_RUNNING_LOCK = threading.Lock()


def started(scope: CallScope) -> None:
    with _RUNNING_LOCK:
        _RUNNING.setdefault(scope.account_id, []).append(scope)


def stopped(scope: CallScope) -> None:
    with _RUNNING_LOCK:
        scopes = _RUNNING.get(scope.account_id, [])
        if scope in scopes:
            scopes.remove(scope)
        if not scopes:
            _RUNNING.pop(scope.account_id, None)


def for_account(account_id: str) -> CallScope | None:
    """This thread's emulator, else the running emulator that holds ``account_id``."""
    scope = current()
    if scope is not None:
        return scope
    with _RUNNING_LOCK:
        scopes = _RUNNING.get(account_id)
        return scopes[-1] if scopes else None


__all__ = ["CallScope", "current", "for_account", "started", "stopped", "working_for"]
