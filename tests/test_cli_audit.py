"""`breakglass audit queries` and `breakglass audit query NAME --local DIR`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.audit.scenario import AUDIT_BUCKET, build_local_bucket
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.policies.queries import NAMED_QUERIES

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # rich sizes tables to the terminal; keep rows on one line


@pytest.fixture(scope="module")
def local_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_local_bucket(tmp_path_factory.mktemp("audit-bucket"))


def test_queries_lists_every_name_with_its_parameters() -> None:
    result = runner.invoke(app, ["audit", "queries"], env=WIDE)
    assert result.exit_code == 0, result.output
    for name in NAMED_QUERIES:
        assert name in result.stdout
    assert "source_identity: the responder's source identity" in result.stdout


def test_queries_as_json_gives_params_and_the_athena_parameter_order() -> None:
    result = runner.invoke(app, ["audit", "queries", "--format", "json"])
    assert result.exit_code == 0, result.output
    listing = {q["name"]: q for q in json.loads(result.stdout)}
    assert list(listing) == list(NAMED_QUERIES)
    assert [p["name"] for p in listing["session_actions"]["params"]] == ["source_identity", "start", "end"]
    assert listing["session_actions"]["execution_parameters_order"] == [
        "start",
        "end",
        "start",
        "end",
        "source_identity",
    ]
    assert listing["halts"]["params"] == []


def test_query_as_json_returns_rows_and_what_was_scanned(local_copy: Path) -> None:
    result = runner.invoke(
        app,
        [
            "audit",
            "query",
            "session_actions",
            "--local",
            str(local_copy),
            "--param",
            "source_identity=alice",
            "-p",
            "start=2025-03-14T09:00:00Z",
            "--param",
            "end=2025-03-14T10:00:00Z",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["query"] == "session_actions"
    assert document["params"] == {
        "source_identity": "alice",
        "start": "2025-03-14T09:00:00Z",
        "end": "2025-03-14T10:00:00Z",
    }
    assert [r["event_name"] for r in document["rows"]] == [
        "InvokeEndpoint",
        "DeleteEndpoint",
        "InvokeModel",
        "InvokeModel",
    ]
    scanned = document["scanned"]["cloudtrail_logs"]
    assert scanned["files_read"] == 7
    assert scanned["files_total"] == 9
    assert "4 row(s); cloudtrail_logs: read 7 of 9 files" in result.stderr


def test_query_as_table_prints_one_line_per_row(local_copy: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "approvals", "--local", str(local_copy)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "approvals: 4 row(s)" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "req-000" in line]
    assert len(lines) == 4
    flagged = [line for line in lines if " true " in line]
    assert len(flagged) == 1
    assert "2025-03-14T09:03:00Z" in flagged[0]


def test_query_with_a_bound_parameter_can_show_the_athena_sql(local_copy: Path) -> None:
    result = runner.invoke(
        app,
        [
            "audit",
            "query",
            "tampering",
            "--local",
            str(local_copy),
            "-p",
            f"audit_bucket={AUDIT_BUCKET}",
            "--show-sql",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"json_extract_scalar(requestparameters, '$.bucketName') = '{AUDIT_BUCKET}'" in result.stderr
    assert "tampering: 5 row(s)" in result.stdout


def test_an_unknown_query_lists_the_existing_ones_and_exits_2(local_copy: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "sessions", "--local", str(local_copy)])
    assert result.exit_code == 2
    assert "unknown query 'sessions'" in result.stderr
    assert "emergency_sessions, session_actions" in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_parameter_says_which_param_to_pass(local_copy: Path) -> None:
    result = runner.invoke(
        app, ["audit", "query", "session_actions", "--local", str(local_copy), "-p", "source_identity=alice"]
    )
    assert result.exit_code == 2
    assert "session_actions needs --param start=" in result.stderr
    assert "--param end=" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("bad", ["start", "=2025-03-14", ""])
def test_a_param_that_is_not_key_value_is_refused(local_copy: Path, bad: str) -> None:
    result = runner.invoke(app, ["audit", "query", "halts", "--local", str(local_copy), "--param", bad])
    assert result.exit_code == 2
    assert f"--param {bad!r} is not key=value" in result.stderr


def test_a_repeated_or_unknown_param_is_refused(local_copy: Path) -> None:
    repeated = runner.invoke(
        app,
        [
            "audit",
            "query",
            "tampering",
            "--local",
            str(local_copy),
            "-p",
            "audit_bucket=a1b",
            "-p",
            "audit_bucket=b2c",
        ],
    )
    assert repeated.exit_code == 2
    assert "--param audit_bucket is given twice" in repeated.stderr
    unknown = runner.invoke(app, ["audit", "query", "halts", "--local", str(local_copy), "-p", "target=x"])
    assert unknown.exit_code == 2
    assert "query halts has no parameter 'target'; it accepts: none" in unknown.stderr


def test_a_malformed_value_names_the_parameter(local_copy: Path) -> None:
    result = runner.invoke(
        app,
        [
            *("audit", "query", "session_actions", "--local", str(local_copy)),
            *("-p", "source_identity=alice", "-p", "start=last tuesday", "-p", "end=2025-03-14"),
        ],
    )
    assert result.exit_code == 2
    assert "start: must be an ISO-8601 date or timestamp" in result.stderr


def test_a_directory_that_is_not_a_bucket_copy_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "halts", "--local", str(tmp_path)])
    assert result.exit_code == 2
    assert "no CloudTrail logs" in result.stderr
    assert "Traceback" not in result.output
