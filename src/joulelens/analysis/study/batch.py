"""Findings about batch size: ``batch_size_effect`` and ``throughput_per_watt``."""

from __future__ import annotations

import statistics
from collections import defaultdict

from joulelens.analysis.selection import RunIndex, is_usable
from joulelens.analysis.study.base import Finding, describe, x
from joulelens.analysis.thresholds import BATCH_EFFECT_MIN_BATCH
from joulelens.records import RunRecord


def _llm_sweeps(index: RunIndex) -> dict[tuple, list[RunRecord]]:
    out = {}
    for key, runs in sorted(index.by_sweep.items()):
        usable = [r for r in runs if is_usable(r) and r.batch is not None]
        if usable and not usable[0].is_diffusion:
            out[key] = usable
    return out


def batch_size_effect(index: RunIndex, min_batch: int = BATCH_EFFECT_MIN_BATCH) -> Finding:
    f = Finding(
        "batch_size_effect",
        "Batch size (GPU utilization) and energy per token",
        f"Per (model, task, GPU, GPU count): energy per token at the smallest batch >= {min_batch} "
        "over the group's minimum; the power and throughput of the minimum-energy run over "
        "those of the small-batch run. Groups need two or more stable batches >= "
        f"{min_batch}.",
    )
    ratios, power, tput = [], [], []
    by_task: dict[str, list[float]] = defaultdict(list)
    task_ids: dict[str, list[str]] = defaultdict(list)
    all_ids: list[str] = []
    for (model_id, task, gpu, n), runs in _llm_sweeps(index).items():
        big = [r for r in runs if (r.batch or 0) >= min_batch]
        if len(big) < 2:
            continue
        small = min(big, key=lambda r: r.batch or 0)
        best = min(runs, key=lambda r: (r.energy_per_unit_joules or 0, r.run_id))
        ratio = (small.energy_per_unit_joules or 0) / (best.energy_per_unit_joules or 1)
        ids = [small.run_id, best.run_id]
        key = ("groups", task, f"{model_id} {n}x{gpu}")
        f.put((*key, "small_batch"), small.batch, [small.run_id])
        f.put((*key, "min_energy_batch"), best.batch, [best.run_id])
        f.put((*key, "energy_ratio"), ratio, ids)
        if small.avg_power_watts and best.avg_power_watts:
            power.append(best.avg_power_watts / small.avg_power_watts)
            f.put((*key, "power_ratio"), power[-1], ids)
        xs, xb = small.output_throughput_tokens_per_sec, best.output_throughput_tokens_per_sec
        if xs and xb:
            tput.append(xb / xs)
            f.put((*key, "throughput_ratio"), tput[-1], ids)
        ratios.append(ratio)
        by_task[task].append(ratio)
        task_ids[task] += ids
        all_ids += ids
    if not ratios:
        return f.no_data(f"no group with two stable batches >= {min_batch}")
    f.put("energy_ratio", describe(ratios), all_ids)
    f.put("power_ratio", describe(power), all_ids)
    f.put("throughput_ratio", describe(tput), all_ids)
    for task, vals in sorted(by_task.items()):
        f.put(f"energy_ratio_by_task.{task}", describe(vals), task_ids[task])
    e, p, t = (statistics.median(v) for v in (ratios, power or [0], tput or [0]))
    f.conclusion = (
        f"From batch {min_batch} to each group's minimum-energy batch, energy per token falls a "
        f"median {x(e)} (middle half {x(describe(ratios)['p25'])}-{x(describe(ratios)['p75'])}, "
        f"{len(ratios)} groups) while power rises {x(p)} and throughput {x(t)}."
    )
    return f


def _energy(r: RunRecord) -> float:
    return r.energy_per_unit_joules or float("inf")


def throughput_per_watt(index: RunIndex) -> Finding:
    f = Finding(
        "throughput_per_watt",
        "Throughput per watt vs batch size",
        "Throughput per watt = work per joule (tokens/J for LLMs, generations/J for diffusion) "
        "= 1 / energy per unit. Per (model, task, GPU, GPU count) it is normalised to the "
        "group's smallest batch; reported: median normalised value per batch across groups, "
        "and how often the best value sits at the group's largest stable batch.",
    )
    for family, diffusion in (("llm", False), ("diffusion", True)):
        per_batch: dict[int, list[float]] = defaultdict(list)
        ids_by_batch: dict[int, list[str]] = defaultdict(list)
        at_largest = groups = 0
        family_ids: list[str] = []
        for _key, runs in sorted(index.by_sweep.items()):
            usable = [
                r
                for r in runs
                if is_usable(r) and r.batch is not None and r.is_diffusion == diffusion
            ]
            if len({r.batch for r in usable}) < 2:
                continue
            groups += 1
            best_at: dict[int, RunRecord] = {}
            for r in usable:  # diffusion groups repeat a batch with other parallel layouts
                b = r.batch or 0
                if b not in best_at or _energy(r) < _energy(best_at[b]):
                    best_at[b] = r
            ordered = [best_at[b] for b in sorted(best_at)]
            family_ids += [r.run_id for r in ordered]
            base = 1 / (ordered[0].energy_per_unit_joules or 1)
            for r in ordered:
                per_batch[r.batch or 0].append((1 / (r.energy_per_unit_joules or 1)) / base)
                ids_by_batch[r.batch or 0] += [r.run_id, ordered[0].run_id]
            best = max(ordered, key=lambda r: 1 / (r.energy_per_unit_joules or 1))
            at_largest += best is ordered[-1]
        if not groups:
            continue
        for batch in sorted(per_batch):
            f.put(
                f"{family}.normalised_by_batch.{batch}",
                statistics.median(per_batch[batch]),
                ids_by_batch[batch],
            )
            f.put(f"{family}.groups_by_batch.{batch}", len(per_batch[batch]), ids_by_batch[batch])
        f.put(f"{family}.groups", groups, family_ids)
        f.put(f"{family}.best_at_largest_batch_fraction", at_largest / groups, family_ids)
    if not f.numbers:
        return f.no_data("no group with two or more stable batch sizes")
    parts = []
    for family, unit in (("llm", "tokens/J"), ("diffusion", "generations/J")):
        block = f.numbers.get(family)
        if not block:
            continue
        curve = block["normalised_by_batch"]
        top = max(curve, key=lambda b: curve[b])
        parts.append(
            f"{family.upper()} {unit} peaks at a median {x(curve[top])} the smallest batch's "
            f"(batch {top}); the largest stable batch is best in "
            f"{block['best_at_largest_batch_fraction']:.0%} of {block['groups']} groups"
        )
    f.conclusion = "; ".join(parts) + "."
    return f
