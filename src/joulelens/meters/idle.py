"""Idle power: what the devices draw doing nothing, so a run's static share can be computed.

Measured as one energy window over a quiet period before the workload starts. The caller
keeps the machine quiet; with the system-wide CPU estimate, anything else running counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from joulelens.core.idle import IdlePower
from joulelens.errors import MeterError
from joulelens.meters.meterset import MeterSet
from joulelens.records.schema import EnergyComponent

DEFAULT_IDLE_DURATION_S = 5.0
IDLE_WINDOW = "joulelens-idle-baseline"


def _watts(component: EnergyComponent, duration_s: float) -> float | None:
    return None if component.joules is None else component.joules / duration_s


def measure_idle_power(
    meters: MeterSet,
    duration_s: float = DEFAULT_IDLE_DURATION_S,
    *,
    enabled: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> IdlePower:
    """Average power over ``duration_s`` of idling; ``enabled=False`` records why it is absent.

    ``sleep`` is injectable so tests can advance a fake clock instead of waiting.
    """
    if not enabled or duration_s <= 0:
        reason = "idle baseline disabled by the caller"
        names = [m.name for m in meters]
        return IdlePower(
            duration_s=None,
            by_device_w=dict.fromkeys(names),
            by_boundary_w=dict.fromkeys(meters.boundaries),
            missing=dict.fromkeys([*names, *(b.value for b in meters.boundaries)], reason),
        )
    meters.begin_window(IDLE_WINDOW)
    try:
        sleep(duration_s)
    finally:
        window = meters.end_window(IDLE_WINDOW)
    elapsed_s = window.duration_s
    if elapsed_s <= 0:
        raise MeterError(f"idle window did not advance the clock ({elapsed_s} s)")
    by_device = {c.name: _watts(c, elapsed_s) for c in window.components}
    by_boundary = {c.boundary: _watts(c, elapsed_s) for c in window.totals}
    missing = {c.name: str(c.missing_reason) for c in window.components if c.joules is None}
    missing |= {c.boundary.value: str(c.missing_reason) for c in window.totals if c.joules is None}
    return IdlePower(
        duration_s=elapsed_s,
        by_device_w=by_device,
        by_boundary_w=by_boundary,
        missing=missing,
        warnings=window.warnings,
        window=window,
    )
