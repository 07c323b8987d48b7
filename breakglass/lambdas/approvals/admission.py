"""Admission of new requests: rate limits, one live request per person and tier, and the index.

Kept in the workflow's table beside the requests, each as its own item kind so every function's
``dynamodb:LeadingKeys`` condition names exactly what it may touch:

- ``RATE#<tier>`` and ``RATE#<tier>#<user>`` / ``HOUR#<yyyymmddhh>``: requests admitted in one
  clock hour (an atomic, conditional counter; expires through TTL). A flood of requests, even by
  several responders, cannot exhaust a tier's guard storage or the approvers' attention.
- ``LIVE#<tier>#<user>`` / ``LIVE``: the person's current request on the tier. A new request is
  admitted only when that one is final (denied, revoked, expired) or gone, so a person holds at
  most one grant per tier, and a halt or resume by an emergency session finds its request here.
  On a review-gated tier the same item keeps the set of the person's grants of the tier that
  have no accepted review verdict yet (``unreviewed``: each grant of the held request's chain is
  added when a new request takes the slot over, and dropped once its review is accepted), and
  at most one review waiver. A new request is refused while any of those grants lacks an
  accepted verdict (a ``flagged`` one keeps it closed), unless security waived the gate for all
  of them (one request, consumed by a conditional write, so two requests at once cannot both
  pass on it). A waiver is stored inactive and activated only once its audit event is stored.
  The item is found by the verified caller's user id and the tier asked for: nothing else the
  requester sends.
- ``INDEX#requests`` / ``<requested_at>#<request id>``: every request by time, for listing and for
  the reconciler (which looks for grants whose execution ended without revoke or review).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from breakglass.contracts import iso, parse_iso
from breakglass.lambdas.approvals.chains import FINAL, following, status_through_extensions
from breakglass.lambdas.approvals.store import RequestRecord
from breakglass.lambdas.audit.review import ACCEPTED
from breakglass.validation import ConfigError

INDEX_PK: Final = "INDEX#requests"
# How long an index entry is kept (listing and reconciling look back at most this far).
INDEX_RETENTION: Final = timedelta(days=400)
# How long a review waiver lets its person's next request of the tier past the gate.
WAIVER_LIFETIME: Final = timedelta(hours=24)
# A slot naming a request that is not stored yet belongs to an admission still running in another
# invocation (it checks the TOTP code between claiming the slot and storing the request). It is
# held that long, longer than the access function may run (60 s), then counts as abandoned.
ADMISSION_GRACE: Final = timedelta(seconds=90)
_WAIVER_FIELDS: Final = "waiver_id, waiver_blocks, waiver_by, waiver_reason, waiver_expires, waiver_active"
# Stores a waiver whole, active or not (given, or given back after a request that never ran).
_WAIVER_SET: Final = (
    "SET waiver_id = :w, waiver_blocks = :blocks, waiver_by = :by, "
    "waiver_reason = :reason, waiver_expires = :expires, waiver_active = :active"
)


class AdmissionRefused(ConfigError):
    """The request is well-formed but cannot be admitted now (the message says why and when)."""


class Gated(AdmissionRefused):
    """Refused by the review gate: counts against the person's hourly rate (see ``take_rate``)."""


class StillLive(AdmissionRefused):
    """Nothing to waive yet: a grant that gates the person has not ended."""


class RateLimited(AdmissionRefused):
    """Refused for the hourly rate. ``first``: the first such refusal of the person this hour (the
    one that alerts; the rest are recorded and alerted in aggregate, so a flood cannot page)."""

    def __init__(self, field: str, problem: str, *, first: bool = True) -> None:
        super().__init__(field, problem)
        self.first = first


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class IndexEntry:
    request_id: str
    requested_at: str
    requester: str
    tier: str


@dataclass(frozen=True)
class Waiver:
    """Security's leave for one request past the review gate of the person's unreviewed grants."""

    waiver_id: str
    blocks: tuple[str, ...]  # every unreviewed grant it lets one request past, oldest first
    by: str
    reason: str
    expires_at: str  # ISO Z
    active: bool = False  # only once its audit event is stored

    def details(self) -> dict[str, Any]:
        return {
            "waiver_id": self.waiver_id,
            "unreviewed_request": self.blocks[-1],
            "unreviewed_requests": list(self.blocks),
            "waived_by": self.by,
            "waiver_reason": self.reason,
            "waiver_expires_at": self.expires_at,
        }


