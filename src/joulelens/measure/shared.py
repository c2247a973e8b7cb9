"""Pieces both compile steps (LLM and diffusion) share: the headline energy, the idle
share, device range checks, and turning collected metrics into a :class:`RunRecord`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from joulelens.core.idle import IdlePower
from joulelens.core.series import POWER_LIMIT_WATTS, TEMPERATURE_C, power_series, series_name
from joulelens.core.windows import WindowEnergy
from joulelens.measure.cpu_share import cpu_context
from joulelens.measure.energy import EnergyReadings
from joulelens.measure.metrics import Metrics, static_fraction
from joulelens.measure.spec import MeasureOptions, RunAdditions, RunSpec
from joulelens.measure.validate import DeviceSeries, device_range_checks
from joulelens.records.schema import (
    EnergyBoundary,
    EnergyComponent,
    EnergyMethod,
    RunRecord,
    TimelineSample,
    required_metric_fields,
)


def headline_of(
    window: WindowEnergy | None, readings: EnergyReadings | None, options: MeasureOptions
) -> tuple[EnergyComponent | None, str]:
    """The total a run reports and, when it is null or absent, why."""
    if readings is not None and not readings.sources:
        return None, "no energy source was measured"
    if window is None:
        return None, "no measured window"
    boundary = headline_boundary(readings, options)
    head = window.headline(boundary)
    if head is None:
        wanted = boundary.value if boundary else "any"
        return None, f"no energy source covers the {wanted} boundary"
    if head.joules is None:
        return head, f"{head.boundary.value} energy unavailable: {head.missing_reason}"
    if head.joules <= 0 and window.duration_s > 0:
        # No device draws nothing for a while: 0 J is a meter below its resolution.
        reason = (
            f"the {head.boundary.value} meters read {head.joules:g} J over "
            f"{window.duration_s:.3f} s: below their resolution, not a measurement"
        )
        return head.model_copy(update={"joules": None, "missing_reason": reason}), reason
    return head, ""


def headline_boundary(
    readings: EnergyReadings | None, options: MeasureOptions
) -> EnergyBoundary | None:
    """The boundary asked for, else the one the readings pin (a GPU run: GPU), else None
    (the first boundary with a value)."""
    if options.boundary is not None:
        return options.boundary
    return readings.headline_boundary() if readings is not None else None


def boundary_and_method(
    head: EnergyComponent | None, readings: EnergyReadings | None, options: MeasureOptions
) -> tuple[EnergyBoundary, EnergyMethod]:
    if head is not None:
        return head.boundary, head.method
    boundary = headline_boundary(readings, options) or EnergyBoundary.GPU
    for source in readings.sources if readings is not None else ():
        if source.boundary is boundary:
            return boundary, source.method
    return boundary, EnergyMethod.COUNTER


def put_idle(
    metrics: Metrics,
    idle: IdlePower | None,
    boundary: EnergyBoundary,
    duration_s: float | None,
    energy_j: float | None,
    warnings: list[str],
) -> None:
    """``idle_power_watts`` and ``static_energy_fraction`` for the headline boundary."""
    if idle is None:
        metrics.null_all(
            ("idle_power_watts", "static_energy_fraction"), "no idle baseline was measured"
        )
        return
    watts = idle.watts(boundary)
    metrics.put("idle_power_watts", watts, idle.missing_reason(boundary))
    fraction = static_fraction(watts, duration_s, energy_j)
    if fraction is None:
        reason = (
            idle.missing_reason(boundary)
            if watts is None
            else "the measured window's energy is unknown"
        )
        metrics.put("static_energy_fraction", None, reason)
        return
    metrics.put("static_energy_fraction", fraction)
    if fraction > 1:
        warnings.append(
            f"idle power {watts:.1f} W exceeds the run's average power: the idle baseline "
            "was taken on a busier or hotter device than the run"
        )


def gpu_devices(readings: EnergyReadings | None, window: WindowEnergy | None) -> list[DeviceSeries]:
    """GPU sources with their power, temperature and limit series, for range checks."""
    if readings is None or window is None or window.duration_s <= 0:
        return []
    joules = {c.name: c.joules for c in window.components}
    devices = []
    for source in readings.sources:
        if source.boundary is not EnergyBoundary.GPU or source.missing_reason is not None:
            continue
        limit = readings.series.get(series_name(POWER_LIMIT_WATTS, source.name))
        energy = joules.get(source.name)
        devices.append(
            DeviceSeries(
                name=source.name,
                power_w=readings.series.get(power_series(source.name)),
                temperature_c=readings.series.get(series_name(TEMPERATURE_C, source.name)),
                power_limit_w=float(limit.values.max())
                if limit is not None and len(limit)
                else None,
                mean_power_w=None if energy is None else energy / window.duration_s,
            )
        )
    return devices


def range_checks(
    readings: EnergyReadings | None, window: WindowEnergy | None
) -> tuple[list[str], list[str]]:
    devices = gpu_devices(readings, window)
    if window is None or not devices:
        return [], []
    return device_range_checks(devices, window.start_s, window.end_s)


def build_record(
    spec: RunSpec,
    metrics: Metrics,
    *,
    boundary: EnergyBoundary,
    method: EnergyMethod,
    window: WindowEnergy | None,
    reasons: Sequence[str],
    warnings: Sequence[str],
    options: MeasureOptions,
    extra: dict[str, Any],
    artifacts: list[str],
    config_extra: dict[str, Any] | None = None,
    timeline: Sequence[TimelineSample] = (),
    additions: RunAdditions | None = None,
) -> RunRecord:
    """The record: spec fields, metric values, nulls with reasons, stability, provenance,
    and what the harness ``additions`` bring (``timeline``: for the CPU figures)."""
    required = required_metric_fields(spec.kind, spec.task)
    for name in required:
        if name not in metrics.values:
            metrics.put(name, None, "not computed for this kind of run")
    fields = dict(spec.fields)
    config = dict(fields.pop("config", {}) or {})
    config["measurement"] = options.as_config()
    config.update(config_extra or {})
    components = list(window.components) + list(window.totals) if window is not None else []
    add = additions or RunAdditions()
    config.update(add.config)
    if add.cpu_estimate is not None:
        extra_components, config["cpu_estimate"] = cpu_context(
            add.cpu_estimate, components, config, timeline
        )
        components += extra_components
    reasons = [*reasons, *add.unstable_reasons]
    warnings = [*warnings, *add.warnings]
    artifacts = sorted({*artifacts, *add.artifacts})
    return RunRecord(
        run_id=spec.run_id,
        kind=spec.kind,
        task=spec.task,
        model_id=spec.model_id,
        provenance=spec.provenance,
        max_num_seqs=spec.max_num_seqs,
        max_output_tokens=spec.max_output_tokens,
        energy_boundary=boundary,
        energy_method=method,
        energy_components=components,
        stable=not reasons,
        unstable_reasons=list(dict.fromkeys(reasons)),
        warnings=list(dict.fromkeys(warnings)),
        artifacts=artifacts,
        config=config,
        missing=dict(metrics.missing),
        **{**fields, **extra, **metrics.values},
    )
