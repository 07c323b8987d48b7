"""``breakglass audit ...``: the auditor's commands.

- ``audit queries``: the named queries, their parameters and what each shows;
- ``audit query NAME --athena | --local DIR``: run one in the deployment's Athena workgroup, or
  offline over a local copy of the audit bucket, with the same SQL; ``--fail-on-rows`` gates jobs;
- ``audit sync DIR``: copy the bucket's CloudTrail logs and break-glass events, verified, resumable;
- ``audit report ID``: one self-contained HTML page per incident.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from breakglass.cli.athena import AthenaResult, run_in_athena
from breakglass.cli.context import CliContext, get_context
from breakglass.cli.errors import BadInput, CliError
from breakglass.cli.output import Column, Format, FormatOption, JsonOption, Output, WideOption, note, stderr
from breakglass.cli.report import REQUEST_ID_PATTERN, build_incident, parse_time
from breakglass.cli.report_html import render_report
from breakglass.cli.sync import FileResult, SyncResult, cloudtrail_day_prefixes, day_filter, sync_bucket
from breakglass.contracts import EVENTS_PREFIX, utc_now
from breakglass.local.athena import LocalBucket, QueryResult, run_named_query
from breakglass.policies.queries import NAMED_QUERIES, QueryError, get_query, sql_literal
from breakglass.validation import ConfigError

app = typer.Typer(
    help="""Auditor commands: named queries, a verified copy of the audit bucket, incident reports.

[bold]Examples[/]

  $ breakglass audit query unreviewed_events --athena

  $ breakglass audit sync ./audit-copy

  $ breakglass audit report req-0001 --local ./audit-copy --out ./reports
