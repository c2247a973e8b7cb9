"""The ML.ENERGY Benchmark's raw result files, as typed models, and their strict loading.

``results.json`` (LLM/MLLM and diffusion) and ``prometheus.json`` (LLM/MLLM) are written by
the benchmark harness (github.com/ml-energy/benchmark, v3). The models name only the fields
joulelens reads; anything else in a file is ignored. Energy windows are Zeus measurements:
``{"time": s, "gpu_energy": {"0": J, ...}, "cpu_energy": ..., "dram_energy": ...}``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulelens.errors import InputError, from_validation
from joulelens.ingest.ranges import (
    STRICT_INPUT,
    AnyFiniteJoules,
    BatchCap,
    Count,
    Degree,
    Fps,
    Frames,
    GpuCount,
    ParamsBillions,
    Pixels,
    Seconds,
    Steps,
    UnixTime,
)
from joulelens.ingest.sources import read_json_file

RESULTS_FILE = "results.json"
# A run of 10,000 requests with every inter-token gap is ~200 MB of JSON; refuse beyond.
MAX_RESULTS_BYTES = 1024 * 1024 * 1024
PROMETHEUS_FILE = "prometheus.json"

# vLLM gauges read from Prometheus snapshots; older vLLM called the KV gauge gpu_cache_*.
RUNNING_GAUGE = "vllm:num_requests_running"
KV_GAUGES = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", **STRICT_INPUT)


class ZeusMeasurement(_Doc):
    """One Zeus measurement window: seconds and joules per device index."""

    time: Seconds
    gpu_energy: dict[str, AnyFiniteJoules]
    cpu_energy: dict[str, AnyFiniteJoules] | None = None
    dram_energy: dict[str, AnyFiniteJoules] | None = None

    @property
    def gpu_joules(self) -> float:
        return sum(self.gpu_energy.values())


class RequestResult(_Doc):
    """One request of an LLM run; times in seconds (the harness' own units)."""

    input_len: Count | None = None
    output_len: Count | None = None
    ttft: Seconds | None = None
    itl: list[Seconds] = Field(default_factory=list)
    latency: Seconds | None = None
    success: bool
    error: str | None = None


# [[unix time s, value], ...] per device index, as Zeus's monitors record them.
Samples = dict[str, list[Annotated[list[float], Field(min_length=2)]]]


class PowerTimeline(_Doc):
    device_instant: Samples = Field(default_factory=dict)
    device_average: Samples = Field(default_factory=dict)
    memory_average: Samples = Field(default_factory=dict)


class LlmTimeline(_Doc):
    """Unix timestamps (s) of the benchmark and its steady-state window; power (W) and
    temperature (C) samples of each GPU."""

    benchmark_start_time: UnixTime | None = None
    benchmark_end_time: UnixTime | None = None
    steady_state_start_time: UnixTime | None = None
    steady_state_end_time: UnixTime | None = None
    power: PowerTimeline | None = None
    temperature: Samples | None = None


# Client-side latency summaries the harness writes (ms): {stat}_{metric}_ms.
LATENCY_METRICS = ("ttft", "tpot", "itl", "e2el")
LATENCY_STATS = ("mean", "median", "p90", "p95", "p99")
# The harness writes float("inf") as JSON Infinity for "send everything at t=0".
RequestRate = Annotated[float, Field(gt=0, allow_inf_nan=True)]


class LlmResults(BaseModel):
    """``results.json`` of one LLM/MLLM run (``mlenergy.benchmark.llm.benchmark``)."""

    # Extras are kept so the latency summaries ({stat}_{metric}_ms) can be read and checked.
    model_config = ConfigDict(extra="allow", **STRICT_INPUT)

    model_id: str
    gpu_model: str
    num_gpus: GpuCount
    max_num_seqs: BatchCap
    date: str | None = None
    endpoint_type: str | None = None
    seed: int | None = None
    num_unique_prompts: Count | None = None
    num_prompts: Count | None = None
    num_request_repeats: Count | None = None
    max_num_batched_tokens: Count | None = None
    request_rate: RequestRate | str | None = None  # "inf" when every request is sent at t=0
    burstiness: Annotated[float, Field(gt=0, le=1e6)] | None = None
    max_concurrency: Count | None = None
    max_output_tokens: Count | str | None = None  # an int cap, "dataset", or None (no cap)
    duration: Seconds
    completed: Count
    steady_state_duration: Seconds
    steady_state_energy: AnyFiniteJoules
    steady_state_energy_per_token: AnyFiniteJoules
    total_input_tokens: Count | None = None
    total_output_tokens: Count
    output_throughput: Annotated[float, Field(ge=0, le=1e8)] | None = None  # whole benchmark
    steady_state_measurement: ZeusMeasurement | None = None
    timeline: LlmTimeline | None = None
    results: list[RequestResult]

    def latency_ms(self, stat: str, metric: str) -> float | None:
        value = (self.model_extra or {}).get(f"{stat}_{metric}_ms")
        return None if value is None else float(value)


class PromSnapshot(_Doc):
    timestamp: UnixTime
    metrics: str


class PrometheusDoc(_Doc):
    """``prometheus.json``: 1 Hz scrapes of vLLM's /metrics plus steady-state averages."""

    collection_interval: Annotated[float, Field(gt=0, le=3600)] | None = None
    steady_state_start_time: UnixTime
    steady_state_end_time: UnixTime
    steady_state_stats: dict[str, Annotated[float, Field(ge=-1e15, le=1e15)]] = Field(
        default_factory=dict
    )
    timeline: list[PromSnapshot] = Field(default_factory=list)


class ModelInfo(_Doc):
    """``configs/{vllm|xdit}/{task}/{model_id}/model_info.json`` in the benchmark repository."""

    nickname: str | None = None
    total_parameters_billion: ParamsBillions | None = None
    active_parameters_billion: ParamsBillions | None = None
    weight_precision: str | None = None
    architecture: str | None = None


class DiffusionParallelism(_Doc):
    ulysses_degree: Degree = 1
    ring_degree: Degree = 1
    use_torch_compile: bool = False


class DiffusionTimeline(_Doc):
    benchmark_start_time: UnixTime | None = None
    benchmark_end_time: UnixTime | None = None


class DiffusionResults(_Doc):
    """``results.json`` of one diffusion run (``mlenergy.benchmark.diffusion.benchmark``)."""

    model_id: str
    batch_size: BatchCap
    num_iterations: Count | None = None
    height: Pixels | None = None
    width: Pixels | None = None
    inference_steps: Steps | None = None
    seed: int | None = None
    num_frames: Frames | None = None
    fps: Fps | None = None
    date: str | None = None
    total_time: Seconds | None = None
    total_energy: AnyFiniteJoules | None = None
    iteration_energy_measurements: list[ZeusMeasurement] = Field(min_length=1)
    configurations: DiffusionParallelism
    timeline: DiffusionTimeline | None = None


_M = TypeVar("_M", bound=BaseModel)


def read_json_object(path: Path) -> dict[str, Any]:
    """A file's top-level JSON object; any problem is an InputError naming the file."""
    data = read_json_file(path, MAX_RESULTS_BYTES)
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}", source=path)
    return data


def validate_doc(model: type[_M], data: dict[str, Any], path: Path) -> _M:
    """Validate ``data`` as ``model``; the first error becomes an InputError with its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, path) from exc


def check_latency_summaries(results: LlmResults, path: Path) -> None:
    """The harness' latency summaries are optional, but when present they must be numbers."""
    extra = results.model_extra or {}
    for metric in LATENCY_METRICS:
        for stat in LATENCY_STATS:
            key = f"{stat}_{metric}_ms"
            value = extra.get(key)
            ok = value is None or (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and 0 <= value <= 1e8
            )
            if not ok:
                raise InputError(
                    f"expected a finite number of milliseconds (0 to 1e8), got {value!r}",
                    source=path,
                    field=key,
                )


# -- Prometheus text ---------------------------------------------------------------------
_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\s+(?P<value>\S+)")


def gauge_values(metrics_text: str, names: tuple[str, ...]) -> dict[str, list[float]]:
    """Values of the named gauges in one exposition text, one per label set (engine)."""
    wanted = set(names)
    out: dict[str, list[float]] = {}
    for line in metrics_text.splitlines():
        if not line.startswith("vllm:"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match["name"] not in wanted:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if math.isfinite(value):
            out.setdefault(match["name"], []).append(value)
    return out
