"""`breakglass audit query NAME --athena`: in the deployment's workgroup, against moto's Athena.

moto does not run SQL; it records each execution (query text, workgroup, database, execution
parameters) and answers GetQueryResults from a queue of configured results, which is how these
tests give the command Athena-shaped rows (a header row first, every value as text).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cli_world import REGION, WIDE, publish, runner
from fixtures.audit.scenario import AUDIT_BUCKET
from moto import mock_aws
from moto.athena.models import AthenaBackend, QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager

from breakglass.cli import athena as athena_module
from breakglass.cli.audit import _bytes
from breakglass.cli.main import app
from breakglass.policies.queries import get_query


@pytest.fixture
def backend() -> Iterator[AthenaBackend]:
    with mock_aws():
        publish(boto3.client("ssm", region_name=REGION), "prod")
        boto3.client("athena", region_name=REGION).create_work_group(Name="prod-audit")
        yield athena_backends[DEFAULT_ACCOUNT_ID][REGION]


def _results(backend: AthenaBackend, columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    """Queue one result as Athena returns it: the column labels as the first row, then the data."""
    info = [{"Name": name, "Label": name, "Type": kind} for name, kind in columns]
    data = [{"Data": [{"VarCharValue": name} for name, _ in columns]}]
    data += [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
    backend.query_results_queue.append(QueryResults(rows=data, column_info=info))


OUTSIDE = [
    ("event_time", "varchar"),
    ("source_identity", "varchar"),
    ("role_arn", "varchar"),
    ("event_source", "varchar"),
    ("event_name", "varchar"),
    ("aws_region", "varchar"),
    ("source_ip", "varchar"),
    ("error_code", "varchar"),
    ("event_id", "varchar"),
]
ROW = [
    "2025-03-14T09:50:12Z",
    "alice",
    "arn:aws:iam::111122223333:role/breakglass-emergency-ops",
    "bedrock.amazonaws.com",
    "InvokeModel",
    "us-east-1",
    "198.51.100.10",
    None,
    "0b1c2d3e",
]


def test_the_query_runs_in_the_deployments_workgroup_and_database_with_execution_parameters(
    backend: AthenaBackend,
) -> None:
    result = runner.invoke(
        app,
        [
            *("-d", "prod", "audit", "query", "session_actions", "--athena"),
            *(
                "-p",
                "source_identity=alice",
                "-p",
                "start=2025-03-14T09:00:00Z",
                "-p",
                "end=2025-03-14T10:00:00Z",
            ),
        ],
    )
    assert result.exit_code == 0, result.output
    (execution,) = backend.executions.values()
    query = get_query("session_actions")
    assert execution.query == query.sql  # the named query's text, parameters passed separately
    assert execution.workgroup is not None and execution.workgroup.name == "prod-audit"
    assert execution.context == {"Database": "breakglass_audit"}
    assert execution.execution_parameters == [
        "'2025-03-14T09:00:00Z'",
        "'2025-03-14T10:00:00Z'",
        "'2025-03-14T09:00:00Z'",
        "'2025-03-14T10:00:00Z'",
        "'alice'",
    ]
    assert "running session_actions in Athena workgroup prod-audit" in result.stderr


def test_rows_and_bytes_scanned_are_printed_without_the_header_row(backend: AthenaBackend) -> None:
    _results(backend, OUTSIDE, [ROW])
    result = runner.invoke(
        app, ["-d", "prod", "audit", "query", "access_outside_grants", "--athena"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "access_outside_grants: 1 row(s)" in result.stdout
    assert "InvokeModel" in result.stdout
    assert result.stdout.count("event_time") == 1  # the header row is a header, not a data row
    assert "1 row(s); Athena scanned 0 bytes in workgroup prod-audit (query " in result.stderr


def test_athena_json_has_the_rows_typed_and_the_execution(backend: AthenaBackend) -> None:
    _results(
        backend,
        [("request_id", "varchar"), ("approver", "varchar"), ("self_approval", "boolean"), ("n", "bigint")],
        [["req-0001", "alice", "true", "2"], ["req-0001", "bob", "false", None]],
    )
    result = runner.invoke(app, ["-d", "prod", "audit", "query", "approvals", "--athena", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["rows"] == [
        {"request_id": "req-0001", "approver": "alice", "self_approval": True, "n": 2},
        {"request_id": "req-0001", "approver": "bob", "self_approval": False, "n": None},
    ]
    (execution_id,) = backend.executions
    assert document["athena"] == {
        "query_execution_id": execution_id,
        "workgroup": "prod-audit",
        "database": "breakglass_audit",
        "data_scanned_bytes": 0,
        "engine_execution_ms": 0,
        "output_location": None,
    }


def test_fail_on_rows_exits_1_when_the_query_finds_something(backend: AthenaBackend) -> None:
    _results(backend, OUTSIDE, [ROW])
    found = runner.invoke(
        app, ["-d", "prod", "audit", "query", "access_outside_grants", "--athena", "--fail-on-rows", "--json"]
    )
    assert found.exit_code == 1
    assert len(json.loads(found.stdout)["rows"]) == 1  # the rows are still printed for the job's log
    assert "error: access_outside_grants returned 1 row(s) and --fail-on-rows was given" in found.stderr
    _results(backend, OUTSIDE, [])
    clean = runner.invoke(
        app, ["-d", "prod", "audit", "query", "access_outside_grants", "--athena", "--fail-on-rows"]
    )
    assert clean.exit_code == 0, clean.output


def test_tampering_checks_the_deployments_own_bucket_unless_told_otherwise(backend: AthenaBackend) -> None:
    assert runner.invoke(app, ["-d", "prod", "audit", "query", "tampering", "--athena"]).exit_code == 0
    assert (
        runner.invoke(
            app, ["-d", "prod", "audit", "query", "tampering", "--athena", "-p", "audit_bucket=other-bucket"]
        ).exit_code
        == 0
    )
    parameters = [e.execution_parameters for e in backend.executions.values()]
    assert parameters == [[f"'{AUDIT_BUCKET}'"], ["'other-bucket'"]]


def test_the_command_polls_until_athena_finishes(
    backend: AthenaBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(athena_module, "_sleep", slept.append)
    state_manager.set_transition(
        model_name="athena::execution", transition={"progression": "manual", "times": 1}
    )
    try:
        result = runner.invoke(app, ["-d", "prod", "audit", "query", "halts", "--athena"])
    finally:
        state_manager.unset_transition("athena::execution")
    assert result.exit_code == 0, result.output
    assert slept == [athena_module.FIRST_POLL_SECONDS]  # QUEUED -> RUNNING -> SUCCEEDED


def test_a_failed_athena_query_is_exit_1_with_its_id(
    backend: AthenaBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AthenaBackend.start_query_execution

    def failing(self: AthenaBackend, *args: Any, **kwargs: Any) -> str:
        execution_id = original(self, *args, **kwargs)
        self.executions[execution_id].status = "FAILED"
        return execution_id

    monkeypatch.setattr(AthenaBackend, "start_query_execution", failing)
    result = runner.invoke(app, ["-d", "prod", "audit", "query", "halts", "--athena"])
    assert result.exit_code == 1
    (execution_id,) = backend.executions
    assert f"error: Athena query {execution_id} (halts) FAILED" in result.stderr
    assert "aws athena get-query-execution" in result.stderr


@pytest.mark.parametrize("args", [[], ["--athena", "--local", "."]])
def test_local_or_athena_must_be_chosen_exactly_once(args: list[str]) -> None:
    result = runner.invoke(app, ["audit", "query", "halts", *args])
    assert result.exit_code == 2
    assert "pass either --local DIR or --athena" in result.stderr


def test_bad_parameters_are_refused_before_athena_is_called(backend: AthenaBackend) -> None:
    result = runner.invoke(
        app, ["-d", "prod", "audit", "query", "session_actions", "--athena", "-p", "source_identity=alice"]
    )
    assert result.exit_code == 2
    assert "session_actions needs --param start=" in result.stderr
    unknown = runner.invoke(app, ["-d", "prod", "audit", "query", "sessions", "--athena"])
    assert unknown.exit_code == 2 and "unknown query 'sessions'" in unknown.stderr
    assert backend.executions == {}


def test_bytes_read_as_people_read_them() -> None:
    assert _bytes(512) == "512 bytes"
    assert _bytes(10 * 1024**3) == "10.0 GiB (10737418240 bytes)"
    assert _bytes(None) == "unknown"
