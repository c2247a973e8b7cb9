"""Figures of one rolling window, cut from the history at the newest tick.

A window ends at the newest tick and starts at the tick closest to ``window_s`` before it.
Energy is the difference of device totals, summed per boundary with the meters' rules
(:mod:`joulelens.core.boundaries`: measured and estimated never mix); tokens are the
difference of the endpoint's output-token total. Gauges (running batch, waiting requests,
KV-cache usage) are means over the window's samples. An endpoint has figures for a window
only when it answered at both of the window's ends; otherwise its series are absent.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from joulelens.core.boundaries import boundary_totals
from joulelens.records import EnergyBoundary, EnergyComponent, EnergyMethod
from joulelens.watch.history import History, Tick
from joulelens.watch.reading import LiveReading, batch_limit


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One meter as the exporter labels it; ``reason`` set when it cannot be read at all."""

    name: str
    boundary: EnergyBoundary
    method: EnergyMethod
    reason: str | None = None


@dataclass(frozen=True)
class WindowFigures:
    """One endpoint (or the ``all`` aggregate) over one window; energy per boundary total."""

    endpoint: str
    window: str
    window_s: float
    start: Tick
    end: Tick
    tokens: float | None
    energy: tuple[EnergyComponent, ...]  # boundary totals that have a value
    idle_w: Mapping[EnergyBoundary, float] = field(default_factory=dict)
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    kv_usage_max: float | None = None
    preempted: float | None = None
    reading: LiveReading | None = None

    @property
    def duration_s(self) -> float:
        return self.end.t_s - self.start.t_s

    def power_w(self, total: EnergyComponent) -> float:
        assert total.joules is not None
        return total.joules / self.duration_s

    def joules_per_token(self, total: EnergyComponent) -> float | None:
        """Energy per output token; ``None`` when no token was generated (undefined)."""
        if self.tokens is None or self.tokens <= 0 or total.joules is None:
            return None
        return total.joules / self.tokens

    def tokens_per_joule(self, total: EnergyComponent) -> float | None:
        if self.tokens is None or not total.joules:
            return None
        return self.tokens / total.joules

    def static_ratio(self, total: EnergyComponent) -> float | None:
        """Idle power x duration / energy for the total's boundary, when idle is known."""
        idle_w = self.idle_w.get(total.boundary)
        if idle_w is None or not total.joules:
            return None
        return idle_w * self.duration_s / total.joules


def window_start(history: History, end: Tick, window_s: float, period_s: float) -> Tick | None:
    """The tick a window ending at ``end`` starts at, or ``None`` while the history is
    shorter than the window (or a stall left no tick near its start)."""
    start = history.at_or_before(end.t_s - window_s + period_s / 2)
    if start is None or start.index == end.index:
        return None
    tolerance_s = max(2 * period_s, 0.1 * window_s)
    if abs((end.t_s - start.t_s) - window_s) > tolerance_s:
        return None
    return start


def device_components(
    start: Tick, end: Tick, devices: Sequence[DeviceInfo]
) -> tuple[EnergyComponent, ...]:
    """Each device's energy between two ticks, null with a reason when unknown."""
    out = []
    for device in devices:
        first, last = start.energy_j.get(device.name), end.energy_j.get(device.name)
        reason = device.reason
        if reason is None and (first is None or last is None):
            reason = "not readable at the window's " + ("start" if first is None else "end")
        joules = None if reason is not None or first is None or last is None else last - first
        out.append(
            EnergyComponent(
                name=device.name,
                joules=joules,
                boundary=device.boundary,
                method=device.method,
                missing_reason=reason if joules is None else None,
            )
        )
    return tuple(out)


def idle_by_boundary(
    idle_watts: Mapping[str, float], devices: Sequence[DeviceInfo]
) -> dict[EnergyBoundary, float]:
    """Idle power per boundary for ``devices`` (same summing rules as energy); boundaries
    with a device of unknown idle power are left out."""
    parts = [
        EnergyComponent(
            name=d.name,
            joules=idle_watts.get(d.name),
            boundary=d.boundary,
            method=d.method,
            missing_reason=None if d.name in idle_watts else "no idle baseline",
        )
        for d in devices
    ]
    return {t.boundary: t.joules for t in boundary_totals(parts) if t.joules is not None}


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def endpoint_window(
    label: str,
    window: str,
    window_s: float,
    start: Tick,
    end: Tick,
    samples: Sequence[Tick],
    components: Sequence[EnergyComponent],
    *,
    cap: int | None,
    idle_w: Mapping[EnergyBoundary, float],
) -> WindowFigures | None:
    """One endpoint's figures, or ``None`` when it was down at either end of the window."""
    first, last = start.endpoint(label), end.endpoint(label)
    if not (first.up and last.up):
        return None
    tokens = None if first.tokens is None or last.tokens is None else last.tokens - first.tokens
    up = [t.endpoint(label) for t in samples if t.endpoint(label).up]
    running = _mean([s.running for s in up])
    waiting = _mean([s.waiting for s in up])
    kv = _mean([s.kv_usage for s in up])
    kv_values = [s.kv_usage for s in up if s.kv_usage is not None]
    preempted = (
        None
        if first.preemptions is None or last.preemptions is None
        else last.preemptions - first.preemptions
    )
    totals = tuple(t for t in boundary_totals(components) if t.joules is not None)
    return WindowFigures(
        endpoint=label,
        window=window,
        window_s=window_s,
        start=start,
        end=end,
        tokens=tokens,
        energy=totals,
        idle_w=idle_w,
        running=running,
        waiting=waiting,
        kv_usage=kv,
        kv_usage_max=max(kv_values) if kv_values else None,
        preempted=preempted,
        reading=batch_limit(running, waiting, kv, preempted, cap),
    )


def aggregate_window(
    label: str,
    window: str,
    window_s: float,
    start: Tick,
    end: Tick,
    endpoints: Sequence[str],
    components: Sequence[EnergyComponent],
    idle_w: Mapping[EnergyBoundary, float],
) -> WindowFigures | None:
    """Every endpoint together on every device: only when all answered at both ends."""
    ends = [(start.endpoint(e), end.endpoint(e)) for e in endpoints]
    if not all(a.up and b.up for a, b in ends):
        return None
    deltas = [
        None if a.tokens is None or b.tokens is None else b.tokens - a.tokens for a, b in ends
    ]
    tokens = None if any(d is None for d in deltas) else sum(d for d in deltas if d is not None)
    totals = tuple(t for t in boundary_totals(components) if t.joules is not None)
    return WindowFigures(label, window, window_s, start, end, tokens, totals, idle_w)
