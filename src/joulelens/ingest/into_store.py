"""Imports written into a store: what ``joulelens import`` and :mod:`joulelens.api` both run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from joulelens.errors import InputError
from joulelens.ingest.mlenergy_benchmark import BenchmarkImport, read_benchmark_results
from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.ingest.stability import restabilize
from joulelens.records import RunRecord, SourceKind
from joulelens.store import RunFilter, Store
from joulelens.store.writes import WriteCounts


@dataclass
class StoredImport:
    records: list[RunRecord]  # the runs read, as written
    counts: WriteCounts  # new / updated / unchanged among them
    rejudged: int = 0  # earlier runs in the store whose stability changed and were rewritten
    skipped: list[InputError] = field(default_factory=list)  # malformed files (skip_invalid)
    configs_dir: Path | None = None  # the benchmark's configs/ used for model metadata

    @property
    def unstable(self) -> int:
        return sum(1 for r in self.records if r.stable is False)


def import_leaderboard(source: str | Path, store: Store) -> StoredImport:
    """The ML.ENERGY Leaderboard's published JSON (a directory or base URL) into ``store``;
    a problem anywhere raises :class:`InputError` and nothing is written."""
    records = read_leaderboard(source)
    return StoredImport(records, store.put_many(records))


def import_benchmark(
    path: Path,
    store: Store,
    *,
    configs: Path | None = None,
    gpu_model: str | None = None,
    skip_invalid: bool = False,
) -> StoredImport:
    """Raw ML.ENERGY Benchmark results into ``store`` (see :func:`store_benchmark`)."""
    result = read_benchmark_results(
        path, configs=configs, gpu_model=gpu_model, skip_invalid=skip_invalid
    )
    return store_benchmark(result, store)


def store_benchmark(result: BenchmarkImport, store: Store) -> StoredImport:
    """Write parsed benchmark runs, stability judged together with the benchmark runs already
    in ``store`` (earlier runs whose stability this changes are written back)."""
    with store.writing():  # judge against, and write into, the store as no other writer changes it
        flt = RunFilter(source=SourceKind.MLENERGY_BENCHMARK.value, include_failed=True)
        to_write = restabilize(result.records, store.query(flt))
        imported = to_write[: len(result.records)]
        rejudged = to_write[len(result.records) :]
        counts = store.put_many(imported)
        store.put_many(rejudged)
    return StoredImport(imported, counts, len(rejudged), result.skipped, result.configs_dir)
