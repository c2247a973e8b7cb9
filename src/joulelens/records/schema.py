"""Run records: one per configuration run, LLM/MLLM or diffusion.

Field names follow ML.ENERGY's result files where they exist (``energy_per_token_joules``,
``avg_batch_size`` ...) and carry their unit in the name. A quantity that was not measured
is ``None`` and has a reason in :attr:`RunRecord.missing`; a missing reading never acts as 0.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1


class EnergyMethod(StrEnum):
    """How an energy figure was obtained, from most to least direct."""

    COUNTER = "counter"  # a cumulative hardware energy counter (NVML, RAPL)
    INTEGRATED = "integrated"  # sampled power integrated over time
    ATTRIBUTED = "attributed"  # a share of a measured total, split by a model of usage
    ESTIMATED = "estimated"  # no energy sensor: modelled (e.g. CPU time x W per core)


class EnergyBoundary(StrEnum):
    """What hardware an energy figure covers."""

    GPU = "gpu"
    CPU = "cpu"
    DRAM = "dram"
    CPU_DRAM = "cpu+dram"
    GPU_CPU = "gpu+cpu"
    GPU_CPU_DRAM = "gpu+cpu+dram"
    NODE = "node"


class RunKind(StrEnum):
    LLM = "llm"
    MLLM = "mllm"
    DIFFUSION = "diffusion"


class RunStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"


class SourceKind(StrEnum):
    MLENERGY_LEADERBOARD = "mlenergy-leaderboard"
    MLENERGY_BENCHMARK = "mlenergy-benchmark"
    JOULELENS = "joulelens"


class _Model(BaseModel):
    # NaN and infinity are never a measurement: JSON has no spelling for them, and a record
    # holding one would be written as null without a reason and then fail its own schema.
    model_config = ConfigDict(
        extra="forbid", frozen=False, use_enum_values=False, allow_inf_nan=False
    )


class Provenance(_Model):
    """Where a record's numbers come from: a published dataset, raw results, or our own run."""

    source: SourceKind
    source_version: str | None = None  # e.g. "v3 (2026-02-16)" for a leaderboard snapshot
    source_path: str | None = None  # file or URL the record was read from
    engine: str | None = None  # "vllm", "transformers", "diffusers", ...
    engine_version: str | None = None
    joulelens_version: str | None = None
    host: str | None = None
    random_weights: bool = False  # architecture-only model: weights were random, not trained


class Histogram(_Model):
    """Counts over bin edges (``len(bins) == len(counts) + 1``), as ML.ENERGY publishes them."""

    bins: list[float]
    counts: list[Annotated[int, Field(ge=0)]]

    @model_validator(mode="after")
    def _edges_match(self) -> Histogram:
        if len(self.bins) != len(self.counts) + 1:
            raise ValueError(
                f"histogram needs len(bins) == len(counts) + 1, got {len(self.bins)} "
                f"bins and {len(self.counts)} counts"
            )
        if any(b > a for a, b in zip(self.bins[1:], self.bins, strict=False)):
            raise ValueError("histogram bin edges must not decrease")
        return self

    @property
    def total(self) -> int:
        return sum(self.counts)


class EnergyComponent(_Model):
    """One energy figure of a run's window, e.g. one GPU's counter or the CPU estimate."""

    name: str  # "gpu:0", "cpu-package:0", "dram:0", "cpu-estimate"
    joules: float | None
    boundary: EnergyBoundary
    method: EnergyMethod
    missing_reason: str | None = None

    @model_validator(mode="after")
    def _null_has_reason(self) -> EnergyComponent:
        if self.joules is None and not self.missing_reason:
            raise ValueError(f"energy component {self.name!r} is null without a reason")
        return self


# Numeric result fields that must be either a number or null-with-reason.
LLM_METRIC_FIELDS: tuple[str, ...] = (
    "energy_per_token_joules",
    "energy_per_request_joules",
    "avg_power_watts",
    "output_throughput_tokens_per_sec",
    "mean_itl_ms",
    "median_itl_ms",
    "p90_itl_ms",
    "p95_itl_ms",
    "p99_itl_ms",
    "mean_ttft_ms",
    "median_ttft_ms",
    "p90_ttft_ms",
    "p95_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "p90_tpot_ms",
    "p95_tpot_ms",
    "p99_tpot_ms",
    "mean_e2e_latency_ms",
    "median_e2e_latency_ms",
    "p90_e2e_latency_ms",
    "p95_e2e_latency_ms",
    "p99_e2e_latency_ms",
    "avg_batch_size",
    "avg_output_len",
    "avg_kv_cache_usage",
    "max_kv_cache_usage",
    "steady_state_duration_s",
    "steady_state_energy_joules",
    "idle_power_watts",
    "static_energy_fraction",
)
DIFFUSION_METRIC_FIELDS: tuple[str, ...] = (
    "avg_power_watts",
    "batch_latency_s",
    "idle_power_watts",
    "static_energy_fraction",
)
IMAGE_METRIC_FIELDS: tuple[str, ...] = ("energy_per_image_joules", "throughput_images_per_sec")
VIDEO_METRIC_FIELDS: tuple[str, ...] = ("energy_per_video_joules", "throughput_videos_per_sec")