@dataclass(frozen=True)
class Slot:
    """The person's admission state on one tier (the ``LIVE`` item)."""

    request_id: str | None = None
    claimed_at: str | None = None  # ISO Z; when request_id took the slot
    # Grants of earlier requests without an accepted verdict (with ``last_granted``, the one
    # grant an item written before the set existed remembers).
    unreviewed: tuple[str, ...] = ()
    last_granted: str | None = None
    waiver: Waiver | None = None


@dataclass(frozen=True)
class Admission:
    """The admission items of one workflow table (``dynamodb`` is a boto3 DynamoDB client)."""

    dynamodb: Any
    table: str

    # -- rate limits ------------------------------------------------------------------------------

    def take_rate(self, tier: str, user: str, *, now: datetime, per_person: int, per_tier: int) -> None:
        """Count one request of ``user`` on ``tier`` in this clock hour, or refuse it.

        The person's counter is taken first, so one person's flood stops at their own limit and
        never eats into what the tier leaves for everybody else.
        """
        hour, ttl, next_hour = _hour(now)
        self._take_person(tier, user, hour, ttl, next_hour, per_person)
        if not self._increment(f"RATE#{tier}", hour, per_tier, ttl):
            self._decrement(f"RATE#{tier}#{user}", hour)
            raise RateLimited(
                "tier",
                f"tier {tier!r} had {per_tier} requests this hour, its limit; try again after "
                f"{next_hour} UTC, or ask security (this may be a flood)",
            )

    def count_refusal(self, tier: str, user: str, *, now: datetime, per_person: int) -> None:
        """Count a request the review gate refused against ``user``'s hourly rate on ``tier``
        (never the tier's: it reaches no approver). Without this, a gated person could send
        refused requests without end, each one a locked audit object and an alert; with it, once
        their hour is used up the refusal is the rate's (:class:`RateLimited`)."""
        hour, ttl, next_hour = _hour(now)
        self._take_person(tier, user, hour, ttl, next_hour, per_person)

    def _take_person(self, tier: str, user: str, hour: str, ttl: int, next_hour: str, limit: int) -> None:
        if self._increment(f"RATE#{tier}#{user}", hour, limit, ttl):
            return
        raise RateLimited(
            "tier",
            f"you made {limit} requests for tier {tier!r} this hour (refused ones count), its limit "
            f"per person; try again after {next_hour} UTC or ask security",
            first=self._count_over(f"RATE#{tier}#{user}", hour) == 1,
        )

    def _count_over(self, pk: str, hour: str) -> int:
        """Count one more request refused for the rate this hour; the new count."""
        answer = self.dynamodb.update_item(
            TableName=self.table,
            Key={"pk": {"S": pk}, "sk": {"S": f"HOUR#{hour}"}},
            UpdateExpression="ADD #over :one",
            ExpressionAttributeNames={"#over": "over"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["over"]["N"])

    def _increment(self, pk: str, hour: str, limit: int, ttl: int) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": pk}, "sk": {"S": f"HOUR#{hour}"}},
                UpdateExpression="ADD #count :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":ttl": {"N": str(ttl)},
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def _decrement(self, pk: str, hour: str) -> None:
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"pk": {"S": pk}, "sk": {"S": f"HOUR#{hour}"}},
            UpdateExpression="ADD #count :minus",
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues={":minus": {"N": "-1"}},
        )

    # -- one live request per person and tier -------------------------------------------------------

    def live_request(self, tier: str, user: str) -> str | None:
        return self.slot(tier, user).request_id

    def slot(self, tier: str, user: str) -> Slot:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=_live_key(tier, user), ConsistentRead=True
        ).get("Item")
        return _slot(item or {})

    def claim_live(
        self,
        tier: str,
        user: str,
        request_id: str,
        *,
        lookup: Callable[[str], RequestRecord | None],
        now: datetime,
        review_gate: bool = False,
    ) -> Waiver | None:
        """Make ``request_id`` the person's live request on ``tier``.

        ``lookup(request_id)`` returns a stored request (None if it does not exist). A slot whose
        request is final is taken over, and so is one whose request was never stored once
        :data:`ADMISSION_GRACE` has passed (before that, its admission may still be running);
        otherwise the new request is refused, naming the live one. A refused admission gives the
        slot back with :meth:`release_live`. With ``review_gate``, it is also refused
        (:class:`Gated`) while any grant of the person on the tier has no accepted verdict, unless
        an active waiver of all of them is in force: then the waiver is returned, and the request
        must :meth:`consume_waiver` it before it goes further. Taking the slot over keeps the
        grants of the request it held in the slot's ``unreviewed`` set.
        """
        for _ in range(4):
            slot = self.slot(tier, user)
            held = lookup(slot.request_id) if slot.request_id else None
            # A final request whose extension is still live holds the slot through it.
            status = status_through_extensions(lookup, held) if held is not None else None
            if held is not None and status not in FINAL:
                raise AdmissionRefused(
                    "tier",
                    f"you already have request {held.request_id} for tier {tier!r} ({status}); "
                    f"revoke it (breakglass revoke {held.request_id}) or wait for it to end",
                )
            if held is None and _being_admitted(slot, now):
                raise AdmissionRefused(
                    "tier",
                    f"another request of yours for tier {tier!r} is being admitted; wait for its answer "
                    "(breakglass list) or try again in a minute",
                )
            waiver = None
            unreviewed: tuple[str, ...] = ()
            if review_gate:
                unreviewed = _unreviewed(slot, held, lookup)
                if unreviewed:
                    waiver = _waiver_for(slot, unreviewed, now)
                    if waiver is None:
                        raise Gated("tier", _gate_refusal(tier, user, unreviewed))
            condition = (
                "attribute_not_exists(request_id)" if slot.request_id is None else "request_id = :held"
            )
            values: dict[str, Any] = {":id": {"S": request_id}, ":at": {"S": iso(now)}}
            if slot.request_id is not None:
                values[":held"] = {"S": slot.request_id}
            update = "SET request_id = :id, claimed_at = :at"
            if review_gate:
                # The set replaces the one grant an older item remembered (last_granted).
                if unreviewed:
                    update += ", unreviewed = :unreviewed REMOVE last_granted"
                    values[":unreviewed"] = {"SS": list(unreviewed)}
                else:
                    update += " REMOVE last_granted, unreviewed"
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=_live_key(tier, user),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
                return waiver
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        raise AdmissionRefused("tier", "another request of yours for this tier is being admitted; try again")

    def release_live(self, tier: str, user: str, request_id: str) -> None:
        """Give back the slot ``request_id`` claimed and was then refused (it was never stored),
        so the person's next try is not held up; a slot another request holds is left alone."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_live_key(tier, user),
                UpdateExpression="REMOVE request_id, claimed_at",
                ConditionExpression="request_id = :mine",
                ExpressionAttributeValues={":mine": {"S": request_id}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # -- the review gate's waiver -------------------------------------------------------------------

    def unreviewed_grant(
        self, tier: str, user: str, *, lookup: Callable[[str], RequestRecord | None]
    ) -> tuple[str, ...]:
        """The person's grants of ``tier`` without an accepted verdict (what gates them), oldest
        first; :class:`AdmissionRefused` when there is none (nothing to waive) and
        :class:`StillLive` when one of them has not ended (nothing to review yet)."""
        return _waivable(tier, user, self.slot(tier, user), lookup)

    def waive(
        self,
        tier: str,
        user: str,
        *,
        by: str,
        reason: str,
        lookup: Callable[[str], RequestRecord | None],
        now: datetime,
    ) -> Waiver:
        """Store a waiver letting ``user``'s next request of ``tier`` past the gate of all their
        unreviewed grants, inactive: it lets nothing through until :meth:`activate_waiver`, once
        its audit event is stored (a request in flight while the event is written finds none).

        Refused as :meth:`unreviewed_grant` is. A new waiver replaces one not yet used. The slot
        is rewritten only if nobody changed it since it was read, so the waiver always names the
        grants that gate the person's next request.
        """
        for _ in range(4):
            slot = self.slot(tier, user)
            blocking = _waivable(tier, user, slot, lookup)
            waiver = Waiver(
                waiver_id=f"w{now.strftime('%y%m%d%H%M%S')}{secrets.token_hex(5)}",
                blocks=blocking,
                by=by,
                reason=reason,
                expires_at=iso(now + WAIVER_LIFETIME),
            )
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=_live_key(tier, user),
                    UpdateExpression=_WAIVER_SET,
                    # A slot given back by a refused request names none (its grant is kept).
                    ConditionExpression=(
                        "attribute_not_exists(request_id)"
                        if slot.request_id is None
                        else "request_id = :held"
                    ),
                    ExpressionAttributeValues={
                        **_waiver_values(waiver, active=False),
                        **({":held": {"S": slot.request_id}} if slot.request_id is not None else {}),
                    },
                )
                return waiver
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        raise AdmissionRefused("user", "the person's requests changed while waiving; try again")

    def activate_waiver(self, tier: str, user: str, waiver: Waiver) -> bool:
        """Let the stored ``waiver`` be used (its audit event is stored); False when it is no
        longer there (replaced by a newer one): then it never let anyone through."""
        return self._update_waiver(
            tier, user, waiver, "SET waiver_active = :yes", {":yes": {"BOOL": True}}, condition=None
        )

    def consume_waiver(self, tier: str, user: str, waiver: Waiver, *, request_id: str, now: datetime) -> bool:
        """Spend ``waiver`` on ``request_id``: True for the one request that does, while the slot
        still names it and the waiver is active and has not expired; False otherwise (nothing
        was changed)."""
        if parse_iso(waiver.expires_at) <= now:
            return False
        return self._update_waiver(
            tier,
            user,
            waiver,
            f"REMOVE {_WAIVER_FIELDS}",
            {":mine": {"S": request_id}, ":yes": {"BOOL": True}},
            # An item from before waivers were activated holds only waivers on record.
            condition="request_id = :mine AND (waiver_active = :yes OR attribute_not_exists(waiver_active))",
        )

    def restore_waiver(self, tier: str, user: str, waiver: Waiver) -> bool:
        """Give a spent ``waiver`` back when the request it was spent on never ran (it could not
        be stored or its workflow could not start); not over a waiver given since."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_live_key(tier, user),
                UpdateExpression=_WAIVER_SET,
                ConditionExpression="attribute_not_exists(waiver_id)",
                ExpressionAttributeValues=_waiver_values(waiver, active=True),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def withdraw_waiver(self, tier: str, user: str, waiver: Waiver) -> bool:
        """Take back a waiver not yet used (its audit record could not be written)."""
        return self._update_waiver(tier, user, waiver, f"REMOVE {_WAIVER_FIELDS}", {}, condition=None)

    def _update_waiver(
        self,
        tier: str,
        user: str,
        waiver: Waiver,
        update: str,
        values: dict[str, Any],
        *,
        condition: str | None,
    ) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_live_key(tier, user),
                UpdateExpression=update,
                ConditionExpression="waiver_id = :w" + (f" AND {condition}" if condition else ""),
                ExpressionAttributeValues={":w": {"S": waiver.waiver_id}, **values},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    # -- the index -------------------------------------------------------------------------------------

    def index(self, entry: IndexEntry, *, now: datetime) -> None:
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": INDEX_PK},
                "sk": {"S": f"{entry.requested_at}#{entry.request_id}"},
                "request_id": {"S": entry.request_id},
                "requester": {"S": entry.requester},
                "tier": {"S": entry.tier},
                "ttl": {"N": str(int((now + INDEX_RETENTION).timestamp()))},
            },
        )

    def recent(self, *, since: datetime, limit: int = 200) -> Iterator[IndexEntry]:
        """Index entries newest first, back to ``since``, at most ``limit``."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk >= :since",
            "ExpressionAttributeValues": {":pk": {"S": INDEX_PK}, ":since": {"S": iso(since)}},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        seen = 0
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                yield _entry(item)
                seen += 1
                if seen >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _live_key(tier: str, user: str) -> dict[str, Any]:
    return {"pk": {"S": f"LIVE#{tier}#{user.casefold()}"}, "sk": {"S": "LIVE"}}


def _slot(item: Mapping[str, Any]) -> Slot:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value["S"]) if value else None

    def ids(name: str) -> tuple[str, ...]:
        # A string set; an item written before the sets existed holds one id as a string.
        value = item.get(name) or {}
        return tuple(sorted(value.get("SS") or ([value["S"]] if "S" in value else [])))

    waiver_id, blocks, expires = text("waiver_id"), ids("waiver_blocks"), text("waiver_expires")
    # An item written before waivers were activated holds active ones only (no attribute).
    active = item.get("waiver_active", {"BOOL": True}).get("BOOL") is True
    waiver = (
        Waiver(
            waiver_id=waiver_id,
            blocks=blocks,
            by=text("waiver_by") or "",
            reason=text("waiver_reason") or "",
            expires_at=expires,
            active=active,
        )
        if waiver_id and blocks and expires
        else None
    )
    return Slot(
        request_id=text("request_id"),
        claimed_at=text("claimed_at"),
        unreviewed=ids("unreviewed"),
        last_granted=text("last_granted"),
        waiver=waiver,
    )


def _being_admitted(slot: Slot, now: datetime) -> bool:
    """Whether the slot's request, not stored, may still be in the middle of its admission."""
    if slot.request_id is None or slot.claimed_at is None:
        return False
    return now - parse_iso(slot.claimed_at) < ADMISSION_GRACE


