"""The DuckDB catalog: an index over the run files, rebuildable from them at any time.

Scalar record fields become typed columns (for filtering and SQL analysis); the whole record
is kept as JSON so readers get exactly what the run file holds.
"""

from __future__ import annotations

import contextlib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import duckdb

from joulelens.errors import StoreError
from joulelens.records import SCHEMA_VERSION, RunRecord

CATALOG_VERSION = 3  # bump when columns change; an older catalog is rebuilt from the files

_SQL_TYPES: dict[type, str] = {int: "BIGINT", float: "DOUBLE", str: "VARCHAR", bool: "BOOLEAN"}


def _column_type(annotation: Any) -> str | None:
    """DuckDB type of a scalar field annotation (``int | None`` -> BIGINT); None if not scalar."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    concrete = [a for a in args if a is not type(None)]
    if len(concrete) != 1 or not isinstance(concrete[0], type):
        return None
    kind = concrete[0]
    if issubclass(kind, Enum):
        return "VARCHAR"
    if kind is bool:
        return "BOOLEAN"
    return _SQL_TYPES.get(kind)


COLUMNS: dict[str, str] = {
    name: sql
    for name, info in RunRecord.model_fields.items()
    if (sql := _column_type(info.annotation)) is not None
}
# Derived columns, so that queries over LLM and diffusion runs alike stay simple.
DERIVED_COLUMNS: dict[str, str] = {
    "batch": "BIGINT",
    "energy_per_unit_joules": "DOUBLE",
    "latency_ms": "DOUBLE",
    "source": "VARCHAR",
    "source_version": "VARCHAR",
    # run.json's mtime when indexed: a file changed behind the catalog's back is re-read.
    "file_mtime_ns": "BIGINT",
}


def catalog_row(record: RunRecord, file_mtime_ns: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in COLUMNS:
        value = getattr(record, name)
        row[name] = value.value if isinstance(value, Enum) else value
    row["batch"] = record.batch
    row["energy_per_unit_joules"] = record.energy_per_unit_joules
    row["latency_ms"] = record.latency_ms
    row["source"] = record.provenance.source.value
    row["source_version"] = record.provenance.source_version
    row["file_mtime_ns"] = file_mtime_ns
    row["record"] = record.model_dump_json()
    return row


class Catalog:
    """Short-lived DuckDB connections: open, do one thing, close (so other processes can read)."""

    def __init__(self, path: Path):
        self.path = path

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc

    def is_current(self) -> bool:
        if not self.path.exists():
            return False
        try:
            with self.connect(read_only=True) as con:
                got = con.execute("SELECT catalog_version, schema_version FROM meta").fetchone()
        except (duckdb.Error, StoreError):
            return False
        return got == (CATALOG_VERSION, SCHEMA_VERSION)

    def create(self) -> None:
        """Drop and recreate the empty catalog."""
        cols = {**COLUMNS, **DERIVED_COLUMNS, "record": "JSON"}
        ddl = ", ".join(f'"{name}" {sql}' for name, sql in cols.items())
        with self.connect() as con:
            con.execute("DROP TABLE IF EXISTS runs")
            con.execute("DROP TABLE IF EXISTS meta")
            con.execute(f"CREATE TABLE runs ({ddl}, PRIMARY KEY (run_id))")
            con.execute("CREATE TABLE meta (catalog_version INTEGER, schema_version INTEGER)")
            con.execute("INSERT INTO meta VALUES (?, ?)", [CATALOG_VERSION, SCHEMA_VERSION])

    def upsert(
        self, records: Iterable[RunRecord], file_mtimes_ns: Mapping[str, int] | None = None
    ) -> int:
        """Insert or replace rows, all or nothing; ``file_mtimes_ns`` maps run id -> mtime."""
        import pyarrow as pa

        stamps = file_mtimes_ns or {}
        rows = [catalog_row(r, stamps.get(r.run_id)) for r in records]
        if not rows:
            return 0
        names = [*COLUMNS, *DERIVED_COLUMNS, "record"]
        table = pa.Table.from_pylist(rows, schema=_arrow_schema(names))
        quoted = ", ".join(f'"{n}"' for n in names)
        with self.connect() as con:
            con.register("incoming", table)
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM incoming)")
                con.execute(f"INSERT INTO runs ({quoted}) SELECT {quoted} FROM incoming")
                con.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise StoreError(f"cannot index runs in {self.path}: {exc}") from exc
        return len(rows)

    def delete(self, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        with self.connect() as con:
            con.execute("DELETE FROM runs WHERE run_id IN (SELECT unnest(?))", [list(run_ids)])

    def run_ids(self) -> set[str]:
        with self.connect(read_only=True) as con:
            return {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}

    def file_stamps(self) -> dict[str, int | None]:
        """Run id -> the run file's mtime (ns) when it was indexed."""
        with self.connect(read_only=True) as con:
            rows = con.execute("SELECT run_id, file_mtime_ns FROM runs").fetchall()
        return {run_id: stamp for run_id, stamp in rows}

    def select_records(self, where: str, params: list[Any], order: str) -> list[str]:
        with self.connect(read_only=True) as con:
            sql = f"SELECT record FROM runs WHERE {where} ORDER BY {order}"
            return [r[0] for r in con.execute(sql, params).fetchall()]

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read-only SQL over the ``runs`` table, for analysis and power users."""
        with self.connect(read_only=True) as con:
            return con.execute(query, params or []).fetchall()


def _arrow_schema(names: list[str]) -> Any:
    import pyarrow as pa

    arrow_types = {
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "VARCHAR": pa.string(),
        "BOOLEAN": pa.bool_(),
        "JSON": pa.string(),
    }
    all_cols = {**COLUMNS, **DERIVED_COLUMNS, "record": "JSON"}
    return pa.schema([(n, arrow_types[all_cols[n]]) for n in names])
