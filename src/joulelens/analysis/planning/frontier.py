"""The time-energy Pareto frontier: configurations no other one beats on both latency and
energy per unit of work.

A point is *dominated* when another point is at least as fast and at least as cheap and
strictly better in one of the two. Exact duplicates do not dominate each other, so two runs
with the same (latency, energy) are both on the frontier.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from joulelens.analysis.planning.candidates import (
    Candidate,
    LatencyMetric,
    candidates,
    check_latency_available,
)
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord


def pareto_mask(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (latency, energy) points, minimising both: ``True`` where a point is not dominated."""
    return [i == j for i, j in enumerate(_dominators(points))]


def _dominators(points: Sequence[tuple[float, float]]) -> list[int]:
    """Per point, the index of a point that dominates it, or its own index when none does.

    Sweep by latency, then energy: a point is dominated exactly when some earlier point in
    that order has energy <= its own and is not an exact duplicate of it.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1], i))
    out = list(range(len(points)))
    best: int | None = None  # index of the lowest-energy point seen so far
    for i in order:
        if best is not None and points[best][1] <= points[i][1] and points[best] != points[i]:
            out[i] = best
        elif best is None or points[i][1] < points[best][1]:
            best = i
    return out


@dataclass(frozen=True)
class FrontierPoint:
    candidate: Candidate
    on_frontier: bool
    dominated_by: str | None  # run id (or label) of a point that beats it on both axes

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.candidate.to_dict(),
            "on_frontier": self.on_frontier,
            "dominated_by": self.dominated_by,
        }


def frontier_of(points: Sequence[Candidate]) -> list[FrontierPoint]:
    coords = [(c.latency_ms, c.energy_per_unit_joules) for c in points]
    doms = _dominators(coords)
    out = []
    for i, (c, d) in enumerate(zip(points, doms, strict=True)):
        by = None if d == i else (points[d].run_id or points[d].label)
        out.append(FrontierPoint(c, d == i, by))
    out.sort(key=lambda p: (p.candidate.latency_ms, p.candidate.energy_per_unit_joules))
    return out


def pareto_frontier(
    records: Iterable[RunRecord],
    metric: LatencyMetric = LatencyMetric.PAPER,
    extra: Sequence[Candidate] = (),
) -> list[FrontierPoint]:
    """Every usable run (plus ``extra`` candidates, e.g. predictions), sorted by latency, with
    its frontier flag. Mixing tasks or energy units is refused: the axes would not compare."""
    runs = list(records)
    check_latency_available(runs, metric)
    points = candidates(runs, metric) + list(extra)
    if not points:
        raise AnalysisError("no usable run with both a latency and an energy per unit")
    units = {(c.task, c.energy_unit) for c in points}
    if len(units) > 1:
        tasks = ", ".join(sorted(t for t, _ in units))
        raise AnalysisError(f"a frontier compares one task at a time; got {tasks}")
    return frontier_of(points)
