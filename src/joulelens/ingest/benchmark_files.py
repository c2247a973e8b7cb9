"""The ML.ENERGY Benchmark's raw result files, as typed models, and their strict loading.

``results.json`` (LLM/MLLM and diffusion) and ``prometheus.json`` (LLM/MLLM) are written by
the benchmark harness (github.com/ml-energy/benchmark, v3). The models name only the fields
joulelens reads; anything else in a file is ignored. Energy windows are Zeus measurements:
``{"time": s, "gpu_energy": {"0": J, ...}, "cpu_energy": ..., "dram_energy": ...}``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulelens.errors import InputError

RESULTS_FILE = "results.json"
PROMETHEUS_FILE = "prometheus.json"

# vLLM gauges read from Prometheus snapshots; older vLLM called the KV gauge gpu_cache_*.
RUNNING_GAUGE = "vllm:num_requests_running"
KV_GAUGES = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ZeusMeasurement(_Doc):
    """One Zeus measurement window: seconds and joules per device index."""

    time: float
    gpu_energy: dict[str, float]
    cpu_energy: dict[str, float] | None = None
    dram_energy: dict[str, float] | None = None

    @property
    def gpu_joules(self) -> float:
        return sum(self.gpu_energy.values())


class RequestResult(_Doc):
    """One request of an LLM run; times in seconds (the harness' own units)."""

    input_len: int | None = None
    output_len: int | None = None
    ttft: float | None = None
    itl: list[float] = Field(default_factory=list)
    latency: float | None = None
    success: bool
    error: str | None = None


class LlmTimeline(_Doc):
    """Unix timestamps (s) of the benchmark and its steady-state window."""

    benchmark_start_time: float | None = None
    benchmark_end_time: float | None = None
    steady_state_start_time: float | None = None
    steady_state_end_time: float | None = None


# Client-side latency summaries the harness writes (ms): {stat}_{metric}_ms.
LATENCY_METRICS = ("ttft", "tpot", "itl", "e2el")
LATENCY_STATS = ("mean", "median", "p90", "p95", "p99")


class LlmResults(BaseModel):
    """``results.json`` of one LLM/MLLM run (``mlenergy.benchmark.llm.benchmark``)."""

    # Extras are kept so the latency summaries ({stat}_{metric}_ms) can be read and checked.
    model_config = ConfigDict(extra="allow")

    model_id: str
    gpu_model: str
    num_gpus: int = Field(gt=0)
    max_num_seqs: int = Field(gt=0)
    date: str | None = None
    endpoint_type: str | None = None
    seed: int | None = None
    num_unique_prompts: int | None = None
    num_prompts: int | None = None
    num_request_repeats: int | None = None
    max_num_batched_tokens: int | None = None
    request_rate: float | str | None = None  # "inf" when every request is sent at t=0
    burstiness: float | None = None
    max_concurrency: int | None = None
    max_output_tokens: int | str | None = None  # an int cap, "dataset", or None (no cap)
    duration: float
    completed: int = Field(ge=0)
    steady_state_duration: float
    steady_state_energy: float
    steady_state_energy_per_token: float
    total_input_tokens: int | None = None
    total_output_tokens: int = Field(ge=0)
    output_throughput: float | None = None  # whole benchmark, not the steady state
    steady_state_measurement: ZeusMeasurement | None = None
    timeline: LlmTimeline | None = None
    results: list[RequestResult]

    def latency_ms(self, stat: str, metric: str) -> float | None:
        value = (self.model_extra or {}).get(f"{stat}_{metric}_ms")
        return None if value is None else float(value)


class PromSnapshot(_Doc):
    timestamp: float
    metrics: str


class PrometheusDoc(_Doc):
    """``prometheus.json``: 1 Hz scrapes of vLLM's /metrics plus steady-state averages."""

    collection_interval: float | None = None
    steady_state_start_time: float
    steady_state_end_time: float
    steady_state_stats: dict[str, float] = Field(default_factory=dict)
    timeline: list[PromSnapshot] = Field(default_factory=list)


class ModelInfo(_Doc):
    """``configs/{vllm|xdit}/{task}/{model_id}/model_info.json`` in the benchmark repository."""

    nickname: str | None = None
    total_parameters_billion: float | None = None
    active_parameters_billion: float | None = None
    weight_precision: str | None = None
    architecture: str | None = None


class DiffusionParallelism(_Doc):
    ulysses_degree: int = Field(default=1, gt=0)
    ring_degree: int = Field(default=1, gt=0)
    use_torch_compile: bool = False


class DiffusionTimeline(_Doc):
    benchmark_start_time: float | None = None
    benchmark_end_time: float | None = None


class DiffusionResults(_Doc):
    """``results.json`` of one diffusion run (``mlenergy.benchmark.diffusion.benchmark``)."""

    model_id: str
    batch_size: int = Field(gt=0)
    num_iterations: int | None = None
    height: int | None = None
    width: int | None = None
    inference_steps: int | None = None
    seed: int | None = None
    num_frames: int | None = None
    fps: int | None = None
    date: str | None = None
    total_time: float | None = None
    total_energy: float | None = None
    iteration_energy_measurements: list[ZeusMeasurement] = Field(min_length=1)
    configurations: DiffusionParallelism
    timeline: DiffusionTimeline | None = None


_M = TypeVar("_M", bound=BaseModel)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("results", 3, "itl")`` -> ``results[3].itl``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_json_object(path: Path) -> dict[str, Any]:
    """A file's top-level JSON object; any problem is an InputError naming the file."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source=path) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid JSON ({exc})", source=path) from exc
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}", source=path)
    return data


def validate_doc(model: type[_M], data: dict[str, Any], path: Path) -> _M:
    """Validate ``data`` as ``model``; the first error becomes an InputError with its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise InputError(
            f"{first['msg']}{more}", source=path, field=field_path(first["loc"]) or None
        ) from exc


def check_latency_summaries(results: LlmResults, path: Path) -> None:
    """The harness' latency summaries are optional, but when present they must be numbers."""
    extra = results.model_extra or {}
    for metric in LATENCY_METRICS:
        for stat in LATENCY_STATS:
            key = f"{stat}_{metric}_ms"
            value = extra.get(key)
            ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
            if not ok:
                raise InputError(f"expected a number, got {value!r}", source=path, field=key)


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
