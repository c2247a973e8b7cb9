"""Background timeline sampler: power, temperature and GPU state at a fixed period.

Cheap by design (target < 1% of one core at 10 Hz): one thread sleeping on
``Event.wait`` until the next deadline of a fixed schedule ``start + k * period`` (so no
drift accumulates; missed deadlines are skipped, never burst), per-series pre-built names,
and points appended to ``array('d')`` columns rather than objects. Each tick records every
meter's cumulative energy (``energy_joules:<meter>``) and its power sensor; device state
(temperature, utilization, clocks, memory, power limit) comes every ``state_period_s``. For
meters without a power sensor (RAPL, CPU estimate) power is derived from the energy delta
since the previous tick, stamped at the end of that interval.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

from joulelens.core.clock import now_s
from joulelens.core.series import energy_series, power_series
from joulelens.errors import MeterError
from joulelens.meters.base import Clock, Meter, UnavailableMeter
from joulelens.meters.timeline import Timeline

DEFAULT_PERIOD_S = 0.1
# Temperature, utilization, clocks, memory and power limit change slowly (the paper samples
# temperature at 2 Hz); reading them at 10 Hz would cost 5 more NVML calls per GPU a tick.
DEFAULT_STATE_PERIOD_S = 0.5


def next_tick(start_s: float, period_s: float, now: float, done_ticks: int) -> int:
    """The index of the next tick to run after ``done_ticks`` ticks, skipping past ones.

    Tick *k* is due at ``start_s + k * period_s``; a tick whose time has already passed is
    skipped so that a stall (GC, a slow NVML call) does not cause a burst of catch-up reads.
    """
    due_now = math.floor((now - start_s) / period_s) + 1
    return max(done_ticks, due_now)


@dataclass(slots=True)
class _Track:
    meter: Meter
    energy_series: str
    power_series: str | None  # set when power is derived from energy
    origin_j: float | None = None
    last_t_s: float = 0.0
    last_j: float = 0.0


class TimelineSampler:
    """Samples meters every ``period_s`` on a background thread into a :class:`Timeline`.

    Energy and power are read every tick, device state every ``state_period_s`` (``None``:
    every tick too).

    Use as a context manager or ``start()``/``stop()``; both take a sample on the caller's
    thread, so windows opened after ``start`` and closed before ``stop`` are covered by
    the ``energy_joules:*`` series. A meter failing mid-run stops the
    sampling and :meth:`stop` raises that :class:`MeterError`: a broken timeline fails the
    measurement instead of silently thinning out.
    """

    def __init__(
        self,
        meters: Iterable[Meter],
        *,
        period_s: float = DEFAULT_PERIOD_S,
        state_period_s: float | None = DEFAULT_STATE_PERIOD_S,
        clock: Clock = now_s,
        timeline: Timeline | None = None,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        if state_period_s is not None and state_period_s <= 0:
            raise ValueError(f"state_period_s must be positive, got {state_period_s}")
        self.period_s = period_s
        # Device state every n-th tick (at least every tick).
        self.state_every = 1 if state_period_s is None else max(1, round(state_period_s / period_s))
        self.timeline = timeline if timeline is not None else Timeline()
        self._clock = clock
        self._tracks = [
            _Track(
                meter=m,
                energy_series=energy_series(m.name),
                power_series=None if m.offers_power else power_series(m.name),
            )
            for m in meters
            if not isinstance(m, UnavailableMeter)
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: MeterError | None = None
        self.ticks = 0
        self.missed_ticks = 0
        self.thread_cpu_s: float | None = None
        self.started_s: float | None = None

    def start(self) -> None:
        """Take the first sample now (so a window opened next is covered), then keep going."""
        if self._thread is not None:
            raise MeterError("the timeline sampler is already running")
        self.started_s = self._clock()
        self.sample_once()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="joulelens-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> Timeline:
        """Join the thread and take a last sample (covering a window closed just before).

        Raises the :class:`MeterError` a meter raised during sampling, if any.
        """
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise MeterError(f"timeline sampling failed: {self._error}") from self._error
        self.sample_once()
        return self.timeline

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sample_once(self) -> None:
        """One tick on the caller's thread: energy, derived power and sensors of every meter."""
        t_s = self._clock()
        state = self.ticks % self.state_every == 0
        timeline = self.timeline
        with timeline.lock:
            for track in self._tracks:
                reading = track.meter.read()
                if reading.energy_j is not None:
                    if track.origin_j is None:
                        track.origin_j = reading.energy_j
                    elif track.power_series is not None and reading.t_s > track.last_t_s:
                        power_w = (reading.energy_j - track.last_j) / (reading.t_s - track.last_t_s)
                        timeline.append(track.power_series, reading.t_s, power_w)
                    timeline.append(
                        track.energy_series, reading.t_s, reading.energy_j - track.origin_j
                    )
                    track.last_t_s, track.last_j = reading.t_s, reading.energy_j
                track.meter.sample(t_s, timeline, state=state)
        self.ticks += 1

    def _run(self) -> None:
        cpu_start_s = time.thread_time()
        start_s = self.started_s if self.started_s is not None else self._clock()
        tick = 0  # tick k is due at start_s + k * period_s; start() ran tick 0
        try:
            while True:
                now = self._clock()
                following = next_tick(start_s, self.period_s, now, tick + 1)
                self.missed_ticks += following - (tick + 1)
                tick = following
                if self._stop.wait(max(0.0, start_s + tick * self.period_s - now)):
                    break
                self.sample_once()
        except MeterError as exc:
            self._error = exc
        finally:
            self.thread_cpu_s = time.thread_time() - cpu_start_s

    def __enter__(self) -> TimelineSampler:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
            return
        # Already unwinding: stop the thread but let the original error win.
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