def _accepted(record: RequestRecord) -> bool:
    """Whether the grant's review is done: an ``accepted`` verdict given after the review opened
    (a ``flagged`` one keeps the gate closed: security waives each request until it accepts)."""
    return record.review_opened and record.review_verdict == ACCEPTED


def _unreviewed(
    slot: Slot, held: RequestRecord | None, lookup: Callable[[str], RequestRecord | None]
) -> tuple[str, ...]:
    """Every grant of the person on the tier without an accepted verdict, oldest first (request
    ids begin with their time): those the slot keeps and every granted link of the held request's
    chain. A denied or never-granted request adds none, so a request in between hides nothing."""
    candidates = [*slot.unreviewed, *([slot.last_granted] if slot.last_granted else [])]
    if held is not None:
        candidates += [r.request_id for r in (held, *following(lookup, held)) if r.granted_once]
    found = []
    for request_id in sorted(set(candidates)):
        record = lookup(request_id)
        if record is not None and record.granted_once and not _accepted(record):
            found.append(request_id)
    return tuple(found)


def _waivable(
    tier: str, user: str, slot: Slot, lookup: Callable[[str], RequestRecord | None]
) -> tuple[str, ...]:
    held = lookup(slot.request_id) if slot.request_id else None
    blocking = _unreviewed(slot, held, lookup)
    if not blocking:
        raise AdmissionRefused(
            "user", f"{user} has no grant of tier {tier!r} waiting for a review: there is nothing to waive"
        )
    for request_id in blocking:
        record = lookup(request_id)
        status = status_through_extensions(lookup, record) if record is not None else None
        if status is not None and status not in FINAL:
            # Nobody can know yet what it is used for: the waiver would be a blank cheque.
            raise StillLive(
                "user",
                f"{user}'s request {request_id} of tier {tier!r} is still {status}: a waiver is given "
                f"once the grant has ended (or revoke it: breakglass revoke {request_id})",
            )
    return blocking


