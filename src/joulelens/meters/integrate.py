"""Energy from sampled power, for sources without an energy counter (pre-Volta GPUs).

The integrator keeps a software energy counter: each :meth:`PowerIntegrator.poll` reads
power and adds the trapezoid since the previous poll. Polls come from a background thread
while a window is open (``acquire``/``release``) and from the timeline sampler when one
runs. A long gap between polls (no window open) puts a poor trapezoid into the counter, but
never inside a window: a window's first reading is taken after its polling thread started.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from joulelens.errors import MeterError
from joulelens.meters.base import Clock, Reading


class PowerIntegrator:
    """Cumulative joules from power polls; ``period_s=None`` polls only when asked (tests)."""

    def __init__(
        self, read_power_w: Callable[[], float], *, clock: Clock, period_s: float | None
    ) -> None:
        if period_s is not None and period_s <= 0:
            raise ValueError(f"poll period must be positive, got {period_s}")
        self._read_power_w = read_power_w
        self._clock = clock
        self.period_s = period_s
        self._lock = threading.Lock()
        self._energy_j = 0.0
        self._last: tuple[float, float] | None = None
        self._users = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: MeterError | None = None

    def poll(self) -> Reading:
        """Read power now and return the updated cumulative energy."""
        if self._error is not None:
            raise MeterError(f"power polling failed: {self._error}") from self._error
        with self._lock:  # poll in order: the background thread and the sampler both poll
            power_w = self._read_power_w()
            t_s = self._clock()
            if self._last is not None:
                last_t, last_w = self._last
                self._energy_j += 0.5 * (power_w + last_w) * max(0.0, t_s - last_t)
            self._last = (t_s, power_w)
            return Reading(t_s, self._energy_j)

    def acquire(self) -> None:
        """Keep polling in the background until the matching :meth:`release`."""
        with self._lock:
            self._users += 1
            start = self._users == 1 and self.period_s is not None
        if start:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="joulelens-power-integrator", daemon=True
            )
            self._thread.start()

    def release(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            stop = self._users == 0
        if stop and self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop background polling whatever windows are still open."""
        with self._lock:
            self._users = 0
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        assert self.period_s is not None
        period_s = self.period_s
        deadline = self._clock()
        while True:
            try:
                self.poll()
            except MeterError as exc:
                self._error = exc
                return
            deadline += period_s
            # Skip missed deadlines rather than bursting to catch up.
            now = self._clock()
            if deadline < now:
                deadline = now + period_s
            if self._stop.wait(deadline - now):
                return
