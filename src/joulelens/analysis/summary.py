"""Per-task summary of what the store holds."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from joulelens.records import RunRecord


@dataclass(frozen=True, slots=True)
class TaskSummary:
    task: str
    energy_unit: str
    runs: int
    stable_runs: int
    models: int
    gpu_models: tuple[str, ...]
    min_energy_per_unit_joules: float | None
    median_energy_per_unit_joules: float | None
    median_output_len: float | None  # LLM tasks; None for diffusion


def summarize_tasks(records: Sequence[RunRecord]) -> list[TaskSummary]:
    by_task: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r)
    out = []
    for task, runs in sorted(by_task.items()):
        energies = [e for r in runs if (e := r.energy_per_unit_joules) is not None]
        lengths = [x for r in runs if (x := r.avg_output_len) is not None]
        out.append(
            TaskSummary(
                task=task,
                energy_unit=runs[0].energy_unit,
                runs=len(runs),
                stable_runs=sum(1 for r in runs if r.stable),
                models=len({r.model_id for r in runs}),
                gpu_models=tuple(sorted({r.gpu_model for r in runs if r.gpu_model})),
                min_energy_per_unit_joules=min(energies) if energies else None,
                median_energy_per_unit_joules=statistics.median(energies) if energies else None,
                median_output_len=statistics.median(lengths) if lengths else None,
            )
        )
    return out
