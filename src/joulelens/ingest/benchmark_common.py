"""Pieces shared by the LLM and diffusion halves of the raw ML.ENERGY Benchmark importer."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from joulelens.ingest.benchmark_files import ModelInfo, ZeusMeasurement
from joulelens.ingest.benchmark_layout import BenchmarkConfigs
from joulelens.records import EnergyBoundary, EnergyComponent, EnergyMethod, Provenance, SourceKind

SOURCE_VERSION = "ML.ENERGY Benchmark v3 raw results"
NOT_MEASURED = "not measured by the ML.ENERGY Benchmark"


def model_info(
    configs: BenchmarkConfigs | None, runtime: str, task: str, model_id: str
) -> ModelInfo:
    return (configs.model_info(runtime, task, model_id) if configs else None) or ModelInfo()


def model_fields(info: ModelInfo, model_id: str) -> dict[str, Any]:
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


def window_components(window: ZeusMeasurement | None) -> list[EnergyComponent]:
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


def mean_batch_components(windows: list[ZeusMeasurement]) -> list[EnergyComponent]:
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


def provenance(path: Path, engine: str) -> Provenance:
    return Provenance(
        source=SourceKind.MLENERGY_BENCHMARK,
        source_version=SOURCE_VERSION,
        source_path=str(path.absolute()),
        engine=engine,
    )


def utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def scalars(doc: dict[str, Any]) -> dict[str, Any]:
    """Top-level scalars of a document; a non-finite float (request_rate inf) as its text."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = str(value)
        elif value is None or isinstance(value, str | int | float | bool):
            out[key] = value
    return out
