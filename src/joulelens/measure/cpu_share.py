"""The CPU figures kept beside the headline when the CPU energy is an estimate from CPU time.

Two figures go beside the headline as extra energy components, never into the totals:

* ``machine-wide:<estimate>``: the whole machine's busy CPU time over the measured windows,
  so the difference to the workload's share stays visible;
* ``attributed:cpu-package share of the workload's processes``: with a measured RAPL package,
  its energy times the processes' share of the machine's busy CPU time (method
  ``attributed``), next to the measured package energy that stays the headline.

The runner describes the estimate (:class:`CpuEstimate`); the compile step, which knows the
measured windows, computes the figures, so the record is built once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from joulelens.records import EnergyBoundary, EnergyComponent, EnergyMethod
from joulelens.records.schema import TimelineSample

MACHINE_PREFIX = "machine-wide:"
ATTRIBUTED_NAME = "attributed:cpu-package share of the workload's processes"


@dataclass(frozen=True)
class CpuEstimate:
    """What the run's CPU-time estimate covered, and the timeline series of busy CPU time."""

    scope: str  # "process" (the workload's processes) or "system" (the whole machine)
    covers: str  # the estimate's own description
    watts_per_cpu: float
    pids: Sequence[int]
    machine_busy_series: str  # cumulative busy CPU-seconds of the machine
    process_busy_series: str  # cumulative busy CPU-seconds of the processes

    def as_config(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "covers": self.covers,
            "watts_per_cpu": self.watts_per_cpu,
            "pids": list(self.pids),
            "cannot_see": "idle and static CPU power, DRAM, and the rest of the machine",
        }


def cpu_context(
    estimate: CpuEstimate,
    components: Sequence[EnergyComponent],
    config: Mapping[str, Any],
    timeline: Sequence[TimelineSample],
) -> tuple[list[EnergyComponent], dict[str, Any]]:
    """The extra components and ``config["cpu_estimate"]`` for a run whose headline
    components are ``components`` and whose measured windows ``config`` names."""
    info = estimate.as_config()
    extra: list[EnergyComponent] = []
    windows = measured_windows(config)
    if estimate.scope == "process" and windows:
        machine_s = _busy_over(timeline, estimate.machine_busy_series, windows)
        process_s = _busy_over(timeline, estimate.process_busy_series, windows)
        if machine_s is not None and process_s is not None:
            info |= {"machine_busy_cpu_s": machine_s, "processes_busy_cpu_s": process_s}
            extra.append(
                EnergyComponent(
                    name=f"{MACHINE_PREFIX}cpu-estimate:system@{estimate.watts_per_cpu:g}W-per-cpu",
                    joules=machine_s * estimate.watts_per_cpu,
                    boundary=EnergyBoundary.CPU,
                    method=EnergyMethod.ESTIMATED,
                )
            )
            extra += _package_share(components, process_s, machine_s)
    return extra, info


def _package_share(
    components: Sequence[EnergyComponent], process_s: float, machine_s: float
) -> list[EnergyComponent]:
    package = next(
        (
            c
            for c in components
            if c.name == f"total:{EnergyBoundary.CPU.value}"
            and c.method is not EnergyMethod.ESTIMATED
        ),
        None,
    )
    if package is None:
        return []
    share = min(1.0, process_s / machine_s) if machine_s > 0 else None
    return [
        EnergyComponent(
            name=ATTRIBUTED_NAME,
            joules=None if share is None or package.joules is None else package.joules * share,
            boundary=EnergyBoundary.CPU,
            method=EnergyMethod.ATTRIBUTED,
            missing_reason=None
            if share is not None and package.joules is not None
            else "no busy CPU time or no package energy in the window",
        )
    ]


def measured_windows(config: Mapping[str, Any]) -> list[tuple[float, float]]:
    """The windows the headline energy covers, on the artifacts' time axis."""
    steady = config.get("steady_state")
    if isinstance(steady, dict) and "start_s" in steady and "end_s" in steady:
        return [(float(steady["start_s"]), float(steady["end_s"]))]
    batches = config.get("batches")
    if isinstance(batches, list):
        return [
            (float(b["start_s"]), float(b["end_s"]))
            for b in batches
            if isinstance(b, dict) and not b.get("warmup") and not b.get("error")
        ]
    return []


def _busy_over(
    timeline: Sequence[TimelineSample], series: str, windows: Sequence[tuple[float, float]]
) -> float | None:
    points = sorted((r.t_s, r.value) for r in timeline if r.series == series)
    if len(points) < 2:
        return None
    t = np.array([p[0] for p in points])
    v = np.array([p[1] for p in points])
    total = 0.0
    for start, end in windows:
        if start < t[0] or end > t[-1]:
            return None
        low, high = np.interp([start, end], t, v)
        total += float(high - low)
    return max(0.0, total)
