"""``breakglass audit ...``: the auditor's commands.

``breakglass audit queries`` lists the named queries; ``breakglass audit query NAME --local DIR``
runs one offline over a local copy of the audit bucket (``aws s3 sync s3://BUCKET DIR``), with
the same SQL the AuditQueries component stores in Athena.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.errors import fail
from breakglass.contracts import EVENTS_PREFIX
from breakglass.local.athena import QueryResult, run_named_query
from breakglass.policies.queries import NAMED_QUERIES, QueryError, get_query
from breakglass.validation import ConfigError

app = typer.Typer(help="Auditor commands: named queries over the audit trail.", no_args_is_help=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@app.command("queries")
def list_queries(
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table or json.")
    ] = OutputFormat.table,
) -> None:
    """List the named queries with their parameters and what each shows."""
    if output_format is OutputFormat.json:
        listing = [
            {
                "name": q.name,
                "params": [{"name": p.name, "description": p.description} for p in q.params],
                "execution_parameters_order": list(q.placeholders),
                "description": q.description,
            }
            for q in NAMED_QUERIES.values()
        ]
        typer.echo(json.dumps(listing, indent=2))
        return
    table = Table(title="Named queries", show_lines=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("parameters")
    table.add_column("description")
    for query in NAMED_QUERIES.values():
        params = "\n".join(f"{p.name}: {p.description}" for p in query.params) or "-"
        table.add_row(query.name, params, query.description)
    Console().print(table)


def parse_params(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a malformed or repeated item is an error a person can fix."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise QueryError(
                f"--param {item!r} is not key=value (example: --param start=2025-03-14T09:00:00Z)"
            )
        if key in params:
            raise QueryError(f"--param {key} is given twice")
        params[key] = value
    return params


@app.command("query")
def query_command(
    name: Annotated[str, typer.Argument(help="Named query; `breakglass audit queries` lists them.")],
    local: Annotated[
        Path, typer.Option("--local", help="Local copy of the audit bucket (e.g. from `aws s3 sync`).")
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Query parameter as key=value (repeatable).")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table or json.")
    ] = OutputFormat.table,
    events_prefix: Annotated[
        str, typer.Option(help="Key prefix of the break-glass events in the bucket.")
    ] = EVENTS_PREFIX,
    account: Annotated[
        str | None, typer.Option(help="Only read CloudTrail logs of this account (default: all).")
    ] = None,
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Also print the bound Athena SQL (to stderr).")
    ] = False,
) -> None:
    """Run a named query offline, reading only the partitions the query needs."""
    try:
        query = get_query(name)
        params = parse_params(param or [])
        result = run_named_query(name, local, params, events_prefix=events_prefix, account_id=account)
    except (QueryError, ConfigError) as exc:
        fail(str(exc), hint="`breakglass audit queries` lists the queries and their parameters")
    if show_sql:
        typer.echo(query.bind(params), err=True)  # verbatim: ready to paste into the Athena console
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(result_json(result, params), indent=2))
    else:
        Console().print(result_table(result))
    Console(stderr=True).print(scan_summary(result), highlight=False)


def result_json(result: QueryResult, params: dict[str, str]) -> dict[str, Any]:
    return {
        "query": result.name,
        "params": params,
        "columns": result.columns,
        "rows": result.records(),
        "scanned": {table: scan.as_json() for table, scan in result.scans.items()},
    }


def result_table(result: QueryResult) -> Table:
    table = Table(title=f"{result.name}: {len(result.rows)} row(s)")
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def scan_summary(result: QueryResult) -> str:
    parts = [
        f"{table}: read {s.files_read} of {s.files_total} files ({s.bytes_read} of {s.bytes_total} bytes)"
        for table, s in result.scans.items()
    ]
    return f"{len(result.rows)} row(s); " + "; ".join(parts)
