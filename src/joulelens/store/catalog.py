"""The DuckDB catalog: an index over the run files, rebuildable from them at any time.

It also lists the run files that could not be indexed (``problems``: set aside in
quarantine, or written by a newer joulelens), so that opening the store does not read them
again and ``store info``/``store doctor`` can name them.

Scalar record fields become typed columns (for filtering and SQL analysis); the whole record
is kept as JSON so readers get exactly what the run file holds.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import duckdb

from joulelens.core.files import pid_alive
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


_STAMPS_SQL = (
    "SELECT run_id, file_mtime_ns FROM runs UNION ALL SELECT run_id, file_mtime_ns FROM problems"
)


class CatalogState(StrEnum):
    CURRENT = "current"
    MISSING = "missing"
    CORRUPT = "corrupt"  # not a DuckDB file, or tables missing: rebuilt from the files
    OUTDATED = "outdated"  # another catalog or schema version: rebuilt from the files


class Catalog:
    """The catalog is a series of immutable snapshots: ``catalog.duckdb`` is a symbolic link
    to the current one (``catalog-<pid>-<hex>.duckdb``). A writer (holding the store's write
    lock) copies the current snapshot, changes the copy and swings the link to it, so readers
    always see a whole snapshot and never meet a lock held by a writer. Because a snapshot
    never changes, a process keeps one read-only connection to it until the link moves."""

    def __init__(self, path: Path, schema_version: int = SCHEMA_VERSION):
        self.path = path
        self.schema_version = schema_version

    def snapshot(self) -> Path | None:
        """The file the catalog currently is (None when missing or a dangling link)."""
        try:
            target = Path(os.path.realpath(self.path))
            return target if target.is_file() else None
        except OSError:
            return None

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only cursor on the current snapshot (close it; the connection stays)."""
        for attempt in range(3):
            target = self.snapshot()
            if target is None:
                raise StoreError(f"no catalog at {self.path}")
            try:
                return _reader(self.path, target).cursor()
            except duckdb.IOException as exc:
                if attempt == 2 or target.exists():
                    raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc
                # a writer published a newer snapshot and removed this one: look again
            except duckdb.Error as exc:
                raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc
        raise AssertionError("unreachable")

    def state(self) -> CatalogState:
        return self.inspect()[0]

    def inspect(self) -> tuple[CatalogState, dict[str, int | None]]:
        """(state, indexed file stamps) in one read; stamps are empty unless current."""
        if self.snapshot() is None:
            return CatalogState.MISSING, {}
        try:
            with self.connect() as con:
                got = con.execute("SELECT catalog_version, schema_version FROM meta").fetchone()
                if got != (CATALOG_VERSION, self.schema_version):
                    return CatalogState.OUTDATED, {}
                rows = con.execute(_STAMPS_SQL).fetchall()
        except (duckdb.Error, StoreError):
            return CatalogState.CORRUPT, {}
        return CatalogState.CURRENT, {run_id: stamp for run_id, stamp in rows}

    def is_current(self) -> bool:
        return self.state() is CatalogState.CURRENT

    @contextmanager
    def write(self, *, fresh: bool = False) -> Iterator[CatalogWriter]:
        """A writable copy of the catalog (empty if ``fresh`` or the catalog is unusable),
        published when the block succeeds; on error the catalog is left as it was.

        The caller holds the store's write lock.
        """
        folder = self.path.parent
        stem = self.path.name.removesuffix(".duckdb")
        new = folder / f"{stem}-{os.getpid()}-{secrets.token_hex(6)}.duckdb"
        old = self.snapshot()
        try:
            if not fresh and old is not None and self.state() is CatalogState.CURRENT:
                shutil.copyfile(old, new)
            else:
                fresh = True
            con = duckdb.connect(str(new))
        except (OSError, duckdb.Error) as exc:
            _remove(new)
            raise StoreError(f"cannot write catalog {self.path}: {exc}") from exc
        try:
            writer = CatalogWriter(con, self.path)
            if fresh:
                writer.reset(self.schema_version)
            yield writer
            con.execute("CHECKPOINT")
            con.close()
            link = folder / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.lnk"
            os.symlink(new.name, link)
            os.replace(link, self.path)  # the one atomic step that publishes the snapshot
        except BaseException:
            con.close()
            _remove(new)
            raise
        if old is not None and old.parent == folder and old.name.startswith(f"{stem}-"):
            _remove(old)  # a generation file (never the link itself, nor a legacy file)

    def remove_stale_copies(self) -> None:
        """Snapshots and links left by writers that died before publishing them."""
        current = self.snapshot()
        stem = self.path.name.removesuffix(".duckdb")
        leftovers = [
            *self.path.parent.glob(f"{stem}-*-*.duckdb*"),
            *self.path.parent.glob(f".{self.path.name}.*"),
        ]
        for entry in leftovers:
            pid = next((int(p) for p in re.split(r"[-.]", entry.name) if p.isdigit()), None)
            if entry != current and pid is not None and not pid_alive(pid):
                entry.unlink(missing_ok=True)

    # -- reading (read-only connections to the current snapshot) --------------------------
    def _read(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            with self.connect() as con:
                return con.execute(query, params or []).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"cannot read catalog {self.path}: {exc}") from exc

    def run_ids(self) -> set[str]:
        return {r[0] for r in self._read("SELECT run_id FROM runs")}

    def file_stamps(self) -> dict[str, int | None]:
        """Run id -> the run file's mtime (ns) when it was indexed (runs and problems)."""
        return {run_id: stamp for run_id, stamp in self._read(_STAMPS_SQL)}

    def count(self) -> int:
        return int(self._read("SELECT count(*) FROM runs")[0][0])

    def problems(self) -> list[tuple[str, str, str]]:
        """(run id, kind, reason) of run files that could not be indexed."""
        rows = self._read("SELECT run_id, kind, reason FROM problems ORDER BY run_id")
        return [(r[0], r[1], r[2]) for r in rows]

    def select_records(self, where: str, params: list[Any], order: str) -> list[str]:
        sql = f"SELECT record FROM runs WHERE {where} ORDER BY {order}"
        return [r[0] for r in self._read(sql, params)]

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read-only SQL over the ``runs`` table, for analysis and power users."""
        with self.connect() as con:
            return con.execute(query, params or []).fetchall()


class CatalogWriter:
    """Changes to a private copy of the catalog (see :meth:`Catalog.write`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        self.con = con
        self.path = path

    def reset(self, schema_version: int) -> None:
        """Drop and recreate the empty tables."""
        cols = {**COLUMNS, **DERIVED_COLUMNS, "record": "JSON"}
        ddl = ", ".join(f'"{name}" {sql}' for name, sql in cols.items())
        con = self.con
        for table in ("runs", "problems", "meta"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"CREATE TABLE runs ({ddl}, PRIMARY KEY (run_id))")
        con.execute(
            "CREATE TABLE problems (run_id VARCHAR PRIMARY KEY, file_mtime_ns BIGINT, "
            "kind VARCHAR, reason VARCHAR)"
        )
        con.execute("CREATE TABLE meta (catalog_version INTEGER, schema_version INTEGER)")
        con.execute("INSERT INTO meta VALUES (?, ?)", [CATALOG_VERSION, schema_version])

    def upsert(
        self, records: Iterable[RunRecord], file_mtimes_ns: Mapping[str, int] | None = None
    ) -> int:
        """Insert or replace rows; ``file_mtimes_ns`` maps run id -> mtime."""
        import pyarrow as pa

        stamps = file_mtimes_ns or {}
        rows = [catalog_row(r, stamps.get(r.run_id)) for r in records]
        if not rows:
            return 0
        names = [*COLUMNS, *DERIVED_COLUMNS, "record"]
        table = pa.Table.from_pylist(rows, schema=_arrow_schema(names))
        quoted = ", ".join(f'"{n}"' for n in names)
        try:
            self.con.register("incoming", table)
            self.con.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM incoming)")
            self.con.execute("DELETE FROM problems WHERE run_id IN (SELECT run_id FROM incoming)")
            self.con.execute(f"INSERT INTO runs ({quoted}) SELECT {quoted} FROM incoming")
            self.con.unregister("incoming")
        except duckdb.Error as exc:
            raise StoreError(f"cannot index runs in {self.path}: {exc}") from exc
        return len(rows)

    def delete(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            ids = [list(run_ids)]
            self.con.execute("DELETE FROM runs WHERE run_id IN (SELECT unnest(?))", ids)
            self.con.execute("DELETE FROM problems WHERE run_id IN (SELECT unnest(?))", ids)

    def file_stamps(self) -> dict[str, int | None]:
        return {run_id: stamp for run_id, stamp in self.con.execute(_STAMPS_SQL).fetchall()}

    def select_records(self, where: str, params: list[Any], order: str) -> list[str]:
        sql = f"SELECT record FROM runs WHERE {where} ORDER BY {order}"
        return [r[0] for r in self.con.execute(sql, params).fetchall()]

    def set_problem(self, run_id: str, file_mtime_ns: int | None, kind: str, reason: str) -> None:
        self.delete([run_id])
        self.con.execute(
            "INSERT INTO problems VALUES (?, ?, ?, ?)", [run_id, file_mtime_ns, kind, reason]
        )


def _remove(snapshot: Path) -> None:
    snapshot.unlink(missing_ok=True)
    snapshot.with_name(snapshot.name + ".wal").unlink(missing_ok=True)


# One read-only connection per catalog, per process, to its current snapshot: snapshots
# never change, so the connection stays right until the catalog link moves on.
_READERS: dict[Path, tuple[Path, tuple[int, int], duckdb.DuckDBPyConnection]] = {}
_READERS_LOCK = threading.Lock()


def _reader(link: Path, target: Path) -> duckdb.DuckDBPyConnection:
    info = target.stat()
    key = (info.st_ino, info.st_mtime_ns)
    with _READERS_LOCK:
        cached = _READERS.get(link)
        if cached is not None and cached[0] == target and cached[1] == key:
            return cached[2]
        con = duckdb.connect(str(target), read_only=True)
        _READERS[link] = (target, key, con)  # the previous one closes with its last cursor
        return con


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
