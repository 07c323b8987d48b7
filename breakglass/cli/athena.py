"""Run a named query in the deployment's Athena workgroup: start, poll, read every row.

The SQL is the named query's text from :mod:`breakglass.policies.queries` (what the AuditQueries
component stored in Athena), with its parameters passed as Athena execution parameters, in the
workgroup and Glue database the deployment published. The workgroup enforces its result location,
encryption and bytes-scanned cutoff; this code never overrides them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from breakglass.cli.errors import CliError
from breakglass.policies.queries import NamedQuery

FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")

_sleep = time.sleep  # module-level, so tests can replace it

# Polling: quick at first (most audit queries take a few seconds), then every 2 s.
FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 2.0


@dataclass
class AthenaResult:
    name: str
    query_execution_id: str
    workgroup: str
    database: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    data_scanned_bytes: int | None = None
    engine_execution_ms: int | None = None
    output_location: str | None = None
    execution_parameters: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def as_json(self) -> dict[str, Any]:
        return {
            "query_execution_id": self.query_execution_id,
            "workgroup": self.workgroup,
            "database": self.database,
            "data_scanned_bytes": self.data_scanned_bytes,
            "engine_execution_ms": self.engine_execution_ms,
            "output_location": self.output_location,
        }


def _convert(value: str | None, athena_type: str) -> Any:
    """Athena returns every value as text; give scripts booleans and numbers where typed so."""
    if value is None:
        return None
    kind = athena_type.lower()
    if kind == "boolean":
        return value.lower() == "true"
    if kind in ("tinyint", "smallint", "integer", "int", "bigint"):
        try:
            return int(value)
        except ValueError:
            return value
    if kind in ("double", "float", "real"):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _rows(athena: Any, execution_id: str) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    paginator = athena.get_paginator("get_query_results")
    for page in paginator.paginate(QueryExecutionId=execution_id):
        result_set = page.get("ResultSet", {})
        yield result_set.get("ResultSetMetadata", {}).get("ColumnInfo", []), result_set.get("Rows", [])


def run_in_athena(
    athena: Any,
    query: NamedQuery,
    params: Mapping[str, str],
    *,
    workgroup: str,
    database: str,
    sleep: Callable[[float], None] | None = None,
    on_poll: Callable[[str], None] | None = None,
) -> AthenaResult:
    """Start ``query`` with ``params``, wait for it, return its rows (QueryError for bad params)."""
    execution_parameters = query.execution_parameters(params)
    request: dict[str, Any] = {
        "QueryString": query.sql,
        "WorkGroup": workgroup,
        "QueryExecutionContext": {"Database": database},
    }
    if execution_parameters:
        request["ExecutionParameters"] = execution_parameters
    execution_id = athena.start_query_execution(**request)["QueryExecutionId"]
    try:
        execution = _wait(athena, execution_id, sleep or _sleep, on_poll)
    except KeyboardInterrupt:
        # Do not leave a query scanning (and billing) after the person gave up on it.
        athena.stop_query_execution(QueryExecutionId=execution_id)
        raise CliError(f"interrupted; cancelled Athena query {execution_id}") from None
    status = execution.get("Status", {})
    state = status.get("State")
    if state != "SUCCEEDED":
        reason = status.get("StateChangeReason") or "no reason given"
        raise CliError(
            f"Athena query {execution_id} ({query.name}) {state}: {reason}",
            hint=f"`aws athena get-query-execution --query-execution-id {execution_id}` has the details",
        )
    columns: list[str] = []
    types: list[str] = []
    rows: list[tuple[Any, ...]] = []
    first = True
    for column_info, page_rows in _rows(athena, execution_id):
        if not columns:
            columns = [str(c.get("Label") or c.get("Name")) for c in column_info]
            types = [str(c.get("Type", "varchar")) for c in column_info]
        for row in page_rows:
            values = [d.get("VarCharValue") for d in row.get("Data", [])]
            # A SELECT's first row is its header (the column labels); it is not data.
            if first and values == columns:
                first = False
                continue
            first = False
            rows.append(tuple(_convert(v, t) for v, t in zip(values, types, strict=False)))
    statistics = execution.get("Statistics", {})
    return AthenaResult(
        name=query.name,
        query_execution_id=execution_id,
        workgroup=workgroup,
        database=database,
        columns=columns,
        rows=rows,
        data_scanned_bytes=statistics.get("DataScannedInBytes"),
        engine_execution_ms=statistics.get("EngineExecutionTimeInMillis"),
        output_location=execution.get("ResultConfiguration", {}).get("OutputLocation"),
        execution_parameters=execution_parameters,
    )


def _wait(
    athena: Any, execution_id: str, sleep: Callable[[float], None], on_poll: Callable[[str], None] | None
) -> dict[str, Any]:
    delay = FIRST_POLL_SECONDS
    while True:
        execution: dict[str, Any] = athena.get_query_execution(QueryExecutionId=execution_id)[
            "QueryExecution"
        ]
        state = str(execution.get("Status", {}).get("State"))
        if state in FINAL_STATES:
            return execution
        if on_poll is not None:
            on_poll(state)
        sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)
