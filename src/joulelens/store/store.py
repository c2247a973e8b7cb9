"""The run store: one directory per run (the source of truth) plus a DuckDB catalog.

Layout::

    STORE/
      runs/<run_id>/run.json          the record (written last, atomically with its directory)
      runs/<run_id>/requests.parquet  per-request rows, for runs measured by joulelens
      runs/<run_id>/timeline.parquet  power, temperature, batch, KV-cache timelines
      catalog.duckdb                  index over runs/, rebuilt from the files when stale
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from joulelens.errors import InputError, RunNotFoundError, StoreError
from joulelens.records import RunRecord
from joulelens.store.catalog import Catalog
from joulelens.store.files import (
    atomic_write_text,
    remove_stale_staging,
    staged_directory,
    write_new_file,
)

STORE_ENV = "JOULELENS_STORE"
RUN_FILE = "run.json"

ArtifactWriter = Callable[[Path], object]  # may return the names it wrote


def default_store_dir() -> Path:
    """``$JOULELENS_STORE`` if set, else the user's data directory (e.g. ~/.local/share)."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("joulelens", appauthor=False)) / "store"


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Filters for :meth:`Store.query`; ``None`` means no constraint."""

    task: str | None = None
    model: str | None = None  # case-insensitive substring of model_id or nickname
    gpu_model: str | None = None
    num_gpus: int | None = None
    batch_min: int | None = None
    batch_max: int | None = None
    precision: str | None = None  # substring of weight_precision, e.g. "fp8"
    stable_only: bool = False
    kind: str | None = None
    source: str | None = None
    include_failed: bool = False

    def to_sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.task:
            clauses.append("task = ?")
            params.append(self.task)
        if self.model:
            clauses.append("(lower(model_id) LIKE ? OR lower(coalesce(nickname, '')) LIKE ?)")
            params += [f"%{self.model.lower()}%"] * 2
        if self.gpu_model:
            clauses.append("lower(gpu_model) = ?")
            params.append(self.gpu_model.lower())
        if self.num_gpus is not None:
            clauses.append("num_gpus = ?")
            params.append(self.num_gpus)
        if self.batch_min is not None:
            clauses.append("batch >= ?")
            params.append(self.batch_min)
        if self.batch_max is not None:
            clauses.append("batch <= ?")
            params.append(self.batch_max)
        if self.precision:
            clauses.append("lower(coalesce(weight_precision, '')) LIKE ?")
            params.append(f"%{self.precision.lower()}%")
        if self.stable_only:
            clauses.append("stable IS TRUE")
        if self.kind:
            clauses.append("kind = ?")
            params.append(self.kind)
        if self.source:
            clauses.append("source = ?")
            params.append(self.source)
        if not self.include_failed:
            clauses.append("status = 'completed'")
        return (" AND ".join(clauses) or "TRUE"), params


class Store:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root is not None else default_store_dir()
        self.runs_dir = self.root / "runs"
        self.catalog = Catalog(self.root / "catalog.duckdb")
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store at {self.root}: {exc}") from exc
        remove_stale_staging(self.runs_dir)
        self._sync_catalog()

    # -- writing -------------------------------------------------------------------------
    def put(self, record: RunRecord, write_artifacts: ArtifactWriter | None = None) -> None:
        """Write one run atomically (artifacts first, run.json last), then index it."""
        self._write_run(record, write_artifacts, fsync=True)
        self.catalog.upsert([record], {record.run_id: self._file_stamp(record.run_id)})

    def update(self, record: RunRecord) -> None:
        """Replace an existing run's ``run.json`` atomically, keeping its artifacts."""
        path = self.run_dir(record.run_id) / RUN_FILE
        if not path.is_file():
            raise RunNotFoundError(f"no run {record.run_id!r} to update in {self.root}")
        atomic_write_text(path, record.model_dump_json(indent=1))
        self.catalog.upsert([record], {record.run_id: self._file_stamp(record.run_id)})

    def put_many(self, records: Sequence[RunRecord]) -> int:
        """Bulk write (imports); returns how many runs were written.

        Each run directory is still replaced atomically. A run whose stored file already
        says the same (apart from ``recorded_at``) is left as it is, so importing the same
        data again rewrites nothing and keeps when each run was first recorded.
        """
        changed = [r for r in records if not self._stored_unchanged(r)]
        for record in changed:
            self._write_run(record, None, fsync=False)
        if changed:
            os.sync()  # one flush for the batch instead of one per file
        stamps = {r.run_id: self._file_stamp(r.run_id) for r in changed}
        return self.catalog.upsert(changed, stamps)

    def _stored_unchanged(self, record: RunRecord) -> bool:
        try:
            stored = json.loads((self.run_dir(record.run_id) / RUN_FILE).read_bytes())
        except (OSError, ValueError):
            return False
        incoming = record.model_dump(mode="json")
        stored.pop("recorded_at", None)
        incoming.pop("recorded_at", None)
        return bool(stored == incoming)

    def _write_run(
        self, record: RunRecord, write_artifacts: ArtifactWriter | None, *, fsync: bool
    ) -> None:
        with staged_directory(self.run_dir(record.run_id)) as staging:
            if write_artifacts is not None:
                write_artifacts(staging)
            write_new_file(
                staging / RUN_FILE, record.model_dump_json(indent=1).encode(), fsync=fsync
            )

    def _file_stamp(self, run_id: str) -> int:
        return (self.run_dir(run_id) / RUN_FILE).stat().st_mtime_ns

    def delete(self, run_ids: Sequence[str]) -> None:
        import shutil

        for run_id in run_ids:
            shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        self.catalog.delete(run_ids)

    # -- reading -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise InputError(f"invalid run id {run_id!r}", field="run_id")
        return self.runs_dir / run_id

    def has(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / RUN_FILE).is_file()

    def get(self, run_id: str) -> RunRecord:
        """A run by full id or unique prefix."""
        path = self.run_dir(run_id) / RUN_FILE
        if not path.is_file():
            matches = [i for i in self._file_ids() if i.startswith(run_id)]
            if len(matches) != 1:
                why = "no run" if not matches else f"{len(matches)} runs"
                raise RunNotFoundError(f"{why} with id {run_id!r} in store {self.root}")
            path = self.run_dir(matches[0]) / RUN_FILE
        return self._read_file(path)

    def query(self, flt: RunFilter | None = None) -> list[RunRecord]:
        where, params = (flt or RunFilter()).to_sql()
        order = "task, model_id, gpu_model, num_gpus, weight_precision, batch, run_id"
        rows = self.catalog.select_records(where, params, order)
        return [RunRecord.model_validate_json(r) for r in rows]

    def all(self) -> list[RunRecord]:
        return self.query(RunFilter(include_failed=True))

    def artifact_path(self, run_id: str, name: str) -> Path:
        return self.run_dir(run_id) / name

    # -- catalog -------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Recreate the catalog from the run files; returns how many runs it indexed."""
        self.catalog.create()
        stamps = self._file_stamps()
        records = [self._read_file(self.run_dir(i) / RUN_FILE) for i in sorted(stamps)]
        return self.catalog.upsert(records, stamps)

    def _sync_catalog(self) -> None:
        """Make the catalog match the files: rebuild if stale, else re-read what changed.

        A run directory added, removed or rewritten by hand (or by a writer that died
        between writing its files and indexing them) is noticed by its run.json's mtime.
        """
        if not self.catalog.is_current():
            self.rebuild()
            return
        on_disk = self._file_stamps()
        indexed = self.catalog.file_stamps()
        if on_disk == indexed:
            return
        self.catalog.delete(sorted(indexed.keys() - on_disk.keys()))
        changed = sorted(i for i, stamp in on_disk.items() if indexed.get(i) != stamp)
        records = [self._read_file(self.run_dir(i) / RUN_FILE) for i in changed]
        self.catalog.upsert(records, on_disk)

    def _file_stamps(self) -> dict[str, int]:
        """Run id -> run.json mtime (ns) for every complete run directory."""
        stamps: dict[str, int] = {}
        for entry in os.scandir(self.runs_dir):
            if entry.name.startswith("."):
                continue
            try:
                stamps[entry.name] = os.stat(os.path.join(entry.path, RUN_FILE)).st_mtime_ns
            except (FileNotFoundError, NotADirectoryError):
                continue
        return stamps

    def _file_ids(self) -> Iterable[str]:
        return iter(self._file_stamps())

    @staticmethod
    def _read_file(path: Path) -> RunRecord:
        try:
            record = RunRecord.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InputError(first["msg"], source=path, field=field) from exc
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        if record.run_id != path.parent.name:
            raise InputError(
                f"run_id {record.run_id!r} does not match its directory {path.parent.name!r}",
                source=path,
                field="run_id",
            )
        return record
