"""What choosing the batch by deadline saves over a default batch cap, across a store.

For every setup (model, task, GPU, GPU count, precision ...) the *default* is the run at
``max_num_seqs`` 256, or the largest stable batch below it (diffusion: the largest batch
at or below 256, i.e. the largest measured). Under each deadline the minimum-energy
measured batch of the same setup is compared with the default:

* default on time   saving = 1 - E(min-energy batch) / E(default), 0 when they coincide
* default too slow  the default misses the deadline; a smaller batch meets it (counted)
* nothing on time   no batch of the setup meets the deadline (counted)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from joulelens.analysis.planning.candidates import (
    Candidate,
    LatencyMetric,
    candidates,
    latency_label,
)
from joulelens.analysis.planning.curves import group_setups
from joulelens.records import RunRecord

DEFAULT_BATCH_CAP = 256

# Deadlines per task (ms of the paper's latency); None means no deadline.
LLM_DEADLINES_MS: tuple[float | None, ...] = (20.0, 30.0, 50.0, 100.0, None)
DEFAULT_DEADLINES_MS: dict[str, tuple[float | None, ...]] = {
    "text-to-image": (2_000.0, 5_000.0, 10_000.0, 30_000.0, None),
    "text-to-video": (60_000.0, 300_000.0, 1_000_000.0, None),
}


def deadlines_for(task: str) -> tuple[float | None, ...]:
    return DEFAULT_DEADLINES_MS.get(task, LLM_DEADLINES_MS)


@dataclass
class SavingsRow:
    task: str
    latency: str
    deadline_ms: float | None
    setups: int
    default_on_time: int
    saving_median_pct: float | None  # over setups whose default meets the deadline
    saving_mean_pct: float | None
    saving_max_pct: float | None
    setups_saving: int  # default on time and another batch is cheaper
    default_too_slow: int  # the default misses the deadline; a smaller batch meets it
    too_slow_cost_median_pct: float | None  # extra energy of that batch over the default
    nothing_on_time: int
    example: str | None  # the setup with the largest saving

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_run(points: Sequence[Candidate], cap: int = DEFAULT_BATCH_CAP) -> Candidate | None:
    below = [c for c in points if c.batch <= cap]
    return max(below, key=lambda c: (c.batch, -c.energy_per_unit_joules)) if below else None


def deadline_savings(
    records: Iterable[RunRecord],
    deadlines: Mapping[str, Sequence[float | None]] | None = None,
    cap: int = DEFAULT_BATCH_CAP,
    tasks: Sequence[str] | None = None,
) -> list[SavingsRow]:
    by_task: dict[str, list[list[Candidate]]] = defaultdict(list)
    for key, runs in group_setups(records).items():
        if tasks and key.task not in tasks:
            continue
        points = candidates(runs, LatencyMetric.PAPER)
        if points:
            by_task[key.task].append(points)
    rows = []
    for task, setups in sorted(by_task.items()):
        label = latency_label(LatencyMetric.PAPER, setups[0][0].is_diffusion)
        for deadline in (deadlines or {}).get(task, deadlines_for(task)):
            rows.append(_row(task, label, deadline, setups, cap))
    return rows


def _row(
    task: str, label: str, deadline: float | None, setups: list[list[Candidate]], cap: int
) -> SavingsRow:
    limit = float("inf") if deadline is None else deadline
    savings: list[tuple[float, str]] = []
    costs: list[float] = []
    nothing = 0
    for points in setups:
        on_time = [c for c in points if c.latency_ms <= limit]
        default = default_run(points, cap)
        if not on_time:
            nothing += 1
            continue
        best = min(on_time, key=lambda c: (c.energy_per_unit_joules, c.latency_ms))
        if default is None or default.latency_ms > limit:
            if default is not None:
                costs.append(
                    (best.energy_per_unit_joules / default.energy_per_unit_joules - 1) * 100
                )
            continue
        saving = 1.0 - best.energy_per_unit_joules / default.energy_per_unit_joules
        savings.append((saving * 100.0, f"{default.label} -> {best.label}"))
    values = np.asarray([s for s, _ in savings])
    top = max(savings, default=None)
    return SavingsRow(
        task=task,
        latency=label,
        deadline_ms=deadline,
        setups=len(setups),
        default_on_time=len(savings),
        saving_median_pct=float(np.median(values)) if len(values) else None,
        saving_mean_pct=float(values.mean()) if len(values) else None,
        saving_max_pct=float(values.max()) if len(values) else None,
        setups_saving=int((values > 0).sum()),
        default_too_slow=len(setups) - len(savings) - nothing,
        too_slow_cost_median_pct=float(np.median(costs)) if costs else None,
        nothing_on_time=nothing,
        example=top[1] if top and top[0] > 0 else None,
    )
