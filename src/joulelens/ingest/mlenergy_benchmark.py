"""Import raw ML.ENERGY Benchmark result directories, deriving the leaderboard's metrics.

A tree of runs as the harness (github.com/ml-energy/benchmark, v3) writes them: per LLM/MLLM
run a ``results.json`` and a ``prometheus.json`` (see :mod:`joulelens.ingest.benchmark_llm`
for the metrics), per diffusion run a ``results.json``
(:mod:`joulelens.ingest.benchmark_diffusion`). LLM stability follows the paper's rule,
cascade included (:mod:`joulelens.ingest.stability`).

Every run is parsed and validated before anything is returned. A malformed file raises an
:class:`InputError` naming the file and the field, and its run is not imported; by default
that stops the whole import (nothing is written), with ``skip_invalid`` the other runs are
kept and the problems are returned beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from joulelens.errors import InputError, from_validation
from joulelens.ingest.benchmark_diffusion import diffusion_record
from joulelens.ingest.benchmark_files import (
    PROMETHEUS_FILE,
    DiffusionResults,
    LlmResults,
    PrometheusDoc,
    check_latency_summaries,
    read_json_object,
    validate_doc,
)
from joulelens.ingest.benchmark_layout import BenchmarkConfigs, find_results_files
from joulelens.ingest.benchmark_llm import llm_record, smoothed_itl_s
from joulelens.ingest.stability import apply_cascade
from joulelens.records import RunRecord

__all__ = ["BenchmarkImport", "read_benchmark_results", "read_run", "smoothed_itl_s"]


@dataclass(slots=True)
class BenchmarkImport:
    """Parsed runs (stability and cascade applied) and, with ``skip_invalid``, the rejects."""

    records: list[RunRecord]
    skipped: list[InputError] = field(default_factory=list)
    configs_dir: Path | None = None


def read_benchmark_results(
    path: str | Path,
    *,
    configs: str | Path | None = None,
    gpu_model: str | None = None,
    skip_invalid: bool = False,
) -> BenchmarkImport:
    """Parse every run under ``path`` into run records (writes nothing).

    ``configs`` is the benchmark repository's ``configs/`` directory (model metadata and
    parallelism); when not given it is looked for in and above ``path``. ``gpu_model``
    names the GPU of diffusion runs whose path does not (diffusion results do not record it).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError("no such file or directory", source=root)
    files = find_results_files(root)
    if not files:
        raise InputError("no results.json below (not an ML.ENERGY Benchmark run tree)", source=root)
    tree = BenchmarkConfigs(Path(configs).expanduser()) if configs else BenchmarkConfigs.find(root)
    records: list[RunRecord] = []
    skipped: list[InputError] = []
    seen: dict[str, Path] = {}
    for results_path in files:
        try:
            record = read_run(results_path, configs=tree, gpu_model=gpu_model)
            if record.run_id in seen:
                raise InputError(
                    f"describes the same run as {seen[record.run_id]}", source=results_path
                )
        except InputError as exc:
            if not skip_invalid:
                raise
            skipped.append(exc)
            continue
        seen[record.run_id] = results_path
        records.append(record)
    return BenchmarkImport(apply_cascade(records), skipped, tree.root if tree else None)


def read_run(
    results_path: Path, *, configs: BenchmarkConfigs | None = None, gpu_model: str | None = None
) -> RunRecord:
    """One run from its ``results.json`` (and ``prometheus.json`` beside it, for LLMs)."""
    try:
        return _read_run(results_path, configs, gpu_model)
    except ValidationError as exc:  # a derived value the record's schema refuses
        raise from_validation(exc, results_path) from exc


def _read_run(
    results_path: Path, configs: BenchmarkConfigs | None, gpu_model: str | None
) -> RunRecord:
    data = read_json_object(results_path)
    if "iteration_energy_measurements" in data or (
        "batch_size" in data and "max_num_seqs" not in data
    ):
        doc = validate_doc(DiffusionResults, data, results_path)
        return diffusion_record(results_path, doc, configs, gpu_model)
    if "max_num_seqs" in data or "steady_state_energy" in data:
        llm = validate_doc(LlmResults, data, results_path)
        check_latency_summaries(llm, results_path)
        prom_path = results_path.with_name(PROMETHEUS_FILE)
        prom = (
            validate_doc(PrometheusDoc, read_json_object(prom_path), prom_path)
            if prom_path.is_file()
            else None
        )
        return llm_record(results_path, llm, prom, configs)
    raise InputError(
        "not an ML.ENERGY Benchmark results file: neither max_num_seqs (LLM) nor "
        "iteration_energy_measurements (diffusion) is present",
        source=results_path,
        field="max_num_seqs",
    )
