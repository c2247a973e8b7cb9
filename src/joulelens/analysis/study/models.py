"""Findings about the model: ``precision`` (FP8 vs BF16) and ``moe_vs_dense``."""

from __future__ import annotations

import statistics
from collections import defaultdict

from joulelens.analysis.model_arch import base_model_id, model_arch
from joulelens.analysis.selection import RunIndex, gpu_name, is_usable, min_energy_run
from joulelens.analysis.study.base import Finding, describe, pct, x
from joulelens.analysis.thresholds import (
    MOE_DENSE_SIZE_RATIO_MAX,
    PRECISION_BATCH_BINS,
    PRECISION_MIN_BATCH,
)
from joulelens.records import RunRecord

PARALLEL_FIELDS = ("tensor_parallel", "expert_parallel", "data_parallel")


def _is_fp8(r: RunRecord) -> bool:
    return (r.weight_precision or "").lower() in {"fp8", "float8"}


def _bin_label(batch: int) -> str | None:
    for lo, hi in PRECISION_BATCH_BINS:
        if lo <= batch <= hi:
            return f"{lo}-{hi}"
    return None


def precision(index: RunIndex, min_batch: int = PRECISION_MIN_BATCH) -> Finding:
    f = Finding(
        "precision",
        "FP8 vs BF16",
        "FP8 and BF16 runs of the same base model, task, GPU, GPU count and batch (batch >= "
        f"{min_batch}), binned by batch {', '.join(f'{a}-{b}' for a, b in PRECISION_BATCH_BINS)}. "
        "Models whose FP8 variant runs with a different parallelism layout at the same GPU "
        "count are excluded and named. Change = FP8 / BF16 - 1.",
    )
    pairs: list[tuple[RunRecord, RunRecord]] = []
    layout_changes: set[str] = set()
    bf16 = {
        (r.model_id, r.task, gpu_name(r), r.num_gpus, r.batch): r
        for r in index.records
        if is_usable(r) and not _is_fp8(r)
    }
    for r in index.records:
        if (
            not (is_usable(r) and _is_fp8(r))
            or r.is_diffusion
            or base_model_id(r.model_id) == r.model_id
        ):
            continue
        twin = bf16.get((base_model_id(r.model_id), r.task, gpu_name(r), r.num_gpus, r.batch))
        if twin is None:
            continue
        if any(getattr(r, p) != getattr(twin, p) for p in PARALLEL_FIELDS):
            layout_changes.add(r.model_id)
        pairs.append((twin, r))
    pairs = [(a, b) for a, b in pairs if b.model_id not in layout_changes]
    f.put("excluded_models_parallelism_changes", sorted(layout_changes))
    binned: dict[str, list[tuple[RunRecord, RunRecord]]] = defaultdict(list)
    for a, b in pairs:
        label = _bin_label(b.batch or 0)
        if label is not None and (b.batch or 0) >= min_batch:
            binned[label].append((a, b))
    if not binned:
        return f.no_data("no FP8/BF16 pair at the same model, GPU, GPU count and batch")
    parts = []
    for lo, hi in PRECISION_BATCH_BINS:
        label = f"{lo}-{hi}"
        group = binned.get(label, [])
        ids = [i for a, b in group for i in (a.run_id, b.run_id)]
        e = [
            (b.energy_per_unit_joules or 0) / (a.energy_per_unit_joules or 1) - 1 for a, b in group
        ]
        lat = [b.latency_ms / a.latency_ms - 1 for a, b in group if a.latency_ms and b.latency_ms]
        f.put(("by_batch", label, "pairs"), len(group), ids)
        f.put(("by_batch", label, "fp8_energy_wins"), sum(c < 0 for c in e), ids)
        f.put(("by_batch", label, "fp8_latency_wins"), sum(c < 0 for c in lat), ids)
        f.put(("by_batch", label, "energy_change"), describe(e), ids)
        f.put(("by_batch", label, "latency_change"), describe(lat), ids)
        if group:
            parts.append(
                f"batch {label}: FP8 cheaper in {sum(c < 0 for c in e)}/{len(e)} "
                f"(median {pct(statistics.median(e))})"
            )
    f.conclusion = "FP8 is not always cheaper: " + "; ".join(parts) + "."
    if layout_changes:
        f.notes.append(
            "excluded (FP8 changes the parallelism layout): " + ", ".join(sorted(layout_changes))
        )
    if min_batch > PRECISION_BATCH_BINS[0][0]:
        f.notes.append(f"with batch >= {min_batch}, the first bin holds batch {min_batch} only")
    return f


