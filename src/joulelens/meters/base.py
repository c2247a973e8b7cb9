"""The read-only meter protocol and the window math every meter shares.

A meter is one energy source (one GPU, one RAPL zone, the CPU-time estimate) seen as a
cumulative energy counter in joules: windows are differences of two readings, and a
timeline sampler can record the same counter to cut windows after the fact. Nothing here
changes a device; power limits and clocks belong to a separate controller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters.totals import boundary_totals
from joulelens.records.schema import EnergyBoundary, EnergyComponent, EnergyMethod

Clock = Callable[[], float]

# A window shorter than this many counter update periods carries a quantisation error of
# more than 10%; the paper's windows are seconds long for this reason.
SHORT_WINDOW_PERIODS = 10


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
class Meter(Protocol):
    """One energy source, read-only.

    ``update_period_s`` is how often the source refreshes its value; windows shorter than
    ``SHORT_WINDOW_PERIODS`` of them carry a warning. ``offers_power`` says whether
    :meth:`sample` writes a ``power_watts:<name>`` series itself; when it does not, the
    timeline sampler derives power from counter deltas. :meth:`sample` writes power on
    every call and slowly changing device state (temperature, utilization, clocks, memory,
    power limit) only when ``state`` is true, so the sampler can read state less often.
    """

    @property
    def name(self) -> str: ...
    @property
    def boundary(self) -> EnergyBoundary: ...
    @property
    def method(self) -> EnergyMethod: ...
    @property
    def update_period_s(self) -> float: ...
    @property
    def offers_power(self) -> bool: ...

    def read(self) -> Reading: ...
    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None: ...
    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]: ...
    def begin_window(self, name: str) -> None: ...
    def end_window(self, name: str) -> WindowResult: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WindowResult:
    """Energy over one named window: per device, summed per boundary, and what to distrust."""

    name: str
    start_s: float
    end_s: float
    components: tuple[EnergyComponent, ...]
    totals: tuple[EnergyComponent, ...]
    warnings: tuple[str, ...] = ()

    @property
    def elapsed_s(self) -> float:
        return self.end_s - self.start_s

    def component(self, name: str) -> EnergyComponent:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    def total(self, boundary: EnergyBoundary) -> EnergyComponent | None:
        """The summed figure for ``boundary``, or ``None`` when no meter covers it."""
        for component in self.totals:
            if component.boundary is boundary:
                return component
        return None


def window_component(meter: Meter, begin: Reading, end: Reading) -> EnergyComponent:
    """The energy between two readings of one meter, null with a reason when unknowable."""

    def component(joules: float | None, reason: str | None = None) -> EnergyComponent:
        return EnergyComponent(
            name=meter.name,
            joules=joules,
            boundary=meter.boundary,
            method=meter.method,
            missing_reason=reason,
        )

    if begin.energy_j is None or end.energy_j is None:
        return component(None, end.missing_reason or begin.missing_reason or "no reading")
    joules = end.energy_j - begin.energy_j
    if joules < 0:
        return component(
            None,
            f"counter went backwards by {-joules:.3f} J during the window "
            "(device or driver reset?)",
        )
    return component(joules)


def short_window_warning(meter_name: str, elapsed_s: float, update_period_s: float) -> str | None:
    if update_period_s <= 0 or elapsed_s >= SHORT_WINDOW_PERIODS * update_period_s:
        return None
    bound_pct = 100.0 * update_period_s / elapsed_s if elapsed_s > 0 else float("inf")
    return (
        f"{meter_name}: window of {elapsed_s:.3f} s is shorter than "
        f"{SHORT_WINDOW_PERIODS} x the source's {update_period_s:.3f} s update period; "
        f"its energy may be off by up to {bound_pct:.0f}%"
    )


def unresolvable_window(
    meter: Meter, elapsed_s: float, approximate: Callable[[float], float] | None
) -> tuple[EnergyComponent, str | None]:
    """A window shorter than one counter update: null with the reason, or, when
    ``approximate`` is given, power x duration labelled as that approximation."""
    period = meter.update_period_s
    if approximate is not None:
        joules = approximate(elapsed_s)
        note = (
            f"{meter.name}: window of {elapsed_s:.3f} s is shorter than the counter's "
            f"{period:.3f} s update period; its energy is approximated as instant power x "
            "duration (method integrated), not read from the counter"
        )
        component = EnergyComponent(
            name=meter.name,
            joules=joules,
            boundary=meter.boundary,
            method=EnergyMethod.INTEGRATED,
        )
        return component, note
    reason = (
        f"window of {elapsed_s:.3f} s is shorter than {meter.name}'s {period:.3f} s counter "
        "update period: the counter cannot resolve it (it may read 0 J or a whole update)"
    )
    component = EnergyComponent(
        name=meter.name,
        joules=None,
        boundary=meter.boundary,
        method=meter.method,
        missing_reason=reason,
    )
    return component, None


class Windows:
    """Named open windows of one meter; each meter holds one (composition, not a base class).

    ``approximate(elapsed_s) -> J`` (instant power x duration) stands in for windows shorter
    than one update period; without it they are null with the reason.
    """

    def __init__(
        self, meter: Meter, *, approximate: Callable[[float], float] | None = None
    ) -> None:
        self._meter = meter
        self._approximate = approximate
        self._open: dict[str, Reading] = {}
        self._lock = threading.Lock()

    def begin(self, name: str) -> None:
        reading = self._meter.read()
        with self._lock:
            if name in self._open:
                raise MeterError(f"{self._meter.name}: window {name!r} is already open")
            self._open[name] = reading

    def end(self, name: str) -> WindowResult:
        with self._lock:
            begin = self._open.pop(name, None)
        if begin is None:
            raise MeterError(f"{self._meter.name}: no open window named {name!r}")
        end = self._meter.read()
        component = window_component(self._meter, begin, end)
        warnings = list(self._meter.window_warnings(begin.t_s, end.t_s))
        elapsed_s = end.t_s - begin.t_s
        period_s = self._meter.update_period_s
        if component.joules is not None and 0 < elapsed_s < period_s:
            component, note = unresolvable_window(self._meter, elapsed_s, self._approximate)
            if note:
                warnings.append(note)
        elif component.joules is not None:
            short = short_window_warning(self._meter.name, elapsed_s, period_s)
            if short:
                warnings.append(short)
        return WindowResult(
            name=name,
            start_s=begin.t_s,
            end_s=end.t_s,
            components=(component,),
            totals=boundary_totals((component,)),
            warnings=tuple(warnings),
        )


class UnavailableMeter:
    """The null object: a source that is known to be absent, reported as null with a reason.

    It keeps the absence visible in every window (``joules=None`` and why) instead of the
    source silently disappearing or, worse, counting as 0.
    """

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
        self._windows = Windows(self)

    def __repr__(self) -> str:
        return f"UnavailableMeter({self.name!r}, {self.reason!r})"

    def read(self) -> Reading:
        return Reading(self._clock(), None, self.reason)

    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None:
        return None

    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]:
        return ()

    def begin_window(self, name: str) -> None:
        self._windows.begin(name)

    def end_window(self, name: str) -> WindowResult:
        return self._windows.end(name)

    def close(self) -> None:
        return None
