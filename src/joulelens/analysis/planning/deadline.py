"""``plan``: the minimum-energy configuration that meets a latency deadline (and an energy
budget), per model and across models, with the runner-up and what a tighter deadline costs.

The deadline bounds the paper's latency by default (median ITL for LLMs, batch latency for
diffusion); p90/p99 ITL or TTFT are options. The energy budget bounds energy per unit of
work (J/token, J/image, J/video) or per response.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from joulelens.analysis.planning.candidates import (
    Candidate,
    LatencyMetric,
    candidates,
    check_latency_available,
    latency_label,
)
from joulelens.analysis.planning.predict import matching_curves, predicted_candidates
from joulelens.errors import AnalysisError, InputError
from joulelens.records import RunRecord


class BudgetPer(StrEnum):
    UNIT = "unit"  # J per token / image / video
    RESPONSE = "response"  # J per response (LLM) or per generation (diffusion)


@dataclass(frozen=True)
class Constraints:
    deadline_ms: float
    energy_budget_joules: float | None = None
    budget_per: BudgetPer = BudgetPer.UNIT

    def budget_value(self, c: Candidate) -> float | None:
        return (
            c.energy_per_unit_joules
            if self.budget_per is BudgetPer.UNIT
            else c.energy_per_response_joules
        )

    def within_budget(self, c: Candidate) -> bool:
        if self.energy_budget_joules is None:
            return True
        value = self.budget_value(c)
        return value is not None and value <= self.energy_budget_joules

    def feasible(self, c: Candidate) -> bool:
        return c.latency_ms <= self.deadline_ms and self.within_budget(c)


@dataclass(frozen=True)
class Tighter:
    """What happens when the deadline drops below ``deadline_ms``."""

    deadline_ms: float
    replacement: Candidate | None
    energy_increase_fraction: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "deadline_ms": self.deadline_ms,
            "replacement": self.replacement.to_dict() if self.replacement else None,
            "energy_increase_fraction": self.energy_increase_fraction,
            "note": self.note,
        }


@dataclass
class Choice:
    scope: str  # a model's name, or "all models"
    considered: int
    feasible: int
    best: Candidate | None
    runner_up: Candidate | None
    tighter: list[Tighter] = field(default_factory=list)
    reason: str | None = None  # why nothing is feasible

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "considered": self.considered,
            "feasible": self.feasible,
            "best": self.best.to_dict() if self.best else None,
            "runner_up": self.runner_up.to_dict() if self.runner_up else None,
            "tighter": [t.to_dict() for t in self.tighter],
            "reason": self.reason,
        }


@dataclass
class Plan:
    task: str
    latency: str  # e.g. "median ITL"
    constraints: Constraints
    with_predictions: bool
    overall: Choice
    per_model: list[Choice]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "latency": self.latency,
            "deadline_ms": self.constraints.deadline_ms,
            "energy_budget_joules": self.constraints.energy_budget_joules,
            "energy_budget_per": self.constraints.budget_per.value,
            "with_predictions": self.with_predictions,
            "overall": self.overall.to_dict(),
            "per_model": [c.to_dict() for c in self.per_model],
        }


def _energy_key(c: Candidate) -> tuple[float, float, int, str]:
    # Ties: faster first, then measured before predicted, then a stable id.
    return (c.energy_per_unit_joules, c.latency_ms, c.source != "measured", c.run_id or c.label)


def best_under(points: Iterable[Candidate], constraints: Constraints) -> Candidate | None:
    feasible = [c for c in points if constraints.feasible(c)]
    return min(feasible, key=_energy_key) if feasible else None


def _increase(new: Candidate | None, old: Candidate) -> float | None:
    return None if new is None else new.energy_per_unit_joules / old.energy_per_unit_joules - 1.0


def tighter_deadline(
    points: Sequence[Candidate],
    best: Candidate,
    constraints: Constraints,
    at_ms: float | None = None,
) -> Tighter:
    """The best configuration just below ``best``'s latency (or at ``at_ms``) and its cost."""
    if at_ms is None:
        pool = [
            c for c in points if c.latency_ms < best.latency_ms and constraints.within_budget(c)
        ]
        replacement = min(pool, key=_energy_key) if pool else None
        deadline, where = (
            best.latency_ms,
            f"below {best.latency_ms:.4g} ms (the choice's own latency)",
        )
    else:
        replacement = best_under(
            points, Constraints(at_ms, constraints.energy_budget_joules, constraints.budget_per)
        )
        deadline, where = at_ms, f"at {at_ms:.4g} ms"
    if replacement is None:
        note = f"{where}: nothing meets the deadline"
    elif replacement == best:
        note = f"{where}: the same choice still holds"
    else:
        inc = _increase(replacement, best)
        assert inc is not None
        more = "more" if inc >= 0 else "less"
        note = (
            f"{where}: {replacement.label}, which uses {abs(inc):.1%} {more} energy "
            f"per {best.energy_unit}"
        )
    return Tighter(deadline, replacement, _increase(replacement, best), note)


