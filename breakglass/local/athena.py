"""Run the named Athena queries offline over a local copy of the audit bucket.

The query text is the one the :class:`~breakglass.components.AuditQueries` component stores in
Athena. It is transpiled with sqlglot (``read="trino"``, ``write="duckdb"``) and executed by
DuckDB over views named, typed and nested exactly like the Glue tables (lower-case names,
partition columns derived from the object paths).

Like Athena's partition projection, the runner reads only the partitions a query can need: for
each reference to a table it keeps the conjuncts of that scope's ``WHERE`` that use nothing but
partition columns (after parameters are bound), evaluates them against the partitions present
on disk and loads only the matching files. :class:`TableScan` reports what was read.

Layout of the local copy (what ``aws s3 sync s3://BUCKET DIR`` produces)::

    DIR/[<cloudtrail prefix>/]AWSLogs/[<org id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz
    DIR/breakglass-events/dt=YYYY-MM-DD/*.json
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from breakglass.contracts import EVENT_COLUMNS, EVENTS_PREFIX
from breakglass.policies.queries import (
    CLOUDTRAIL_COLUMNS,
    CLOUDTRAIL_PARTITIONS,
    CLOUDTRAIL_TABLE,
    EVENTS_PARTITIONS,
    EVENTS_TABLE,
    QueryError,
    get_query,
)


class OfflineQueryError(QueryError):
    """The local copy is unusable or the query failed; the message says which and why."""


# --- Hive types -> DuckDB types and record shaping ---------------------------------------------

HiveType = str | tuple[str, Any]


def parse_hive_type(text: str) -> HiveType:
    """``struct<a:string,b:array<string>>`` -> ``("struct", (("a", "string"), ("b", ("array", "string"))))``."""
    parsed, rest = _parse_type(text.replace(" ", ""))
    if rest:
        raise ValueError(f"unexpected {rest!r} after a type in {text!r}")
    return parsed


def _parse_type(text: str) -> tuple[HiveType, str]:
    match = re.match(r"[a-z]+", text)
    if not match:
        raise ValueError(f"expected a type at {text!r}")
    word, rest = match.group(0), text[match.end() :]
    if word == "struct":
        fields: list[tuple[str, HiveType]] = []
        rest = _expect(rest, "<")
        while True:
            name_match = re.match(r"[a-z0-9_]+:", rest)
            if not name_match:
                raise ValueError(f"expected field name at {rest!r}")
            field_type, rest = _parse_type(rest[name_match.end() :])
            fields.append((name_match.group(0)[:-1], field_type))
            if rest.startswith(","):
                rest = rest[1:]
                continue
            return ("struct", tuple(fields)), _expect(rest, ">")
    if word == "array":
        element, rest = _parse_type(_expect(rest, "<"))
        return ("array", element), _expect(rest, ">")
    if word == "map":
        key, rest = _parse_type(_expect(rest, "<"))
        value, rest = _parse_type(_expect(rest, ","))
        return ("map", (key, value)), _expect(rest, ">")
    return word, rest


def _expect(text: str, token: str) -> str:
    if not text.startswith(token):
        raise ValueError(f"expected {token!r} at {text!r}")
    return text[len(token) :]


def duckdb_type(hive: HiveType) -> str:
    if isinstance(hive, str):
        return {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "boolean": "BOOLEAN"}[hive]
    kind, inner = hive
    if kind == "struct":
        return "STRUCT(" + ", ".join(f'"{name}" {duckdb_type(t)}' for name, t in inner) + ")"
    if kind == "array":
        return f"{duckdb_type(inner)}[]"
    key, value = inner
    return f"MAP({duckdb_type(key)}, {duckdb_type(value)})"


def conform(value: Any, hive: HiveType) -> Any:
    """Shape a JSON value the way Athena's JSON SerDe reads it into a column of type ``hive``.

    Keys match case-insensitively; fields the schema lacks are dropped; a ``string`` column
    holding an object keeps its JSON text (so ``json_extract_scalar`` works on it).
    """
    if value is None:
        return None
    if isinstance(hive, str):
        if hive != "string":
            return value
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value, separators=(",", ":"))
    kind, inner = hive
    if kind == "struct":
        if not isinstance(value, Mapping):
            return None
        lowered = {str(k).lower(): v for k, v in value.items()}
        return {name: conform(lowered.get(name), t) for name, t in inner}
    if kind == "array":
        return [conform(v, inner) for v in value] if isinstance(value, list) else None
    _, value_type = inner
    return {str(k): conform(v, value_type) for k, v in value.items()} if isinstance(value, Mapping) else None


# --- the local copy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    path: Path
    partition: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class LocalTable:
    """A Glue table's local mirror: schema, partition columns and the files of each partition."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partition_columns: tuple[str, ...]
    files: tuple[DataFile, ...]
    read_records: Callable[[Path], Iterable[Mapping[str, Any]]]

    @cached_property
    def hive_types(self) -> tuple[tuple[str, HiveType], ...]:
        return tuple((name, parse_hive_type(t)) for name, t in self.columns)

    def duckdb_columns(self) -> str:
        pairs = [f"'{name}': '{duckdb_type(t)}'" for name, t in self.hive_types]
        pairs += [f"'{name}': 'VARCHAR'" for name in self.partition_columns]
        return "{" + ", ".join(pairs) + "}"

    @property
    def partitions(self) -> list[tuple[str, ...]]:
        return sorted({f.partition for f in self.files})


