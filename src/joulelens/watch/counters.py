"""Raw counters folded into totals that only grow, across restarts and device resets.

Two kinds of source, two rules:

* a server's counter (``vllm:generation_tokens_total``) restarts from 0 when the server
  restarts: a value below the last one, or a new process start time, is a reset and the new
  value counts in full (Prometheus's ``rate()`` rule);
* a meter's cumulative energy counts from an arbitrary origin (NVML: driver load): a step
  backwards (a driver reload) cannot be measured, so that one interval adds nothing and the
  total carries on from the new origin.

Both start at 0 when first seen: the exporter's totals count from when it started watching.
"""

from __future__ import annotations


class ServerCounter:
    """A server counter as a total since first seen; ``resets`` counts detected restarts."""

    __slots__ = ("_last", "resets", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.resets = 0
        self._last: float | None = None

    def update(self, raw: float, *, restarted: bool = False) -> tuple[float, bool]:
        """Fold in one reading; returns (total, whether this reading was a reset)."""
        reset = False
        if self._last is not None:
            if restarted or raw < self._last:
                self.total += raw
                self.resets += 1
                reset = True
            else:
                self.total += raw - self._last
        self._last = raw
        return self.total, reset


class DeviceCounter:
    """A meter's cumulative energy (J) as a total since first read; ``backwards`` counts
    steps back (device or driver resets), whose interval is left out."""

    __slots__ = ("_last", "backwards", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.backwards = 0
        self._last: float | None = None

    def update(self, raw_j: float) -> tuple[float, bool]:
        """Fold in one reading; returns (total, whether the counter went backwards)."""
        back = False
        if self._last is not None:
            if raw_j >= self._last:
                self.total += raw_j - self._last
            else:
                self.backwards += 1
                back = True
        self._last = raw_j
        return self.total, back
