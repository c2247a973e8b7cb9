"""Import raw ML.ENERGY Benchmark result directories, deriving the leaderboard's metrics.

LLM/MLLM (``results.json`` + ``prometheus.json``), over the steady-state window:
energy per token as the harness measured it (GPU energy counters / tokens streamed in the
window); average power = energy / steady duration; steady throughput = (energy / energy per
token) / steady duration, i.e. tokens in the window per second; energy per response =
energy per token x mean output length; median/p90/p95/p99 ITL from the clients' per-token
gaps (a chunk that carried several tokens is spread evenly over them); average running
batch and KV-cache usage from the Prometheus steady-state statistics. Diffusion
(``results.json``): per batch, the mean energy and time over the measured iterations;
energy per image/video = mean batch energy / batch size; throughput = batch size / mean
batch time; average power = mean energy / mean time.

Every run is parsed and validated before anything is returned. A malformed file raises an
:class:`InputError` naming the file and the field, and its run is not imported; by default
that stops the whole import (nothing is written), with ``skip_invalid`` the other runs are
kept and the problems are returned beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from joulelens.errors import InputError
from joulelens.ingest.benchmark_files import (
    KV_GAUGES,
    LATENCY_STATS,
    PROMETHEUS_FILE,
    RUNNING_GAUGE,
    DiffusionResults,
    LlmResults,
    ModelInfo,
    PrometheusDoc,
    ZeusMeasurement,
    check_latency_summaries,
    gauge_values,
    read_json_object,
    validate_doc,
)
from joulelens.ingest.benchmark_layout import (
    BenchmarkConfigs,
    diffusion_task_from_path,
    find_results_files,
    gpu_from_path,
    is_multimodal,
    llm_task_from_path,
    run_dir_params,
)
from joulelens.ingest.stability import apply_cascade, own_unstable_reasons
from joulelens.records import (
    EnergyBoundary,
    EnergyComponent,
    EnergyMethod,
    Histogram,
    Provenance,
    RunKind,
    RunRecord,
    RunStatus,
    SourceKind,
    generation_unit,
    stable_run_id,
)

SOURCE_VERSION = "ML.ENERGY Benchmark v3 raw results"
NOT_MEASURED = "not measured by the ML.ENERGY Benchmark"
OUTPUT_LENGTH_BINS = 50  # the leaderboard's histogram resolution
# Harness latency summaries -> record fields (e2el is the harness' name for end-to-end).
_LATENCY_FIELDS = {"ttft": "ttft", "tpot": "tpot", "e2el": "e2e_latency"}


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
    data = read_json_object(results_path)
    if "iteration_energy_measurements" in data or (
        "batch_size" in data and "max_num_seqs" not in data
    ):
        doc = validate_doc(DiffusionResults, data, results_path)
        return _diffusion_record(results_path, doc, configs, gpu_model)
    if "max_num_seqs" in data or "steady_state_energy" in data:
        llm = validate_doc(LlmResults, data, results_path)
        check_latency_summaries(llm, results_path)
        prom_path = results_path.with_name(PROMETHEUS_FILE)
        prom = (
            validate_doc(PrometheusDoc, read_json_object(prom_path), prom_path)
            if prom_path.is_file()
            else None
        )
        return _llm_record(results_path, llm, prom, configs)
    raise InputError(
        "not an ML.ENERGY Benchmark results file: neither max_num_seqs (LLM) nor "
        "iteration_energy_measurements (diffusion) is present",
        source=results_path,
        field="max_num_seqs",
    )


# -- LLM / MLLM ----------------------------------------------------------------------------
def smoothed_itl_s(itl: list[float]) -> list[float]:
    """Per-token gaps: a gap followed by k zeros (one chunk of k+1 tokens) becomes k+1 equal
    gaps; leading zeros (tokens before the first timed gap) are dropped."""
    out: list[float] = []
    i, n = 0, len(itl)
    while i < n:
        if itl[i] <= 0:
            i += 1
            continue
        j = i + 1
        while j < n and itl[j] == 0:
            j += 1
        out.extend([itl[i] / (j - i)] * (j - i))
        i = j
    return out


def _llm_record(
    path: Path, doc: LlmResults, prom: PrometheusDoc | None, configs: BenchmarkConfigs | None
) -> RunRecord:
    task = llm_task_from_path(path, doc.model_id)
    if task is None:
        raise InputError(
            "cannot tell the task from the path; expected "
            ".../{task}/results/{org}/{model}/{gpu}/{params}/results.json",
            source=path,
            field="task",
        )
    kind = RunKind.MLLM if is_multimodal(path, task) else RunKind.LLM
    gpu = doc.gpu_model.upper()
    params = run_dir_params(path.parent.name)
    missing: dict[str, str] = {}
    warnings: list[str] = []
    values: dict[str, Any] = {}

    energy_j, duration_s, ept = (
        doc.steady_state_energy,
        doc.steady_state_duration,
        doc.steady_state_energy_per_token,
    )
    measured = energy_j > 0 and ept > 0
    values["steady_state_duration_s"] = duration_s
    if measured:
        values["steady_state_energy_joules"] = energy_j
        values["energy_per_token_joules"] = ept
    else:
        why = f"harness reported {energy_j} J ({ept} J/token): the energy counter did not advance"
        missing["steady_state_energy_joules"] = missing["energy_per_token_joules"] = why
    if measured and duration_s > 0:
        values["avg_power_watts"] = energy_j / duration_s
        values["output_throughput_tokens_per_sec"] = (energy_j / ept) / duration_s
    else:
        why = "no positive steady-state energy and duration to divide"
        missing["avg_power_watts"] = why
        if doc.output_throughput is not None:
            values["output_throughput_tokens_per_sec"] = doc.output_throughput
            warnings.append("output throughput is over the whole benchmark, not the steady state")
        else:
            missing["output_throughput_tokens_per_sec"] = why

    if doc.completed > 0:
        values["avg_output_len"] = doc.total_output_tokens / doc.completed
    else:
        missing["avg_output_len"] = "no request completed"
    avg_len = values.get("avg_output_len")
    if measured and avg_len:
        values["energy_per_request_joules"] = ept * avg_len
    else:
        missing["energy_per_request_joules"] = "needs energy per token and a mean output length"

    ok = [r for r in doc.results if r.success]
    itls = np.asarray([g for r in ok for g in smoothed_itl_s(r.itl)], dtype=float)
    if itls.size:
        values["mean_itl_ms"] = float(itls.mean() * 1000.0)
        for stat, q in (("median", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
            values[f"{stat}_itl_ms"] = float(np.percentile(itls, q) * 1000.0)
    else:
        for stat in LATENCY_STATS:
            missing[f"{stat}_itl_ms"] = "no inter-token latencies in results.json"
    for metric, name in _LATENCY_FIELDS.items():
        for stat in LATENCY_STATS:
            value = doc.latency_ms(stat, metric)
            if value is None:
                missing[f"{stat}_{name}_ms"] = f"results.json has no {stat}_{metric}_ms"
            else:
                values[f"{stat}_{name}_ms"] = value

    _prometheus_values(prom, values, missing)
    for name in ("idle_power_watts", "static_energy_fraction"):
        missing[name] = NOT_MEASURED

    lengths = [r.output_len for r in ok if r.output_len is not None]
    histogram = None
    if lengths:
        counts, edges = np.histogram(np.asarray(lengths), bins=OUTPUT_LENGTH_BINS)
        histogram = Histogram(bins=edges.tolist(), counts=counts.tolist())
    else:
        missing["output_length_distribution"] = "no successful request with an output length"
    cap = doc.max_output_tokens if isinstance(doc.max_output_tokens, int) else None
    failed = sum(1 for r in doc.results if not r.success)
    if failed:
        warnings.append(f"{failed} of {len(doc.results)} requests failed")

    reasons = own_unstable_reasons(duration_s, ept, values.get("avg_batch_size"), doc.max_num_seqs)
    if "avg_batch_size" not in values:
        warnings.append("batch-utilization check skipped: no running-batch statistics")
    info, parallel = _model_info(configs, "vllm", task, doc.model_id), None
    if configs is not None:
        parallel = configs.parallelism(task, doc.model_id, doc.gpu_model, doc.num_gpus)
    if parallel is None and doc.num_gpus == 1:
        parallel = (1, 1, 1)
    if parallel is None:
        warnings.append("parallelism unknown: monolithic.config.yaml not found (see --configs)")
    key = {
        "task": task,
        "model": doc.model_id,
        "gpu": gpu,
        "params": params or path.parent.name,
        "num_gpus": doc.num_gpus,
        "max_num_seqs": doc.max_num_seqs,
        "seed": doc.seed,
        "repeats": doc.num_request_repeats,
        "num_prompts": doc.num_prompts,
        "date": doc.date,
    }
    timeline = doc.timeline
    return RunRecord(
        run_id=stable_run_id("mlb", key),
        kind=kind,
        task=task,
        status=RunStatus.COMPLETED if doc.completed > 0 else RunStatus.FAILED,
        failure_reason=None if doc.completed > 0 else "no request completed",
        model_id=doc.model_id,
        **_model_fields(info, doc.model_id),
        gpu_model=gpu,
        num_gpus=doc.num_gpus,
        tensor_parallel=parallel[0] if parallel else None,
        expert_parallel=parallel[1] if parallel else None,
        data_parallel=parallel[2] if parallel else None,
        max_num_seqs=doc.max_num_seqs,
        num_requests=doc.num_prompts,
        max_output_tokens=cap,
        arrival=_arrival(doc.request_rate, doc.burstiness),
        num_completed_requests=doc.completed,
        num_failed_requests=failed,
        num_truncated_requests=None
        if cap is None
        else sum(1 for r in ok if (r.output_len or 0) >= cap),
        output_length_distribution=histogram,
        energy_boundary=EnergyBoundary.GPU,
        energy_method=EnergyMethod.COUNTER,
        energy_components=_components(doc.steady_state_measurement),
        stable=not reasons,
        unstable_reasons=reasons,
        warnings=warnings,
        provenance=_provenance(path, "vllm"),
        started_at=_utc(timeline.benchmark_start_time if timeline else None),
        finished_at=_utc(timeline.benchmark_end_time if timeline else None),
        config={
            "run_dir": params,
            "results": _scalars(doc.model_dump(exclude={"results"})),
            "prometheus_steady_state_stats": prom.steady_state_stats if prom else None,
        },
        missing=missing,
        **values,
    )


def _prometheus_values(
    prom: PrometheusDoc | None, values: dict[str, Any], missing: dict[str, str]
) -> None:
    """Average running batch (summed over engines) and KV-cache usage (averaged over
    engines) in the steady state; the harness' own steady-state averages come first."""
    fields = ("avg_batch_size", "avg_kv_cache_usage", "max_kv_cache_usage")
    if prom is None:
        for name in fields:
            missing[name] = "no prometheus.json beside results.json"
        return
    start, end = prom.steady_state_start_time, prom.steady_state_end_time
    snapshots = [s for s in prom.timeline if start <= s.timestamp <= end]
    running: list[float] = []
    kv: list[float] = []
    for snap in snapshots:
        gauges = gauge_values(snap.metrics, (RUNNING_GAUGE, *KV_GAUGES))
        if RUNNING_GAUGE in gauges:
            running.append(sum(gauges[RUNNING_GAUGE]))
        kv_values = next((gauges[g] for g in KV_GAUGES if g in gauges), None)
        if kv_values:
            kv.append(sum(kv_values) / len(kv_values))
    stats = prom.steady_state_stats
    batch = stats.get(RUNNING_GAUGE, sum(running) / len(running) if running else None)
    kv_avg = next((stats[g] for g in KV_GAUGES if g in stats), None)
    if kv_avg is None and kv:
        kv_avg = sum(kv) / len(kv)
    for name, value in zip(fields, (batch, kv_avg, max(kv) if kv else None), strict=True):
        if value is None:
            missing[name] = "prometheus.json has no steady-state samples of this gauge"
        else:
            values[name] = value


