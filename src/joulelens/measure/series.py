"""Sampled time series and the two ways of reading them over a window.

* Cumulative series (energy counters): linear between samples, so the energy between any
  two times is a difference of interpolated values and differences telescope exactly.
* Gauges (power, temperature, server metrics): either averaged as a step function (each
  sample holds until the next, as Prometheus gauges are read) or summarised by the samples
  that fall inside a window.

Times are seconds on :func:`joulelens.core.clock.now_s`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class SampledSeries:
    """Parallel arrays of sample times (s, increasing) and values."""

    times_s: FloatArray
    values: FloatArray

    @classmethod
    def of(cls, times_s: Sequence[float], values: Sequence[float]) -> SampledSeries:
        times = np.asarray(times_s, dtype=np.float64)
        vals = np.asarray(values, dtype=np.float64)
        if times.shape != vals.shape or times.ndim != 1:
            raise ValueError(f"times ({times.shape}) and values ({vals.shape}) must match")
        if times.size > 1 and bool(np.any(np.diff(times) < 0)):
            raise ValueError("sample times must not decrease")
        return cls(times, vals)

    def __len__(self) -> int:
        return int(self.times_s.size)

    def covers(self, start_s: float, end_s: float) -> bool:
        return len(self) >= 2 and self.times_s[0] <= start_s and end_s <= self.times_s[-1]

    def span_text(self) -> str:
        if len(self) == 0:
            return "no samples"
        return f"{self.times_s[0]:.3f}..{self.times_s[-1]:.3f} s"

    def at(self, t_s: FloatArray | float) -> FloatArray:
        """Linear interpolation (for cumulative series); the caller checks coverage."""
        return np.asarray(np.interp(t_s, self.times_s, self.values), dtype=np.float64)

    def inside(self, start_s: float, end_s: float) -> FloatArray:
        """Values of the samples taken in [start_s, end_s]."""
        lo = np.searchsorted(self.times_s, start_s, side="left")
        hi = np.searchsorted(self.times_s, end_s, side="right")
        return self.values[lo:hi]

    def step_mean(self, start_s: float, end_s: float) -> float | None:
        """Time-weighted mean over [start_s, end_s], each sample held until the next.

        The sample before ``start_s`` holds from ``start_s``; before the first sample
        nothing is known, so that stretch is left out. ``None`` when no sample is at or
        before ``end_s``.
        """
        if end_s <= start_s or len(self) == 0 or self.times_s[0] > end_s:
            return None
        times, values = self.times_s, self.values
        lo = int(np.searchsorted(times, start_s, side="right")) - 1  # sample holding at start
        hi = int(np.searchsorted(times, end_s, side="right"))
        first = max(lo, 0)
        begin = max(start_s, float(times[first]))
        knots = np.concatenate(([begin], times[first + 1 : hi], [end_s]))
        held = values[first:hi]
        widths = np.diff(knots)
        total = float(widths.sum())
        if total <= 0:
            return float(held[-1])
        return float(np.dot(held, widths) / total)

    def inside_step_mean(self, start_s: float, end_s: float) -> float | None:
        """:meth:`step_mean` from the first sample inside [start_s, end_s] to ``end_s``.

        For windows whose start means something (a steady state starts when the ramp-up
        ends): the sample before the start describes the state before it, so it is not
        held into the window. The ML.ENERGY harness, too, averages the Prometheus
        snapshots inside the steady state only.
        """
        first = self._first_inside_s(start_s, end_s)
        return None if first is None else self.step_mean(first, end_s)

    def inside_step_max(self, start_s: float, end_s: float) -> float | None:
        """:meth:`step_max` over the samples inside the window (as above)."""
        first = self._first_inside_s(start_s, end_s)
        return None if first is None else self.step_max(first, end_s)

    def _first_inside_s(self, start_s: float, end_s: float) -> float | None:
        lo = int(np.searchsorted(self.times_s, start_s, side="left"))
        if lo >= len(self) or self.times_s[lo] > end_s:
            return None
        return float(self.times_s[lo])

    def step_max(self, start_s: float, end_s: float) -> float | None:
        """Largest value in force during [start_s, end_s) (step semantics, as above; a
        sample taken exactly at ``end_s`` holds for no time and is left out)."""
        if len(self) == 0 or self.times_s[0] > end_s:
            return None
        lo = max(int(np.searchsorted(self.times_s, start_s, side="right")) - 1, 0)
        hi = max(int(np.searchsorted(self.times_s, end_s, side="left")), lo + 1)
        return float(self.values[lo:hi].max())
