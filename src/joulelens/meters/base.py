"""The read-only meter protocol.

A meter is one energy source (one GPU, one RAPL zone, the CPU-time estimate) seen as a
cumulative energy counter in joules: windows are differences of two readings (kept by
:class:`~joulelens.meters.MeterSet`, math in :mod:`joulelens.meters.windows`), and a
timeline sampler can record the same counter to cut windows after the fact. Nothing here
changes a device; power limits and clocks belong to a separate controller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from joulelens.core.clock import now_s
from joulelens.core.windows import NamedSource
from joulelens.errors import MeterError
from joulelens.records.schema import EnergyBoundary, EnergyMethod

Clock = Callable[[], float]


class SensorUnavailable(MeterError):
    """A sensor this device does not offer (not supported, or no permission to read it)."""


class SeriesSink(Protocol):
    """Where a meter writes timeline points (see :class:`joulelens.meters.Timeline`)."""

    def append(self, series: str, t_s: float, value: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """A meter's cumulative energy at ``t_s`` (shared monotonic clock).

    ``energy_j`` counts from an arbitrary origin fixed per meter; only differences mean
    anything. ``None`` (with a reason) when the source cannot be read at all.
    """

    t_s: float
    energy_j: float | None
    missing_reason: str | None = None


@runtime_checkable
class Meter(NamedSource, Protocol):
    """One energy source, read-only.

    ``update_period_s`` is how often the source refreshes its value; windows shorter than
    ``SHORT_WINDOW_PERIODS`` (:mod:`joulelens.core.windows`) of them carry a warning.
    ``offers_power`` says whether :meth:`sample` writes a ``power_watts:<name>`` series
    itself; when it does not, the timeline sampler derives power from counter deltas.
    :meth:`sample` writes power on every call and slowly changing device state (temperature,
    utilization, clocks, memory, power limit) only when ``state`` is true, so the sampler
    can read state less often.
    """

    @property
    def offers_power(self) -> bool: ...

    def read(self) -> Reading: ...
    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None: ...
    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]: ...
    def close(self) -> None: ...


class UnavailableMeter:
    """The null object: a source that is known to be absent, reported as null with a reason.

    It keeps the absence visible in every window (``joules=None`` and why) instead of the
    source silently disappearing or, worse, counting as 0.
    """

    available = False  # what measurement reads (duck typing) to keep the reason
    offers_power = False
    update_period_s = 0.0

    def __init__(
        self,
        name: str,
        boundary: EnergyBoundary,
        method: EnergyMethod,
        reason: str,
        *,
        clock: Clock = now_s,
    ) -> None:
        self.name = name
        self.boundary = boundary
        self.method = method
        self.reason = reason
        self._clock = clock

    def __repr__(self) -> str:
        return f"UnavailableMeter({self.name!r}, {self.reason!r})"

    def read(self) -> Reading:
        return Reading(self._clock(), None, self.reason)

    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None:
        return None

    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]:
        return ()

    def close(self) -> None:
        return None
