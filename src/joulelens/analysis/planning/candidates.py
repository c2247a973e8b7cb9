"""What planning chooses between: configurations, measured or predicted, with one latency.

A :class:`Candidate` is one configuration (model, task, GPU, GPU count, precision, batch)
seen through one latency metric. Measured candidates come from stored runs; predicted
ones come from a sweep curve (:mod:`joulelens.analysis.planning.predict`) and say so in
``source`` and ``band_fraction``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from joulelens.analysis.selection import gpu_name, hardware_label, is_usable
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord


class LatencyMetric(StrEnum):
    """Which latency a deadline bounds. ``paper``: median ITL (LLM), batch latency (diffusion)."""

    PAPER = "paper"
    MEDIAN_ITL = "median-itl"
    P90_ITL = "p90-itl"
    P95_ITL = "p95-itl"
    P99_ITL = "p99-itl"
    MEDIAN_TTFT = "median-ttft"
    P90_TTFT = "p90-ttft"
    P99_TTFT = "p99-ttft"
    BATCH_LATENCY = "batch-latency"


_LLM_FIELDS: dict[LatencyMetric, str] = {
    LatencyMetric.PAPER: "median_itl_ms",
    LatencyMetric.MEDIAN_ITL: "median_itl_ms",
    LatencyMetric.P90_ITL: "p90_itl_ms",
    LatencyMetric.P95_ITL: "p95_itl_ms",
    LatencyMetric.P99_ITL: "p99_itl_ms",
    LatencyMetric.MEDIAN_TTFT: "median_ttft_ms",
    LatencyMetric.P90_TTFT: "p90_ttft_ms",
    LatencyMetric.P99_TTFT: "p99_ttft_ms",
}
_LABELS: dict[str, str] = {
    "median_itl_ms": "median ITL",
    "p90_itl_ms": "p90 ITL",
    "p95_itl_ms": "p95 ITL",
    "p99_itl_ms": "p99 ITL",
    "median_ttft_ms": "median TTFT",
    "p90_ttft_ms": "p90 TTFT",
    "p99_ttft_ms": "p99 TTFT",
    "batch_latency_ms": "batch latency",
}


def latency_field(metric: LatencyMetric, diffusion: bool) -> str | None:
    """The record field (in ms) a metric reads; ``batch_latency_ms`` is derived for diffusion.

    ``None`` when the metric does not apply to the kind (an ITL deadline on a diffusion run).
    """
    if diffusion:
        ok = metric in (LatencyMetric.PAPER, LatencyMetric.BATCH_LATENCY)
        return "batch_latency_ms" if ok else None
    return _LLM_FIELDS.get(metric)


def latency_label(metric: LatencyMetric, diffusion: bool) -> str:
    field = latency_field(metric, diffusion)
    return _LABELS[field] if field else metric.value


def latency_of(record: RunRecord, metric: LatencyMetric) -> float | None:
    field = latency_field(metric, record.is_diffusion)
    if field is None:
        return None
    if field == "batch_latency_ms":
        return record.latency_ms
    value = getattr(record, field)
    return float(value) if value is not None else None


def check_latency_available(records: Sequence[RunRecord], metric: LatencyMetric) -> None:
    """Raise a clear :class:`AnalysisError` when no run has the metric (e.g. TTFT on the
    published leaderboard data, which does not include it)."""
    if not records or any(latency_of(r, metric) is not None for r in records):
        return
    diffusion = all(r.is_diffusion for r in records)
    field = latency_field(metric, diffusion)
    if field is None:
        kind = "diffusion" if diffusion else "LLM"
        raise AnalysisError(f"a {metric.value} deadline does not apply to {kind} runs")
    reasons = sorted({r.missing.get(field, "not recorded") for r in records})
    hint = ""
    if metric is not LatencyMetric.PAPER:
        hint = ". Use the paper's latency (--latency paper)"
        if "ttft" in field:
            hint += " or measure runs with joulelens, which records TTFT"
    raise AnalysisError(
        f"none of the {len(records)} candidate runs has {latency_label(metric, diffusion)} "
        f"({field}): {'; '.join(reasons[:3])}{hint}"
    )


@dataclass(frozen=True)
class Candidate:
    """One configuration under one latency metric; ``run_id`` is None for a prediction."""

    source: str  # "measured" or "predicted"
    run_id: str | None
    model_id: str
    model: str  # nickname or model id
    task: str
    kind: str
    gpu: str
    num_gpus: int
    precision: str | None
    batch: int
    latency_ms: float
    energy_per_unit_joules: float
    energy_unit: str
    energy_per_response_joules: float | None
    throughput_units_per_sec: float | None
    power_watts: float | None
    band_fraction: float | None = None  # predictions: relative uncertainty of the energy

    @property
    def is_diffusion(self) -> bool:
        return self.kind == "diffusion"

    @property
    def label(self) -> str:
        knob = "batch" if self.is_diffusion else "max_num_seqs"
        mark = " (predicted)" if self.source == "predicted" else ""
        return f"{self.model}, {hardware_label(self.num_gpus, self.gpu)}, {knob} {self.batch}{mark}"

    @property
    def throughput_per_watt(self) -> float | None:
        if self.throughput_units_per_sec is None or not self.power_watts:
            return None
        return self.throughput_units_per_sec / self.power_watts

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["label"] = self.label
        out["throughput_per_watt"] = self.throughput_per_watt
        return out


def candidate(record: RunRecord, metric: LatencyMetric = LatencyMetric.PAPER) -> Candidate | None:
    """A usable run as a candidate; ``None`` when it is unusable or lacks the latency."""
    latency = latency_of(record, metric)
    energy = record.energy_per_unit_joules
    if not is_usable(record) or latency is None or energy is None or record.batch is None:
        return None
    per_response = energy if record.is_diffusion else record.energy_per_request_joules
    return Candidate(
        source="measured",
        run_id=record.run_id,
        model_id=record.model_id,
        model=record.nickname or record.model_id,
        task=record.task,
        kind=record.kind.value,
        gpu=gpu_name(record),
        num_gpus=record.num_gpus,
        precision=record.weight_precision,
        batch=record.batch,
        latency_ms=latency,
        energy_per_unit_joules=energy,
        energy_unit=record.energy_unit,
        energy_per_response_joules=per_response,
        throughput_units_per_sec=record.throughput_units_per_sec,
        power_watts=record.avg_power_watts,
    )


def candidates(
    records: Iterable[RunRecord], metric: LatencyMetric = LatencyMetric.PAPER
) -> list[Candidate]:
    out = [c for r in records if (c := candidate(r, metric)) is not None]
    out.sort(key=lambda c: (c.latency_ms, c.energy_per_unit_joules, c.run_id or ""))
    return out


def throughput_per_watt(record: RunRecord) -> float | None:
    """Work per second per watt (tokens/s/W, images/s/W, videos/s/W) at measured average power.

    Equals 1 / energy per unit; falls back to that when power or throughput is missing.
    """
    if record.throughput_units_per_sec is not None and record.avg_power_watts:
        return record.throughput_units_per_sec / record.avg_power_watts
    energy = record.energy_per_unit_joules
    return 1.0 / energy if energy else None
