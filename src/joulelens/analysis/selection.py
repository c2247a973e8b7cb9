"""Picking runs: stable runs, sweep groups, and the paper's minimum-energy configuration.

Shared by diagnosis, the study and planning. A run is *usable* when it completed, is not
marked unstable and has an energy per unit; the paper analyses stable runs only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from joulelens.analysis.hardware import canonical_gpu_name
from joulelens.records import RunRecord, RunStatus

# (model_id, task, gpu, num_gpus): the paper's unit for a batch-size sweep.
SweepKey = tuple[str, str, str, int]

TEXT_TASKS = ("lm-arena-chat", "gpqa", "sourcegraph-fim")
MULTIMODAL_TASKS = ("image-chat", "video-chat")
TASK_LABELS = {
    "lm-arena-chat": "text conversation",
    "gpqa": "problem solving",
    "sourcegraph-fim": "code completion",
    "image-chat": "image chat",
    "video-chat": "video chat",
    "text-to-image": "text to image",
    "text-to-video": "text to video",
}


def gpu_name(record: RunRecord) -> str:
    """The canonical GPU name ("H100"), or the record's own string when unknown."""
    return canonical_gpu_name(record.gpu_model) or (record.gpu_model or "unknown")


def is_usable(record: RunRecord) -> bool:
    return (
        record.status is RunStatus.COMPLETED
        and record.stable is not False
        and record.energy_per_unit_joules is not None
        and record.energy_per_unit_joules > 0
    )


def usable(records: Iterable[RunRecord]) -> list[RunRecord]:
    return [r for r in records if is_usable(r)]


def sweep_key(record: RunRecord) -> SweepKey:
    return (record.model_id, record.task, gpu_name(record), record.num_gpus)


def hardware_label(num_gpus: int, gpu: str) -> str:
    """ "2x B200"; a run on the CPU reads "cpu", never "0x cpu"."""
    return f"{num_gpus}x {gpu}" if num_gpus else (gpu if gpu != "unknown" else "cpu")


def label(record: RunRecord) -> str:
    """ "Qwen 3 32B, gpqa, 1x B200, batch 128" """
    knob = "max_num_seqs" if not record.is_diffusion else "batch"
    return (
        f"{record.nickname or record.model_id}, {record.task}, "
        f"{hardware_label(record.num_gpus, gpu_name(record))}, {knob} {record.batch}"
    )


def min_energy_run(
    records: Iterable[RunRecord], where: Callable[[RunRecord], bool] | None = None
) -> RunRecord | None:
    """The paper's minimum-energy configuration: the usable run with the lowest energy per
    token (LLM) or per generation (diffusion), optionally among runs matching ``where``.

    Ties break on run id so the choice is deterministic.
    """
    best: RunRecord | None = None
    for r in records:
        if not is_usable(r) or (where is not None and not where(r)):
            continue
        if best is None or _energy_key(r) < _energy_key(best):
            best = r
    return best


def _energy_key(r: RunRecord) -> tuple[float, str]:
    return (r.energy_per_unit_joules or float("inf"), r.run_id)


@dataclass
class RunIndex:
    """Records grouped once so analyses look runs up in O(1) instead of scanning."""

    records: list[RunRecord]

    def __post_init__(self) -> None:
        self.by_id = {r.run_id: r for r in self.records}
        self.by_sweep: dict[SweepKey, list[RunRecord]] = defaultdict(list)
        self.by_model_task: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
        self.by_task: dict[str, list[RunRecord]] = defaultdict(list)
        for r in self.records:
            self.by_sweep[sweep_key(r)].append(r)
            self.by_model_task[(r.model_id, r.task)].append(r)
            self.by_task[r.task].append(r)
        for runs in self.by_sweep.values():
            runs.sort(key=lambda r: (r.batch or 0, r.run_id))

    def sweep(self, record: RunRecord) -> list[RunRecord]:
        """Every run (any status) of the record's (model, task, GPU, GPU count), by batch."""
        return self.by_sweep.get(sweep_key(record), [])

    def largest_stable(self, key: SweepKey) -> RunRecord | None:
        runs = [r for r in self.by_sweep.get(key, []) if is_usable(r) and r.batch is not None]
        return max(runs, key=lambda r: (r.batch or 0, r.run_id)) if runs else None

    def min_energy(
        self, model_id: str, task: str, where: Callable[[RunRecord], bool] | None = None
    ) -> RunRecord | None:
        return min_energy_run(self.by_model_task.get((model_id, task), []), where)


def group_by(records: Sequence[RunRecord], key: Callable[[RunRecord], object]) -> dict:
    out: dict[object, list[RunRecord]] = defaultdict(list)
    for r in records:
        out[key(r)].append(r)
    return out
