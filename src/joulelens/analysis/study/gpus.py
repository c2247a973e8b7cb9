"""Findings about hardware: ``gpu_generation`` and ``gpu_count``."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Callable

from joulelens.analysis.hardware import is_newer
from joulelens.analysis.selection import RunIndex, gpu_name, is_usable, min_energy_run
from joulelens.analysis.study.base import Finding, describe, pct
from joulelens.analysis.thresholds import (
    IMAGE_LATENCY_DEADLINES_S,
    LLM_ITL_DEADLINES_MS,
    VIDEO_LATENCY_DEADLINES_S,
)
from joulelens.analysis.why import BatchStop, why
from joulelens.records import RunRecord

# Task families of gpu_generation: tasks pooled, and deadlines in ms on RunRecord.latency_ms.
GENERATION_FAMILIES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "llm": (("gpqa", "lm-arena-chat"), LLM_ITL_DEADLINES_MS),
    "text-to-image": (("text-to-image",), tuple(s * 1000 for s in IMAGE_LATENCY_DEADLINES_S)),
    "text-to-video": (("text-to-video",), tuple(s * 1000 for s in VIDEO_LATENCY_DEADLINES_S)),
}
GPU_COUNT_TASKS = ("gpqa", "lm-arena-chat", "sourcegraph-fim")


def _deadline_label(family: str, deadline_ms: float) -> str:
    return f"{deadline_ms:g}ms" if family == "llm" else f"{deadline_ms / 1000:g}s"


def _energy(r: RunRecord) -> float:
    return r.energy_per_unit_joules or float("nan")


def _meets(gpu: str, deadline_ms: float) -> Callable[[RunRecord], bool]:
    def check(r: RunRecord) -> bool:
        return gpu_name(r) == gpu and r.latency_ms is not None and r.latency_ms <= deadline_ms

    return check


def _on_count(n: int) -> Callable[[RunRecord], bool]:
    def check(r: RunRecord) -> bool:
        return r.num_gpus == n

    return check


def gpu_generation(index: RunIndex, old: str = "H100", new: str = "B200") -> Finding:
    f = Finding(
        "gpu_generation",
        f"GPU generation ({old} vs {new}) at matched latency",
        f"For each (model, precision, task) measured on both {old} and {new}: at each deadline, "
        f"the minimum-energy run on each GPU among runs meeting it (any GPU count and batch). "
        f"Change = E({new}) / E({old}) - 1. LLM deadlines on median ITL over problem solving + "
        f"text conversation; diffusion on batch latency.",
    )
    summary_parts = []
    per_deadline_parts = []
    for family, (tasks, deadlines) in GENERATION_FAMILIES.items():
        pooled: list[float] = []
        pooled_ids: list[str] = []
        per_deadline: list[str] = []
        for deadline in deadlines:
            dl = _deadline_label(family, deadline)
            changes: list[float] = []
            ids: list[str] = []
            only = {old: 0, new: 0}
            only_ids: list[str] = []
            for task in tasks:
                models = sorted(
                    {(r.model_id, r.weight_precision) for r in index.by_task.get(task, [])},
                    key=lambda mp: (mp[0], mp[1] or ""),  # a failed run may lack a precision
                )
                for model_id, _precision in models:
                    runs = index.by_model_task[(model_id, task)]
                    if {gpu_name(r) for r in runs} < {old, new}:
                        continue
                    b_old = min_energy_run(runs, _meets(old, deadline))
                    b_new = min_energy_run(runs, _meets(new, deadline))
                    if b_old is None or b_new is None:
                        for gpu, hit in ((old, b_old), (new, b_new)):
                            if hit is not None:
                                only[gpu] += 1
                                only_ids.append(hit.run_id)
                        continue
                    pair = [b_old.run_id, b_new.run_id]
                    change = _energy(b_new) / _energy(b_old) - 1
                    changes.append(change)
                    ids += pair
                    if change > 0:
                        f.put((family, dl, f"{old}_wins", f"{model_id} {task}"), change, pair)
            key = (family, dl)
            wins = sum(c < 0 for c in changes)
            f.put((*key, "comparisons"), len(changes), ids)
            f.put((*key, f"{new}_wins"), wins, ids)
            f.put((*key, "energy_change"), describe(changes), ids)
            f.put((*key, f"only_{old}_meets_deadline"), only[old], only_ids)
            f.put((*key, f"only_{new}_meets_deadline"), only[new], only_ids)
            pooled += changes
            pooled_ids += ids
            if changes:
                per_deadline.append(f"{dl} {wins}/{len(changes)}")
        if pooled:
            # The paper's figures: every deadline's comparisons together.
            wins = sum(c < 0 for c in pooled)
            median = statistics.median(pooled)
            f.put((family, "pooled", "comparisons"), len(pooled), pooled_ids)
            f.put((family, "pooled", f"{new}_wins"), wins, pooled_ids)
            f.put((family, "pooled", "energy_change"), describe(pooled), pooled_ids)
            direction = "less" if median < 0 else "more"
            summary_parts.append(
                f"{family} {wins}/{len(pooled)}, median {abs(median):.0%} {direction} energy"
            )
            per_deadline_parts.append(f"{family} {', '.join(per_deadline)}")
    if not summary_parts:
        return f.no_data(f"no model measured on both {old} and {new}")
    f.conclusion = (
        f"{new} uses less energy than {old} at the same deadline in most comparisons, pooled "
        f"over all deadlines: {'; '.join(summary_parts)}. Per deadline ({new} wins): "
        f"{'; '.join(per_deadline_parts)}; not always: see {old}_wins per deadline."
    )
    if is_newer(new, old) is False:
        f.notes.append(f"{new} is not newer than {old}")
    return f


def _pairs_by_count(runs: list[RunRecord]) -> list[tuple[RunRecord, RunRecord]]:
    """Consecutive GPU counts at the same batch size."""
    by_batch: dict[int, dict[int, RunRecord]] = defaultdict(dict)
    for r in runs:
        if is_usable(r) and r.batch is not None:
            cur = by_batch[r.batch].get(r.num_gpus)
            if cur is None or (r.energy_per_unit_joules or 0) < (cur.energy_per_unit_joules or 0):
                by_batch[r.batch][r.num_gpus] = r
    pairs = []
    for by_n in by_batch.values():
        counts = sorted(by_n)
        pairs += [(by_n[a], by_n[b]) for a, b in itertools.pairwise(counts)]
    return pairs


def gpu_count(index: RunIndex) -> Finding:
    f = Finding(
        "gpu_count",
        "More GPUs at the same batch",
        "Same model, task (problem solving, conversation, code), GPU type and batch; the next "
        "larger GPU count. Counts how often energy per token rose and median ITL fell. Also: "
        "per (model, task, GPU type), where the larger count's minimum energy is lower, whether "
        "the smaller setup's largest stable batch was memory-bound.",
    )
    stats: dict[str, dict[str, list]] = defaultdict(lambda: {"e": [], "l": [], "ids": []})
    cuts = memory_cuts = 0
    cut_ids: list[str] = []
    for (model_id, task), runs in sorted(index.by_model_task.items()):
        if task not in GPU_COUNT_TASKS:
            continue
        for gpu in sorted({gpu_name(r) for r in runs}):
            on_gpu = [r for r in runs if gpu_name(r) == gpu]
            for a, b in _pairs_by_count(on_gpu):
                if a.latency_ms and b.latency_ms:
                    s = stats[gpu]
                    s["e"].append(
                        (b.energy_per_unit_joules or 0) / (a.energy_per_unit_joules or 1) - 1
                    )
                    s["l"].append(b.latency_ms / a.latency_ms - 1)
                    s["ids"] += [a.run_id, b.run_id]
            counts = sorted({r.num_gpus for r in on_gpu})
            for n1, n2 in itertools.pairwise(counts):
                m1 = min_energy_run(on_gpu, _on_count(n1))
                m2 = min_energy_run(on_gpu, _on_count(n2))
                if (
                    m1 is None
                    or m2 is None
                    or (m2.energy_per_unit_joules or 0) >= (m1.energy_per_unit_joules or 0)
                ):
                    continue
                cuts += 1
                cut_ids += [m1.run_id, m2.run_id]
                top = index.largest_stable((model_id, task, gpu, n1))
                report = why(top, index) if top is not None else None
                bound = report is not None and report.batch_stop is BatchStop.MEMORY_BOUND
                memory_cuts += bound
                key = ("min_energy_cuts", f"{model_id} {task} {gpu} {n1}->{n2}")
                change = (m2.energy_per_unit_joules or 0) / (m1.energy_per_unit_joules or 1) - 1
                f.put((*key, "min_energy_change"), change, [m1.run_id, m2.run_id])
                f.put((*key, "smaller_setup_memory_bound"), bound, [top.run_id] if top else [])
                f.put(
                    (*key, "largest_batches"), [top.batch if top else None, m2.batch], [m2.run_id]
                )
    if not stats:
        return f.no_data("no model with two GPU counts at the same batch")
    parts = []
    for gpu, s in sorted(stats.items()):
        rose = sum(e > 0 for e in s["e"])
        fell = sum(lat < 0 for lat in s["l"])
        both = sum(e > 0 and lat < 0 for e, lat in zip(s["e"], s["l"], strict=True))
        key = ("same_batch", gpu)
        f.put((*key, "pairs"), len(s["e"]), s["ids"])
        f.put((*key, "energy_rose"), rose, s["ids"])
        f.put((*key, "latency_fell"), fell, s["ids"])
        f.put((*key, "energy_rose_and_latency_fell"), both, s["ids"])
        f.put((*key, "energy_change"), describe(s["e"]), s["ids"])
        f.put((*key, "latency_change"), describe(s["l"]), s["ids"])
        parts.append(
            f"on {gpu} more GPUs raised energy per token in {rose}/{len(s['e'])} same-batch pairs "
            f"(median {pct(statistics.median(s['e']))}) and cut latency in {fell}"
        )
    f.put("min_energy_cut_cases", cuts, cut_ids)
    f.put("min_energy_cut_memory_bound", memory_cuts, cut_ids)
    f.conclusion = (
        "; ".join(parts)
        + f". More GPUs cut the minimum energy in {cuts} cases, {memory_cuts} of them where the "
        "smaller setup's batch was memory-bound."
    )
    return f
