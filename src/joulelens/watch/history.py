"""The samples behind the rolling windows, kept only as long as the longest window needs.

One :class:`Tick` per sample period: every device's energy total and every endpoint's
server values at that moment. Memory is bounded by construction: ticks older than the
horizon are dropped as new ones arrive, so a week of watching holds as many ticks as five
minutes do.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice


@dataclass(frozen=True, slots=True)
class EndpointSample:
    """One endpoint at one tick. Totals count from when the watcher first saw the server
    (resets folded in, see :mod:`.counters`); ``None`` where it exposes no such series.
    A sample with ``up`` false holds nothing but the error."""

    up: bool
    tokens: float | None = None
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    preemptions: float | None = None
    error: str | None = None


DOWN = EndpointSample(up=False, error="not scraped yet")


@dataclass(frozen=True, slots=True)
class Tick:
    """Everything read at one sample time.

    ``t_s`` is the watcher's monotonic clock, ``unix_s`` wall time (exposed so a scrape can
    be matched with the tick it saw). ``energy_j`` holds each device's total since the
    watcher started, ``None`` when the device could not be read at this tick.
    """

    index: int
    t_s: float
    unix_s: float
    energy_j: dict[str, float | None]
    endpoints: dict[str, EndpointSample]

    def endpoint(self, label: str) -> EndpointSample:
        return self.endpoints.get(label, DOWN)


class History:
    """Ticks of the last ``horizon_s`` (plus the one just before, so a window of exactly
    the horizon still finds its start)."""

    def __init__(self, horizon_s: float) -> None:
        if horizon_s <= 0:
            raise ValueError(f"horizon must be positive, got {horizon_s}")
        self.horizon_s = horizon_s
        self._ticks: deque[Tick] = deque()
        self._times: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._ticks)

    def __iter__(self) -> Iterator[Tick]:
        return iter(self._ticks)

    @property
    def latest(self) -> Tick | None:
        return self._ticks[-1] if self._ticks else None

    def append(self, tick: Tick) -> None:
        if self._times and tick.t_s < self._times[-1]:
            raise ValueError("ticks must arrive in time order")
        self._ticks.append(tick)
        self._times.append(tick.t_s)
        oldest_kept_s = tick.t_s - self.horizon_s
        while len(self._times) > 1 and self._times[1] <= oldest_kept_s:
            self._ticks.popleft()
            self._times.popleft()

    def at_or_before(self, t_s: float) -> Tick | None:
        """The latest tick at or before ``t_s``."""
        i = bisect_right(self._times, t_s)
        return self._ticks[i - 1] if i else None

    def between(self, start: Tick, end: Tick) -> list[Tick]:
        """Ticks after ``start`` up to and including ``end`` (the window's samples)."""
        first = bisect_right(self._times, start.t_s)
        last = bisect_right(self._times, end.t_s)
        return list(islice(self._ticks, first, last))
