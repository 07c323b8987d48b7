"""One way to print results: a table for people, JSON or CSV for scripts.

Results go to stdout, everything else (progress, notes, summaries, errors) to stderr, so
``breakglass ... --json | jq`` always reads exactly one JSON document.

A read command takes the three shared options and builds an :class:`Output`::

    @app.command("list")
    def list_command(
        output_format: FormatOption = None, as_json: JsonOption = False, wide: WideOption = False
    ) -> None:
        out = Output.of(output_format, as_json, wide)
        out.rows(rows, COLUMNS, title="Requests")

Tables show the columns that matter at 100 characters; ``--wide`` shows all of them. JSON and CSV
always carry every column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from breakglass.cli.errors import BadInput


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    Format | None, typer.Option("--format", help="table (default), json or csv.", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (same as --format json).")]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every column in tables.")]


@dataclass(frozen=True)
class Column:
    """A column of a result. ``wide`` columns appear in tables only with ``--wide``."""

    key: str
    header: str | None = None
    wide: bool = False
    max_width: int | None = None
    no_wrap: bool = False
    justify: Literal["left", "right", "center"] = "left"

    @property
    def title(self) -> str:
        return self.header or self.key


def columns_of(keys: Sequence[str], shown: Sequence[str] | None = None) -> list[Column]:
    """Columns for ``keys``; those not in ``shown`` (when given) only with ``--wide``."""
    visible = set(keys if shown is None else shown)
    return [Column(key, wide=key not in visible) for key in keys]


def stdout() -> Console:
    # Per call, because CliRunner (and pytest's capture) swap sys.stdout between invocations.
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def note(message: str, *, style: str | None = None) -> None:
    """A line for the person on stderr (never mixed into results)."""
    stderr().print(Text(message, style=style or ""))


def cell(value: Any) -> str:
    """How a value reads in a table or CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"), default=str, sort_keys=True)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "as_json"):
        return value.as_json()
    return str(value)


def to_json(document: Any) -> str:
    return json.dumps(document, indent=2, default=_json_default, ensure_ascii=False)


@dataclass(frozen=True)
class Output:
    format: Format = Format.table
    wide: bool = False

    @classmethod
    def of(cls, output_format: Format | None, as_json: bool = False, wide: bool = False) -> Output:
        if as_json and output_format not in (None, Format.json):
            raise BadInput(f"--json and --format {output_format} disagree; pass one of them")
        chosen = Format.json if as_json else (output_format or Format.table)
        return cls(chosen, wide)

    @property
    def is_table(self) -> bool:
        return self.format is Format.table

    def json(self, document: Any) -> None:
        typer.echo(to_json(document))

    def rows(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[Column] | None = None,
        *,
        title: str | None = None,
        document: Any = None,
        caption: str | None = None,
    ) -> None:
        """Print ``rows``: a table of ``columns``, CSV of every column, or JSON.

        JSON prints ``document`` when given (for results with metadata), else the list of rows.
        """
        cols = list(columns) if columns is not None else columns_of(_keys(rows))
        if self.format is Format.json:
            self.json(document if document is not None else [dict(r) for r in rows])
        elif self.format is Format.csv:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow([c.key for c in cols])
            for row in rows:
                writer.writerow([cell(row.get(c.key)) for c in cols])
            typer.echo(buffer.getvalue(), nl=False)
        else:
            stdout().print(self.table(rows, cols, title=title, caption=caption))

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[Column],
        *,
        title: str | None = None,
        caption: str | None = None,
    ) -> Table:
        shown = [c for c in columns if self.wide or not c.wide]
        table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
        for column in shown:
            table.add_column(
                column.title,
                overflow="fold",
                max_width=column.max_width,
                no_wrap=column.no_wrap,
                justify=column.justify,
            )
        for row in rows:
            # Text, not str: a value like "[red]" is data, never rich markup.
            table.add_row(*(Text(cell(row.get(c.key))) for c in shown))
        return table

    def record(
        self, record: Mapping[str, Any], fields: Sequence[Column] | None = None, *, title: str | None = None
    ) -> None:
        """Print one object: ``field  value`` lines, one CSV row, or a JSON object."""
        cols = list(fields) if fields is not None else columns_of(list(record))
        if self.format is not Format.table:
            self.rows([record], cols, document=dict(record))
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for column in cols:
            if self.wide or not column.wide:
                grid.add_row(Text(column.title), Text(cell(record.get(column.key))))
        console = stdout()
        if title:
            console.print(Text(title, style="bold"))
        console.print(grid)


def _keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return list(keys)
