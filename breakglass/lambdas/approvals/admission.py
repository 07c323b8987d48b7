"""Admission of new requests: rate limits, one live request per person and tier, and the index.

Kept in the workflow's table beside the requests, each as its own item kind so every function's
``dynamodb:LeadingKeys`` condition names exactly what it may touch:

- ``RATE#<tier>`` and ``RATE#<tier>#<user>`` / ``HOUR#<yyyymmddhh>``: requests admitted in one
  clock hour (an atomic, conditional counter; expires through TTL). A flood of requests, even by
  several responders, cannot exhaust a tier's guard storage or the approvers' attention.
- ``LIVE#<tier>#<user>`` / ``LIVE``: the person's current request on the tier. A new request is
  admitted only when that one is final (denied, revoked, expired) or gone, so a person holds at
  most one grant per tier, and a halt or resume by an emergency session finds its request here.
  The same item keeps the person's most recent *granted* request of the tier (``last_granted``)
  and at most one review waiver: on a review-gated tier a new request is refused while that
  grant has no review verdict, unless security waived the gate for it (one request, consumed by
  a conditional write, so two requests at once cannot both pass on it). The item is found by
  the verified caller's user id and the tier asked for: nothing else the requester sends.
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
from breakglass.lambdas.approvals.chains import FINAL, last_granted, status_through_extensions
from breakglass.lambdas.approvals.store import RequestRecord
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


class AdmissionRefused(ConfigError):
    """The request is well-formed but cannot be admitted now (the message says why and when)."""


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
    """Security's leave for one request past the review gate of one unreviewed grant."""

    waiver_id: str
    blocks: str  # the unreviewed grant it lets one request past
    by: str
    reason: str
    expires_at: str  # ISO Z

    def details(self) -> dict[str, str]:
        return {
            "waiver_id": self.waiver_id,
            "unreviewed_request": self.blocks,
            "waived_by": self.by,
            "waiver_reason": self.reason,
            "waiver_expires_at": self.expires_at,
        }


@dataclass(frozen=True)
class Slot:
    """The person's admission state on one tier (the ``LIVE`` item)."""

    request_id: str | None = None
    claimed_at: str | None = None  # ISO Z; when request_id took the slot
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
        hour = now.strftime("%Y%m%d%H")
        ttl = int((now + timedelta(hours=2)).timestamp())
        next_hour = (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).strftime("%H:%M")
        if not self._increment(f"RATE#{tier}#{user}", hour, per_person, ttl):
            raise AdmissionRefused(
                "tier",
                f"you made {per_person} requests for tier {tier!r} this hour, its limit per person; "
                f"try again after {next_hour} UTC or ask security",
            )
        if not self._increment(f"RATE#{tier}", hour, per_tier, ttl):
            self._decrement(f"RATE#{tier}#{user}", hour)
            raise AdmissionRefused(
                "tier",
                f"tier {tier!r} had {per_tier} requests this hour, its limit; try again after "
                f"{next_hour} UTC, or ask security (this may be a flood)",
            )

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
        slot back with :meth:`release_live`. With ``review_gate``, it is also refused while the person's last grant of
        the tier has no verdict, unless a waiver of that grant is in force: then the waiver is
        returned, and the request must :meth:`consume_waiver` it before it goes further.
        """
        for _ in range(4):
            slot = self.slot(tier, user)
            held, last, blocking = _gate_of(slot, lookup)
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
            if review_gate:
                waiver = _waiver_for(slot, blocking, now)
                if blocking is not None and waiver is None:
                    raise AdmissionRefused("tier", _gate_refusal(tier, user, blocking))
            condition = (
                "attribute_not_exists(request_id)" if slot.request_id is None else "request_id = :held"
            )
            values = {":id": {"S": request_id}, ":at": {"S": iso(now)}}
            if slot.request_id is not None:
                values[":held"] = {"S": slot.request_id}
            update = "SET request_id = :id, claimed_at = :at"
            if last is not None:
                update += ", last_granted = :last"
                values[":last"] = {"S": last}
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

    def unreviewed_grant(self, tier: str, user: str, *, lookup: Callable[[str], RequestRecord | None]) -> str:
        """The person's last grant of ``tier``, which has no review verdict (what gates them);
        :class:`AdmissionRefused` when there is none: then there is nothing to waive."""
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
        """Let ``user``'s next request of ``tier`` past the gate of their unreviewed last grant.

        Refused (:class:`AdmissionRefused`) when no grant of theirs waits for a verdict. A new
        waiver replaces one not yet used. The slot is rewritten only if nobody changed it since it
        was read, so the waiver always names the grant that gates the person's next request.
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
                    UpdateExpression=(
                        "SET waiver_id = :w, waiver_blocks = :blocks, waiver_by = :by, "
                        "waiver_reason = :reason, waiver_expires = :expires"
                    ),
                    # A slot given back by a refused request names none (its grant is kept).
                    ConditionExpression=(
                        "attribute_not_exists(request_id)"
                        if slot.request_id is None
                        else "request_id = :held"
                    ),
                    ExpressionAttributeValues={
                        ":w": {"S": waiver.waiver_id},
                        ":blocks": {"S": waiver.blocks},
                        ":by": {"S": waiver.by},
                        ":reason": {"S": waiver.reason},
                        ":expires": {"S": waiver.expires_at},
                        **({":held": {"S": slot.request_id}} if slot.request_id is not None else {}),
                    },
                )
                return waiver
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        raise AdmissionRefused("user", "the person's requests changed while waiving; try again")

    def consume_waiver(self, tier: str, user: str, waiver: Waiver, *, request_id: str, now: datetime) -> bool:
        """Spend ``waiver`` on ``request_id``: True for the one request that does, while the slot
        still names it and the waiver has not expired; False otherwise (nothing was changed)."""
        if parse_iso(waiver.expires_at) <= now:
            return False
        return self._remove_waiver(
            tier, user, waiver, condition="request_id = :mine", values={":mine": {"S": request_id}}
        )

    def withdraw_waiver(self, tier: str, user: str, waiver: Waiver) -> bool:
        """Take back a waiver not yet used (its audit record could not be written)."""
        return self._remove_waiver(tier, user, waiver, condition=None, values={})

    def _remove_waiver(
        self, tier: str, user: str, waiver: Waiver, *, condition: str | None, values: dict[str, Any]
    ) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_live_key(tier, user),
                UpdateExpression="REMOVE waiver_id, waiver_blocks, waiver_by, waiver_reason, waiver_expires",
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

    waiver_id, blocks, expires = text("waiver_id"), text("waiver_blocks"), text("waiver_expires")
    waiver = (
        Waiver(
            waiver_id=waiver_id,
            blocks=blocks,
            by=text("waiver_by") or "",
            reason=text("waiver_reason") or "",
            expires_at=expires,
        )
        if waiver_id and blocks and expires
        else None
    )
    return Slot(
        request_id=text("request_id"),
        claimed_at=text("claimed_at"),
        last_granted=text("last_granted"),
        waiver=waiver,
    )