@dataclass(frozen=True)
class TableScan:
    """What a query read from one table, next to what the table holds."""

    table: str
    files_read: int
    bytes_read: int
    files_total: int
    bytes_total: int
    partitions_read: tuple[tuple[str, ...], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "files_read": self.files_read,
            "bytes_read": self.bytes_read,
            "files_total": self.files_total,
            "bytes_total": self.bytes_total,
            "partitions_read": len(self.partitions_read),
        }


@dataclass
class QueryResult:
    name: str | None
    columns: list[str]
    rows: list[tuple[Any, ...]]
    trino_sql: str
    duckdb_sql: str
    scans: dict[str, TableScan] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    @property
    def files_read(self) -> int:
        return sum(s.files_read for s in self.scans.values())

    @property
    def bytes_read(self) -> int:
        return sum(s.bytes_read for s in self.scans.values())


def _cloudtrail_records(path: Path) -> Iterable[Mapping[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        document = json.load(handle)
    records = document.get("Records") if isinstance(document, Mapping) else None
    if not isinstance(records, list):
        raise OfflineQueryError(f"{path} is not a CloudTrail log file (no 'Records' list)")
    return records


def _event_records(path: Path) -> Iterable[Mapping[str, Any]]:
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, Mapping):
        raise OfflineQueryError(f"{path} is not a break-glass event (expected one JSON object)")
    return [record]


def find_cloudtrail_files(root: Path, account_id: str | None = None) -> list[DataFile]:
    """``.../AWSLogs/.../<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`` under ``root``."""
    found: list[DataFile] = []
    for path in sorted(root.rglob("*.json.gz")):
        parts = path.relative_to(root).parts
        if len(parts) < 8 or parts[-6] != "CloudTrail" or "AWSLogs" not in parts[:-7]:
            continue  # digests (CloudTrail-Digest/), insights and unrelated objects
        region, year, month, day = parts[-5:-1]
        if not (
            re.fullmatch(r"\d{4}", year) and re.fullmatch(r"\d{2}", month) and re.fullmatch(r"\d{2}", day)
        ):
            continue
        if account_id is not None and parts[-7] != account_id:
            continue
        found.append(DataFile(path, (region, f"{year}/{month}/{day}"), path.stat().st_size))
    return found


def find_event_files(root: Path, events_prefix: str = EVENTS_PREFIX) -> list[DataFile]:
    """``<events_prefix>/dt=YYYY-MM-DD/*.json`` under ``root``."""
    base = root / events_prefix.strip("/")
    found: list[DataFile] = []
    for path in sorted(base.glob("dt=*/*.json")):
        day = path.parent.name[len("dt=") :]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            found.append(DataFile(path, (day,), path.stat().st_size))
    return found


# --- partition pruning ---------------------------------------------------------------------------


def _conjuncts(condition: exp.Expr) -> Iterator[exp.Expr]:
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        yield from _conjuncts(condition.left)
        yield from _conjuncts(condition.right)
    else:
        yield condition


def partition_predicates(
    tree: exp.Expr, table: str, partition_columns: Iterable[str]
) -> list[exp.Expr] | None:
    """One predicate per reference to ``table``: the AND of its scope's partition-only conjuncts.

    ``None`` means some reference restricts no partition column, so every partition is needed.
    """
    columns = {c.lower() for c in partition_columns}
    predicates: list[exp.Expr] = []
    references = [t for t in tree.find_all(exp.Table) if t.name.lower() == table]
    for reference in references:
        scope = reference.find_ancestor(exp.Select)
        where = scope.args.get("where") if scope is not None else None
        if where is None:
            return None
        alias = reference.alias_or_name.lower()
        usable: list[exp.Expr] = []
        for conjunct in _conjuncts(where.this):
            used = list(conjunct.find_all(exp.Column))
            if not used or conjunct.find(exp.Select, exp.Placeholder) is not None:
                continue
            if all(c.name.lower() in columns and c.table.lower() in {"", alias} for c in used):
                usable.append(conjunct)
        if not usable:
            return None
        predicate = exp.and_(*(u.copy() for u in usable))
        for column in predicate.find_all(exp.Column):
            column.set("table", None)
        predicates.append(predicate)
    return predicates


def select_partitions(
    connection: duckdb.DuckDBPyConnection,
    partitions: list[tuple[str, ...]],
    partition_columns: tuple[str, ...],
    predicates: list[exp.Expr],
) -> set[tuple[str, ...]]:
    """The partitions for which at least one reference's predicate holds, evaluated by DuckDB."""
    if not partitions or not predicates:
        return set()
    names = ", ".join(f'"{c}"' for c in partition_columns)
    values = ", ".join("(" + ", ".join(_quote(v) for v in p) + ")" for p in partitions)
    condition = " OR ".join(f"({p.sql(dialect='duckdb')})" for p in predicates)
    query = f"SELECT {names} FROM (VALUES {values}) AS partitions({names}) WHERE {condition}"
    return {tuple(row) for row in connection.execute(query).fetchall()}


def admits_unmatched_rows(
    connection: duckdb.DuckDBPyConnection, partition_columns: tuple[str, ...], predicates: list[exp.Expr]
) -> bool:
    """Whether a predicate holds when every partition column is NULL.

    That is the row a reference on the nullable side of an outer join gets when nothing matches
    (``LEFT JOIN t ... WHERE t.dt = 'x' OR t.dt IS NULL``). Such a predicate keeps a row whose only
    matches lie in the partitions pruning would drop, where a full scan rejects it: no pruning.
    """
    names = ", ".join(f'"{c}"' for c in partition_columns)
    nulls = ", ".join("NULL::VARCHAR" for _ in partition_columns)
    condition = " OR ".join(f"({p.sql(dialect='duckdb')})" for p in predicates)
    query = f"SELECT count(*) FROM (VALUES ({nulls})) AS partitions({names}) WHERE {condition}"
    row = connection.execute(query).fetchone()
    return bool(row and row[0])


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- running -------------------------------------------------------------------------------------


@dataclass
class LocalBucket:
    """A local copy of the audit bucket, with the Glue tables' schemas laid over it."""

    root: Path
    events_prefix: str = EVENTS_PREFIX
    account_id: str | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise OfflineQueryError(
                f"{self.root} is not a directory (expected a local copy of the audit bucket)"
            )

    @cached_property
    def tables(self) -> dict[str, LocalTable]:
        cloudtrail = tuple(find_cloudtrail_files(self.root, self.account_id))
        events = tuple(find_event_files(self.root, self.events_prefix))
        if not cloudtrail and not events:
            raise OfflineQueryError(
                f"no CloudTrail logs (AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz) and no "
                f"break-glass events ({self.events_prefix}/dt=YYYY-MM-DD/*.json) under {self.root}"
            )
        return {
            CLOUDTRAIL_TABLE: LocalTable(
                CLOUDTRAIL_TABLE,
                CLOUDTRAIL_COLUMNS,
                tuple(n for n, _ in CLOUDTRAIL_PARTITIONS),
                cloudtrail,
                _cloudtrail_records,
            ),
            EVENTS_TABLE: LocalTable(
                EVENTS_TABLE, EVENT_COLUMNS, tuple(n for n, _ in EVENTS_PARTITIONS), events, _event_records
            ),
        }

    def run_named(
        self, name: str, params: Mapping[str, str] | None = None, *, prune: bool = True
    ) -> QueryResult:
        """Run named query ``name`` with ``params`` (unknown name / missing param: QueryError)."""
        query = get_query(name)
        return self.run_sql(query.bind(params or {}), name=name, prune=prune)

    def run_sql(self, trino_sql: str, *, name: str | None = None, prune: bool = True) -> QueryResult:
        """Run Athena (Trino) SQL with its parameters already bound."""
        try:
            tree = sqlglot.parse_one(trino_sql, read="trino")
            duckdb_sql = tree.sql(dialect="duckdb", pretty=True)
        except SqlglotError as exc:
            raise OfflineQueryError(f"the query is not valid Trino SQL: {exc}") from exc
        if tree.find(exp.Placeholder) is not None:
            raise OfflineQueryError("the query still has '?' placeholders: bind its parameters first")
        referenced = {t.name.lower() for t in tree.find_all(exp.Table)}
        connection = duckdb.connect()
        scans: dict[str, TableScan] = {}
        try:
            # Athena sessions run in UTC; date_format() of a timestamp must agree with it.
            connection.execute("SET TimeZone = 'UTC'")
            with tempfile.TemporaryDirectory(prefix="breakglass-athena-") as scratch:
                for table in self.tables.values():
                    if table.name not in referenced:
                        continue
                    chosen = self._choose_files(connection, tree, table, prune)
                    scans[table.name] = self._load(connection, table, chosen, Path(scratch))
                try:
                    cursor = connection.execute(duckdb_sql)
                    columns = [d[0] for d in cursor.description or []]
                    rows = cursor.fetchall()
                except duckdb.Error as exc:
                    raise OfflineQueryError(f"DuckDB could not run the query: {exc}") from exc
        finally:
            connection.close()
        return QueryResult(name, columns, rows, trino_sql, duckdb_sql, scans)

    def _choose_files(
        self, connection: duckdb.DuckDBPyConnection, tree: exp.Expr, table: LocalTable, prune: bool
    ) -> list[DataFile]:
        predicates = partition_predicates(tree, table.name, table.partition_columns) if prune else None
        if predicates is None or admits_unmatched_rows(connection, table.partition_columns, predicates):
            return list(table.files)
        wanted = select_partitions(connection, table.partitions, table.partition_columns, predicates)
        return [f for f in table.files if f.partition in wanted]

    def _load(
        self, connection: duckdb.DuckDBPyConnection, table: LocalTable, files: list[DataFile], scratch: Path
    ) -> TableScan:
        rows_file = scratch / f"{table.name}.ndjson"
        with rows_file.open("w", encoding="utf-8") as out:
            for data_file in files:
                for record in table.read_records(data_file.path):
                    lowered = {str(k).lower(): v for k, v in record.items()}
                    row = {name: conform(lowered.get(name), hive) for name, hive in table.hive_types}
                    row.update(zip(table.partition_columns, data_file.partition, strict=True))
                    out.write(json.dumps(row, separators=(",", ":")) + "\n")
        path = str(rows_file).replace("'", "''")
        connection.execute(
            f"CREATE VIEW \"{table.name}\" AS SELECT * FROM read_json('{path}', "
            f"columns = {table.duckdb_columns()}, format = 'newline_delimited')"
        )
        return TableScan(
            table=table.name,
            files_read=len(files),
            bytes_read=sum(f.size for f in files),
            files_total=len(table.files),
            bytes_total=sum(f.size for f in table.files),
            partitions_read=tuple(sorted({f.partition for f in files})),
        )


def run_named_query(
    name: str,
    data_dir: Path,
    params: Mapping[str, str] | None = None,
    *,
    events_prefix: str = EVENTS_PREFIX,
    account_id: str | None = None,
    prune: bool = True,
) -> QueryResult:
    """Run named query ``name`` over the local copy in ``data_dir``."""
    query = get_query(name)  # an unknown name fails before the directory is scanned
    bound = query.bind(params or {})
    bucket = LocalBucket(Path(data_dir), events_prefix=events_prefix, account_id=account_id)
    return bucket.run_sql(bound, name=name, prune=prune)
