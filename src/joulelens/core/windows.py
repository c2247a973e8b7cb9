"""Energy over one window, and the rule for windows too short to trust.

The meters produce a :class:`WindowEnergy` from begin/end counter reads; the compile step
cuts the same type from a timeline. Either way a source refreshing every ``period`` cannot
resolve a window shorter than one period, and one shorter than ``SHORT_WINDOW_PERIODS``
periods may be off by more than 10%; the paper's windows are seconds long for this reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from joulelens.core.boundaries import HEADLINE_ORDER
from joulelens.records.schema import EnergyBoundary, EnergyComponent, EnergyMethod

SHORT_WINDOW_PERIODS = 10


class NamedSource(Protocol):
    """What names an energy figure and says how it was obtained: a meter, or the compile
    step's record of one."""

    @property
    def name(self) -> str: ...
    @property
    def boundary(self) -> EnergyBoundary: ...
    @property
    def method(self) -> EnergyMethod: ...
    @property
    def update_period_s(self) -> float: ...


def component_of(
    source: NamedSource, joules: float | None, reason: str | None = None
) -> EnergyComponent:
    """``source``'s energy over a window, or null with ``reason``."""
    return EnergyComponent(
        name=source.name,
        joules=joules,
        boundary=source.boundary,
        method=source.method,
        missing_reason=reason,
    )


def unresolvable(duration_s: float, update_period_s: float) -> bool:
    """A counter refreshing every ``update_period_s`` cannot resolve the window at all."""
    return 0 < duration_s < update_period_s


def is_short(duration_s: float, resolution_s: float) -> bool:
    """Shorter than ``SHORT_WINDOW_PERIODS`` resolutions: worth a warning."""
    return resolution_s > 0 and duration_s < SHORT_WINDOW_PERIODS * resolution_s


def error_bound_pct(duration_s: float, resolution_s: float) -> float:
    """How far off the window's energy may be: one resolution over its length, in %."""
    return 100.0 * resolution_s / duration_s if duration_s > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class WindowEnergy:
    """Energy over one window: one component per source, the per-boundary totals
    (:func:`joulelens.core.boundaries.boundary_totals`), and what to distrust.

    ``name`` is the meters' window name; a window cut from a timeline has none.
    """

    start_s: float
    end_s: float
    components: tuple[EnergyComponent, ...]
    totals: tuple[EnergyComponent, ...]
    warnings: tuple[str, ...] = ()
    name: str = ""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def component(self, name: str) -> EnergyComponent:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    def total(self, boundary: EnergyBoundary) -> EnergyComponent | None:
        """The summed figure for ``boundary``, or ``None`` when no source covers it."""
        for component in self.totals:
            if component.boundary is boundary:
                return component
        return None

    def headline(self, boundary: EnergyBoundary | None = None) -> EnergyComponent | None:
        """The total a run reports: ``boundary`` if given, else the first of
        :data:`HEADLINE_ORDER` with a value, else the first covered one (null, with why)."""
        if boundary is not None:
            return self.total(boundary)
        covered = [t for b in HEADLINE_ORDER if (t := self.total(b)) is not None]
        for total in covered:
            if total.joules is not None:
                return total
        return covered[0] if covered else (self.totals[0] if self.totals else None)
