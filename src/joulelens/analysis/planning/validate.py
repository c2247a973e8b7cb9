"""Leave-one-out validation of the predictions, against the logistic baseline.

For every setup with three or more measured batch sizes, each *interior* batch (neither the
smallest nor the largest) is held out: all runs at that batch are removed, each method is
fitted to what is left, and its energy-per-unit prediction at the held-out batch is compared
with every held-out run. The held-out runs never reach the fit: methods receive the
remaining points only (see :func:`held_out_points`).

Methods compared:

* ``pchip``          joulelens: PCHIP of log power and log throughput in log2(batch),
                     energy = power / throughput (the sweep curve's prediction)
* ``logistic``       the ML.ENERGY toolkit's kind: a four-parameter logistic in log2(batch)
                     fitted to power and to throughput, energy = power / throughput
* ``logistic-energy`` the same logistic fitted to log energy per unit directly
* ``linear``         straight lines in (log2 batch, log energy): the simplest interpolant
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from joulelens.analysis.planning.curves import SweepCurve, group_setups
from joulelens.analysis.planning.interpolate import Logistic
from joulelens.records import RunRecord

# Targets of the issue for energy per unit at interior points.
TARGET_MEDIAN_PCT = 5.0
TARGET_P90_PCT = 15.0

Points = dict[str, dict[int, float]]  # quantity -> batch -> value (held-out batch removed)
Method = Callable[[SweepCurve, Points, int], float | None]


def _pchip(train: SweepCurve, _points: Points, batch: int) -> float | None:
    return train.value("energy_per_unit_joules", batch)


def _logistic_power_throughput(_train: SweepCurve, points: Points, batch: int) -> float | None:
    power, throughput = points["power_watts"], points["throughput_units_per_sec"]
    if len(power) < 2 or len(throughput) < 2:
        return None
    x = math.log2(batch)
    p = Logistic.fit(np.log2(list(power)), list(power.values()))(x)
    t = Logistic.fit(np.log2(list(throughput)), list(throughput.values()))(x)
    return p / t if t > 0 and p > 0 else None


def _logistic_energy(_train: SweepCurve, points: Points, batch: int) -> float | None:
    energy = points["energy_per_unit_joules"]
    fit = Logistic.fit(np.log2(list(energy)), np.log(list(energy.values())))
    return math.exp(fit(math.log2(batch)))


def _linear(_train: SweepCurve, points: Points, batch: int) -> float | None:
    energy = points["energy_per_unit_joules"]
    bs = sorted(energy)
    ys = [math.log(energy[b]) for b in bs]
    return math.exp(float(np.interp(math.log2(batch), np.log2(bs), ys)))


METHODS: dict[str, Method] = {
    "pchip": _pchip,
    "logistic": _logistic_power_throughput,
    "logistic-energy": _logistic_energy,
    "linear": _linear,
}
METHOD_LABELS = {
    "pchip": "joulelens: PCHIP of log power and log throughput in log2(batch)",
    "logistic": "ML.ENERGY-style logistic in log2(batch) of power and of throughput",
    "logistic-energy": "logistic in log2(batch) of log energy per unit",
    "linear": "linear in (log2 batch, log energy per unit)",
}


@dataclass(frozen=True)
class HeldOut:
    setup: str
    task: str
    kind: str
    batch: int
    run_id: str
    measured_joules: float
    predicted_joules: dict[str, float | None]

    def error_pct(self, method: str) -> float | None:
        p = self.predicted_joules.get(method)
        return None if p is None else abs(p / self.measured_joules - 1.0) * 100.0


@dataclass
class MethodScore:
    method: str
    label: str
    n: int
    median_pct: float | None
    p90_pct: float | None
    mean_pct: float | None
    by_task: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    by_kind: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


@dataclass
class ValidationReport:
    setups: int
    setups_with_interior: int
    points: list[HeldOut]
    scores: dict[str, MethodScore]

    @property
    def meets_targets(self) -> bool:
        s = self.scores["pchip"]
        return (
            s.median_pct is not None
            and s.p90_pct is not None
            and s.median_pct < TARGET_MEDIAN_PCT
            and s.p90_pct < TARGET_P90_PCT
        )

    @property
    def beats_logistic(self) -> bool:
        ours, base = self.scores["pchip"], self.scores["logistic"]
        if None in (ours.median_pct, ours.p90_pct, base.median_pct, base.p90_pct):
            return False
        return ours.median_pct < base.median_pct and ours.p90_pct < base.p90_pct  # type: ignore[operator]

    def to_dict(self, with_points: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "setups": self.setups,
            "setups_with_interior_points": self.setups_with_interior,
            "held_out_runs": len(self.points),
            "targets": {"median_pct": TARGET_MEDIAN_PCT, "p90_pct": TARGET_P90_PCT},
            "meets_targets": self.meets_targets,
            "beats_logistic": self.beats_logistic,
            "scores": {m: vars(s) for m, s in self.scores.items()},
        }
        if with_points:
            out["points"] = [
                vars(p) | {"error_pct": {m: p.error_pct(m) for m in METHODS}} for p in self.points
            ]
        return out


def held_out_points(curve: SweepCurve, batch: int) -> Points:
    """The curve's measured values with ``batch`` removed: all a method may see."""
    return {q: {b: v for b, v in pb.items() if b != batch} for q, pb in curve.values.items()}


def _stats(errors: list[float]) -> tuple[float | None, float | None, float | None]:
    if not errors:
        return None, None, None
    arr = np.asarray(errors)
    return float(np.median(arr)), float(np.percentile(arr, 90)), float(arr.mean())


def _breakdown(
    points: list[HeldOut], method: str, key: Callable[[HeldOut], str]
) -> dict[str, dict[str, float | int | None]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for p in points:
        if (e := p.error_pct(method)) is not None:
            groups[key(p)].append(e)
    out: dict[str, dict[str, float | int | None]] = {}
    for name, errs in sorted(groups.items()):
        med, p90, _ = _stats(errs)
        out[name] = {"n": len(errs), "median_pct": med, "p90_pct": p90}
    return out


def leave_one_out(
    records: Iterable[RunRecord], methods: Iterable[str] = tuple(METHODS)
) -> ValidationReport:
    chosen = {m: METHODS[m] for m in methods}
    setups = group_setups(records)
    points: list[HeldOut] = []
    with_interior = 0
    for runs in setups.values():
        batches = sorted({r.batch for r in runs if r.batch is not None})
        if len(batches) < 3:
            continue
        with_interior += 1
        curve = SweepCurve.fit(runs)
        for b in batches[1:-1]:
            train = curve.without(b)
            seen = held_out_points(curve, b)
            predicted = {m: fn(train, seen, b) for m, fn in chosen.items()}
            for r in runs:
                if r.batch == b and r.energy_per_unit_joules:
                    points.append(
                        HeldOut(
                            curve.key.describe(),
                            r.task,
                            r.kind.value,
                            b,
                            r.run_id,
                            r.energy_per_unit_joules,
                            predicted,
                        )
                    )
    scores = {}
    for m in chosen:
        errors = [e for p in points if (e := p.error_pct(m)) is not None]
        med, p90, mean = _stats(errors)
        score = MethodScore(m, METHOD_LABELS[m], len(errors), med, p90, mean)
        score.by_task = _breakdown(points, m, lambda p: p.task)
        score.by_kind = _breakdown(
            points, m, lambda p: "diffusion" if p.kind == "diffusion" else "llm"
        )
        scores[m] = score
    return ValidationReport(len(setups), with_interior, points, scores)