""",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

# A bounded `sync --since/--until` lists day folders when the range is shorter than this.
MAX_DAY_PREFIXES = 93
QUERIES_HINT = "`breakglass audit queries` lists the queries and their parameters"

# What a table shows at 100 columns for each named query (--wide, JSON and CSV show every column).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "emergency_sessions": (
        "event_time",
        "source_identity",
        "role_session_name",
        "source_ip",
        "mfa",
        "error_code",
    ),
    "session_actions": ("event_time", "event_source", "event_name", "aws_region", "error_code"),
    "approvals": (
        "request_id",
        "requester",
        "decision",
        "approver",
        "decided_at",
        "outcome",
        "self_approval",
    ),
    "halts": ("target", "action", "mode", "outcome", "actor", "request_id", "event_time"),
    "access_outside_grants": (
        "event_time",
        "source_identity",
        "event_name",
        "aws_region",
        "source_ip",
        "error_code",
    ),
    "unreviewed_events": ("request_id", "requester", "tier", "ticket", "review_opened_at"),
    "tampering": ("event_time", "event_name", "outcome", "error_code", "source_identity", "target"),
}


def _query_names(incomplete: str) -> list[str]:
    return [name for name in NAMED_QUERIES if name.startswith(incomplete)]


# -- audit queries ------------------------------------------------------------------------------------


@app.command("queries")
def list_queries(output_format: FormatOption = None, as_json: JsonOption = False) -> None:
    """List the named queries with their parameters and what each shows.

    [bold]Examples[/]

      $ breakglass audit queries

      $ breakglass audit queries --json
    """
    out = Output.of(output_format, as_json)
    listing = [
        {
            "name": q.name,
            "params": [{"name": p.name, "description": p.description} for p in q.params],
            "execution_parameters_order": list(q.placeholders),
            "description": q.description,
        }
        for q in NAMED_QUERIES.values()
    ]
    if out.format is Format.json:
        out.json(listing)
        return
    rows = [
        {
            "name": q.name,
            "parameters": "\n".join(f"{p.name}: {p.description}" for p in q.params) or "-",
            "description": q.description,
        }
        for q in NAMED_QUERIES.values()
    ]
    out.rows(
        rows,
        [Column("name", no_wrap=True), Column("parameters"), Column("description")],
        title="Named queries",
    )


# -- audit query ---------------------------------------------------------------------------------------


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


def _local_dir(path: Path, option: str = "--local") -> Path:
    if not path.exists():
        raise BadInput(
            f"{option} {path}: no such directory",
            hint="make a copy with `breakglass audit sync DIR` (or `aws s3 sync s3://BUCKET DIR`)",
        )
    if not path.is_dir():
        raise BadInput(f"{option} {path}: not a directory")
    return path


@app.command("query")
def query_command(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="Named query; `breakglass audit queries` lists them.", autocompletion=_query_names
        ),
    ],
    local: Annotated[
        Path | None,
        typer.Option(
            "--local",
            metavar="DIR",
            help="Run offline over this copy of the audit bucket.",
            show_default=False,
        ),
    ] = None,
    athena: Annotated[
        bool, typer.Option("--athena", help="Run in the deployment's Athena workgroup.")
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="KEY=VALUE", help="Query parameter (repeatable).", show_default=False
        ),
    ] = None,
    fail_on_rows: Annotated[
        bool,
        typer.Option(
            "--fail-on-rows", help="Exit 1 when the query returns rows (gate a scheduled job on it)."
        ),
    ] = False,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
    events_prefix: Annotated[
        str, typer.Option(help="Key prefix of the break-glass events in the local copy.")
    ] = EVENTS_PREFIX,
    account: Annotated[
        str | None,
        typer.Option(
            help="--local: only read CloudTrail logs of this account (default: all).", show_default=False
        ),
    ] = None,
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Also print the bound Athena SQL (to stderr).")
    ] = False,
) -> None:
    """Run a named query, in Athena or offline over a local copy, and print its rows.

    --athena runs in the deployment's workgroup (its result location, encryption and scan cutoff
    apply) and prints the bytes scanned. --local runs the same SQL with DuckDB over a copy made
    by `breakglass audit sync`, reading only the partitions the query needs. For --athena the
    tampering query's audit_bucket defaults to the deployment's bucket.

    [bold]Examples[/]

      $ breakglass audit query approvals --local ./audit-copy

      $ breakglass audit query session_actions --local ./audit-copy -p source_identity=alice -p start=2025-03-14T09:00:00Z -p end=2025-03-14T10:00:00Z --format csv

      $ breakglass -d prod audit query access_outside_grants --athena --fail-on-rows --json
    """
    out = Output.of(output_format, as_json, wide)
    if (local is None) == (not athena):
        raise BadInput(
            "pass either --local DIR or --athena",
            hint="--local DIR runs offline over a copy of the bucket; --athena runs in the deployment's workgroup",
        )
    try:
        query = get_query(name)
        params = parse_params(param or [])
    except QueryError as exc:
        raise BadInput(str(exc), hint=QUERIES_HINT) from None
    result: QueryResult | AthenaResult
    if local is not None:
        _local_dir(local)
        try:
            query.check_params(params)
            result = run_named_query(name, local, params, events_prefix=events_prefix, account_id=account)
        except (QueryError, ConfigError) as exc:
            raise BadInput(str(exc), hint=QUERIES_HINT) from None
    else:
        cli = get_context(ctx)
        deployment = cli.deployment()
        if "audit_bucket" in query.param_names and "audit_bucket" not in params:
            params["audit_bucket"] = deployment.need("audit_bucket")
        try:
            query.check_params(params)
        except (QueryError, ConfigError) as exc:
            raise BadInput(str(exc), hint=QUERIES_HINT) from None
        workgroup = deployment.need("athena_workgroup")
        database = deployment.need("glue_database")
        note(f"running {name} in Athena workgroup {workgroup} (database {database})")
        result = run_in_athena(cli.client("athena"), query, params, workgroup=workgroup, database=database)
    if show_sql:
        typer.echo(query.bind(params), err=True)  # verbatim: ready to paste into the Athena console
    records = result.records()
    document: dict[str, Any] = {"query": name, "params": params, "columns": result.columns, "rows": records}
    if isinstance(result, AthenaResult):
        document["athena"] = result.as_json()
        summary = athena_summary(result)
    else:
        document["scanned"] = {table: scan.as_json() for table, scan in result.scans.items()}
        summary = scan_summary(result)
    shown = TABLE_COLUMNS.get(name)
    columns = [Column(c, wide=shown is not None and c not in shown) for c in result.columns]
    hidden = [c.key for c in columns if c.wide]
    caption = (
        f"{len(hidden)} more column(s) with --wide" if hidden and out.is_table and not out.wide else None
    )
    out.rows(records, columns, title=f"{name}: {len(records)} row(s)", document=document, caption=caption)
    stderr().print(summary)
    if fail_on_rows and records:
        raise CliError(f"{name} returned {len(records)} row(s) and --fail-on-rows was given")


def scan_summary(result: QueryResult) -> str:
    parts = [
        f"{table}: read {s.files_read} of {s.files_total} files ({s.bytes_read} of {s.bytes_total} bytes)"
        for table, s in result.scans.items()
    ]
    return f"{len(result.rows)} row(s); " + "; ".join(parts)


def _bytes(count: int | None) -> str:
    if count is None:
        return "unknown"
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit} ({count} bytes)"
        size /= 1024
    return f"{count} bytes"  # pragma: no cover


def athena_summary(result: AthenaResult) -> str:
    return (
        f"{len(result.rows)} row(s); Athena scanned {_bytes(result.data_scanned_bytes)} in workgroup "
        f"{result.workgroup} (query {result.query_execution_id})"
    )


# -- audit sync ------------------------------------------------------------------------------------


def _day(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return parse_time(value).strftime("%Y-%m-%d")
    except ValueError:
        raise BadInput(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


class _SyncProgress:
    """Progress on stderr: a bar on a terminal; otherwise one line per prefix and per failure."""

    def __init__(self) -> None:
        self.console = stderr()
        self.live = self.console.is_terminal
        self.progress: Any = None
        self.task: Any = None

    def listed(self, prefix: str, count: int) -> None:
        self.console.print(f"listed {count} object(s) under {prefix}", markup=False)

    def file(self, result: FileResult, done: int, total: int) -> None:
        if self.live:
            if self.progress is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                self.progress = Progress(
                    TextColumn("copying"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=self.console,
                    transient=True,
                )
                self.progress.start()
                self.task = self.progress.add_task("copy", total=total)
            self.progress.update(self.task, completed=done)
        if result.status == "failed":
            self.console.print(f"failed: {result.key}: {result.reason}", markup=False, style="red")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_sync(
    s3: Any,
    bucket: str,
    directory: Path,
    prefixes: list[str],
    *,
    keep: Any = None,
    workers: int = 8,
    quiet: bool = False,
) -> SyncResult:
    if quiet:
        return sync_bucket(s3, bucket, directory, prefixes, keep=keep, workers=workers)
    progress = _SyncProgress()
    try:
        return sync_bucket(
            s3,
            bucket,
            directory,
            prefixes,
            keep=keep,
            workers=workers,
            on_listed=progress.listed,
            on_file=progress.file,
        )
    finally:
        progress.stop()


def _failure_rows(result: SyncResult) -> list[dict[str, Any]]:
    rows = [{"key": f.key, "reason": f.reason} for f in result.of("failed")]
    rows += [{"key": key, "reason": "not attempted (interrupted)"} for key in result.not_attempted]
    return rows


def report_sync(result: SyncResult, out: Output) -> None:
    """Print what a sync did; raise CliError (exit 1) listing every file that did not arrive."""
    document = result.as_json()
    failures = _failure_rows(result)
    if out.format is Format.json:
        out.json(document)
    elif out.format is Format.csv:
        out.rows([f.as_json() for f in result.files], columns=None)
    else:
        verified = (
            ", ".join(f"{n} by {how}" for how, n in document["verified_by"].items()) or "nothing to verify"
        )
        note(
            f"s3://{result.bucket} -> {result.directory}: {document['downloaded']} downloaded, "
            f"{document['skipped']} already verified, {len(result.of('failed'))} failed ({verified})"
        )
        if failures:
            out.rows(failures, [Column("key", max_width=70), Column("reason")], title="files not copied")
    sync_must_be_complete(result)


def sync_must_be_complete(result: SyncResult) -> None:
    """Raise CliError (exit 1) when a file of the copy did not arrive."""
    failures = _failure_rows(result)
    if failures:
        what = "interrupted" if result.interrupted else "incomplete"
        raise CliError(
            f"copy {what}: {len(failures)} of {len(result.files) + len(result.not_attempted)} file(s) not copied",
            hint="the files listed are missing from the copy; rerun the same command to resume",
        )


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where the copy goes (created if missing).")
    ],
    since: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Only days from this one.", show_default=False)
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Only days up to this one.", show_default=False)
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Copy this bucket instead of the deployment's.", show_default=False
        ),
    ] = None,
    cloudtrail_prefix: Annotated[
        str, typer.Option(help="Prefix before AWSLogs/ if the trail delivers under one.")
    ] = "",
    events_prefix: Annotated[
        str | None,
        typer.Option(
            help="Prefix of the break-glass events (default: the deployment's).", show_default=False
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Parallel downloads.")] = 8,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the audit bucket's CloudTrail logs and break-glass events into DIR, verifying each file.

    Resumable: files already in DIR and verified are skipped, so rerunning after a failure or
    Ctrl-C fetches only what is missing. Each file is checked against its listed size and the
    checksum S3 reports (SHA-256 for the events) or its ETag. Files that fail are listed with the
    reason and the command exits 1; the copy keeps every file that did arrive.

    [bold]Examples[/]

      $ breakglass -d prod audit sync ./audit-copy

      $ breakglass -d prod audit sync ./audit-copy --since 2025-03-01 --until 2025-03-31 --json
    """
    out = Output.of(output_format, as_json)
    first, last = _day(since, "--since"), _day(until, "--until")
    if first and last and last < first:
        raise BadInput(f"--until {last} is before --since {first}")
    if directory.exists() and not directory.is_dir():
        raise BadInput(f"{directory} exists and is not a directory")
    cli = get_context(ctx)
    if bucket is None or events_prefix is None:
        deployment = cli.deployment()
        bucket = bucket or deployment.need("audit_bucket")
        events_prefix = events_prefix or deployment.audit_events_prefix or EVENTS_PREFIX
    cleaned = cloudtrail_prefix.strip("/")
    logs = f"{cleaned}/AWSLogs/" if cleaned else "AWSLogs/"
    s3 = cli.client("s3")
    if first and last and (date.fromisoformat(last) - date.fromisoformat(first)).days < MAX_DAY_PREFIXES:
        # A bounded range: list only those days' folders, not the whole trail.
        log_prefixes = cloudtrail_day_prefixes(
            s3, bucket, logs, date.fromisoformat(first), date.fromisoformat(last)
        )
    else:
        log_prefixes = [logs]
    prefixes = [*log_prefixes, events_prefix.strip("/") + "/"]
    result = run_sync(s3, bucket, directory, prefixes, keep=day_filter(first, last), workers=workers)
    report_sync(result, out)


