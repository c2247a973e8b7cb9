"""``advise RUN``: the cheapest change that keeps a run under a deadline, and why it helps.

Four kinds of change are tried, each only where the paper's framework says it can help:

* batch cap       same setup, another ``max_num_seqs`` (batch size -> GPU utilization)
* GPU count       only when the run is memory-bound: more GPUs raise memory availability,
                  which is what caps the batch; otherwise they add communication and cost
* precision       the other-precision checkpoint of the same model on the same GPU (any
                  GPU count: FP8 often fits on fewer), at the run's own batch, and only
                  where it is cheaper there (FP8 can cost more at small batch)
* GPU generation  the same model on another GPU, any GPU count and batch

Targets come from measured runs or, between measured batches, from sweep-curve predictions
(marked ``predicted`` with their uncertainty band). Savings are relative to the run's own
energy per unit of work. Without a deadline the run's own latency is the deadline: advice
never makes a run slower than it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from joulelens.analysis import graph as g
from joulelens.analysis.model_arch import base_model_id
from joulelens.analysis.planning.candidates import (
    Candidate,
    LatencyMetric,
    candidate,
    candidates,
    check_latency_available,
    latency_label,
)
from joulelens.analysis.planning.curves import SweepCurve, group_setups, setup_key
from joulelens.analysis.planning.deadline import Constraints, best_under
from joulelens.analysis.planning.predict import predicted_candidate, predicted_candidates
from joulelens.analysis.selection import RunIndex, gpu_name
from joulelens.analysis.why import BatchStop, why
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord


class Change(StrEnum):
    BATCH = "batch cap"
    GPU_COUNT = "GPU count"
    PRECISION = "precision"
    GPU_GENERATION = "GPU generation"


def diagnosis_paths(change: Change) -> list[str]:
    """The framework paths (knob -> ... -> energy) through which a change acts."""
    start, through = {
        Change.BATCH: (g.RUNTIME, g.BATCH),
        Change.GPU_COUNT: (g.GPU_COUNT, g.MEMORY_AVAILABILITY),
        Change.PRECISION: (g.QUANTIZATION, None),
        Change.GPU_GENERATION: (g.GPU, None),
    }[change]
    paths = g.FRAMEWORK.paths(start, g.ENERGY)
    return [g.path_text(p) for p in paths if through is None or through in p]


@dataclass(frozen=True)
class Option:
    change: Change
    summary: str
    target: Candidate
    saving_fraction: float  # 1 - target / current energy per unit; negative costs more
    paths: list[str]
    rationale: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change.value,
            "summary": self.summary,
            "source": self.target.source,
            "saving_fraction": self.saving_fraction,
            "target": self.target.to_dict(),
            "paths": self.paths,
            "rationale": self.rationale,
        }


@dataclass(frozen=True)
class NotAdvised:
    change: Change
    reason: str


@dataclass
class Advice:
    run_id: str
    run: str
    current: Candidate
    latency: str
    deadline_ms: float
    deadline_source: str  # "given" or "the run's own latency"
    current_meets_deadline: bool
    batch_stop: str
    batch_explanation: str
    options: list[Option] = field(default_factory=list)  # cheapest first
    not_advised: list[NotAdvised] = field(default_factory=list)

    @property
    def best(self) -> Option | None:
        return self.options[0] if self.options else None

    @property
    def already_best(self) -> bool:
        """The run meets the deadline and no change tried uses less energy per unit."""
        return self.current_meets_deadline and not self.options

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run": self.run,
            "current": self.current.to_dict(),
            "latency": self.latency,
            "deadline_ms": self.deadline_ms,
            "deadline_source": self.deadline_source,
            "current_meets_deadline": self.current_meets_deadline,
            "batch_stop": self.batch_stop,
            "batch_explanation": self.batch_explanation,
            "best": self.best.to_dict() if self.best else None,
            "already_best": self.already_best,
            "options": [o.to_dict() for o in self.options],
            "not_advised": [
                {"change": n.change.value, "reason": n.reason} for n in self.not_advised
            ],
        }


def _pool(runs: Sequence[RunRecord], metric: LatencyMetric, exclude: str) -> list[Candidate]:
    """Measured candidates plus predictions between their measured batches."""
    measured = [c for c in candidates(runs, metric) if c.run_id != exclude]
    curves = [
        SweepCurve.fit(rs) for rs in group_setups(runs).values() if len({r.batch for r in rs}) >= 2
    ]
    return measured + predicted_candidates(curves, metric)


def _saving(target: Candidate, current: Candidate) -> float:
    return 1.0 - target.energy_per_unit_joules / current.energy_per_unit_joules


def _knob(c: Candidate) -> str:
    return "batch" if c.is_diffusion else "max_num_seqs"


class _Advisor:
    def __init__(
        self,
        record: RunRecord,
        records: Sequence[RunRecord],
        metric: LatencyMetric,
        constraints: Constraints,
        current: Candidate,
    ):
        self.record, self.metric, self.constraints, self.current = (
            record,
            metric,
            constraints,
            current,
        )
        self.same_task = [r for r in records if r.task == record.task]
        self.options: list[Option] = []
        self.not_advised: list[NotAdvised] = []

    def offer(
        self, change: Change, pool: list[Candidate], summary: str, rationale: str, empty: str
    ) -> None:
        best = best_under([c for c in pool if c != self.current], self.constraints)
        if best is None:
            self.not_advised.append(NotAdvised(change, empty))
            return
        saving = _saving(best, self.current)
        if saving <= 0 and self.current.latency_ms <= self.constraints.deadline_ms:
            self.not_advised.append(
                NotAdvised(
                    change,
                    f"the best option, {best.label}, uses {-saving:.1%} more energy "
                    f"per {best.energy_unit}",
                )
            )
            return
        text = summary.format(target=best)
        self.options.append(Option(change, text, best, saving, diagnosis_paths(change), rationale))

    def batch(self) -> None:
        key = setup_key(self.record)
        runs = [r for r in self.same_task if setup_key(r) == key]
        c = self.current
        self.offer(
            Change.BATCH,
            _pool(runs, self.metric, c.run_id or ""),
            f"set {_knob(c)} {c.batch} -> {{target.batch}}",
            "a larger batch keeps the GPUs busier, so static power is spread over more work, "
            "until the latency deadline or memory stops it",
            "no other batch of this setup meets the deadline",
        )

    def gpu_count(self, stop: BatchStop, explanation: str) -> None:
        if stop is not BatchStop.MEMORY_BOUND:
            self.not_advised.append(
                NotAdvised(
                    Change.GPU_COUNT,
                    f"the batch is not memory-bound ({stop.value}: {explanation}); more GPUs "
                    "would add communication and lower per-GPU work",
                )
            )
            return
        r = self.record
        runs = [
            x
            for x in self.same_task
            if x.model_id == r.model_id and gpu_name(x) == gpu_name(r) and x.num_gpus > r.num_gpus
        ]
        self.offer(
            Change.GPU_COUNT,
            _pool(runs, self.metric, ""),
            f"{r.num_gpus} -> {{target.num_gpus}} GPUs, {_knob(self.current)} {{target.batch}}",
            "the batch is memory-bound: more GPUs hold more KV cache, so a larger batch fits",
            f"no run with more than {r.num_gpus} {gpu_name(r)} GPUs meets the deadline",
        )

    def precision(self) -> None:
        r, c = self.record, self.current
        base = base_model_id(r.model_id)
        siblings = [
            x
            for x in self.same_task
            if x.model_id != r.model_id
            and base_model_id(x.model_id) == base
            and gpu_name(x) == gpu_name(r)
        ]
        if not siblings:
            self.not_advised.append(
                NotAdvised(
                    Change.PRECISION,
                    f"no other-precision checkpoint of {base} on {gpu_name(r)}",
                )
            )
            return
        at_batch: list[Candidate] = []
        for runs in group_setups(siblings).values():
            measured = [x for x in candidates(runs, self.metric) if x.batch == c.batch]
            if measured:
                at_batch += measured
            elif len({x.batch for x in runs}) >= 2:
                curve = SweepCurve.fit(runs)
                if curve.covers(c.batch) and (
                    p := predicted_candidate(curve, c.batch, self.metric)
                ):
                    at_batch.append(p)
        self.offer(
            Change.PRECISION,
            at_batch,
            f"{c.precision} -> {{target.precision}} on {{target.num_gpus}}x {{target.gpu}}, "
            f"{_knob(c)} {c.batch}",
            "lower precision shrinks memory footprint and compute volume; at small batch its "
            "extra (de)quantization work can outweigh that, so it is compared at this batch only",
            f"no other-precision run or prediction at {_knob(c)} {c.batch} meets the deadline",
        )

    def gpu_generation(self) -> None:
        r = self.record
        runs = [
            x for x in self.same_task if x.model_id == r.model_id and gpu_name(x) != gpu_name(r)
        ]
        if not runs:
            self.not_advised.append(
                NotAdvised(
                    Change.GPU_GENERATION, f"no run of this model on a GPU other than {gpu_name(r)}"
                )
            )
            return
        self.offer(
            Change.GPU_GENERATION,
            _pool(runs, self.metric, ""),
            f"{gpu_name(r)} -> {{target.num_gpus}}x {{target.gpu}}, "
            f"{_knob(self.current)} {{target.batch}}",
            "another GPU generation changes both memory availability (batch) and the power "
            "and speed of each step (utilization)",
            "no configuration on another GPU meets the deadline",
        )


def advise(
    record: RunRecord,
    records: Sequence[RunRecord],
    deadline_ms: float | None = None,
    metric: LatencyMetric = LatencyMetric.PAPER,
) -> Advice:
    check_latency_available([record], metric)
    current = candidate(record, metric)
    if current is None:
        raise AnalysisError(
            f"run {record.run_id} is not usable for planning (unstable, failed or without energy)"
        )
    source = "given" if deadline_ms is not None else "the run's own latency"
    constraints = Constraints(deadline_ms if deadline_ms is not None else current.latency_ms)
    report = why(record, RunIndex(list(records)))
    advisor = _Advisor(record, records, metric, constraints, current)
    advisor.batch()
    advisor.gpu_count(report.batch_stop, report.batch_explanation)
    advisor.precision()
    advisor.gpu_generation()
    options = sorted(
        advisor.options,
        key=lambda o: (o.target.energy_per_unit_joules, o.target.source != "measured"),
    )
    return Advice(
        run_id=record.run_id,
        run=current.label,
        current=current,
        latency=latency_label(metric, record.is_diffusion),
        deadline_ms=constraints.deadline_ms,
        deadline_source=source,
        current_meets_deadline=current.latency_ms <= constraints.deadline_ms,
        batch_stop=report.batch_stop.value,
        batch_explanation=report.batch_explanation,
        options=options,
        not_advised=advisor.not_advised,
    )