def _being_admitted(slot: Slot, now: datetime) -> bool:
    """Whether the slot's request, not stored, may still be in the middle of its admission."""
    if slot.request_id is None or slot.claimed_at is None:
        return False
    return now - parse_iso(slot.claimed_at) < ADMISSION_GRACE


def _gate_of(
    slot: Slot, lookup: Callable[[str], RequestRecord | None]
) -> tuple[RequestRecord | None, str | None, str | None]:
    """What the slot says about the person on the tier: the request it holds (None if missing),
    their most recent granted request's id, and that id again if it has no review verdict.

    The held request counts when it was granted; a denied or never-granted one (or one never
    stored) passes the earlier grant on, so a request in between cannot hide an unreviewed grant.
    """
    held = lookup(slot.request_id) if slot.request_id else None
    # The held request's chain counts through its latest granted extension, whose review is due.
    latest = last_granted(lookup, held) if held is not None else None
    last = latest.request_id if latest is not None else slot.last_granted
    if last is None:
        return held, None, None
    record = latest if latest is not None and latest.request_id == last else lookup(last)
    if record is None or not record.granted_once or record.review_verdict is not None:
        return held, last, None
    return held, last, record.request_id


def _waivable(tier: str, user: str, slot: Slot, lookup: Callable[[str], RequestRecord | None]) -> str:
    blocking = _gate_of(slot, lookup)[2]
    if blocking is None:
        raise AdmissionRefused(
            "user", f"{user} has no grant of tier {tier!r} waiting for a review: there is nothing to waive"
        )
    return blocking


def _waiver_for(slot: Slot, blocking: str | None, now: datetime | None) -> Waiver | None:
    waiver = slot.waiver
    if blocking is None or waiver is None or waiver.blocks != blocking:
        return None
    if now is None or parse_iso(waiver.expires_at) <= now:
        return None
    return waiver


def _gate_refusal(tier: str, user: str, blocking: str) -> str:
    return (
        f"your last grant of tier {tier!r}, request {blocking}, has no review verdict yet and tier "
        f"{tier!r} is review-gated; ask security to review it (breakglass audit review {blocking} "
        f"--verdict accepted) or to let one request of yours through (breakglass audit waive "
        f'--person {user} --tier {tier} --reason "..."). To stop a model now: breakglass halt'
    )


def _entry(item: Mapping[str, Any]) -> IndexEntry:
    requested_at, _, _ = str(item["sk"]["S"]).partition("#")
    return IndexEntry(
        request_id=str(item["request_id"]["S"]),
        requested_at=requested_at,
        requester=str(item["requester"]["S"]),
        tier=str(item["tier"]["S"]),
    )