def generation_unit(task: str) -> str:
    """What one diffusion generation is for a task: "video" for text-to-video, else "image"."""
    return "video" if "video" in task else "image"


def required_metric_fields(kind: RunKind, task: str) -> tuple[str, ...]:
    """Result fields a completed run of this kind must fill or explain in ``missing``."""
    if kind is not RunKind.DIFFUSION:
        return LLM_METRIC_FIELDS
    unit = generation_unit(task)
    return DIFFUSION_METRIC_FIELDS + (
        VIDEO_METRIC_FIELDS if unit == "video" else IMAGE_METRIC_FIELDS
    )


class RequestRow(_Model):
    """Per-request result row (written beside a measured run as ``requests.parquet``)."""

    request_id: str
    sent_s: float
    ttft_ms: float | None
    e2e_latency_ms: float | None
    input_tokens: int | None
    output_tokens: int
    finish_reason: str | None
    error: str | None
    in_steady_state: bool
    attributed_energy_joules: float | None = None  # method: attributed
    attributed_prefill_energy_joules: float | None = None
    attributed_decode_energy_joules: float | None = None


class TimelineSample(_Model):
    """One timeline point (``timeline.parquet``); ``series`` e.g. "power_watts:gpu:0"."""

    t_s: float  # seconds since the run's start on the shared monotonic clock
    series: str
    value: float


