"""The run store: one directory per run (the source of truth) plus a DuckDB catalog.

Layout::

    STORE/
      runs/<run_id>/run.json          the record (written last, atomically with its directory)
      runs/<run_id>/requests.parquet  per-request rows, for runs measured by joulelens
      runs/<run_id>/timeline.parquet  power, temperature, batch, KV-cache timelines
      catalog.duckdb                  index over runs/, rebuilt from the files when stale
      quarantine/<run_id>.<time>/     run files set aside because they were not valid records
      .lock                           the write lock (see :mod:`.lock`)
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from joulelens.core.files import (
    atomic_write_text,
    remove_stale_staging,
    staged_directory,
    write_new_file,
)
from joulelens.errors import InputError, RunNotFoundError, StoreError
from joulelens.records import RunRecord
from joulelens.records.migrations import MIGRATIONS, Migrations
from joulelens.redact import Redactor
from joulelens.store.catalog import Catalog, CatalogState, CatalogWriter
from joulelens.store.filters import RunFilter
from joulelens.store.lock import READ_ONLY_ERRNOS, WriteLock, read_only_error
from joulelens.store.runfiles import (
    RUN_FILE,
    NewerSchemaError,
    Problem,
    load_run_file,
    quarantine,
    quarantined,
    redact_artifacts,
    relative_reason,
)
from joulelens.store.writes import Prepared, StoreInfo, WriteCounts, prepare

STORE_ENV = "JOULELENS_STORE"

ArtifactWriter = Callable[[Path], object]  # may return the names it wrote


def default_store_dir() -> Path:
    """``$JOULELENS_STORE`` if set, else the user's data directory (e.g. ~/.local/share)."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("joulelens", appauthor=False)) / "store"


