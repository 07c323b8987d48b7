"""Chains of windows: a grant and the extensions that follow it, walked through the table.

An extension is a request of its own that names the request it extends (``extends``); the extended
request names its latest extension (``extended_by``). Walks are bounded: a chain can never be
longer than its tier's total cap allows (15 minutes per link at least), far below :data:`MAX_LINKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final, Protocol

from breakglass.contracts import RequestStatus, parse_iso
from breakglass.lambdas.approvals.store import RequestRecord

# 7 days of 15-minute windows; a longer walk means a loop written outside break-glass.
MAX_LINKS: Final = 7 * 24 * 4
FINAL: Final = frozenset({RequestStatus.DENIED, RequestStatus.REVOKED, RequestStatus.EXPIRED})
# What an extension may still become: a pending or granted one holds the grant's extension slot.
LIVE: Final = frozenset({RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.GRANTED})


class Requests(Protocol):
    def get_request(self, request_id: str) -> RequestRecord | None: ...


Lookup = Callable[[str], RequestRecord | None]


def ancestors(store: Requests, record: RequestRecord) -> list[RequestRecord]:
    """The requests ``record`` extends, nearest first (empty for a first request)."""
    found: list[RequestRecord] = []
    current = record
    while current.extends and len(found) < MAX_LINKS:
        parent = store.get_request(current.extends)
        if parent is None:
            break
        found.append(parent)
        current = parent
    return found


def descendants(store: Requests, record: RequestRecord) -> list[RequestRecord]:
    """The extensions that follow ``record``, nearest first (each names the one before it)."""
    return following(store.get_request, record)


def following(lookup: Lookup, record: RequestRecord) -> list[RequestRecord]:
    """:func:`descendants`, reading the requests with ``lookup``."""
    found: list[RequestRecord] = []
    current = record
    while current.extended_by and len(found) < MAX_LINKS:
        child = lookup(current.extended_by)
        if child is None or child.extends != current.request_id:
            break
        found.append(child)
        current = child
    return found


def chain_start(store: Requests, record: RequestRecord) -> datetime | None:
    """When the first window of ``record``'s chain opened (None if it never was granted)."""
    first = ([record, *ancestors(store, record)])[-1]
    return parse_iso(first.starts_at) if first.starts_at else None


def status_through_extensions(lookup: Lookup, record: RequestRecord) -> str:
    """The status that decides whether the person's slot on the tier is taken: ``record``'s own,
    or, when it is final, that of a live extension after it."""
    if record.status not in FINAL:
        return record.status
    live = [r for r in following(lookup, record) if r.status in LIVE]
    return live[-1].status if live else record.status


def last_granted(lookup: Lookup, record: RequestRecord) -> RequestRecord | None:
    """The latest request of ``record``'s chain (itself or an extension after it) ever granted."""
    granted = [r for r in (record, *following(lookup, record)) if r.granted_once]
    return granted[-1] if granted else None


def current_grant(store: Requests, request_id: str, now: datetime) -> RequestRecord | None:
    """The granted request of ``request_id``'s chain whose window holds ``now``, if any."""
    record = store.get_request(request_id)
    if record is None:
        return None
    for candidate in (record, *descendants(store, record)):
        if (
            candidate.status == RequestStatus.GRANTED
            and candidate.starts_at
            and candidate.expires_at
            and parse_iso(candidate.starts_at) <= now < parse_iso(candidate.expires_at)
        ):
            return candidate
    return None
