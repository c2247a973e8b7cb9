"""Compile a diffusion run: one measured window per batch (between device syncs).

Warm-up batches and failed ones are left out. Per batch, the energy is the window the
runner measured with begin/end counter reads (``batch_windows``, exact) or else cut from
the energy series (interpolated). Then, as the paper:

* energy per image (video) = energy of the measured batches / images (videos) they made;
  with equal batches this is the mean batch energy / batch size
* batch latency = mean batch duration; throughput = generations / total batch time
* average power = energy / total batch time

The reference harness does not validate diffusion runs; here a run is unstable when no
batch was measured, a batch failed, energy per generation is not positive, or GPU power
or temperature left its range during the batches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from joulelens.core.boundaries import boundary_totals
from joulelens.core.events import BatchTrace
from joulelens.core.idle import IdlePower
from joulelens.core.windows import WindowEnergy
from joulelens.errors import InputError
from joulelens.measure.artifacts import artifact_names, timeline_rows
from joulelens.measure.energy import EnergyReadings
from joulelens.measure.metrics import Metrics
from joulelens.measure.shared import (
    boundary_and_method,
    build_record,
    headline_of,
    put_idle,
    range_checks,
)
from joulelens.measure.spec import CompiledRun, MeasureOptions, RunAdditions, RunSpec
from joulelens.measure.steady import diffusion_batches
from joulelens.measure.validate import energy_per_unit_reasons
from joulelens.records.schema import EnergyBoundary, EnergyComponent, RunKind, generation_unit


def compile_diffusion_run(
    batches: Sequence[BatchTrace],
    energy: EnergyReadings | None,
    *,
    spec: RunSpec,
    batch_windows: Mapping[int, WindowEnergy] | None = None,
    idle: IdlePower | None = None,
    options: MeasureOptions | None = None,
    additions: RunAdditions | None = None,
) -> CompiledRun:
    """One diffusion run: record and timeline rows (no per-request rows).

    ``batch_windows`` maps :attr:`BatchTrace.index` to its directly measured window;
    batches without one are cut from ``energy`` (which may then not be ``None``).
    """
    options = options or MeasureOptions()
    if spec.kind is not RunKind.DIFFUSION:
        raise InputError("compile_diffusion_run needs a diffusion spec", field="kind")
    unit = generation_unit(spec.task)
    windows = dict(batch_windows or {})
    kept, notes = diffusion_batches(batches)
    reasons = list(notes)
    warnings = list(energy.warnings) if energy is not None else []
    metrics = Metrics()

    if not kept:
        reasons.append("no batch was measured (all warm-up, failed or missing)")
    per_batch: list[WindowEnergy] = []
    for batch in kept:
        window = windows.get(batch.index)
        if window is None:
            if energy is None:
                raise InputError(
                    f"batch {batch.index} has no measured window and no energy readings were given",
                    field="batch_windows",
                )
            window = energy.window(batch.start_s, batch.end_s)
        per_batch.append(window)
        warnings += [f"batch {batch.index}: {w}" for w in window.warnings]

    run_window = _combined(per_batch)
    head, why = headline_of(run_window, energy, options)
    boundary, method = boundary_and_method(head, energy, options)
    images = sum(b.batch_size for b in kept)
    busy_s = sum(b.end_s - b.start_s for b in kept)
    energy_j = head.joules if head is not None else None
    no_batch = "no batch was measured"

    metrics.put("batch_latency_s", busy_s / len(kept) if kept else None, no_batch)
    metrics.put(f"throughput_{unit}s_per_sec", images / busy_s if kept else None, no_batch)
    reason = why if kept else no_batch
    metrics.put("avg_power_watts", energy_j / busy_s if energy_j is not None else None, reason)
    per_unit = energy_j / images if energy_j is not None and images else None
    metrics.put(f"energy_per_{unit}_joules", per_unit, reason)
    put_idle(metrics, idle, boundary, busy_s if kept else None, energy_j, warnings)
    reasons += energy_per_unit_reasons(per_unit, unit)

    span = None
    if kept and energy is not None:
        span = energy.window(min(b.start_s for b in kept), max(b.end_s for b in kept))
    device_reasons, device_warnings = range_checks(energy, span)
    reasons += device_reasons
    warnings += device_warnings

    origin_s = options.origin_s if options.origin_s is not None else _origin(batches)
    timeline = timeline_rows(energy.series if energy is not None else {}, origin_s)
    sizes = Counter(b.batch_size for b in kept or batches)
    batch_size = spec.batch_size or (sizes.most_common(1)[0][0] if sizes else None)
    record = build_record(
        spec,
        metrics,
        boundary=boundary,
        method=method,
        window=run_window,
        reasons=reasons,
        warnings=warnings,
        options=options,
        extra={"batch_size": batch_size, "num_requests": spec.num_requests},
        artifacts=artifact_names([], timeline),
        config_extra={"batches": _batch_config(batches, kept, per_batch, boundary, origin_s)},
        timeline=timeline,
        additions=additions,
    )
    return CompiledRun(record, [], timeline)


def _combined(windows: Sequence[WindowEnergy]) -> WindowEnergy | None:
    """The measured batches as one window: per-source sums, then totals (gaps between
    batches are not in it)."""
    if not windows:
        return None
    by_name: dict[str, list[EnergyComponent]] = {}
    for window in windows:
        for component in window.components:
            by_name.setdefault(component.name, []).append(component)
    components = []
    for parts in by_name.values():
        first = parts[0]
        nulls = [p for p in parts if p.joules is None]
        joules = None if nulls or len(parts) < len(windows) else sum(p.joules or 0.0 for p in parts)
        reason = None
        if joules is None:
            reason = nulls[0].missing_reason if nulls else "not measured in every batch"
        components.append(first.model_copy(update={"joules": joules, "missing_reason": reason}))
    return WindowEnergy(
        start_s=min(w.start_s for w in windows),
        end_s=max(w.end_s for w in windows),
        components=tuple(components),
        totals=boundary_totals(components),
        warnings=(),
    )


def _batch_config(
    batches: Sequence[BatchTrace],
    kept: Sequence[BatchTrace],
    windows: Sequence[WindowEnergy],
    boundary: EnergyBoundary,
    origin_s: float,
) -> list[dict[str, object]]:
    """Every batch on the artifacts' time axis, with its headline energy when measured."""
    energy_of = {}
    for batch, window in zip(kept, windows, strict=True):
        head = window.total(boundary)
        energy_of[batch.index] = head.joules if head is not None else None
    return [
        {
            "index": b.index,
            "batch_size": b.batch_size,
            "start_s": b.start_s - origin_s,
            "end_s": b.end_s - origin_s,
            "warmup": b.warmup,
            "error": b.error,
            "energy_joules": energy_of.get(b.index),
        }
        for b in batches
    ]


def _origin(batches: Sequence[BatchTrace]) -> float:
    return min((b.start_s for b in batches), default=0.0)
