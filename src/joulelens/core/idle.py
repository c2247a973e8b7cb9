"""Idle power: what the devices draw doing nothing, the baseline of a run's static share.

The meters measure it (:func:`joulelens.meters.measure_idle_power`); the compile step and
the watcher read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from joulelens.core.windows import WindowEnergy
from joulelens.records.schema import EnergyBoundary


@dataclass(frozen=True, slots=True)
class IdlePower:
    """Mean idle power per boundary and per device (W); null entries explained in ``missing``.

    Keys of ``by_device_w`` are meter names (``gpu:0``), of ``by_boundary_w`` boundaries,
    summed with the same rules as window totals (:mod:`joulelens.core.boundaries`); keys of
    ``missing`` are device names or boundary values.
    """

    by_boundary_w: Mapping[EnergyBoundary, float | None]
    duration_s: float | None = None
    by_device_w: Mapping[str, float | None] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    window: WindowEnergy | None = None

    def watts(self, boundary: EnergyBoundary) -> float | None:
        return self.by_boundary_w.get(boundary)

    def missing_reason(self, boundary: EnergyBoundary) -> str:
        reason = self.missing.get(boundary.value)
        if reason:
            return f"idle baseline: {reason}"
        return f"idle baseline has no {boundary.value} reading"
