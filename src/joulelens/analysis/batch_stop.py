"""Where a run's batch stopped, and why: the max_num_seqs cap, KV-cache memory, a non-GPU
bottleneck, or the end of the sweep. Used by :mod:`joulelens.analysis.why` and ``diagnose``.

For published leaderboard data every run reached at least 85% of its cap (unstable runs were
filtered out), so for the largest stable batch the question is why the *next* swept batch is
missing: would it have overflowed memory, or did something off the GPU stop the server from
filling it?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from joulelens.analysis import graph as g
from joulelens.analysis.memory import MemoryEstimate, NoEstimate, estimate_kv_memory
from joulelens.analysis.model_arch import model_arch
from joulelens.analysis.selection import RunIndex, gpu_name, is_usable
from joulelens.analysis.thresholds import (
    BATCH_AT_CAP_FRACTION,
    BATCH_GRID,
    BATCH_STABLE_FRACTION,
    FAMILY_TEXT_BATCH_RATIO,
    KV_USAGE_MEMORY_BOUND,
    KV_USAGE_MEMORY_FREE,
    KV_USAGE_NEXT_BATCH_OVERFLOW,
)
from joulelens.records import RunRecord, SourceKind


class BatchStop(StrEnum):
    CAP_CHOSEN = "cap_chosen"  # larger stable batches exist: the knob picked this point
    MEMORY_BOUND = "memory_bound"
    NON_GPU_BOTTLENECK = "non_gpu_bottleneck"
    SWEEP_END = "sweep_end"  # the largest batch the sweep tries
    INCONCLUSIVE = "inconclusive"


class MemoryVerdict(StrEnum):
    BOUND = "bound"
    FREE = "free"
    MAYBE = "maybe"
    UNKNOWN = "unknown"


BATCH_PATHS: dict[BatchStop, list[list[str]]] = {
    BatchStop.CAP_CHOSEN: [[g.RUNTIME, g.BATCH]],
    BatchStop.MEMORY_BOUND: [
        [g.MODEL, g.MEMORY_FOOTPRINT, g.BATCH],
        [g.WORKLOAD, g.MEMORY_FOOTPRINT, g.BATCH],
        [g.GPU, g.MEMORY_AVAILABILITY, g.BATCH],
        [g.GPU_COUNT, g.MEMORY_AVAILABILITY, g.BATCH],
    ],
    BatchStop.NON_GPU_BOTTLENECK: [[g.NON_GPU, g.BATCH]],
    BatchStop.SWEEP_END: [[g.RUNTIME, g.BATCH]],
    BatchStop.INCONCLUSIVE: [],
}


@dataclass
class Evidence:
    kind: str  # batch_fill, larger_batches, kv_cache_usage, memory_estimate, family_text_batch ...
    summary: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class MemoryFinding:
    verdict: MemoryVerdict
    source: str  # "kv_cache_usage" (recorded), "memory_estimate", or "none"
    usage: float | None  # at the running batch
    next_batch: int | None
    usage_at_next: float | None
    estimate: MemoryEstimate | None = None
    reason: str | None = None  # why no figure


def next_batch_after(record: RunRecord, sweep: list[RunRecord]) -> int | None:
    """The batch the sweep would try next: the store's next larger one, else the grid's."""
    cap = record.batch
    if cap is None:
        return None
    larger = sorted(r.batch for r in sweep if r.batch is not None and r.batch > cap)
    if larger:
        return larger[0]
    grid = [b for b in BATCH_GRID if b > cap]
    return grid[0] if grid else None


def memory_finding(record: RunRecord, next_batch: int | None, largest: bool) -> MemoryFinding:
    running = record.avg_batch_size or (float(record.batch) if record.batch else None)
    usage: float | None = None
    estimate: MemoryEstimate | None = None
    if record.avg_kv_cache_usage is not None:
        source, usage = "kv_cache_usage", record.avg_kv_cache_usage
    else:
        est = estimate_kv_memory(record)
        if isinstance(est, NoEstimate):
            return MemoryFinding(
                MemoryVerdict.UNKNOWN, "none", None, next_batch, None, reason=est.reason
            )
        source, usage, estimate = "memory_estimate", est.usage, est
    at_next = usage * next_batch / running if (next_batch and running) else None
    if usage >= KV_USAGE_MEMORY_BOUND or (
        largest and at_next is not None and at_next > KV_USAGE_NEXT_BATCH_OVERFLOW
    ):
        verdict = MemoryVerdict.BOUND
    elif (largest and at_next is not None and at_next <= KV_USAGE_MEMORY_BOUND) or (
        not largest and usage < KV_USAGE_MEMORY_FREE
    ):
        verdict = MemoryVerdict.FREE
    else:
        verdict = MemoryVerdict.MAYBE
    return MemoryFinding(verdict, source, usage, next_batch, at_next, estimate)


def _text_counterpart_evidence(record: RunRecord, index: RunIndex) -> Evidence | None:
    arch = model_arch(record.model_id)
    if arch is None or not arch.text_counterpart:
        return None
    key = (arch.text_counterpart, "lm-arena-chat", gpu_name(record), record.num_gpus)
    top = index.largest_stable(key)
    if top is None or top.batch is None or record.batch is None:
        return None
    ratio = top.batch / record.batch
    return Evidence(
        "family_text_batch",
        f"text counterpart {top.nickname or top.model_id} reached max_num_seqs {top.batch} on "
        f"lm-arena-chat with the same GPUs ({ratio:.1f}x this run's {record.batch})",
        {"run_id": top.run_id, "batch": top.batch, "ratio": ratio},
    )


def _other_tasks_evidence(record: RunRecord, index: RunIndex) -> Evidence | None:
    rows = {}
    for (model_id, task), _ in index.by_model_task.items():
        if model_id != record.model_id or task == record.task:
            continue
        top = index.largest_stable((model_id, task, gpu_name(record), record.num_gpus))
        if top is not None:
            rows[task] = {"batch": top.batch, "run_id": top.run_id}
    if not rows:
        return None
    text = ", ".join(f"{t} {v['batch']}" for t, v in sorted(rows.items()))
    return Evidence(
        "other_tasks", f"same model and GPUs, largest stable batch on other tasks: {text}", rows
    )


def _memory_evidence(mem: MemoryFinding) -> Evidence:
    if mem.source == "none":
        return Evidence("memory_estimate", f"no memory figure: {mem.reason}")
    what = (
        "recorded KV-cache usage" if mem.source == "kv_cache_usage" else "estimated KV-cache usage"
    )
    text = f"{what} {mem.usage:.0%} at the running batch"
    if mem.usage_at_next is not None:
        text += f", projected {mem.usage_at_next:.0%} at max_num_seqs {mem.next_batch}"
    if mem.estimate is not None:
        e = mem.estimate
        text += (
            f" (weights {e.weights_gib:.0f} GiB; KV cache {e.kv_capacity_gib:.0f} GiB of "
            f"{e.gpu_memory_gib_total:.0f} GiB; {e.tokens_per_sequence:,.0f} tokens per sequence)"
        )
    values: dict[str, Any] = {
        "usage": mem.usage,
        "usage_at_next": mem.usage_at_next,
        "next_batch": mem.next_batch,
    }
    return Evidence(mem.source, text, values)


_NON_GPU_CAUSES = {
    "video-chat": "CPU-side video preprocessing (decoding and resizing 32 frames per request) "
    "cannot feed a larger batch",
    "image-chat": "CPU-side image preprocessing (decoding and resizing each image) cannot feed "
    "a larger batch",
}
_NON_GPU_DEFAULT = (
    "something off the GPU (CPU scheduling, tokenization, stragglers) kept the server from "
    "filling a larger batch"
)


@dataclass(frozen=True)
class BatchVerdict:
    stop: BatchStop
    explanation: str
    cause: str | None = None


@dataclass(frozen=True)
class _Position:
    """Where a run sits in its sweep (same model, task, GPU and GPU count)."""

    cap: int | None
    fill: float | None
    larger_stable: list[RunRecord]
    larger_bad: list[RunRecord]  # unstable or failed
    published: bool  # leaderboard data: unstable batches were filtered out

    @property
    def largest(self) -> bool:
        return not self.larger_stable

    @property
    def partial(self) -> bool:
        return self.fill is not None and self.fill < BATCH_AT_CAP_FRACTION

    @property
    def next_tried(self) -> bool:
        return bool(self.larger_bad) or self.published


def _position(record: RunRecord, sweep: list[RunRecord]) -> _Position:
    cap, running = record.batch, record.avg_batch_size
    larger = [r for r in sweep if r.batch is not None and cap is not None and r.batch > cap]
    return _Position(
        cap=cap,
        fill=running / cap if (running is not None and cap) else None,
        larger_stable=[r for r in larger if is_usable(r)],
        larger_bad=[r for r in larger if not is_usable(r)],
        published=record.provenance.source is SourceKind.MLENERGY_LEADERBOARD,
    )


def _position_evidence(record: RunRecord, pos: _Position) -> list[Evidence]:
    out = []
    if pos.fill is not None:
        out.append(
            Evidence(
                "batch_fill",
                f"running batch {record.avg_batch_size:.1f} of cap {pos.cap} ({pos.fill:.0%})",
                {"fill": pos.fill},
            )
        )
    if pos.larger_stable or pos.larger_bad:
        stable = [r.batch for r in pos.larger_stable]
        bad = [r.batch for r in pos.larger_bad]
        out.append(
            Evidence(
                "larger_batches",
                f"larger batches in the store: stable {stable}, unstable or failed {bad}",
                {
                    "stable": [r.run_id for r in pos.larger_stable],
                    "unstable": [r.run_id for r in pos.larger_bad],
                },
            )
        )
    nxt = _next_bad(pos)
    if nxt is not None:
        fill = f"{nxt.fill:.0%} of its cap filled" if nxt.fill is not None else "fill unknown"
        kv = f", KV-cache usage {nxt.kv_usage:.0%}" if nxt.kv_usage is not None else ""
        out.append(
            Evidence(
                "next_batch_run",
                f"max_num_seqs {nxt.batch}: {fill}{kv}; unstable: {'; '.join(nxt.reasons)}",
                {"batch": nxt.batch, "fill": nxt.fill, "kv_usage": nxt.kv_usage},
            )
        )
    return out


def _decide(
    record: RunRecord, pos: _Position, mem: MemoryFinding | None, family: Evidence | None
) -> BatchVerdict:
    cap = pos.cap
    if record.is_diffusion or mem is None:
        if pos.larger_stable:
            return BatchVerdict(
                BatchStop.CAP_CHOSEN, f"batch {cap} is a direct knob; larger ran stable"
            )
        return BatchVerdict(
            BatchStop.SWEEP_END,
            f"batch {cap} is the largest in the store; diffusion batch limits (activation "
            "memory) are not modelled",
        )
    if cap == 1:  # nothing can stop a batch of one but the setting itself
        return BatchVerdict(
            BatchStop.CAP_CHOSEN,
            "max_num_seqs was set to 1: requests ran one at a time, so the batch could not grow",
        )
    if not pos.largest and not pos.partial:
        top = max(r.batch or 0 for r in pos.larger_stable)
        return BatchVerdict(
            BatchStop.CAP_CHOSEN,
            f"the batch stopped at the max_num_seqs cap ({cap}); batches up to {top} also ran "
            "stable, so the knob chose this point",
        )
    if pos.largest and cap == BATCH_GRID[-1] and not pos.larger_bad:
        return BatchVerdict(BatchStop.SWEEP_END, f"max_num_seqs {cap} is the sweep's largest batch")
    nxt = f"max_num_seqs {mem.next_batch}" if mem.next_batch else "a larger batch"
    if pos.larger_bad:
        missing = f"{nxt} was unstable"
    elif pos.published:
        missing = f"{nxt} is absent from the published data (dropped as unstable, or not run)"
    else:
        missing = f"{nxt} has not been measured"
    how = "recorded" if mem.source == "kv_cache_usage" else "estimated"
    usage = f"{mem.usage:.0%}" if mem.usage is not None else "unknown"
    at_next = f"{mem.usage_at_next:.0%} at {nxt}" if mem.usage_at_next is not None else ""
    nxt_run = _next_bad(pos)
    if nxt_run is not None and (nxt_run.kv_usage or 0) >= KV_USAGE_MEMORY_BOUND:
        return BatchVerdict(
            BatchStop.MEMORY_BOUND,
            f"memory-bound: at max_num_seqs {nxt_run.batch} the recorded KV-cache usage reached "
            f"{nxt_run.kv_usage:.0%} and the run was unstable",
            "KV-cache memory",
        )
    if mem.verdict is MemoryVerdict.BOUND:
        what = "KV-cache usage" if how == "recorded" else "estimated KV-cache demand"
        detail = f"{what} {usage} of the cache at the running batch"
        if at_next and (mem.usage or 0) < KV_USAGE_MEMORY_BOUND:
            detail += f", {at_next}"
        if pos.partial and pos.fill is not None:
            detail += f"; the running batch filled {pos.fill:.0%} of the cap (vLLM preempts)"
        return BatchVerdict(
            BatchStop.MEMORY_BOUND, f"memory-bound: {detail}; {missing}", "KV-cache memory"
        )
    filled = pos.fill is not None and pos.fill >= BATCH_STABLE_FRACTION
    family_bigger = family is not None and family.values["ratio"] >= FAMILY_TEXT_BATCH_RATIO
    nothing_else = mem.verdict is MemoryVerdict.UNKNOWN and not family_bigger
    if not pos.published and pos.largest and not pos.larger_bad and filled and nothing_else:
        # Our own sweep simply stopped here: the batch filled the cap it was given, and no
        # memory figure or sibling model suggests a limit.
        return BatchVerdict(
            BatchStop.SWEEP_END,
            f"no larger batch was tried: max_num_seqs {cap} is the largest measured, and its "
            f"running batch filled {pos.fill:.0%} of it",
        )
    return _not_memory(record, pos, mem, family, missing)


def _not_memory(
    record: RunRecord,
    pos: _Position,
    mem: MemoryFinding,
    family: Evidence | None,
    missing: str,
) -> BatchVerdict:
    """Memory did not clearly stop the batch: a non-GPU bottleneck needs corroboration."""
    how = "recorded" if mem.source == "kv_cache_usage" else "estimated"
    usage = (
        f"KV-cache usage ({how}) {mem.usage:.0%}" if mem.usage is not None else "no memory figure"
    )
    if mem.usage_at_next is not None:
        usage += f", {mem.usage_at_next:.0%} at max_num_seqs {mem.next_batch}"
    family_bigger = family is not None and family.values["ratio"] >= FAMILY_TEXT_BATCH_RATIO
    family_text = f"; {family.summary}" if family is not None and family_bigger else ""
    cause = _NON_GPU_CAUSES.get(record.task, _NON_GPU_DEFAULT)
    free = mem.verdict is MemoryVerdict.FREE
    nxt = _next_bad(pos)
    if nxt is not None:  # the next batch was run: its own numbers decide
        short_fill = nxt.fill is not None and nxt.fill < BATCH_STABLE_FRACTION
        if short_fill and (free or mem.verdict is MemoryVerdict.UNKNOWN):
            return BatchVerdict(
                BatchStop.NON_GPU_BOTTLENECK,
                f"max_num_seqs {nxt.batch} ran with only {nxt.fill:.0%} of its cap filled while "
                f"memory was free ({usage}){family_text}. Likely a non-GPU bottleneck: {cause}",
                cause,
            )
        if not short_fill:
            reasons = "; ".join(nxt.reasons) or "no reason recorded"
            return BatchVerdict(
                BatchStop.INCONCLUSIVE,
                f"max_num_seqs {nxt.batch} was unstable for another reason ({reasons}); {usage}",
            )
    elif pos.published or pos.partial:
        corroborated = pos.partial or family_bigger
        if free and corroborated:
            where = (
                f"the running batch filled {pos.fill:.0%} of the cap"
                if pos.partial and pos.fill is not None and not pos.published
                else missing
            )
            return BatchVerdict(
                BatchStop.NON_GPU_BOTTLENECK,
                f"{where}; memory does not explain it: {usage}{family_text}. "
                f"Likely a non-GPU bottleneck: {cause}",
                cause,
            )
        if mem.verdict is MemoryVerdict.UNKNOWN and family_bigger and pos.published:
            return BatchVerdict(
                BatchStop.NON_GPU_BOTTLENECK,
                f"{missing}; no memory figure{family_text}. Possibly a non-GPU bottleneck: {cause}",
                cause,
            )
        if free:
            return BatchVerdict(
                BatchStop.INCONCLUSIVE,
                f"{missing}; memory does not explain it ({usage}), but the run filled its cap "
                "and nothing else points at a non-GPU limit (the next batch may have failed "
                "another check, such as a steady state under 20 s, or not been run)",
            )
    else:
        return BatchVerdict(BatchStop.INCONCLUSIVE, f"no larger batch was tried; {usage}")
    return BatchVerdict(
        BatchStop.INCONCLUSIVE,
        f"{missing}; memory may contribute ({usage}) but does not clearly explain it",
    )


@dataclass(frozen=True)
class _NextRun:
    batch: int
    fill: float | None
    kv_usage: float | None
    reasons: list[str]


def _next_bad(pos: _Position) -> _NextRun | None:
    """The smallest larger batch that ran and was unstable or failed, if any."""
    if not pos.larger_bad:
        return None
    r = min(pos.larger_bad, key=lambda r: r.batch or 0)
    fill = r.avg_batch_size / r.batch if (r.avg_batch_size is not None and r.batch) else None
    reasons = list(r.unstable_reasons) or ([r.failure_reason] if r.failure_reason else [])
    return _NextRun(r.batch or 0, fill, r.avg_kv_cache_usage, reasons)


def batch_verdict(
    record: RunRecord, index: RunIndex
) -> tuple[BatchVerdict, list[Evidence], MemoryFinding | None]:
    """The verdict, the evidence it weighed, and the memory finding (None for diffusion)."""
    sweep = index.sweep(record)
    pos = _position(record, sweep)
    evidence = _position_evidence(record, pos)
    if record.is_diffusion:
        return _decide(record, pos, None, None), evidence, None
    mem = memory_finding(record, next_batch_after(record, sweep), pos.largest)
    evidence.append(_memory_evidence(mem))
    family = _text_counterpart_evidence(record, index)
    evidence += [e for e in (family, _other_tasks_evidence(record, index)) if e is not None]
    return _decide(record, pos, mem, family), evidence, mem
