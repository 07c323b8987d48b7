"""The audit event schema: versioned, one flat JSON object per event, date-partitioned keys."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from breakglass.contracts import EVENT_COLUMNS, EVENT_TYPES, iso
from breakglass.lambdas.audit.events import AuditEvent, parse_record


def test_every_event_type_of_the_design_is_in_the_schema() -> None:
    assert set(EVENT_TYPES) == {
        "request",
        "approval",
        "denial",
        "grant",
        "assume",
        "halt",
        "resume",
        "revoke",
        "expiry",
        "review",
        "enrollment",
        "waiver",
        "error",
        "extension",
        "sealed-use",
    }


def test_a_record_has_exactly_the_table_columns_in_order() -> None:
    event = AuditEvent(event_type="grant", actor="system", request_id="r1", details={"b": 1, "a": [2]})
    record = event.to_record()
    assert list(record) == [name for name, _ in EVENT_COLUMNS]
    assert record["schema_version"] == "1"
    assert json.loads(record["details"]) == {"a": [2], "b": 1}


def test_records_round_trip() -> None:
    event = AuditEvent(event_type="halt", actor="tripwire:errors", target="endpoint/x", details={"k": "v"})
    assert parse_record(json.loads(json.dumps(event.to_record()))) == event


def test_object_keys_are_partitioned_by_event_day() -> None:
    event = AuditEvent(event_type="request", actor="alice", event_time="2026-11-22T02:13:05Z")
    key = event.object_key()
    assert key.startswith("breakglass-events/dt=2026-11-22/20261122T021305Z-request-")
    assert key.endswith(f"{event.event_id}.json")
    assert event.object_key("custom").startswith("custom/dt=2026-11-22/")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event_type": "reboot", "actor": "a"}, "event_type"),
        ({"event_type": "grant", "actor": "a", "outcome": "maybe"}, "outcome"),
        ({"event_type": "grant", "actor": ""}, "actor"),
    ],
)
def test_invalid_events_are_refused_naming_the_field(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        AuditEvent(**kwargs)


def test_malformed_event_time_is_refused() -> None:
    with pytest.raises(ValueError):
        AuditEvent(event_type="grant", actor="a", event_time="yesterday")


def test_iso_is_utc_with_z_and_refuses_naive_times() -> None:
    moment = datetime(2026, 11, 22, 3, 13, 5, tzinfo=timezone(timedelta(hours=1)))
    assert iso(moment) == "2026-11-22T02:13:05Z"
    with pytest.raises(ValueError):
        iso(datetime(2026, 11, 22))
