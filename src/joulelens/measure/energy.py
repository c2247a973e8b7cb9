"""Energy readings as the compile step sees them, independent of how they were taken.

:class:`EnergyReadings` holds, per energy source (one GPU, one RAPL zone, a CPU estimate),
a cumulative energy series ``energy_joules:<source>`` on the shared clock, plus any other
sampled series (``power_watts:<source>``, ``temperature_c:<source>``,
``power_limit_watts:<source>``, GPU state...). The energy between any two times is the
difference of the interpolated cumulative values: exact at a sample, linear in between,
so with a 10 Hz sampler the error is at most about one sample's energy at each end. The
meters (:mod:`joulelens.meters`) produce such series; :mod:`joulelens.measure.adapters`
converts them. Windows measured directly with begin/end counter reads (diffusion batches)
come in as :class:`~joulelens.core.windows.WindowEnergy` instead, the type cut here too. A
window cut from a timeline resolves about one counter update plus one sample period at
each end; the short-window rule is the meters' own (:mod:`joulelens.core.windows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from joulelens.core.boundaries import boundary_parts, boundary_totals, is_combined
from joulelens.core.series import energy_series
from joulelens.core.windows import (
    SHORT_WINDOW_PERIODS,
    WindowEnergy,
    component_of,
    error_bound_pct,
    is_short,
    unresolvable,
)
from joulelens.measure.series import FloatArray, SampledSeries
from joulelens.records.schema import EnergyBoundary, EnergyComponent, EnergyMethod


@dataclass(frozen=True, slots=True)
class EnergySource:
    """One energy source; ``missing_reason`` set when it could not be read at all."""

    name: str  # "gpu:0", "cpu-package:0", "dram:0", "cpu-estimate:..."
    boundary: EnergyBoundary
    method: EnergyMethod
    update_period_s: float = 0.0  # how often the source refreshes (NVML: about 0.1 s)
    missing_reason: str | None = None


@dataclass(frozen=True)
class EnergyReadings:
    """Cumulative energy per source plus the other sampled series of a run."""

    sources: tuple[EnergySource, ...]
    series: Mapping[str, SampledSeries] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # The boundary the headline must report, null with its reason if need be, never a CPU
    # figure in its place: GPU for a run that uses GPUs (see :meth:`headline_boundary`).
    pinned_boundary: EnergyBoundary | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"energy source names must be unique: {names}")

    def headline_boundary(self) -> EnergyBoundary | None:
        """:attr:`pinned_boundary`, else GPU when any GPU source was metered (a GPU whose
        window is null keeps the headline null rather than falling back to the CPU)."""
        if self.pinned_boundary is not None:
            return self.pinned_boundary
        metered = any(
            s.boundary is EnergyBoundary.GPU and s.missing_reason is None for s in self.sources
        )
        return EnergyBoundary.GPU if metered else None

    def source(self, name: str) -> EnergySource:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def cumulative(self, name: str) -> SampledSeries | None:
        return self.series.get(energy_series(name))

    def component(self, source: EnergySource, start_s: float, end_s: float) -> EnergyComponent:
        """The energy of one source over [start_s, end_s], null with a reason when unknown."""
        if source.missing_reason is not None:
            return component_of(source, None, source.missing_reason)
        series = self.cumulative(source.name)
        if series is None or len(series) == 0:
            return component_of(source, None, f"no energy readings of {source.name} were recorded")
        if not series.covers(start_s, end_s):
            return component_of(
                source,
                None,
                f"energy readings of {source.name} cover {series.span_text()}, "
                f"not the window {start_s:.3f}..{end_s:.3f} s",
            )
        start_j, end_j = series.at(np.array([start_s, end_s]))
        joules = float(end_j - start_j)
        if joules < 0:
            return component_of(
                source, None, f"energy of {source.name} went backwards by {-joules:.3f} J"
            )
        return component_of(source, joules)

    def resolution_s(self, source: EnergySource) -> float:
        """How finely ``source``'s timeline resolves a window: its update period plus the
        median gap between its samples."""
        series = self.cumulative(source.name)
        sample_s = 0.0
        if series is not None and len(series) > 1:
            sample_s = float(np.median(np.diff(series.times_s)))
        return source.update_period_s + sample_s

    def window(self, start_s: float, end_s: float) -> WindowEnergy:
        """Energy over [start_s, end_s]: null for a source whose counter cannot resolve a
        window that short (under one update period), a warning under 10 resolutions."""
        if end_s < start_s:
            raise ValueError(f"window ends ({end_s}) before it starts ({start_s})")
        duration_s = end_s - start_s
        components = []
        warnings = []
        for source in self.sources:
            component = self.component(source, start_s, end_s)
            period = source.update_period_s
            if component.joules is not None and unresolvable(duration_s, period):
                component = EnergyComponent(
                    name=source.name,
                    joules=None,
                    boundary=source.boundary,
                    method=source.method,
                    missing_reason=f"window of {duration_s:.3f} s is shorter than "
                    f"{source.name}'s {period:.3f} s update period: the counter cannot resolve it",
                )
            elif component.joules is not None:
                resolution = self.resolution_s(source)
                if is_short(duration_s, resolution):
                    warnings.append(
                        f"{source.name}: window of {duration_s:.3f} s is shorter than "
                        f"{SHORT_WINDOW_PERIODS} x its {resolution:.3f} s resolution (update "
                        f"period {period:.3f} s + sample period {resolution - period:.3f} s); "
                        f"its energy may be off by up to "
                        f"{error_bound_pct(duration_s, resolution):.0f}%"
                    )
            components.append(component)
        return WindowEnergy(
            start_s=start_s,
            end_s=end_s,
            components=tuple(components),
            totals=boundary_totals(components),
            warnings=tuple(warnings),
        )

    def total_sources(self, window: WindowEnergy, boundary: EnergyBoundary) -> list[EnergySource]:
        """The sources whose sum is ``window``'s total for ``boundary`` (empty when null).

        Mirrors the summing rule: measured sources unless the total fell back to the
        estimate; a combined boundary is the sum of its parts' totals.
        """
        total = window.total(boundary)
        if total is None or total.joules is None:
            return []
        if is_combined(boundary):
            parts = boundary_parts(boundary)
            return [s for part in parts for s in self.total_sources(window, part)]
        estimated = total.method is EnergyMethod.ESTIMATED
        return [
            s
            for s in self.sources
            if s.boundary is boundary and (s.method is EnergyMethod.ESTIMATED) == estimated
        ]

    def cumulative_at(self, sources: Sequence[EnergySource], times_s: FloatArray) -> FloatArray:
        """Summed cumulative energy of ``sources`` at ``times_s`` (J from each origin).

        Differences of this function over a grid telescope to the window total exactly,
        which is what makes per-interval attribution conserve energy.
        """
        total = np.zeros_like(times_s, dtype=np.float64)
        for source in sources:
            series = self.cumulative(source.name)
            if series is None:
                raise KeyError(f"no energy series for {source.name}")
            total += series.at(times_s)
        return total

    def sample_times(
        self, sources: Sequence[EnergySource], start_s: float, end_s: float
    ) -> FloatArray:
        """Sample times of ``sources`` strictly inside (start_s, end_s), merged and sorted."""
        parts = []
        for source in sources:
            series = self.cumulative(source.name)
            if series is not None:
                t = series.times_s
                parts.append(t[(t > start_s) & (t < end_s)])
        if not parts:
            return np.empty(0)
        return np.unique(np.concatenate(parts))