def _waiver_for(slot: Slot, blocking: tuple[str, ...], now: datetime) -> Waiver | None:
    waiver = slot.waiver
    if waiver is None or not waiver.active or not set(blocking) <= set(waiver.blocks):
        return None
    if parse_iso(waiver.expires_at) <= now:
        return None
    return waiver


def _gate_refusal(tier: str, user: str, blocking: tuple[str, ...]) -> str:
    what = (
        f"your grant of tier {tier!r}, request {blocking[0]}, has"
        if len(blocking) == 1
        else f"your grants of tier {tier!r}, requests {', '.join(blocking)}, have"
    )
    return (
        f"{what} no accepted review verdict yet and tier {tier!r} is review-gated; ask security "
        f"to review (breakglass audit review {blocking[0]} --verdict accepted) or to let one "
        f'request of yours through (breakglass audit waive --person {user} --tier {tier} --reason "..."). '
        "To stop a model now: breakglass halt"
    )


def _hour(now: datetime) -> tuple[str, int, str]:
    """The rate counters' clock hour, their TTL and when the next hour starts (HH:MM, UTC)."""
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return now.strftime("%Y%m%d%H"), int((now + timedelta(hours=2)).timestamp()), next_hour.strftime("%H:%M")


def _entry(item: Mapping[str, Any]) -> IndexEntry:
    requested_at, _, _ = str(item["sk"]["S"]).partition("#")
    return IndexEntry(
        request_id=str(item["request_id"]["S"]),
        requested_at=requested_at,
        requester=str(item["requester"]["S"]),
        tier=str(item["tier"]["S"]),
    )


def _waiver_values(waiver: Waiver, *, active: bool) -> dict[str, Any]:
    return {
        ":w": {"S": waiver.waiver_id},
        ":blocks": {"SS": list(waiver.blocks)},
        ":by": {"S": waiver.by},
        ":reason": {"S": waiver.reason},
        ":expires": {"S": waiver.expires_at},
        ":active": {"BOOL": active},
    }
