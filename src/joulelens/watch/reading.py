"""The framework's live reading of one window: what limits the running batch right now.

The same thresholds as ``why`` (:mod:`joulelens.analysis.thresholds`), applied to what a
running server shows instead of to a sweep:

* ``none``: the batch runs at its cap (``max_num_seqs``, when given): the knob sets it
  (runtime parameters -> batch size).
* ``offered_load``: the scheduler's queue is empty: the batch is whatever reaches the
  engine (application load -> batch size). Requests held before the engine (media
  preprocessing in the API server) are not in that queue; see ``docs/watch.md``.
* ``memory``: requests wait while the KV cache is at least 80% used, or requests were
  preempted (memory footprint / availability -> batch size).
* ``non_gpu_bottleneck``: requests wait, the batch is below its cap and the KV cache is
  mostly free: something off the GPU (CPU-side preprocessing or scheduling) keeps the
  batch from growing.
* ``unknown``: the series needed are not exposed, or the signals disagree (memory between
  free and bound; no cap given to tell "at the cap" from "held back").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from joulelens.analysis.thresholds import (
    BATCH_AT_CAP_FRACTION,
    KV_USAGE_MEMORY_BOUND,
    KV_USAGE_MEMORY_FREE,
)

# Mean waiting requests below this: the queue is empty most of the window (a request that
# waits a fraction of a step between arrival and admission is not a queue).
QUEUE_EMPTY_MEAN_REQUESTS = 0.5


class BatchLimit(StrEnum):
    MEMORY = "memory"
    NON_GPU_BOTTLENECK = "non_gpu_bottleneck"
    OFFERED_LOAD = "offered_load"
    NONE = "none"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LiveReading:
    limit: BatchLimit
    explanation: str


def batch_limit(
    running: float | None,
    waiting: float | None,
    kv_usage: float | None,
    preempted: float | None,
    cap: int | None,
) -> LiveReading:
    """The reading from a window's means (running, waiting, KV-cache usage 0..1), the
    preemptions counted in it, and the batch cap when known."""
    if running is None or waiting is None:
        return LiveReading(
            BatchLimit.UNKNOWN, "the server exposes no running or waiting request counts"
        )
    if cap is not None and running >= BATCH_AT_CAP_FRACTION * cap:
        return LiveReading(
            BatchLimit.NONE,
            f"running batch {running:.1f} is at its cap of {cap}: the max_num_seqs knob sets it",
        )
    if waiting < QUEUE_EMPTY_MEAN_REQUESTS:
        return LiveReading(
            BatchLimit.OFFERED_LOAD,
            f"no request waits (mean {waiting:.2f}): the batch of {running:.1f} is the load "
            "that reaches the engine",
        )
    queue = f"{waiting:.1f} requests wait on average"
    if preempted:
        return LiveReading(
            BatchLimit.MEMORY, f"{queue} and {preempted:.0f} were preempted: KV-cache memory"
        )
    if kv_usage is None:
        return LiveReading(BatchLimit.UNKNOWN, f"{queue}; the server exposes no KV-cache usage")
    usage = f"KV-cache usage {kv_usage:.0%}"
    if kv_usage >= KV_USAGE_MEMORY_BOUND:
        return LiveReading(BatchLimit.MEMORY, f"{queue} with {usage}: memory-bound")
    if kv_usage < KV_USAGE_MEMORY_FREE:
        if cap is None:
            return LiveReading(
                BatchLimit.UNKNOWN,
                f"{queue} with {usage}: at the batch cap or held back off the GPU; "
                "give --max-num-seqs to tell them apart",
            )
        return LiveReading(
            BatchLimit.NON_GPU_BOTTLENECK,
            f"{queue}, the batch of {running:.1f} is below its cap of {cap} and {usage}: "
            "something off the GPU (CPU-side preprocessing or scheduling) holds it back",
        )
    return LiveReading(
        BatchLimit.UNKNOWN, f"{queue} with {usage}: memory may contribute but does not decide"
    )