def _arch_kind(r: RunRecord) -> str | None:
    text = (r.architecture or "").lower()
    if "moe" in text:
        return "moe"
    if "dense" in text:
        return "dense"
    arch = model_arch(r.model_id)
    return arch.architecture if arch and arch.architecture in {"moe", "dense"} else None


def moe_vs_dense(index: RunIndex, gpu: str = "B200") -> Finding:
    f = Finding(
        "moe_vs_dense",
        "MoE vs dense of similar total size",
        f"Per task and GPU type, every (MoE, dense) pair of the same precision whose total "
        f"parameters are within {MOE_DENSE_SIZE_RATIO_MAX}x; each model's minimum-energy run "
        "(any GPU count and batch). Ratio = dense / MoE energy per token.",
    )
    ratios: list[float] = []
    for task in sorted(index.by_task):
        minima: dict[tuple[str, str], RunRecord] = {}
        for (model_id, t), runs in index.by_model_task.items():
            if t != task:
                continue
            for g in sorted({gpu_name(r) for r in runs}):
                best = min_energy_run([r for r in runs if gpu_name(r) == g])
                if (
                    best is not None
                    and not best.is_diffusion
                    and _arch_kind(best) in {"moe", "dense"}
                ):
                    minima[(model_id, g)] = best
        for (moe_id, g), moe in sorted(minima.items()):
            if _arch_kind(moe) != "moe":
                continue
            for (dense_id, g2), dense in sorted(minima.items()):
                if (
                    g2 != g
                    or _arch_kind(dense) != "dense"
                    or dense.weight_precision != moe.weight_precision
                ):
                    continue
                tm, td = moe.total_params_billions, dense.total_params_billions
                if not tm or not td or max(tm, td) / min(tm, td) > MOE_DENSE_SIZE_RATIO_MAX:
                    continue
                ratio = (dense.energy_per_unit_joules or 0) / (moe.energy_per_unit_joules or 1)
                ratios.append(ratio)
                key = ("pairs", task, g, f"{moe_id} vs {dense_id}")
                ids = [moe.run_id, dense.run_id]
                f.put((*key, "energy_per_token_ratio_dense_over_moe"), ratio, ids)
                f.put((*key, "total_params_billions"), [tm, td], ids)
                f.put(
                    (*key, "active_params_billions"),
                    [moe.activated_params_billions, dense.activated_params_billions],
                    ids,
                )
                f.put((*key, "num_gpus"), [moe.num_gpus, dense.num_gpus], ids)
                f.put((*key, "batch"), [moe.batch, dense.batch], ids)
    if not ratios:
        return f.no_data("no MoE/dense pair of similar total size on the same task and GPU")
    all_ids = sorted({i for ids in f.sources.values() for i in ids})
    f.put("energy_ratio_dense_over_moe", describe(ratios), all_ids)
    f.conclusion = (
        f"Dense models use a median {x(statistics.median(ratios))} the energy per token of MoE "
        f"models of similar total size ({len(ratios)} pairs, "
        f"range {x(min(ratios))}-{x(max(ratios))}; "
        f"MoE cheaper in {sum(r > 1 for r in ratios)}): "
        "active parameters set the compute, total parameters the memory."
    )
    return f