class RunRecord(_Model):
    """One configuration run: imported or measured, LLM/MLLM or diffusion."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    kind: RunKind
    task: str
    status: RunStatus = RunStatus.COMPLETED
    failure_reason: str | None = None

    # Model.
    model_id: str
    nickname: str | None = None
    architecture: str | None = None  # "Dense Transformer", "MoE", "diffusion" ...
    total_params_billions: float | None = Field(default=None, ge=0)
    activated_params_billions: float | None = Field(default=None, ge=0)
    weight_precision: str | None = None  # "bfloat16", "fp8" ...

    # Hardware and parallelism.
    gpu_model: str | None = None  # "H100", "B200", "cpu"
    num_gpus: int = Field(default=1, ge=0)  # 0: a CPU-only run
    tensor_parallel: int | None = Field(default=None, ge=1)
    expert_parallel: int | None = Field(default=None, ge=1)
    data_parallel: int | None = Field(default=None, ge=1)
    ulysses_degree: int | None = Field(default=None, ge=1)
    ring_degree: int | None = Field(default=None, ge=1)
    parallelization_notes: str | None = None

    # Knobs.
    max_num_seqs: int | None = Field(default=None, ge=1)  # LLM batch-size knob (B)
    batch_size: int | None = Field(default=None, ge=1)  # diffusion batch size
    num_requests: int | None = Field(default=None, ge=0)
    max_output_tokens: int | None = Field(default=None, ge=1)
    arrival: str | None = None  # "saturation" (all at t=0), "poisson:RATE", "gamma:RATE:CV"
    inference_steps: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    width: int | None = Field(default=None, ge=1)
    num_frames: int | None = Field(default=None, ge=1)
    fps: int | None = Field(default=None, ge=1)

    # LLM / MLLM results.
    energy_per_token_joules: float | None = None
    energy_per_request_joules: float | None = None
    avg_power_watts: float | None = None
    output_throughput_tokens_per_sec: float | None = Field(default=None, ge=0)
    mean_itl_ms: float | None = Field(default=None, ge=0)
    median_itl_ms: float | None = Field(default=None, ge=0)
    p90_itl_ms: float | None = Field(default=None, ge=0)
    p95_itl_ms: float | None = Field(default=None, ge=0)
    p99_itl_ms: float | None = Field(default=None, ge=0)
    mean_ttft_ms: float | None = Field(default=None, ge=0)
    median_ttft_ms: float | None = Field(default=None, ge=0)
    p90_ttft_ms: float | None = Field(default=None, ge=0)
    p95_ttft_ms: float | None = Field(default=None, ge=0)
    p99_ttft_ms: float | None = Field(default=None, ge=0)
    mean_tpot_ms: float | None = Field(default=None, ge=0)
    median_tpot_ms: float | None = Field(default=None, ge=0)
    p90_tpot_ms: float | None = Field(default=None, ge=0)
    p95_tpot_ms: float | None = Field(default=None, ge=0)
    p99_tpot_ms: float | None = Field(default=None, ge=0)
    mean_e2e_latency_ms: float | None = Field(default=None, ge=0)
    median_e2e_latency_ms: float | None = Field(default=None, ge=0)
    p90_e2e_latency_ms: float | None = Field(default=None, ge=0)
    p95_e2e_latency_ms: float | None = Field(default=None, ge=0)
    p99_e2e_latency_ms: float | None = Field(default=None, ge=0)
    avg_batch_size: float | None = Field(default=None, ge=0)
    avg_output_len: float | None = Field(default=None, ge=0)
    avg_kv_cache_usage: float | None = Field(default=None, ge=0)  # fraction 0..1 (vLLM's)
    max_kv_cache_usage: float | None = Field(default=None, ge=0)
    num_completed_requests: int | None = Field(default=None, ge=0)
    num_failed_requests: int | None = Field(default=None, ge=0)
    num_truncated_requests: int | None = Field(default=None, ge=0)
    steady_state_duration_s: float | None = Field(default=None, ge=0)
    steady_state_energy_joules: float | None = None
    # The whole run's energy, first send to last finish: what per-request attribution
    # splits (``requests.parquet`` sums to it), beside the steady-state window's.
    run_energy_joules: float | None = None
    output_length_distribution: Histogram | None = None

    # Diffusion results: per image (text-to-image) or per video (text-to-video).
    batch_latency_s: float | None = Field(default=None, ge=0)
    energy_per_image_joules: float | None = None
    energy_per_video_joules: float | None = None
    throughput_images_per_sec: float | None = Field(default=None, ge=0)
    throughput_videos_per_sec: float | None = Field(default=None, ge=0)

    # Static power and energy provenance.
    idle_power_watts: float | None = None
    static_energy_fraction: float | None = None
    energy_boundary: EnergyBoundary
    energy_method: EnergyMethod
    energy_components: list[EnergyComponent] = Field(default_factory=list)

    # Validation.
    stable: bool | None = None
    unstable_reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    provenance: Provenance
    started_at: datetime | None = None
    finished_at: datetime | None = None
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    # Files beside run.json, relative to the run directory ("requests.parquet", "timeline.parquet").
    artifacts: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)  # the full configuration that produced it
    missing: dict[str, str] = Field(default_factory=dict)  # field -> why it is null

    @model_validator(mode="after")
    def _nulls_have_reasons(self) -> RunRecord:
        if self.status is RunStatus.FAILED:
            if not self.failure_reason:
                raise ValueError("a failed run needs a failure_reason")
            return self
        fields = required_metric_fields(self.kind, self.task)
        unexplained = [f for f in fields if getattr(self, f) is None and f not in self.missing]
        if unexplained:
            raise ValueError("null without a reason in 'missing': " + ", ".join(unexplained))
        if self.stable is False and not self.unstable_reasons:
            raise ValueError("an unstable run needs unstable_reasons")
        return self

    # Convenience views used across analysis; kept as properties, not stored.
    @property
    def is_diffusion(self) -> bool:
        return self.kind is RunKind.DIFFUSION

    @property
    def batch(self) -> int | None:
        """The batch-size knob: ``max_num_seqs`` for LLMs, ``batch_size`` for diffusion."""
        return self.batch_size if self.is_diffusion else self.max_num_seqs

    @property
    def energy_per_generation_joules(self) -> float | None:
        """Diffusion: J per image or per video, whichever the task makes."""
        if not self.is_diffusion:
            return None
        if self.energy_unit == "video":
            return self.energy_per_video_joules
        return self.energy_per_image_joules

    @property
    def throughput_generations_per_sec(self) -> float | None:
        if not self.is_diffusion:
            return None
        if self.energy_unit == "video":
            return self.throughput_videos_per_sec
        return self.throughput_images_per_sec

    @property
    def energy_per_unit_joules(self) -> float | None:
        """J/token for LLMs, J/image or J/video for diffusion."""
        if self.is_diffusion:
            return self.energy_per_generation_joules
        return self.energy_per_token_joules

    @property
    def throughput_units_per_sec(self) -> float | None:
        """Output tokens/s for LLMs, images/s or videos/s for diffusion."""
        if self.is_diffusion:
            return self.throughput_generations_per_sec
        return self.output_throughput_tokens_per_sec

    @property
    def latency_ms(self) -> float | None:
        """The paper's latency: median ITL for LLMs, batch latency for diffusion."""
        if self.is_diffusion:
            return None if self.batch_latency_s is None else self.batch_latency_s * 1000.0
        return self.median_itl_ms

    @property
    def energy_unit(self) -> str:
        """ "token", "image" or "video": what one unit of work is."""
        return generation_unit(self.task) if self.is_diffusion else "token"


def stable_run_id(prefix: str, key: dict[str, Any]) -> str:
    """A deterministic id from a run's identifying configuration: same config, same id."""
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return f"{prefix}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def missing_reasons(fields: tuple[str, ...] | list[str], reason: str) -> dict[str, str]:
    return dict.fromkeys(fields, reason)
