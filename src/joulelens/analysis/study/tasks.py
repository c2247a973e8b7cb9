"""Findings about tasks: ``task_energy`` and ``multimodal``."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from joulelens.analysis.memory import NoEstimate, estimate_kv_memory
from joulelens.analysis.model_arch import model_arch
from joulelens.analysis.selection import (
    MULTIMODAL_TASKS,
    TASK_LABELS,
    RunIndex,
    gpu_name,
    is_usable,
)
from joulelens.analysis.study.base import Finding, describe, geomean, x
from joulelens.analysis.why import BatchStop, why
from joulelens.records import RunRecord

BASELINE_TASK = "lm-arena-chat"
HEADLINE_PAIR = ("gpqa", "lm-arena-chat")


def task_energy(index: RunIndex, gpu: str = "B200") -> Finding:
    f = Finding(
        "task_energy",
        "Energy by task",
        f"Each model's minimum-energy run on {gpu} (any GPU count and batch) per task. "
        "Decomposition: over the models run on both tasks, the geometric mean of the per-model "
        "ratios of J/response = output tokens x J/token (x a residual where a run's J/response "
        "is not exactly its tokens times J/token); these factors multiply back. Unmatched means: "
        "per task the mean over its own models, as the paper quotes them; those ratios compare "
        "different model sets and do not multiply.",
    )
    means: dict[str, dict[str, float]] = {}
    minima: dict[str, dict[str, RunRecord]] = {}
    for task in sorted(index.by_task):
        best = {
            model: run
            for model in sorted({r.model_id for r in index.by_task[task]})
            if (run := index.min_energy(model, task, lambda r: gpu_name(r) == gpu)) is not None
        }
        runs = list(best.values())
        if not runs:
            continue
        ids = [r.run_id for r in runs]
        base = f"per_task.{task}"
        f.put(f"{base}.label", TASK_LABELS.get(task, task))
        f.put(f"{base}.models", len(runs), ids)
        if runs[0].is_diffusion:
            gen = statistics.fmean(r.energy_per_unit_joules or 0 for r in runs)
            f.put(f"{base}.energy_unit", runs[0].energy_unit)
            f.put(f"{base}.mean_energy_per_generation_joules", gen, ids)
            continue
        tok = [r for r in runs if r.avg_output_len and r.energy_per_request_joules]
        if not tok:
            f.notes.append(f"{task}: no run with output lengths and energy per response; left out")
            continue
        minima[task] = {r.model_id: r for r in tok}
        m = {
            "out": statistics.fmean(r.avg_output_len or 0 for r in tok),
            "tok": statistics.fmean(r.energy_per_token_joules or 0 for r in tok),
            "resp": statistics.fmean(r.energy_per_request_joules or 0 for r in tok),
        }
        means[task] = m
        f.put(f"{base}.mean_output_tokens", m["out"], ids)
        f.put(f"{base}.mean_energy_per_token_joules", m["tok"], ids)
        f.put(f"{base}.mean_energy_per_response_joules", m["resp"], ids)
    if not means:
        return f.no_data(f"no stable LLM runs on {gpu}")
    base_task = BASELINE_TASK if BASELINE_TASK in means else sorted(means)[0]
    for task, m in means.items():
        if task == base_task:
            continue
        b = means[base_task]
        ids = f.ids_at(f"per_task.{task}.models") + f.ids_at(f"per_task.{base_task}.models")
        key = f"unmatched_mean_ratios_vs_{base_task}.{task}"
        f.put(f"{key}.energy_per_response", m["resp"] / b["resp"], ids)
        f.put(f"{key}.output_tokens", m["out"] / b["out"], ids)
        f.put(f"{key}.energy_per_token", m["tok"] / b["tok"], ids)
        _decompose(f, f"decomposition_vs_{base_task}.{task}", minima[task], minima[base_task])
    f.conclusion = _task_conclusion(f, gpu, base_task, means)
    return f


def _decompose(
    f: Finding, key: str, runs: dict[str, RunRecord], base: dict[str, RunRecord]
) -> None:
    """Geometric means over the models both tasks have: response = tokens x per-token x rest."""
    models = sorted(runs.keys() & base.keys())
    f.put(
        f"{key}.models", len(models), [r for m in models for r in (runs[m].run_id, base[m].run_id)]
    )
    if not models:
        return
    ids = f.ids_at(f"{key}.models")

    def gm(get: Callable[[RunRecord], float | None]) -> float:
        return geomean([(get(runs[m]) or 0) / (get(base[m]) or 1) for m in models]) or 0.0

    resp = gm(lambda r: r.energy_per_request_joules)
    out = gm(lambda r: r.avg_output_len)
    tok = gm(lambda r: r.energy_per_token_joules)
    f.put(f"{key}.energy_per_response", resp, ids)
    f.put(f"{key}.output_tokens", out, ids)
    f.put(f"{key}.energy_per_token", tok, ids)
    f.put(f"{key}.residual", resp / (out * tok) if out and tok else None, ids)


def _task_conclusion(
    f: Finding, gpu: str, base_task: str, means: dict[str, dict[str, float]]
) -> str:
    hi, lo = HEADLINE_PAIR
    d = f.numbers.get(f"decomposition_vs_{lo}", {}).get(hi)
    u = f.numbers.get(f"unmatched_mean_ratios_vs_{lo}", {}).get(hi)
    if lo != base_task or not d or not d.get("models") or not u:
        top = max(means, key=lambda t: means[t]["resp"])
        return f"On {gpu}, {top} has the highest mean energy per response."
    rest = d["residual"]
    residual = f" x {x(rest)} residual" if rest and abs(rest - 1) > 0.005 else ""
    return (
        f"On {gpu}, over the {d['models']} models run on both, {TASK_LABELS[hi]} uses "
        f"{x(d['energy_per_response'])} the energy per response of {TASK_LABELS[lo]} = "
        f"{x(d['output_tokens'])} the output tokens x {x(d['energy_per_token'])} the energy per "
        f"token{residual} (geometric means of per-model ratios; they multiply back). Unmatched "
        f"means over each task's own models ({f.numbers['per_task'][hi]['models']} and "
        f"{f.numbers['per_task'][lo]['models']}; different sets, so they do not multiply): "
        f"{x(u['energy_per_response'])} per response, {x(u['output_tokens'])} output tokens, "
        f"{x(u['energy_per_token'])} per token."
    )


def _counterpart(model_id: str, index: RunIndex) -> str | None:
    arch = model_arch(model_id)
    if arch is not None and arch.text_counterpart:
        return arch.text_counterpart
    if (model_id, BASELINE_TASK) in index.by_model_task:
        return model_id  # one checkpoint serves both (Gemma 3, Llama 4)
    return None


def _memory_usage(r: RunRecord) -> tuple[float | None, str]:
    if r.avg_kv_cache_usage is not None:
        return r.avg_kv_cache_usage, "recorded"
    est = estimate_kv_memory(r)
    return (None, "none") if isinstance(est, NoEstimate) else (est.usage, "estimated")


def multimodal(index: RunIndex) -> Finding:
    f = Finding(
        "multimodal",
        "Multimodal vs text",
        "Per (multimodal model, image/video chat, GPU, GPU count): its text counterpart on text "
        "conversation with the same GPUs; ratio of minimum energy per token, ratio at matched "
        "batch sizes, largest stable batch of each, KV-cache usage (recorded or estimated) at "
        "the multimodal model's largest batch, and why that batch stopped.",
    )
    ratios: dict[str, list[float]] = {t: [] for t in MULTIMODAL_TASKS}
    non_gpu: dict[str, int] = dict.fromkeys(MULTIMODAL_TASKS, 0)
    for (model_id, task, gpu, n), runs in sorted(index.by_sweep.items()):
        if task not in MULTIMODAL_TASKS or (text_id := _counterpart(model_id, index)) is None:
            continue
        text_runs = [
            r for r in index.by_sweep.get((text_id, BASELINE_TASK, gpu, n), []) if is_usable(r)
        ]
        mm_runs = [r for r in runs if is_usable(r)]
        if not text_runs or not mm_runs:
            continue
        mm_min = min(mm_runs, key=lambda r: r.energy_per_unit_joules or 0)
        tx_min = min(text_runs, key=lambda r: r.energy_per_unit_joules or 0)
        mm_top = max(mm_runs, key=lambda r: r.batch or 0)
        tx_top = max(text_runs, key=lambda r: r.batch or 0)
        by_batch = {r.batch: r for r in text_runs}
        matched = [(r, by_batch[r.batch]) for r in mm_runs if r.batch in by_batch]
        usage, usage_source = _memory_usage(mm_top)
        verdict = why(mm_top, index)
        key = ("pairs", task, f"{model_id} {n}x{gpu}")
        ratio = (mm_min.energy_per_unit_joules or 0) / (tx_min.energy_per_unit_joules or 1)
        ratios[task].append(ratio)
        non_gpu[task] += verdict.batch_stop is BatchStop.NON_GPU_BOTTLENECK
        f.put((*key, "text_model"), text_id)
        f.put((*key, "min_energy_per_token_ratio"), ratio, [mm_min.run_id, tx_min.run_id])
        f.put(
            (*key, "matched_batch_energy_ratio_median"),
            statistics.median(
                (a.energy_per_unit_joules or 0) / (b.energy_per_unit_joules or 1)
                for a, b in matched
            )
            if matched
            else None,
            [i for a, b in matched for i in (a.run_id, b.run_id)],
        )
        f.put((*key, "largest_batch"), mm_top.batch, [mm_top.run_id])
        f.put((*key, "text_largest_batch"), tx_top.batch, [tx_top.run_id])
        f.put((*key, "kv_cache_usage_at_largest_batch"), usage, [mm_top.run_id])
        f.put((*key, "kv_cache_usage_source"), usage_source)
        f.put((*key, "batch_stop"), verdict.batch_stop.value, [mm_top.run_id])
    if not any(ratios.values()):
        return f.no_data("no multimodal runs with a text counterpart on the same GPUs")
    parts = []
    for task, vals in ratios.items():
        if not vals:
            continue
        ids = [
            i
            for name in f.numbers["pairs"].get(task, {})
            for i in f.ids_at(("pairs", task, name, "min_energy_per_token_ratio"))
        ]
        f.put(f"summary.{task}.min_energy_per_token_ratio", describe(vals), ids)
        f.put(f"summary.{task}.non_gpu_bottleneck_pairs", non_gpu[task])
        f.put(f"summary.{task}.pairs", len(vals))
        parts.append(
            f"{TASK_LABELS[task]} costs a median {x(statistics.median(vals))} the energy per token "
            f"of text ({non_gpu[task]} of {len(vals)} setups point at a non-GPU bottleneck)"
        )
    f.conclusion = "; ".join(parts) + "."
    f.notes.append(
        "KV-cache usage is an estimate from architecture data wherever the run did not record it "
        "(all published leaderboard runs); see `joulelens why` for the assumptions."
    )
    return f
