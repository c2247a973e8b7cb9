"""The window math every meter shares: energy between two readings of one meter.

:class:`~joulelens.meters.MeterSet` keeps the open windows; a meter only reads. A meter with
work to do around a window (an integrated GPU polls power meanwhile, a GPU may approximate
windows shorter than one counter update) offers :class:`WindowHooks` as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from joulelens.core.boundaries import boundary_totals
from joulelens.core.windows import (
    SHORT_WINDOW_PERIODS,
    WindowEnergy,
    component_of,
    error_bound_pct,
    is_short,
    unresolvable,
)
from joulelens.meters.base import Meter, Reading
from joulelens.records.schema import EnergyComponent, EnergyMethod


@runtime_checkable
class WindowHooks(Protocol):
    """Optional for a meter. ``window_opened``/``window_closed`` bracket each of its windows;
    ``approximate_j(elapsed_s)`` (instant power x duration, J) stands in for a window shorter
    than one update period, ``None`` leaves such a window null with the reason."""

    def window_opened(self) -> None: ...
    def window_closed(self) -> None: ...
    @property
    def approximate_j(self) -> Callable[[float], float] | None: ...


def _hooks(meter: Meter) -> WindowHooks | None:
    return meter if isinstance(meter, WindowHooks) else None


def open_window(meter: Meter) -> Reading:
    """The reading a window of ``meter`` starts from (after its hooks started, if any)."""
    hooks = _hooks(meter)
    if hooks is None:
        return meter.read()
    hooks.window_opened()
    try:
        return meter.read()
    except BaseException:
        hooks.window_closed()
        raise


def abandon_window(meter: Meter) -> None:
    """Undo :func:`open_window` without reading (another meter failed to open)."""
    hooks = _hooks(meter)
    if hooks is not None:
        hooks.window_closed()


def close_window(meter: Meter, begin: Reading, name: str = "") -> WindowEnergy:
    """The window from ``begin`` to a reading taken now, with what to distrust about it."""
    hooks = _hooks(meter)
    try:
        end = meter.read()
    finally:
        if hooks is not None:
            hooks.window_closed()
    component = window_component(meter, begin, end)
    warnings = list(meter.window_warnings(begin.t_s, end.t_s))
    elapsed_s = end.t_s - begin.t_s
    period_s = meter.update_period_s
    if component.joules is not None and unresolvable(elapsed_s, period_s):
        approximate = hooks.approximate_j if hooks is not None else None
        component, note = unresolvable_window(meter, elapsed_s, approximate)
        if note:
            warnings.append(note)
    elif component.joules is not None:
        short = short_window_warning(meter.name, elapsed_s, period_s)
        if short:
            warnings.append(short)
    return WindowEnergy(
        start_s=begin.t_s,
        end_s=end.t_s,
        components=(component,),
        totals=boundary_totals((component,)),
        warnings=tuple(warnings),
        name=name,
    )


def window_component(meter: Meter, begin: Reading, end: Reading) -> EnergyComponent:
    """The energy between two readings of one meter, null with a reason when unknowable."""
    if begin.energy_j is None or end.energy_j is None:
        return component_of(meter, None, end.missing_reason or begin.missing_reason or "no reading")
    joules = end.energy_j - begin.energy_j
    if joules < 0:
        return component_of(
            meter,
            None,
            f"counter went backwards by {-joules:.3f} J during the window "
            "(device or driver reset?)",
        )
    return component_of(meter, joules)


def short_window_warning(meter_name: str, elapsed_s: float, update_period_s: float) -> str | None:
    if not is_short(elapsed_s, update_period_s):
        return None
    return (
        f"{meter_name}: window of {elapsed_s:.3f} s is shorter than "
        f"{SHORT_WINDOW_PERIODS} x the source's {update_period_s:.3f} s update period; "
        f"its energy may be off by up to {error_bound_pct(elapsed_s, update_period_s):.0f}%"
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