def choose(
    points: Sequence[Candidate],
    constraints: Constraints,
    scope: str,
    tighter_ms: float | None = None,
    runner_up_other_model: bool = False,
) -> Choice:
    feasible = sorted((c for c in points if constraints.feasible(c)), key=_energy_key)
    choice = Choice(scope, len(points), len(feasible), None, None)
    if not feasible:
        choice.reason = infeasible_reason(points, constraints)
        return choice
    best = feasible[0]
    rest = [c for c in feasible[1:] if not runner_up_other_model or c.model_id != best.model_id]
    choice.best, choice.runner_up = best, (rest[0] if rest else None)
    choice.tighter.append(tighter_deadline(points, best, constraints))
    if tighter_ms is not None:
        choice.tighter.append(tighter_deadline(points, best, constraints, tighter_ms))
    return choice


def infeasible_reason(points: Sequence[Candidate], constraints: Constraints) -> str:
    if not points:
        return "no usable configuration with this latency measured"
    fastest = min(points, key=lambda c: (c.latency_ms, c.energy_per_unit_joules))
    if fastest.latency_ms > constraints.deadline_ms:
        return (
            f"nothing meets {constraints.deadline_ms:g} ms: the fastest configuration, "
            f"{fastest.label}, takes {fastest.latency_ms:.4g} ms"
        )
    on_time = [c for c in points if c.latency_ms <= constraints.deadline_ms]
    values = [v for c in on_time if (v := constraints.budget_value(c)) is not None]
    cheapest = f"{min(values):.4g} J" if values else "unknown"
    return (
        f"{len(on_time)} configurations meet {constraints.deadline_ms:g} ms but none fits the "
        f"energy budget of {constraints.energy_budget_joules:g} J "
        f"per {constraints.budget_per.value} "
        f"(the cheapest on time needs {cheapest})"
    )


def plan(
    records: Iterable[RunRecord],
    task: str,
    deadline_ms: float,
    *,
    model: str | None = None,
    energy_budget_joules: float | None = None,
    budget_per: BudgetPer = BudgetPer.UNIT,
    metric: LatencyMetric = LatencyMetric.PAPER,
    tighter_ms: float | None = None,
    with_predictions: bool = False,
) -> Plan:
    """Minimum-energy configurations of ``task`` under the deadline; raises
    :class:`AnalysisError` with the reason when no configuration of any model is feasible."""
    if deadline_ms <= 0:
        raise InputError(f"the deadline must be positive, got {deadline_ms}", field="--deadline-ms")
    if energy_budget_joules is not None and energy_budget_joules <= 0:
        raise InputError("the energy budget must be positive", field="--energy-budget")
    runs = [r for r in records if r.task == task and _model_matches(r, model)]
    if not runs:
        raise AnalysisError(f"no run of task {task!r}" + (f" and model {model!r}" if model else ""))
    check_latency_available(runs, metric)
    points = candidates(runs, metric)
    if with_predictions:
        points += predicted_candidates(matching_curves(runs), metric)
    constraints = Constraints(deadline_ms, energy_budget_joules, budget_per)
    by_model: dict[str, list[Candidate]] = defaultdict(list)
    for c in points:
        by_model[c.model_id].append(c)
    per_model = [
        choose(pts, constraints, pts[0].model, tighter_ms) for _, pts in sorted(by_model.items())
    ]
    per_model.sort(
        key=lambda ch: (
            ch.best is None,
            ch.best.energy_per_unit_joules if ch.best else 0.0,
            ch.scope,
        )
    )
    overall = choose(
        points, constraints, "all models", tighter_ms, runner_up_other_model=len(by_model) > 1
    )
    if overall.best is None:
        raise AnalysisError(f"{task}: {overall.reason}")
    diffusion = points[0].is_diffusion if points else False
    return Plan(
        task, latency_label(metric, diffusion), constraints, with_predictions, overall, per_model
    )


def _model_matches(record: RunRecord, model: str | None) -> bool:
    if not model:
        return True
    needle = model.lower()
    return needle in record.model_id.lower() or needle in (record.nickname or "").lower()
