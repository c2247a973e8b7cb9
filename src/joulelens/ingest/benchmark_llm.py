"""LLM/MLLM runs of the ML.ENERGY Benchmark: ``results.json`` + ``prometheus.json`` -> record.

Over the steady-state window: energy per token as the harness measured it (GPU energy
counters / tokens streamed in the window); average power = energy / steady duration; steady
throughput = (energy / energy per token) / steady duration, i.e. tokens in the window per
second; energy per response = energy per token x mean output length; median/p90/p95/p99 ITL
from the clients' per-token gaps (a chunk that carried several tokens is spread evenly over
them); average running batch and KV-cache usage from the Prometheus steady-state statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from joulelens.errors import InputError
from joulelens.ingest.benchmark_checks import raw_llm_checks
from joulelens.ingest.benchmark_common import (
    NOT_MEASURED,
    model_fields,
    model_info,
    provenance,
    scalars,
    utc,
    window_components,
)
from joulelens.ingest.benchmark_files import (
    KV_GAUGES,
    LATENCY_STATS,
    RUNNING_GAUGE,
    LlmResults,
    PrometheusDoc,
    gauge_values,
)
from joulelens.ingest.benchmark_layout import (
    BenchmarkConfigs,
    is_multimodal,
    llm_task_from_path,
    run_dir_params,
)
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Histogram,
    RunKind,
    RunRecord,
    RunStatus,
    stable_run_id,
)

OUTPUT_LENGTH_BINS = 50  # the leaderboard's histogram resolution
# Harness latency summaries -> record fields (e2el is the harness' name for end-to-end).
_LATENCY_FIELDS = {"ttft": "ttft", "tpot": "tpot", "e2el": "e2e_latency"}


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


def llm_record(
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
    reasons, checked = raw_llm_checks(
        path,
        doc,
        prom,
        avg_batch_size=values.get("avg_batch_size"),
        energy_per_token_j=values.get("energy_per_token_joules"),
        throughput_per_s=values.get("output_throughput_tokens_per_sec"),
        cap=cap,
    )
    warnings += checked
    info, parallel = model_info(configs, "vllm", task, doc.model_id), None
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
        **model_fields(info, doc.model_id),
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
        energy_components=window_components(doc.steady_state_measurement),
        stable=not reasons,
        unstable_reasons=reasons,
        warnings=warnings,
        provenance=provenance(path, "vllm"),
        started_at=utc(timeline.benchmark_start_time if timeline else None),
        finished_at=utc(timeline.benchmark_end_time if timeline else None),
        config={
            "run_dir": params,
            "results": scalars(doc.model_dump(exclude={"results"})),
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


def _arrival(rate: float | str | None, burstiness: float | None) -> str:
    if rate is None or rate == "inf" or (isinstance(rate, float) and rate == float("inf")):
        return "saturation"
    if burstiness is None or burstiness == 1.0:
        return f"poisson:{rate}"
    return f"gamma:{rate}:{1.0 / burstiness**0.5:.3g}"  # gamma shape k has CV 1/sqrt(k)
