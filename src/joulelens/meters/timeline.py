"""Columnar timeline: per series, parallel ``array('d')`` of times (s) and values.

Series names carry the unit and the device: ``power_watts:gpu:0``, ``temperature_c:gpu:0``,
``gpu_utilization_pct:gpu:0``, ``sm_clock_mhz:gpu:0``, ``memory_used_bytes:gpu:0``,
``power_limit_watts:gpu:0``, and for every meter ``energy_joules:<meter>``: its cumulative
energy since the sampler started, from which any window can be cut after the run
(:func:`energy_between_j`). Times are seconds on :func:`joulelens.core.clock.now_s`.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from collections.abc import Sequence

from joulelens.errors import MeterError
from joulelens.records.schema import TimelineSample


class Timeline:
    """Append-only series; the sampler holds :attr:`lock` around each tick's appends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._series: dict[str, tuple[array, array]] = {}

    def append(self, series: str, t_s: float, value: float) -> None:
        columns = self._series.get(series)
        if columns is None:
            columns = self._series[series] = (array("d"), array("d"))
        columns[0].append(t_s)
        columns[1].append(value)

    @property
    def series_names(self) -> list[str]:
        with self.lock:
            return sorted(self._series)

    def series(self, name: str) -> tuple[array, array]:
        """Copies of (times_s, values) for one series; ``KeyError`` if never recorded."""
        with self.lock:
            times, values = self._series[name]
            return array("d", times), array("d", values)

    def __contains__(self, name: object) -> bool:
        return name in self._series

    def __len__(self) -> int:
        """Total number of points over all series."""
        with self.lock:
            return sum(len(times) for times, _ in self._series.values())

    def to_samples(self, origin_s: float = 0.0) -> list[TimelineSample]:
        """Rows for ``timeline.parquet``; ``t_s`` becomes seconds since ``origin_s``."""
        with self.lock:
            return [
                TimelineSample(t_s=t - origin_s, series=name, value=v)
                for name, (times, values) in sorted(self._series.items())
                for t, v in zip(times, values, strict=True)
            ]

    def to_columns(self, origin_s: float = 0.0) -> dict[str, list[float] | list[str]]:
        """The same rows as three columns (``t_s``, ``series``, ``value``), cheaper to write."""
        t_col: list[float] = []
        name_col: list[str] = []
        value_col: list[float] = []
        with self.lock:
            for name, (times, values) in sorted(self._series.items()):
                t_col.extend(t - origin_s for t in times)
                name_col.extend([name] * len(times))
                value_col.extend(values)
        return {"t_s": t_col, "series": name_col, "value": value_col}


def _interpolate(times: Sequence[float], values: Sequence[float], t_s: float) -> float:
    i = bisect_left(times, t_s)
    if i < len(times) and times[i] == t_s:
        return values[i]
    t0, t1 = times[i - 1], times[i]
    return values[i - 1] + (values[i] - values[i - 1]) * (t_s - t0) / (t1 - t0)


def _check_covers(times: Sequence[float], start_s: float, end_s: float, what: str) -> None:
    if end_s < start_s:
        raise ValueError(f"window ends ({end_s}) before it starts ({start_s})")
    if len(times) < 2 or start_s < times[0] or end_s > times[-1]:
        span = f"{times[0]:.3f}..{times[-1]:.3f} s" if times else "nothing"
        raise MeterError(f"{what} covers {span}, not the window {start_s:.3f}..{end_s:.3f} s")


def energy_between_j(
    times_s: Sequence[float], energy_j: Sequence[float], start_s: float, end_s: float
) -> float:
    """Energy in a window from a cumulative ``energy_joules:*`` series (linear in between).

    The series must cover the window; with a 100 ms NVML counter and 10 Hz samples the
    interpolation error is at most about one sample's energy at each end.
    """
    _check_covers(times_s, start_s, end_s, "energy series")
    return _interpolate(times_s, energy_j, end_s) - _interpolate(times_s, energy_j, start_s)


def integrate_power_j(
    times_s: Sequence[float], power_w: Sequence[float], start_s: float, end_s: float
) -> float:
    """Trapezoidal energy of a ``power_watts:*`` series over a window it covers."""
    _check_covers(times_s, start_s, end_s, "power series")
    first = bisect_left(times_s, start_s)
    last = bisect_left(times_s, end_s)
    points_t = [start_s, *times_s[first:last], end_s]
    points_w = [
        _interpolate(times_s, power_w, start_s),
        *power_w[first:last],
        _interpolate(times_s, power_w, end_s),
    ]
    return sum(
        0.5 * (points_w[k] + points_w[k + 1]) * (points_t[k + 1] - points_t[k])
        for k in range(len(points_t) - 1)
    )
