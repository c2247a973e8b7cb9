"""Diffusion runs of the ML.ENERGY Benchmark: ``results.json`` -> record.

Per batch, the mean energy and time over the measured iterations (each a window between
device syncs); energy per image/video = mean batch energy / batch size; throughput = batch
size / mean batch time; average power = mean energy / mean time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from joulelens.errors import InputError
from joulelens.ingest.benchmark_common import (
    NOT_MEASURED,
    mean_batch_components,
    model_fields,
    model_info,
    provenance,
    scalars,
    utc,
)
from joulelens.ingest.benchmark_files import DiffusionResults
from joulelens.ingest.benchmark_layout import (
    BenchmarkConfigs,
    diffusion_task_from_path,
    gpu_from_path,
    run_dir_params,
)
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    RunKind,
    RunRecord,
    generation_unit,
    stable_run_id,
)


def diffusion_record(
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
    per_gpu = mean_batch_components(windows)
    return RunRecord(
        run_id=stable_run_id("mlb", key),
        kind=RunKind.DIFFUSION,
        task=task,
        model_id=doc.model_id,
        **model_fields(model_info(configs, "xdit", task, doc.model_id), doc.model_id),
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
        provenance=provenance(path, "xdit"),
        started_at=utc(timeline.benchmark_start_time if timeline else None),
        finished_at=utc(timeline.benchmark_end_time if timeline else None),
        config={
            "run_dir": params,
            "results": scalars(doc.model_dump(exclude={"iteration_energy_measurements"})),
            "measured_iterations": len(windows),
        },
        missing=missing,
        **values,
    )