# -- audit report ---------------------------------------------------------------------------------


def _cache_dir(deployment: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "breakglass" / deployment / "bucket"


def copy_incident(
    cli: CliContext, request_id: str, cache: Path | None, *, quiet: bool = False
) -> tuple[Path, str]:
    """Copy the events, then the CloudTrail days of ``request_id``, from the deployment's bucket.

    Into ``cache`` (default: the deployment's cache folder); resumable, so calling it again fetches
    only what arrived since. ``quiet`` prints nothing but still fails on a file not copied.
    """
    deployment = cli.deployment()
    bucket = deployment.need("audit_bucket")
    events_prefix = (deployment.audit_events_prefix or EVENTS_PREFIX).strip("/")
    directory = cache or _cache_dir(deployment.name)
    s3 = cli.client("s3")
    out = Output(Format.table)

    def copy(prefixes: list[str]) -> None:
        result = run_sync(s3, bucket, directory, prefixes, quiet=quiet)
        if quiet:
            sync_must_be_complete(result)
        else:
            report_sync(result, out)

    copy([f"{events_prefix}/"])
    local = LocalBucket(directory, events_prefix=events_prefix)
    rows = local.run_sql(
        "SELECT min(event_time), max(event_time), max(expires_at) FROM breakglass_events "
        f"WHERE request_id = {sql_literal(request_id)}"
    ).rows
    if not rows or rows[0][0] is None:
        raise CliError(f"no events for request {request_id!r} in s3://{bucket}/{events_prefix}/")
    first = parse_time(rows[0][0])
    last = max(parse_time(v) for v in rows[0][1:] if v)
    # The calls considered run up to a day after the window; CloudTrail files a call under the day
    # it delivers it, so one more day.
    until = (last + timedelta(days=2)).date()
    prefixes = cloudtrail_day_prefixes(s3, bucket, "AWSLogs/", first.date(), until)
    if prefixes:
        copy(prefixes)
    return directory, f"s3://{bucket} (copied to {directory})"


@app.command("report")
def report_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request id of the incident.")],
    local: Annotated[
        Path | None,
        typer.Option(
            "--local",
            metavar="DIR",
            help="Read this copy of the bucket instead of the deployment's.",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where to write the page.")] = Path(
        "."
    ),
    cache: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Without --local: where the bucket's files are copied (default ~/.cache/breakglass/NAME/bucket).",
            show_default=False,
        ),
    ] = None,
    events_prefix: Annotated[str, typer.Option(help="--local: key prefix of the events.")] = EVENTS_PREFIX,
    as_json: JsonOption = False,
) -> None:
    """Write a self-contained HTML report of one incident: summary, justification, approvals,
    timeline, findings, the session's AWS calls, halts and the review verdicts.

    With --local it reads a copy of the bucket; otherwise it copies what the incident needs from
    the deployment's bucket (verified, cached, resumable) first. The page needs no network and no
    JavaScript: mail it, attach it to the ticket, print it. --json also prints the incident's data.

    [bold]Examples[/]

      $ breakglass audit report req-0001 --local ./audit-copy --out ./reports

      $ breakglass -d prod audit report 7f3k2m9q --out ./reports
    """
    if not re.fullmatch(REQUEST_ID_PATTERN, request_id):
        raise BadInput(
            f"{request_id!r} is not a request id",
            hint="use the id break-glass printed, e.g. r2611300213004f1c9a2b7e",
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir}: not a directory")
    if local is not None:
        directory = _local_dir(local)
        source = f"the local copy {directory}"
        prefix = events_prefix
    else:
        directory, source = copy_incident(get_context(ctx), request_id, cache)
        prefix = (get_context(ctx).deployment().audit_events_prefix or EVENTS_PREFIX).strip("/")
    try:
        incident = build_incident(LocalBucket(directory, events_prefix=prefix), request_id)
    except (QueryError, ConfigError) as exc:
        raise BadInput(str(exc)) from None
    page = render_report(incident, generated_at=utc_now(), source=source)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"breakglass-report-{request_id}.html"
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write the report into {out_dir}: {exc.strerror or exc}") from None
    if as_json:
        Output(Format.json).json({"report": str(path), "incident": incident.as_json()})
    else:
        typer.echo(str(path))
    high = sum(1 for f in incident.findings if f.severity == "high")
    note(f"{incident.request_id}: {incident.status}, {len(incident.findings)} finding(s) ({high} high)")