# -- diffusion -----------------------------------------------------------------------------
def _diffusion_record(
    path: Path, doc: DiffusionResults, configs: BenchmarkConfigs | None, gpu_option: str | None
) -> RunRecord:
    task = diffusion_task_from_path(path) or (
        "text-to-video" if doc.num_frames else "text-to-image"
    )
    unit = generation_unit(task)
    windows = [m for m in doc.iteration_energy_measurements if m.time > 0]
    if not windows:
        raise InputError(
            "no measured iteration has a positive time",
            source=path,
            field="iteration_energy_measurements",
        )
    energy_j = float(np.mean([m.gpu_joules for m in windows]))
    latency_s = float(np.mean([m.time for m in windows]))
    par = doc.configurations
    gpu = gpu_from_path(path) or (gpu_option.upper() if gpu_option else None)
    missing = {n: NOT_MEASURED for n in ("idle_power_watts", "static_energy_fraction")}
    warnings = ["the ML.ENERGY stability rule covers LLM runs; diffusion runs are kept as-is"]
    reasons: list[str] = []
    values: dict[str, Any] = {
        "batch_latency_s": latency_s,
        f"throughput_{unit}s_per_sec": doc.batch_size / latency_s,
    }
    if energy_j > 0:
        values["avg_power_watts"] = energy_j / latency_s
        values[f"energy_per_{unit}_joules"] = energy_j / doc.batch_size
    else:
        why = f"mean batch energy {energy_j} J: the energy counter did not advance"
        missing["avg_power_watts"] = missing[f"energy_per_{unit}_joules"] = why
        reasons.append(f"batch energy is not positive: {energy_j} J")
    if gpu is None:
        warnings.append("GPU model unknown: not in the path (see --gpu-model)")
    params = run_dir_params(path.parent.name)
    key = {
        "task": task,
        "model": doc.model_id,
        "gpu": gpu,
        "params": params or path.parent.name,
        "batch": doc.batch_size,
        "size": [doc.height, doc.width],
        "steps": doc.inference_steps,
        "frames": doc.num_frames,
        "seed": doc.seed,
        "parallel": [par.ulysses_degree, par.ring_degree, par.use_torch_compile],
        "date": doc.date,
    }
    timeline = doc.timeline
    per_gpu = _mean_components(windows)
    return RunRecord(
        run_id=stable_run_id("mlb", key),
        kind=RunKind.DIFFUSION,
        task=task,
        model_id=doc.model_id,
        **_model_fields(_model_info(configs, "xdit", task, doc.model_id), doc.model_id),
        gpu_model=gpu,
        num_gpus=par.ulysses_degree * par.ring_degree,
        ulysses_degree=par.ulysses_degree,
        ring_degree=par.ring_degree,
        batch_size=doc.batch_size,
        inference_steps=doc.inference_steps,
        height=doc.height,
        width=doc.width,
        num_frames=doc.num_frames,
        fps=doc.fps,
        energy_boundary=EnergyBoundary.GPU,
        energy_method=EnergyMethod.COUNTER,
        energy_components=per_gpu,
        stable=not reasons,
        unstable_reasons=reasons,
        warnings=warnings,
        provenance=_provenance(path, "xdit"),
        started_at=_utc(timeline.benchmark_start_time if timeline else None),
        finished_at=_utc(timeline.benchmark_end_time if timeline else None),
        config={
            "run_dir": params,
            "results": _scalars(doc.model_dump(exclude={"iteration_energy_measurements"})),
            "measured_iterations": len(windows),
        },
        missing=missing,
        **values,
    )


