"""The live reading of what limits the batch, on both sides of each threshold."""

from __future__ import annotations

import pytest

from joulelens.analysis.thresholds import (
    BATCH_AT_CAP_FRACTION,
    KV_USAGE_MEMORY_BOUND,
    KV_USAGE_MEMORY_FREE,
)
from joulelens.watch import BatchLimit, batch_limit
from joulelens.watch.reading import QUEUE_EMPTY_MEAN_REQUESTS

EPS = 1e-6
CAP = 64


@pytest.mark.parametrize(
    ("running", "waiting", "kv", "preempted", "cap", "expected"),
    [
        # At the cap: the knob sets the batch, whatever else is true.
        (BATCH_AT_CAP_FRACTION * CAP, 5.0, 0.95, 0.0, CAP, BatchLimit.NONE),
        (BATCH_AT_CAP_FRACTION * CAP - EPS, 5.0, 0.95, 0.0, CAP, BatchLimit.MEMORY),
        # An empty queue: the batch is the offered load.
        (10.0, QUEUE_EMPTY_MEAN_REQUESTS - EPS, 0.9, 0.0, CAP, BatchLimit.OFFERED_LOAD),
        (10.0, QUEUE_EMPTY_MEAN_REQUESTS, 0.9, 0.0, CAP, BatchLimit.MEMORY),
        (0.0, 0.0, 0.0, None, None, BatchLimit.OFFERED_LOAD),
        # Requests wait: KV-cache usage decides between memory and a non-GPU bottleneck.
        (20.0, 3.0, KV_USAGE_MEMORY_BOUND, 0.0, CAP, BatchLimit.MEMORY),
        (20.0, 3.0, KV_USAGE_MEMORY_BOUND - EPS, 0.0, CAP, BatchLimit.UNKNOWN),
        (20.0, 3.0, KV_USAGE_MEMORY_FREE, 0.0, CAP, BatchLimit.UNKNOWN),
        (20.0, 3.0, KV_USAGE_MEMORY_FREE - EPS, 0.0, CAP, BatchLimit.NON_GPU_BOTTLENECK),
        (20.0, 3.0, 0.1, 2.0, CAP, BatchLimit.MEMORY),  # preemptions: memory ran out
        # Without a cap, "at the cap" and "held back off the GPU" look alike.
        (20.0, 3.0, 0.1, 0.0, None, BatchLimit.UNKNOWN),
        (20.0, 3.0, None, 0.0, CAP, BatchLimit.UNKNOWN),
        (None, None, 0.5, None, CAP, BatchLimit.UNKNOWN),
    ],
)
def test_batch_limit(
    running: float | None,
    waiting: float | None,
    kv: float | None,
    preempted: float | None,
    cap: int | None,
    expected: BatchLimit,
) -> None:
    reading = batch_limit(running, waiting, kv, preempted, cap)
    assert reading.limit is expected
    assert reading.explanation
