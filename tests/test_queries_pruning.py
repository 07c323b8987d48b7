"""The offline runner reads only the partitions a query needs, like Athena's partition projection."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from fixtures.audit.scenario import ACCOUNT_ID, build_local_bucket

from breakglass.local.athena import (
    LocalBucket,
    OfflineQueryError,
    conform,
    duckdb_type,
    parse_hive_type,
    run_named_query,
)
from breakglass.policies.queries import QueryError

ALICE = {"source_identity": "alice", "start": "2025-03-14T09:00:00Z", "end": "2025-03-14T10:00:00Z"}


@pytest.fixture(scope="module")
def local_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_local_bucket(tmp_path_factory.mktemp("audit-bucket"))


def _trail_files(root: Path, *days: str) -> list[Path]:
    return [
        p
        for p in (root / "AWSLogs" / ACCOUNT_ID / "CloudTrail").rglob("*.json.gz")
        if not days or "/".join(p.parts[-4:-1]) in days
    ]


def test_a_one_hour_session_query_reads_only_that_day_and_the_next(local_copy: Path) -> None:
    result = run_named_query("session_actions", local_copy, ALICE)
    scan = result.scans["cloudtrail_logs"]
    wanted = _trail_files(local_copy, "2025/03/14", "2025/03/15")
    assert scan.partitions_read == (
        ("us-east-1", "2025/03/14"),
        ("us-east-1", "2025/03/15"),
        ("us-west-2", "2025/03/14"),
    )
    assert (scan.files_read, scan.files_total) == (len(wanted), len(_trail_files(local_copy)))
    assert scan.files_read < scan.files_total
    assert scan.bytes_read == sum(p.stat().st_size for p in wanted)
    assert set(result.scans) == {"cloudtrail_logs"}  # the events table is never opened


def test_pruning_changes_what_is_read_never_the_rows(local_copy: Path) -> None:
    pruned = run_named_query("session_actions", local_copy, ALICE)
    full = run_named_query("session_actions", local_copy, ALICE, prune=False)
    assert pruned.rows == full.rows
    assert len(pruned.rows) == 4
    assert full.scans["cloudtrail_logs"].files_read == full.scans["cloudtrail_logs"].files_total
    assert pruned.bytes_read < full.bytes_read


def test_a_day_without_logs_reads_no_file_and_returns_no_row(local_copy: Path) -> None:
    result = run_named_query(
        "session_actions",
        local_copy,
        {"source_identity": "alice", "start": "2025-04-01T00:00:00Z", "end": "2025-04-01T12:00:00Z"},
    )
    assert result.rows == []
    assert result.scans["cloudtrail_logs"].files_read == 0
    assert result.columns[:3] == ["event_time", "event_source", "event_name"]


def test_a_query_without_partition_filter_reads_every_file(local_copy: Path) -> None:
    scan = run_named_query("emergency_sessions", local_copy).scans["cloudtrail_logs"]
    assert scan.files_read == scan.files_total == len(_trail_files(local_copy))


def test_region_and_date_predicates_prune_both_partition_columns(local_copy: Path) -> None:
    bucket = LocalBucket(local_copy)
    result = bucket.run_sql(
        "SELECT t.eventname FROM cloudtrail_logs AS t "
        "WHERE t.region = 'us-west-2' AND t.\"date\" = '2025/03/14' ORDER BY 1"
    )
    assert result.rows == [("InvokeModel",)]
    assert result.scans["cloudtrail_logs"].partitions_read == (("us-west-2", "2025/03/14"),)
    assert result.scans["cloudtrail_logs"].files_read == 1


def test_an_or_with_a_non_partition_column_cannot_prune(local_copy: Path) -> None:
    result = LocalBucket(local_copy).run_sql(
        "SELECT count(*) FROM cloudtrail_logs WHERE \"date\" = '2025/03/10' OR eventname = 'StopLogging'"
    )
    assert result.rows == [(2,)]
    scan = result.scans["cloudtrail_logs"]
    assert scan.files_read == scan.files_total


def test_a_second_unfiltered_reference_to_the_table_needs_every_partition(local_copy: Path) -> None:
    result = LocalBucket(local_copy).run_sql(
        "SELECT count(*) FROM cloudtrail_logs WHERE \"date\" = '2025/03/10' "
        "UNION ALL SELECT count(*) FROM cloudtrail_logs"
    )
    assert sorted(result.rows) == [(1,), (19,)]
    scan = result.scans["cloudtrail_logs"]
    assert scan.files_read == scan.files_total


def test_events_are_pruned_by_their_dt_partition(local_copy: Path) -> None:
    result = LocalBucket(local_copy).run_sql(
        "SELECT event_type, dt FROM breakglass_events WHERE dt = '2025-03-16' ORDER BY event_time"
    )
    assert result.rows == [("review", "2025-03-16")]
    scan = result.scans["breakglass_events"]
    assert (scan.files_read, scan.files_total) == (1, 20)


def test_partition_columns_come_from_the_object_paths(local_copy: Path) -> None:
    result = LocalBucket(local_copy).run_sql(
        "SELECT region, \"date\", awsregion, eventtime FROM cloudtrail_logs WHERE eventname = 'InvokeEndpoint' "
        "ORDER BY eventtime"
    )
    # The late call of 2025-03-15 sits in the 2025/03/16 partition, where CloudTrail delivered it.
    assert result.rows == [
        ("us-east-1", "2025/03/14", "us-east-1", "2025-03-14T09:10:00Z"),
        ("us-east-1", "2025/03/16", "us-east-1", "2025-03-15T23:59:30Z"),
    ]


def test_another_accounts_logs_are_left_out_when_an_account_is_given(local_copy: Path) -> None:
    mine = run_named_query("emergency_sessions", local_copy, account_id=ACCOUNT_ID)
    other = run_named_query("emergency_sessions", local_copy, account_id="999999999999")
    assert len(mine.rows) == 3
    assert other.rows == []
    assert other.scans["cloudtrail_logs"].files_total == 0


def test_digest_files_and_unrelated_objects_are_not_read_as_logs(tmp_path: Path) -> None:
    build_local_bucket(tmp_path)
    digest = tmp_path / "AWSLogs" / ACCOUNT_ID / "CloudTrail-Digest" / "us-east-1" / "2025" / "03" / "14"
    digest.mkdir(parents=True)
    (digest / f"{ACCOUNT_ID}_CloudTrail-Digest_us-east-1_x.json.gz").write_bytes(gzip.compress(b"{}"))
    (tmp_path / "notes.json.gz").write_bytes(gzip.compress(b"{}"))
    scan = run_named_query("emergency_sessions", tmp_path).scans["cloudtrail_logs"]
    assert scan.files_total == len(_trail_files(tmp_path)) == 9


def test_a_log_file_without_records_is_reported_by_path(tmp_path: Path) -> None:
    day = tmp_path / "AWSLogs" / ACCOUNT_ID / "CloudTrail" / "us-east-1" / "2025" / "03" / "14"
    day.mkdir(parents=True)
    bad = day / "broken.json.gz"
    bad.write_bytes(gzip.compress(json.dumps({"records": []}).encode()))
    with pytest.raises(OfflineQueryError, match=r"broken\.json\.gz is not a CloudTrail log file"):
        run_named_query("emergency_sessions", tmp_path)


def test_a_missing_or_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OfflineQueryError, match="is not a directory"):
        run_named_query("halts", tmp_path / "nope")
    with pytest.raises(OfflineQueryError, match=r"no CloudTrail logs .* and no break-glass events"):
        run_named_query("halts", tmp_path)


def test_an_unknown_query_fails_before_the_directory_is_read(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="unknown query 'nope'; named queries: emergency_sessions"):
        run_named_query("nope", tmp_path / "does-not-exist")


def test_unbound_placeholders_and_invalid_sql_are_refused(local_copy: Path) -> None:
    bucket = LocalBucket(local_copy)
    with pytest.raises(OfflineQueryError, match="placeholders"):
        bucket.run_sql("SELECT * FROM cloudtrail_logs WHERE eventname = ?")
    with pytest.raises(OfflineQueryError, match="not valid Trino SQL"):
        bucket.run_sql("SELECT FROM WHERE (")
    with pytest.raises(OfflineQueryError, match="DuckDB could not run the query"):
        bucket.run_sql("SELECT no_such_column FROM breakglass_events")


def test_records_are_shaped_like_athenas_json_serde_reads_them() -> None:
    hive = parse_hive_type(
        "struct<type:string,flags:array<string>,attrs:map<string,string>,inner:struct<a:string>>"
    )
    assert conform(
        {"Type": "Role", "FLAGS": [True, 3], "attrs": {"k": {"x": 1}}, "inner": {"A": None}, "extra": 1}, hive
    ) == {"type": "Role", "flags": ["true", "3"], "attrs": {"k": '{"x":1}'}, "inner": {"a": None}}
    assert conform({"roleArn": "r"}, "string") == '{"roleArn":"r"}'
    assert conform("text", hive) is None  # a scalar where a struct belongs reads as NULL
    assert duckdb_type(hive) == (
        'STRUCT("type" VARCHAR, "flags" VARCHAR[], "attrs" MAP(VARCHAR, VARCHAR), "inner" STRUCT("a" VARCHAR))'
    )


def test_malformed_hive_types_are_rejected() -> None:
    with pytest.raises(ValueError, match="expected '>'"):
        parse_hive_type("array<string")
    with pytest.raises(ValueError, match="expected field name"):
        parse_hive_type("struct<:string>")


def test_an_outer_join_predicate_that_admits_unmatched_rows_is_not_pruned(local_copy: Path) -> None:
    # alice's events are all on 03-14: a full scan joins them, and `e.dt = '2025-03-15'` rejects
    # her. Pruning the events to 03-15 would leave her unmatched, and `e.dt IS NULL` would keep her.
    sql = """
SELECT DISTINCT c.useridentity.sessioncontext.sourceidentity AS who
FROM cloudtrail_logs AS c
LEFT JOIN breakglass_events AS e ON e.actor = c.useridentity.sessioncontext.sourceidentity
WHERE c."date" = '2025/03/14' AND (e.dt = '2025-03-15' OR e.dt IS NULL)
ORDER BY 1
"""
    bucket = LocalBucket(local_copy)
    pruned = bucket.run_sql(sql)
    full = bucket.run_sql(sql, prune=False)
    assert pruned.rows == full.rows
    assert ("alice",) not in pruned.rows
    events = pruned.scans["breakglass_events"]
    assert events.files_read == events.files_total
    # The preserved side's plain predicate still prunes.
    assert pruned.scans["cloudtrail_logs"].files_read < pruned.scans["cloudtrail_logs"].files_total
