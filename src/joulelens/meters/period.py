"""How often a sensor refreshes, measured by polling it in a tight loop (as Zeus infers it).

NVML's energy counter and power readings refresh every 10-100 ms depending on the GPU
generation; documentation and measurements disagree, so a meter measures its own at
start-up: read as fast as possible, note when the value changes, and take the median gap
between changes. The energy counter changes on every refresh (an idle GPU still draws tens
of watts); a power reading may repeat a value, so for power the smallest gap is also kept.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from joulelens.meters.base import Clock

DEFAULT_PROBE_S = 0.35  # >= 3 refreshes of a 100 ms counter
MAX_PROBE_READS = 1_000_000


@dataclass(frozen=True, slots=True)
class UpdatePeriod:
    """Result of one probe: ``median_s``/``min_s`` between changes; ``None`` if < 2 changes."""

    median_s: float | None
    min_s: float | None
    changes: int
    reads: int
    duration_s: float

    @property
    def read_latency_s(self) -> float:
        return self.duration_s / self.reads if self.reads else 0.0

    def describe(self) -> str:
        if self.median_s is None:
            return f"not measured: the value changed {self.changes} times in {self.reads} reads"
        return (
            f"measured at start-up: median {self.median_s * 1e3:.1f} ms between {self.changes} "
            f"changes ({self.reads} reads in {self.duration_s:.2f} s)"
        )


def probe_update_period(
    read: Callable[[], float],
    clock: Clock,
    *,
    duration_s: float = DEFAULT_PROBE_S,
    min_changes: int = 5,
    max_reads: int = MAX_PROBE_READS,
) -> UpdatePeriod:
    """Poll ``read`` for up to ``duration_s`` (stopping after ``min_changes`` + 1 changes).

    ``duration_s`` bounds both ``clock`` time and wall time, so a clock that only moves when
    told (tests) cannot make the loop spin for long.
    """
    start = clock()
    wall_end = time.perf_counter() + duration_s
    last = read()
    changed_at: list[float] = []
    reads = 1
    now = start
    while (
        reads < max_reads
        and now - start < duration_s
        and len(changed_at) <= min_changes
        and (reads % 256 or time.perf_counter() < wall_end)
    ):
        value = read()
        now = clock()
        reads += 1
        if value != last:
            changed_at.append(now)
            last = value
    gaps = [b - a for a, b in itertools.pairwise(changed_at)]
    return UpdatePeriod(
        median_s=statistics.median(gaps) if gaps else None,
        min_s=min(gaps) if gaps else None,
        changes=len(changed_at),
        reads=reads,
        duration_s=now - start,
    )
