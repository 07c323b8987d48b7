"""Admission of new requests: rate limits, one live request per person and tier, and the index.

Kept in the workflow's table beside the requests, each as its own item kind so every function's
``dynamodb:LeadingKeys`` condition names exactly what it may touch:

- ``RATE#<tier>`` and ``RATE#<tier>#<user>`` / ``HOUR#<yyyymmddhh>``: requests admitted in one
  clock hour (an atomic, conditional counter; expires through TTL). A flood of requests, even by
  several responders, cannot exhaust a tier's guard storage or the approvers' attention.
- ``LIVE#<tier>#<user>`` / ``LIVE``: the person's current request on the tier. A new request is
  admitted only when that one is final (denied, revoked, expired) or gone, so a person holds at
  most one grant per tier, and a halt or resume by an emergency session finds its request here.
- ``INDEX#requests`` / ``<requested_at>#<request id>``: every request by time, for listing and for
  the reconciler (which looks for grants whose execution ended without revoke or review).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from breakglass.contracts import RequestStatus, iso
from breakglass.validation import ConfigError

FINAL_STATUSES: Final = frozenset({RequestStatus.DENIED, RequestStatus.REVOKED, RequestStatus.EXPIRED})
INDEX_PK: Final = "INDEX#requests"
# How long an index entry is kept (listing and reconciling look back at most this far).
INDEX_RETENTION: Final = timedelta(days=400)


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
        item = self.dynamodb.get_item(
            TableName=self.table, Key=_live_key(tier, user), ConsistentRead=True
        ).get("Item")
        return str(item["request_id"]["S"]) if item else None

    def claim_live(self, tier: str, user: str, request_id: str, *, current_status: Any) -> None:
        """Make ``request_id`` the person's live request on ``tier``.

        ``current_status(request_id)`` returns the status of the request the slot names (None if
        it does not exist). A slot whose request is final or missing is taken over; otherwise the
        new request is refused, naming the live one.
        """
        for _ in range(4):
            held = self.live_request(tier, user)
            if held is not None:
                status = current_status(held)
                if status is not None and status not in FINAL_STATUSES:
                    raise AdmissionRefused(
                        "tier",
                        f"you already have request {held} for tier {tier!r} ({status}); "
                        f"revoke it (breakglass revoke {held}) or wait for it to end",
                    )
            condition = "attribute_not_exists(pk)" if held is None else "request_id = :held"
            values = {":id": {"S": request_id}}
            if held is not None:
                values[":held"] = {"S": held}
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=_live_key(tier, user),
                    UpdateExpression="SET request_id = :id",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
                return
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        raise AdmissionRefused("tier", "another request of yours for this tier is being admitted; try again")

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


def _entry(item: Mapping[str, Any]) -> IndexEntry:
    requested_at, _, _ = str(item["sk"]["S"]).partition("#")
    return IndexEntry(
        request_id=str(item["request_id"]["S"]),
        requested_at=requested_at,
        requester=str(item["requester"]["S"]),
        tier=str(item["tier"]["S"]),
    )