class Store:
    """Open (and, if needed, index) the store at ``root``.

    Opening never fails because of one bad run file: it is set aside (see
    :mod:`.runfiles`) and listed in :attr:`set_aside`. Any number of processes may read
    and write at once: writes take the store's write lock in turn, reads use the last
    complete catalog snapshot. A read-only store can be read (its catalog is then rebuilt
    privately if stale); writing to it raises :class:`StoreReadOnlyError`.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        migrations: Migrations = MIGRATIONS,
        lock_timeout_s: float | None = None,
    ):
        self.root = Path(root).expanduser() if root is not None else default_store_dir()
        self.runs_dir = self.root / "runs"
        self.migrations = migrations
        self.catalog = Catalog(self.root / "catalog.duckdb", migrations.current)
        self.lock = WriteLock(self.root, lock_timeout_s)
        self.read_only = False
        self.opened_catalog_state = CatalogState.CURRENT
        self.set_aside: list[Problem] = []  # run files quarantined while opening
        self._local = threading.local()
        self._private_dir: Path | None = None
        self._open()

    # -- opening ---------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno not in READ_ONLY_ERRNOS or not self.runs_dir.is_dir():
                raise StoreError(f"cannot create store at {self.root}: {exc}") from exc
            self.read_only = True
        if not self.read_only:
            try:
                self.lock.path.touch(exist_ok=True)
            except OSError as exc:
                if exc.errno not in READ_ONLY_ERRNOS:
                    raise StoreError(f"cannot open store {self.root}: {exc}") from exc
                self.read_only = True
        if not self.read_only:
            try:
                remove_stale_staging(self.runs_dir)
                self.catalog.remove_stale_copies()
            except OSError:
                pass  # leftovers are invisible to readers; the next writer tries again
        self._sync_catalog()

    def _sync_catalog(self) -> None:
        """Make the catalog match the files: rebuild if missing, corrupt or outdated, else
        re-read what changed. A run directory added, removed or rewritten by hand (or by a
        writer that died between writing its files and indexing them) is noticed by its
        run.json's mtime. While another process writes, its last snapshot is used as is."""
        state, indexed = self.catalog.inspect()
        self.opened_catalog_state = state
        if state is CatalogState.CURRENT and self._file_stamps() == indexed:
            return
        if self.read_only:
            self._index_privately()
            return
        if state is CatalogState.CURRENT:
            if not self.lock.try_hold():
                return  # a writer is at work and will index what it writes
            try:
                with self._session():
                    pass
            finally:
                self.lock.release()
            return
        with self._session():
            pass

    def _index_privately(self) -> None:
        """A read-only store with a stale catalog: index its files into a private catalog."""
        self._private_dir = Path(tempfile.mkdtemp(prefix="joulelens-catalog-"))
        weakref.finalize(self, shutil.rmtree, self._private_dir, True)
        self.catalog = Catalog(self._private_dir / "catalog.duckdb", self.migrations.current)
        with self.catalog.write(fresh=True) as writer:
            self._index(writer, sorted(self._file_stamps()), movable=False)

    # -- the write session -----------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write lock (and one catalog copy) across several operations, e.g. an
        import that reads the store, decides and writes; other writers wait meanwhile."""
        with self._session():
            yield

    @contextmanager
    def _session(self) -> Iterator[CatalogWriter]:
        if self.read_only:
            raise read_only_error(self.root, OSError(errno.EROFS, "it cannot be written"))
        with self.lock.hold():
            current: CatalogWriter | None = getattr(self._local, "writer", None)
            if current is not None:
                yield current
                return
            try:
                state = self.catalog.state()
                with self.catalog.write(fresh=state is not CatalogState.CURRENT) as writer:
                    self._local.writer = writer
                    try:
                        self._catch_up(writer, fresh=state is not CatalogState.CURRENT)
                        yield writer
                    finally:
                        self._local.writer = None
            except OSError as exc:
                if exc.errno in READ_ONLY_ERRNOS:
                    raise read_only_error(self.root, exc) from exc
                raise StoreError(f"cannot write to store {self.root}: {exc}") from exc

    def _catch_up(self, writer: CatalogWriter, *, fresh: bool) -> None:
        on_disk = self._file_stamps()
        indexed = {} if fresh else writer.file_stamps()
        if on_disk == indexed:
            return
        writer.delete(sorted(indexed.keys() - on_disk.keys()))
        changed = sorted(i for i, stamp in on_disk.items() if indexed.get(i) != stamp)
        self._index(writer, changed, movable=True)

    def _index(self, writer: CatalogWriter, run_ids: Sequence[str], *, movable: bool) -> int:
        """Read ``run_ids``' files into ``writer``: migrate old ones (rewriting them when
        ``movable``), set aside broken ones, note newer ones. Returns how many it indexed."""
        records: list[RunRecord] = []
        stamps: dict[str, int] = {}
        for run_id in run_ids:
            path = self.run_dir(run_id) / RUN_FILE
            try:
                stamp = path.stat().st_mtime_ns
                record, version = load_run_file(path, self.migrations)
            except FileNotFoundError:
                writer.delete([run_id])  # removed meanwhile
                continue
            except NewerSchemaError as exc:
                writer.set_problem(run_id, stamp, "newer", relative_reason(self.root, exc))
                continue
            except InputError as exc:
                reason = relative_reason(self.root, exc)
                if movable and self._set_aside(run_id, reason):
                    writer.delete([run_id])
                else:
                    writer.set_problem(run_id, stamp, "invalid", reason)
                continue
            except StoreError as exc:
                writer.set_problem(run_id, stamp, "unreadable", relative_reason(self.root, exc))
                continue
            if movable and version < self.migrations.current:
                atomic_write_text(path, record.model_dump_json(indent=1))
                stamp = path.stat().st_mtime_ns
            records.append(record)
            stamps[run_id] = stamp
        return writer.upsert(records, stamps)

    def _set_aside(self, run_id: str, reason: str) -> bool:
        try:
            target = quarantine(self.root, self.run_dir(run_id), reason)
        except OSError:
            return False
        where = target.relative_to(self.root)
        self.set_aside.append(Problem(run_id, "quarantined", f"{reason} (moved to {where}/)"))
        return True

    # -- writing -----------------------------------------------------------------------------
    def put(self, record: RunRecord, write_artifacts: ArtifactWriter | None = None) -> None:
        """Write one run atomically (artifacts first, run.json last), then index it."""
        redactor = Redactor()
        prepared = prepare(record, redactor)
        record = prepared.record
        with self._session() as writer:
            self._write_run(prepared, write_artifacts, redactor, fsync=True)
            writer.upsert([record], {record.run_id: self._file_stamp(record.run_id)})

    def update(self, record: RunRecord) -> None:
        """Replace an existing run's ``run.json`` atomically, keeping its artifacts."""
        prepared = prepare(record, Redactor())
        record = prepared.record
        with self._session() as writer:
            path = self.run_dir(record.run_id) / RUN_FILE
            if not path.is_file():
                raise RunNotFoundError(f"no run {record.run_id!r} to update in {self.root}")
            atomic_write_text(path, prepared.text)
            writer.upsert([record], {record.run_id: self._file_stamp(record.run_id)})

    def put_many(self, records: Sequence[RunRecord]) -> WriteCounts:
        """Bulk write (imports): each run directory replaced atomically, one catalog update.

        A run whose stored file already says the same (apart from ``recorded_at``) is left
        as it is, so importing the same data again rewrites nothing and keeps when each run
        was first recorded. Counts are taken under the write lock: with several importers
        at once each one's counts describe exactly what it did.
        """
        seen: set[str] = set()
        for record in records:
            if record.run_id in seen:
                raise InputError(
                    f"two records share the run id {record.run_id!r}; nothing was written",
                    field="run_id",
                )
            seen.add(record.run_id)
        redactor = Redactor()
        prepared = [prepare(r, redactor) for r in records]
        if self.read_only:  # nobody writes here; an import that changes nothing still works
            statuses = [self._stored_status(p) for p in prepared]
            if all(status == "unchanged" for status in statuses):
                return WriteCounts(unchanged=len(statuses))
        with self._session() as writer:
            new = updated = unchanged = 0
            changed: list[Prepared] = []
            for one in prepared:
                status = self._stored_status(one)
                if status == "unchanged":
                    unchanged += 1
                    continue
                new += status == "new"
                updated += status == "updated"
                changed.append(one)
            for one in changed:
                self._write_run(one, None, redactor, fsync=False)
            if changed:
                os.sync()  # one flush for the batch instead of one per file
            stamps = {p.record.run_id: self._file_stamp(p.record.run_id) for p in changed}
            writer.upsert([p.record for p in changed], stamps)
        return WriteCounts(new, updated, unchanged)

    def _stored_status(self, prepared: Prepared) -> str:
        try:
            stored = json.loads((self.run_dir(prepared.record.run_id) / RUN_FILE).read_bytes())
        except FileNotFoundError:
            return "new"
        except (OSError, ValueError):
            return "updated"
        if not isinstance(stored, dict):
            return "updated"
        stored.pop("recorded_at", None)
        incoming = json.loads(prepared.text)
        incoming.pop("recorded_at", None)
        same = stored == incoming
        return "unchanged" if same else "updated"

    def _write_run(
        self,
        prepared: Prepared,
        write_artifacts: ArtifactWriter | None,
        redactor: Redactor,
        *,
        fsync: bool,
    ) -> None:
        with staged_directory(self.run_dir(prepared.record.run_id)) as staging:
            if write_artifacts is not None:
                write_artifacts(staging)
                # A secret the record revealed (its server's --api-key) goes from logs too.
                redact_artifacts(staging, redactor.with_known(prepared.secrets))
            write_new_file(staging / RUN_FILE, prepared.text.encode(), fsync=fsync)

    def _file_stamp(self, run_id: str) -> int:
        return (self.run_dir(run_id) / RUN_FILE).stat().st_mtime_ns

    def delete(self, run_ids: Sequence[str]) -> None:
        with self._session() as writer:
            for run_id in run_ids:
                shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
            writer.delete(run_ids)

    # -- reading -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise InputError(f"invalid run id {run_id!r}", field="run_id")
        return self.runs_dir / run_id

    def has(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / RUN_FILE).is_file()

    def get(self, run_id: str) -> RunRecord:
        """A run by full id or unique prefix."""
        path = self.run_dir(run_id) / RUN_FILE
        if not path.is_file():
            matches = [i for i in self._file_stamps() if i.startswith(run_id)]
            if len(matches) != 1:
                why = "no run" if not matches else f"{len(matches)} runs"
                raise RunNotFoundError(f"{why} with id {run_id!r} in store {self.root}")
            path = self.run_dir(matches[0]) / RUN_FILE
        return load_run_file(path, self.migrations)[0]

    def query(self, flt: RunFilter | None = None) -> list[RunRecord]:
        where, params = (flt or RunFilter()).to_sql()
        order = "task, model_id, gpu_model, num_gpus, weight_precision, batch, run_id"
        writer: CatalogWriter | None = getattr(self._local, "writer", None)
        if writer is not None:  # inside a write session: see its own changes
            rows = writer.select_records(where, params, order)
        else:
            rows = self.catalog.select_records(where, params, order)
        return [RunRecord.model_validate_json(r) for r in rows]

    def all(self) -> list[RunRecord]:
        return self.query(RunFilter(include_failed=True))

    def artifact_path(self, run_id: str, name: str) -> Path:
        return self.run_dir(run_id) / name

    def info(self) -> StoreInfo:
        problems = [Problem(*row) for row in self.catalog.problems()]
        return StoreInfo(
            root=self.root,
            runs=self.catalog.count(),
            catalog=self.opened_catalog_state.value,
            read_only=self.read_only,
            problems=problems,
            quarantined=quarantined(self.root),
        )

    # -- catalog -------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Recreate the catalog from the run files; returns how many runs it indexed."""
        with self.lock.hold():
            if self.read_only:
                raise read_only_error(self.root, OSError(errno.EROFS, "it cannot be written"))
            with self.catalog.write(fresh=True) as writer:
                return self._index(writer, sorted(self._file_stamps()), movable=True)

    def _file_stamps(self) -> dict[str, int]:
        """Run id -> run.json mtime (ns) for every complete run directory."""
        stamps: dict[str, int] = {}
        try:
            entries = list(os.scandir(self.runs_dir))
        except OSError as exc:
            raise StoreError(f"cannot list {self.runs_dir}: {exc}") from exc
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                stamps[entry.name] = os.stat(os.path.join(entry.path, RUN_FILE)).st_mtime_ns
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                stamps[entry.name] = 0  # unreadable: indexed as a problem
        return stamps
