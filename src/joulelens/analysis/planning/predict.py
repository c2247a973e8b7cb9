"""Predictions for batch sizes nobody measured, with an uncertainty band.

For a setup (model, task, GPU, GPU count, precision ...) the sweep curve interpolates
power, throughput, latencies and energy per unit in log2(batch). The band around a
predicted energy is the setup's own leave-one-out error: each interior measured batch is
predicted from the others and the largest (or, with many, the 90th-percentile) relative
error becomes the band. Those held-out predictions span twice the gap a real prediction
does, so the band is conservative. A setup with no interior batch gets
:data:`DEFAULT_BAND_FRACTION`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from joulelens.analysis.planning.candidates import Candidate, LatencyMetric, latency_field
from joulelens.analysis.planning.curves import SweepCurve, group_setups
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord

# The p90 target for leave-one-out error; used where a setup cannot measure its own.
DEFAULT_BAND_FRACTION = 0.15
# No band narrower than this: repeated runs of one configuration differ by a few percent.
MIN_BAND_FRACTION = 0.02


@dataclass(frozen=True)
class Prediction:
    setup: str
    model_id: str
    task: str
    gpu: str
    num_gpus: int
    precision: str
    batch: int
    source: str  # "measured" (the batch was run) or "interpolated"
    run_ids: list[str]  # the measured runs behind it (at this batch, else both neighbours)
    lower_batch: int
    upper_batch: int
    energy_per_unit_joules: float
    energy_unit: str
    energy_low_joules: float
    energy_high_joules: float
    band_fraction: float
    power_watts: float | None
    throughput_units_per_sec: float | None
    latencies_ms: dict[str, float | None]
    energy_per_response_joules: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interior_errors(curve: SweepCurve, quantity: str = "energy_per_unit_joules") -> list[float]:
    """|predicted / measured - 1| for each interior batch, predicted without that batch."""
    out = []
    for b in curve.batches[1:-1]:
        measured = curve.values[quantity].get(b)
        if measured is None:
            continue
        predicted = curve.without(b).value(quantity, b)
        if predicted is not None:
            out.append(abs(predicted / measured - 1.0))
    return out


def band_fraction(curve: SweepCurve) -> float:
    errors = interior_errors(curve)
    if not errors:
        return DEFAULT_BAND_FRACTION
    spread = max(errors) if len(errors) < 5 else float(np.percentile(errors, 90))
    return max(MIN_BAND_FRACTION, spread)


def predict_curve(curve: SweepCurve, batch: int, band: float | None = None) -> Prediction:
    energy = curve.value("energy_per_unit_joules", batch)
    if energy is None:
        raise AnalysisError(f"{curve.key.describe()}: no energy per unit to interpolate")
    measured = batch in curve.batches
    lower = max(b for b in curve.batches if b <= batch)
    upper = min(b for b in curve.batches if b >= batch)
    frac = 0.0 if measured else (band if band is not None else band_fraction(curve))
    latencies = {
        name: curve.value(name, batch)
        for name in (
            "median_itl_ms",
            "p90_itl_ms",
            "p95_itl_ms",
            "p99_itl_ms",
            "median_ttft_ms",
            "batch_latency_ms",
        )
        if curve.values[name]
    }
    out_len = curve.value("avg_output_len", batch)
    diffusion = curve.kind == "diffusion"
    return Prediction(
        setup=curve.key.describe(),
        model_id=curve.key.model_id,
        task=curve.key.task,
        gpu=curve.key.gpu,
        num_gpus=curve.key.num_gpus,
        precision=curve.key.precision,
        batch=batch,
        source="measured" if measured else "interpolated",
        run_ids=curve.run_ids[batch] if measured else curve.run_ids[lower] + curve.run_ids[upper],
        lower_batch=lower,
        upper_batch=upper,
        energy_per_unit_joules=energy,
        energy_unit=curve.energy_unit,
        energy_low_joules=energy * (1 - frac),
        energy_high_joules=energy * (1 + frac),
        band_fraction=frac,
        power_watts=curve.value("power_watts", batch),
        throughput_units_per_sec=curve.value("throughput_units_per_sec", batch),
        latencies_ms=latencies,
        energy_per_response_joules=energy if diffusion else (energy * out_len if out_len else None),
    )


def matching_curves(
    records: Iterable[RunRecord],
    model: str | None = None,
    task: str | None = None,
    gpu: str | None = None,
    num_gpus: int | None = None,
    precision: str | None = None,
) -> list[SweepCurve]:
    """Sweep curves of every setup that matches (model: case-insensitive substring)."""
    out = []
    for key, runs in sorted(group_setups(records).items()):
        if (
            model
            and model.lower() not in key.model_id.lower()
            and not any(model.lower() in (r.nickname or "").lower() for r in runs)
        ):
            continue
        if (task and key.task != task) or (gpu and key.gpu.lower() != gpu.lower()):
            continue
        if (num_gpus is not None and key.num_gpus != num_gpus) or (
            precision and precision.lower() not in key.precision.lower()
        ):
            continue
        if len({r.batch for r in runs}) >= 2:
            out.append(SweepCurve.fit(runs))
    return out


def predict(
    records: Iterable[RunRecord],
    batch: int,
    *,
    model: str | None = None,
    task: str | None = None,
    gpu: str | None = None,
    num_gpus: int | None = None,
    precision: str | None = None,
) -> list[Prediction]:
    """Predictions at ``batch`` for every matching setup (one per setup)."""
    if batch <= 0:
        raise AnalysisError(f"batch must be positive, got {batch}")
    curves = matching_curves(records, model, task, gpu, num_gpus, precision)
    if not curves:
        raise AnalysisError(
            "no setup with at least two measured batch sizes matches "
            f"model={model!r} task={task!r} gpu={gpu!r} num_gpus={num_gpus!r} "
            f"precision={precision!r}"
        )
    inside = [c for c in curves if c.covers(batch)]
    if not inside:
        ranges = "; ".join(f"{c.key.describe()}: {c.batch_min}-{c.batch_max}" for c in curves[:5])
        raise AnalysisError(
            f"batch {batch} is outside every matching setup's measured range ({ranges}); "
            "joulelens interpolates between measured batches but does not extrapolate"
        )
    return [predict_curve(c, batch) for c in inside]


def batch_grid(curve: SweepCurve, steps_per_doubling: int = 4) -> list[int]:
    """Unmeasured batches between the measured ones, ``steps_per_doubling`` per doubling."""
    lo, hi = math.log2(curve.batch_min), math.log2(curve.batch_max)
    n = round((hi - lo) * steps_per_doubling)
    grid = {_nice(2 ** (lo + i / steps_per_doubling)) for i in range(1, n)}
    return sorted(b for b in grid if b not in curve.batches and curve.covers(b))


def _nice(batch: float) -> int:
    """Round to a multiple of 8 from 64 up (how operators set caps), else to an integer."""
    return round(batch / 8) * 8 if batch >= 64 else round(batch)


def predicted_candidate(
    curve: SweepCurve, batch: int, metric: LatencyMetric, band: float | None = None
) -> Candidate | None:
    """An unmeasured batch of a setup as a planning candidate; None where the latency the
    metric needs was not measured (or ``batch`` was measured: use the run instead)."""
    field = latency_field(metric, curve.kind == "diffusion")
    if field is None or not curve.values.get(field) or batch in curve.batches:
        return None
    p = predict_curve(curve, batch, band)
    latency = p.latencies_ms.get(field)
    if latency is None:
        return None
    return Candidate(
        source="predicted",
        run_id=None,
        model_id=curve.key.model_id,
        model=curve.nickname or curve.key.model_id,
        task=curve.key.task,
        kind=curve.kind,
        gpu=curve.key.gpu,
        num_gpus=curve.key.num_gpus,
        precision=curve.key.precision,
        batch=batch,
        latency_ms=latency,
        energy_per_unit_joules=p.energy_per_unit_joules,
        energy_unit=curve.energy_unit,
        energy_per_response_joules=p.energy_per_response_joules,
        throughput_units_per_sec=p.throughput_units_per_sec,
        power_watts=p.power_watts,
        band_fraction=p.band_fraction,
    )


def predicted_candidates(
    curves: Sequence[SweepCurve],
    metric: LatencyMetric = LatencyMetric.PAPER,
    steps_per_doubling: int = 4,
) -> list[Candidate]:
    """Interpolated configurations between measured batches, marked ``source="predicted"``."""
    out = []
    for curve in curves:
        field = latency_field(metric, curve.kind == "diffusion")
        grid = batch_grid(curve, steps_per_doubling)
        if field is None or not curve.values.get(field) or not grid:
            continue
        band = band_fraction(curve)
        out += [c for b in grid if (c := predicted_candidate(curve, b, metric, band)) is not None]
    return out