# -- shared --------------------------------------------------------------------------------
def _model_info(
    configs: BenchmarkConfigs | None, runtime: str, task: str, model_id: str
) -> ModelInfo:
    return (configs.model_info(runtime, task, model_id) if configs else None) or ModelInfo()


def _model_fields(info: ModelInfo, model_id: str) -> dict[str, Any]:
    """Model metadata from ``model_info.json``; precision falls back to an FP8 tag in the id."""
    fp8 = "fp8" if "fp8" in model_id.lower() else None
    return {
        "nickname": info.nickname,
        "architecture": info.architecture,
        "total_params_billions": info.total_parameters_billion,
        "activated_params_billions": info.active_parameters_billion
        if info.active_parameters_billion is not None
        else info.total_parameters_billion,
        "weight_precision": info.weight_precision or fp8,
    }


def _components(window: ZeusMeasurement | None) -> list[EnergyComponent]:
    if window is None:
        return []
    out = [
        EnergyComponent(
            name=f"gpu:{i}", joules=j, boundary=EnergyBoundary.GPU, method=EnergyMethod.COUNTER
        )
        for i, j in sorted(window.gpu_energy.items(), key=_device_order)
    ]
    for boundary, per_device in (
        (EnergyBoundary.CPU, window.cpu_energy),
        (EnergyBoundary.DRAM, window.dram_energy),
    ):
        for i, j in sorted((per_device or {}).items(), key=_device_order):
            out.append(
                EnergyComponent(
                    name=f"{boundary.value}:{i}",
                    joules=j,
                    boundary=boundary,
                    method=EnergyMethod.COUNTER,
                )
            )
    return out


