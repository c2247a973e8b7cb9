"""Curves through a batch-size sweep: monotone cubic (PCHIP) and the logistic baseline.

Both work on ``x = log2(batch)``. :class:`Pchip` is a shape-preserving piecewise cubic
Hermite interpolant (Fritsch-Carlson slopes with the usual one-sided end conditions): it
passes through every point exactly, never overshoots between two points, and is monotone
wherever the data are. :class:`Logistic` is the four-parameter curve
``y = b0 + L / (1 + exp(-k (x - x0)))`` of the kind the ML.ENERGY data toolkit fits to
power, latency and throughput; joulelens keeps it only as the baseline its predictions are
validated against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def _slopes(x: FloatArray, y: FloatArray) -> FloatArray:
    """PCHIP derivatives: harmonic means of neighbouring secants, zero at local extrema."""
    h = np.diff(x)
    secant = np.diff(y) / h
    n = len(x)
    slopes = np.zeros(n)
    if n == 2:
        slopes[:] = secant[0]
        return slopes
    for i in range(1, n - 1):
        before, after = secant[i - 1], secant[i]
        if before * after <= 0:
            continue  # a local extremum (or flat piece): a zero slope keeps it from overshooting
        w_before = 2 * h[i] + h[i - 1]
        w_after = h[i] + 2 * h[i - 1]
        # Weighted harmonic mean of the secants, written without dividing by a secant so
        # that tiny secants cannot overflow.
        denominator = w_before * after + w_after * before
        if denominator != 0:
            slopes[i] = (w_before + w_after) * before * after / denominator
    slopes[0] = _end_slope(h[0], h[1], secant[0], secant[1])
    slopes[-1] = _end_slope(h[-1], h[-2], secant[-1], secant[-2])
    return slopes


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    """One-sided three-point slope, clipped so the end interval stays monotone."""
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if np.sign(slope) != np.sign(d0):
        return 0.0
    if np.sign(d0) != np.sign(d1) and abs(slope) > abs(3 * d0):
        return 3 * d0
    return float(slope)


@dataclass(frozen=True)
class Pchip:
    """Monotone piecewise cubic through ``(x, y)``; defined on ``[x[0], x[-1]]`` only."""

    x: FloatArray
    y: FloatArray
    slopes: FloatArray

    @classmethod
    def fit(cls, x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> Pchip:
        xs = np.asarray(x, dtype=float)
        ys = np.asarray(y, dtype=float)
        if xs.ndim != 1 or xs.shape != ys.shape or len(xs) < 2:
            raise ValueError("PCHIP needs two or more points with matching x and y")
        if np.any(np.diff(xs) <= 0):
            raise ValueError("PCHIP needs strictly increasing x")
        return cls(xs, ys, _slopes(xs, ys))

    @property
    def x_min(self) -> float:
        return float(self.x[0])

    @property
    def x_max(self) -> float:
        return float(self.x[-1])

    def __call__(self, t: float) -> float:
        if not self.x_min <= t <= self.x_max:
            raise ValueError(f"{t} is outside the interpolation range [{self.x_min}, {self.x_max}]")
        i = int(np.clip(np.searchsorted(self.x, t, side="right") - 1, 0, len(self.x) - 2))
        h = self.x[i + 1] - self.x[i]
        s = (t - self.x[i]) / h
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        return float(
            h00 * self.y[i]
            + h10 * h * self.slopes[i]
            + h01 * self.y[i + 1]
            + h11 * h * self.slopes[i + 1]
        )


# Grid of the logistic baseline's nonlinear parameters; b0 and L are solved exactly for each.
_LOGISTIC_K = np.logspace(-2, 2, 60)
_LOGISTIC_X0_STEPS = 40


@dataclass(frozen=True)
class Logistic:
    """``y = b0 + L / (1 + exp(-k (x - x0)))``, fitted by grid over (x0, k) + least squares."""

    b0: float
    amplitude: float
    k: float
    x0: float

    @classmethod
    def fit(cls, x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> Logistic:
        xs = np.asarray(x, dtype=float)
        ys = np.asarray(y, dtype=float)
        if len(xs) == 0 or xs.shape != ys.shape:
            raise ValueError("logistic fit needs points with matching x and y")
        if len(xs) == 1 or np.allclose(ys, ys[0]):
            return cls(float(ys.mean()), 0.0, 1.0, float(xs[0]))
        x0s = np.linspace(xs.min() - 1.0, xs.max() + 1.0, _LOGISTIC_X0_STEPS)
        k, x0 = np.meshgrid(_LOGISTIC_K, x0s)
        k, x0 = k.ravel()[:, None], x0.ravel()[:, None]
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-k * (xs[None, :] - x0)))  # (grid, points)
        # Per grid row, ordinary least squares of y on [1, s] in closed form.
        s_mean = s.mean(axis=1, keepdims=True)
        y_mean = ys.mean()
        s_var = ((s - s_mean) ** 2).sum(axis=1)
        cov = ((s - s_mean) * (ys - y_mean)).sum(axis=1)
        flat = s_var < 1e-15  # the sigmoid is constant over the points: only b0 is identified
        amplitude = np.where(flat, 0.0, cov / np.where(flat, 1.0, s_var))
        b0 = y_mean - amplitude * s_mean[:, 0]
        sse = ((ys[None, :] - (b0[:, None] + amplitude[:, None] * s)) ** 2).sum(axis=1)
        best = int(np.argmin(sse))
        return cls(float(b0[best]), float(amplitude[best]), float(k[best, 0]), float(x0[best, 0]))

    def __call__(self, t: float) -> float:
        z = self.k * (t - self.x0)
        sigmoid = 1.0 / (1.0 + np.exp(-z)) if z >= 0 else np.exp(z) / (1.0 + np.exp(z))
        return float(self.b0 + self.amplitude * sigmoid)
