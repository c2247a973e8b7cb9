"""The paper's analyses, recomputed from whatever the store holds.

``run_study(records)`` returns ``{finding_id: Finding}`` in :data:`FINDING_IDS` order;
``study_json`` / ``study_markdown`` / ``explain`` render it. Each finding is defined in its
module's docstring and in ``docs/diagnosis.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from joulelens.analysis.selection import RunIndex
from joulelens.analysis.study.base import Finding, describe, pointer, spearman
from joulelens.analysis.study.batch import batch_size_effect, throughput_per_watt
from joulelens.analysis.study.diffusion import diffusion_range
from joulelens.analysis.study.gpus import gpu_count, gpu_generation
from joulelens.analysis.study.models import moe_vs_dense, precision
from joulelens.analysis.study.render import explain, study_json, study_markdown, study_text
from joulelens.analysis.study.tasks import multimodal, task_energy
from joulelens.errors import InputError
from joulelens.records import RunRecord

# Each entry takes the index and the GPU type used by per-GPU findings.
FINDINGS: dict[str, Callable[[RunIndex, str], Finding]] = {
    "task_energy": lambda index, gpu: task_energy(index, gpu),
    "batch_size_effect": lambda index, gpu: batch_size_effect(index),
    "gpu_generation": lambda index, gpu: gpu_generation(index),
    "precision": lambda index, gpu: precision(index),
    "gpu_count": lambda index, gpu: gpu_count(index),
    "moe_vs_dense": lambda index, gpu: moe_vs_dense(index, gpu),
    "multimodal": lambda index, gpu: multimodal(index),
    "diffusion_range": lambda index, gpu: diffusion_range(index, gpu),
    "throughput_per_watt": lambda index, gpu: throughput_per_watt(index),
}
FINDING_IDS: tuple[str, ...] = tuple(FINDINGS)


def run_study(
    records: Sequence[RunRecord] | RunIndex,
    only: Sequence[str] | None = None,
    gpu: str = "B200",
) -> dict[str, Finding]:
    """Compute the named findings (all by default) over ``records``; ``gpu`` is the GPU type
    of the per-GPU findings (task_energy, moe_vs_dense, diffusion_range)."""
    index = records if isinstance(records, RunIndex) else RunIndex(list(records))
    wanted = list(only) if only else list(FINDING_IDS)
    unknown = [w for w in wanted if w not in FINDINGS]
    if unknown:
        raise InputError(
            f"unknown finding {', '.join(unknown)}; known: {', '.join(FINDING_IDS)}",
            field="finding",
        )
    return {fid: FINDINGS[fid](index, gpu) for fid in wanted}


def study_dict(findings: dict[str, Finding]) -> dict[str, Any]:
    return {fid: f.to_dict() for fid, f in findings.items()}


__all__ = [
    "FINDINGS",
    "FINDING_IDS",
    "Finding",
    "describe",
    "explain",
    "pointer",
    "run_study",
    "spearman",
    "study_dict",
    "study_json",
    "study_markdown",
    "study_text",
]