def _mean_components(windows: list[ZeusMeasurement]) -> list[EnergyComponent]:
    """Per-GPU energy of the mean measured batch."""
    gpus = sorted({i for w in windows for i in w.gpu_energy}, key=lambda i: (len(i), i))
    return [
        EnergyComponent(
            name=f"gpu:{i}",
            joules=float(np.mean([w.gpu_energy[i] for w in windows if i in w.gpu_energy])),
            boundary=EnergyBoundary.GPU,
            method=EnergyMethod.COUNTER,
        )
        for i in gpus
    ]


def _device_order(item: tuple[str, float]) -> tuple[int, str]:
    return len(item[0]), item[0]  # "2" before "10"


def _arrival(rate: float | str | None, burstiness: float | None) -> str:
    if rate is None or rate == "inf" or (isinstance(rate, float) and rate == float("inf")):
        return "saturation"
    if burstiness is None or burstiness == 1.0:
        return f"poisson:{rate}"
    return f"gamma:{rate}:{1.0 / burstiness**0.5:.3g}"  # gamma shape k has CV 1/sqrt(k)


def _provenance(path: Path, engine: str) -> Provenance:
    return Provenance(
        source=SourceKind.MLENERGY_BENCHMARK,
        source_version=SOURCE_VERSION,
        source_path=str(path.absolute()),
        engine=engine,
    )


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _scalars(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is None or isinstance(v, str | int | float | bool)}
