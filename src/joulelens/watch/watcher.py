"""The watcher: one sample per period of every meter and every server, for days.

Each :meth:`Watcher.tick` reads every meter and scrapes every endpoint (in parallel, each
bounded by a timeout), folds raw counters into totals that survive restarts
(:mod:`.counters`) and appends one :class:`~.history.Tick` to a bounded history. Window
figures are computed only when asked (:meth:`Watcher.snapshot`, once per tick however
many scrapers ask), so an idle exporter costs a few reads a second.

Nothing that happens to a server or a device stops the watcher: a server that does not
answer is marked down (its series disappear) and logged once, a device that fails to read
is left out of the windows that touch that tick, and either is logged again when it
recovers. Ticks come on a fixed schedule (``start + k * period``); a tick that comes too
late is skipped, never run in a burst.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters import MeterSet, UnavailableMeter
from joulelens.meters.sampler import next_tick
from joulelens.watch.config import EndpointSpec, WatchConfig
from joulelens.watch.counters import DeviceCounter, ServerCounter
from joulelens.watch.figures import DeviceInfo, idle_by_boundary
from joulelens.watch.history import EndpointSample, History, Tick
from joulelens.watch.scrape import HttpTransport, ScrapeResult, Transport, scrape
from joulelens.watch.snapshot import EndpointStatus, Snapshot, assign_devices, compute_windows
from joulelens.workloads.prometheus import HistogramCounts

log = logging.getLogger("joulelens.watch")

WATCH_WINDOW = "joulelens-watch"  # kept open so integrating meters keep polling


@dataclass(frozen=True)
class ObservedWindow:
    """One record window of one endpoint, handed to the recorder."""

    spec: EndpointSpec
    start: Tick
    end: Tick
    ticks: tuple[Tick, ...]  # after start, up to and including end
    histograms_start: Mapping[str, HistogramCounts]
    histograms_end: Mapping[str, HistogramCounts]
    devices: tuple[DeviceInfo, ...]  # the endpoint's own devices
    idle_watts: Mapping[str, float]


class _Endpoint:
    """Mutable per-endpoint state, touched only by the sampling thread."""

    def __init__(self, spec: EndpointSpec, transport: Transport) -> None:
        self.spec = spec
        self.transport = transport
        self.tokens = ServerCounter()
        self.preemptions = ServerCounter()
        self.start_time_s: float | None = None
        self.up: bool | None = None  # None: never scraped
        self.error: str | None = None
        self.failures = 0
        self.told_no_tokens = False
        self.record_start: tuple[Tick, Mapping[str, HistogramCounts]] | None = None


class Watcher:
    """Samples ``meters`` and ``config.endpoints`` every ``config.sample_period_s``.

    ``transports`` replaces the HTTP transport per endpoint label (tests); ``clock`` and
    ``wall_clock`` are injectable so a simulated week runs in seconds. ``on_record`` gets
    each finished record window (see :mod:`.record`). The caller owns ``meters``.
    """

    def __init__(
        self,
        config: WatchConfig,
        meters: MeterSet,
        *,
        transports: Mapping[str, Transport] | None = None,
        clock: Callable[[], float] = now_s,
        wall_clock: Callable[[], float] = time.time,
        on_record: Callable[[ObservedWindow], None] | None = None,
    ) -> None:
        self.config = config
        self.meters = meters
        self._clock = clock
        self._wall = wall_clock
        self.on_record = on_record
        self.devices = tuple(
            DeviceInfo(
                m.name,
                m.boundary,
                m.method,
                m.reason if isinstance(m, UnavailableMeter) else None,
            )
            for m in meters
        )
        self.owned = assign_devices(config.endpoints, self.devices)
        self._idle_w = {
            owner: idle_by_boundary(config.idle_watts, [d for d in self.devices if d.name in names])
            for owner, names in self.owned.items()
        }
        given = dict(transports or {})
        self._endpoints = [
            _Endpoint(
                spec,
                given.get(spec.label) or HttpTransport(spec.metrics_url, config.timeout_s),
            )
            for spec in config.endpoints
        ]
        self._readable = [m for m in meters if not isinstance(m, UnavailableMeter)]
        self._counters = {m.name: DeviceCounter() for m in self._readable}
        self._meter_errors: dict[str, str] = {}
        period = config.sample_period_s
        # The longest window plus room for its start tick and a late tick.
        self.history = History(config.horizon_s + 2 * period)
        self._pool = (
            ThreadPoolExecutor(len(self._endpoints), thread_name_prefix="joulelens-scrape")
            if len(self._endpoints) > 1
            else None
        )
        self._lock = threading.Lock()
        self._cached: Snapshot | None = None
        self._next_record_s: float | None = None
        self._index = 0
        self.missed_samples = 0
        self._last_duration_s: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._window_open = False
        self._started_s = 0.0
        for device in self.devices:
            if device.reason is not None:
                log.warning("%s: not measured: %s", device.name, device.reason)
        unassigned = [e.label for e in config.endpoints if len(config.endpoints) > 1 and not e.gpus]
        if unassigned:
            log.warning(
                "%s: no --gpus given; with several endpoints the host's meters are shared, so "
                'their energy shows only under endpoint="all"',
                ", ".join(unassigned),
            )

    # -- sampling ------------------------------------------------------------------------

    def tick(self) -> Tick:
        """Take one sample now (the background loop calls this; tests may call it directly)."""
        began = time.perf_counter()
        if not self._window_open:
            self.meters.begin_window(WATCH_WINDOW)
            self._window_open = True
        record_due = self._record_due()
        fulls = [
            self.on_record is not None and (record_due or ep.record_start is None)
            for ep in self._endpoints
        ]
        futures: list[Future[ScrapeResult]] = []
        if self._pool is not None:
            futures = [
                self._pool.submit(scrape, ep.transport, self._clock, full=full)
                for ep, full in zip(self._endpoints, fulls, strict=True)
            ]
        t_s, unix_s = self._clock(), self._wall()
        energy = self._read_meters()
        if self._pool is None:
            ep = self._endpoints[0]
            results = [scrape(ep.transport, self._clock, full=fulls[0])]
        else:
            results = [f.result() for f in futures]
        samples = {
            ep.spec.label: self._fold(ep, result)
            for ep, result in zip(self._endpoints, results, strict=True)
        }
        tick = Tick(self._index, t_s, unix_s, energy, samples)
        self._index += 1
        with self._lock:
            self.history.append(tick)
            self._cached = None
        if self.on_record is not None:
            self._records(tick, results, record_due)
        self._last_duration_s = time.perf_counter() - began
        return tick

    def _read_meters(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for meter in self._readable:
            name = meter.name
            try:
                reading = meter.read()
                reason = reading.missing_reason if reading.energy_j is None else None
            except MeterError as exc:
                reading, reason = None, str(exc)
            if reading is None or reading.energy_j is None:
                if name not in self._meter_errors:
                    log.warning("%s: cannot be read (%s); left out until it recovers", name, reason)
                self._meter_errors[name] = reason or "no reading"
                out[name] = None
                continue
            if self._meter_errors.pop(name, None) is not None:
                log.info("%s: readable again", name)
            total, backwards = self._counters[name].update(reading.energy_j)
            if backwards:
                log.warning(
                    "%s: energy counter went backwards (device or driver reset); one interval "
                    "is left out and the total carries on",
                    name,
                )
            out[name] = total
        return out

    def _fold(self, ep: _Endpoint, result: ScrapeResult) -> EndpointSample:
        label = ep.spec.label
        reading = result.reading
        if reading is None:
            ep.failures += 1
            if ep.up is not False:
                log.warning(
                    "%s: %s; its series are absent until it answers again", label, result.error
                )
            ep.up, ep.error = False, result.error
            ep.record_start = None
            return EndpointSample(up=False, error=result.error)
        restarted = (
            ep.start_time_s is not None
            and reading.start_time_s is not None
            and abs(reading.start_time_s - ep.start_time_s) > 1e-3
        )
        ep.start_time_s = reading.start_time_s
        tokens: float | None = None
        reset = False
        if reading.generation_tokens is not None:
            tokens, reset = ep.tokens.update(reading.generation_tokens, restarted=restarted)
        elif not ep.told_no_tokens:
            ep.told_no_tokens = True
            log.warning(
                "%s: exposes no generation-token counter (vllm:generation_tokens_total); "
                "energy per token is not available for it",
                label,
            )
        preemptions = None
        if reading.preemptions is not None:
            preemptions, _ = ep.preemptions.update(reading.preemptions, restarted=restarted)
        if ep.up is None:
            log.info("%s: watching %s", label, ep.spec.metrics_url)
        elif ep.up is False:
            log.info("%s: answers again", label)
        if reset or restarted:
            log.info("%s: the server restarted (its counters reset); totals carry on", label)
            ep.record_start = None  # a record window never spans a restart
        ep.up, ep.error = True, None
        return EndpointSample(
            up=True,
            tokens=tokens,
            running=reading.running,
            waiting=reading.waiting,
            kv_usage=reading.kv_usage,
            preemptions=preemptions,
        )

    # -- recording -----------------------------------------------------------------------

    def _record_due(self) -> bool:
        every_s = self.config.record_every_s
        if self.on_record is None or every_s is None:
            return False
        now = self._clock()
        if self._next_record_s is None:
            self._next_record_s = now + every_s
            return False
        if now < self._next_record_s - self.config.sample_period_s / 2:
            return False
        while self._next_record_s <= now + self.config.sample_period_s / 2:
            self._next_record_s += every_s
        return True

    def _records(self, tick: Tick, results: list[ScrapeResult], due: bool) -> None:
        assert self.on_record is not None
        for ep, result in zip(self._endpoints, results, strict=True):
            sample = tick.endpoint(ep.spec.label)
            if not sample.up or result.reading is None:
                continue
            hists = result.reading.histograms
            if ep.record_start is None:
                ep.record_start = (tick, hists)
                continue
            if not due:
                continue
            start, start_hists = ep.record_start
            ep.record_start = (tick, hists)
            with self._lock:
                ticks = tuple(self.history.between(start, tick))
            names = set(self.owned.get(ep.spec.label, ()))
            window = ObservedWindow(
                spec=ep.spec,
                start=start,
                end=tick,
                ticks=ticks,
                histograms_start=start_hists,
                histograms_end=hists,
                devices=tuple(d for d in self.devices if d.name in names),
                idle_watts=dict(self.config.idle_watts),
            )
            self.on_record(window)

    # -- figures -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The figures as of the newest tick; computed once per tick."""
        with self._lock:
            if self._cached is not None:
                return self._cached
            self._cached = self._compute()
            return self._cached

    def _compute(self) -> Snapshot:
        latest = self.history.latest
        statuses = []
        for ep in self._endpoints:  # up and error as of the served tick, not a later one
            sample = latest.endpoint(ep.spec.label) if latest is not None else None
            up = sample is not None and sample.up
            error = sample.error if sample is not None else "not scraped yet"
            statuses.append(EndpointStatus(ep.spec.label, up, error, ep.tokens.resets, ep.failures))
        windows, device_windows = compute_windows(
            self.history, self.config, self.devices, self.owned, self._idle_w
        )
        return Snapshot(
            tick=self.history.latest,
            devices=self.devices,
            owned=self.owned,
            endpoints=tuple(statuses),
            windows=windows,
            device_windows=device_windows,
            idle_w=self._idle_w,
            samples=self._index,
            missed_samples=self.missed_samples,
            last_sample_duration_s=self._last_duration_s,
        )

    # -- the background loop -------------------------------------------------------------

    def start(self) -> Watcher:
        """Take the first sample now, then keep sampling on a background thread."""
        if self._thread is not None:
            raise RuntimeError("the watcher is already running")
        self._started_s = self._clock()
        self.tick()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="joulelens-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        period = self.config.sample_period_s
        start_s = self._started_s
        tick = 0  # tick k is due at start_s + k * period; start() ran tick 0
        while True:
            now = self._clock()
            following = next_tick(start_s, period, now, tick + 1)
            self.missed_samples += following - (tick + 1)
            tick = following
            if self._stop.wait(max(0.0, start_s + tick * period - now)):
                return
            try:
                self.tick()
            except Exception as exc:  # keep watching: one bad sample must not end the exporter
                log.error("sample failed (%s: %s); watching on", type(exc).__name__, exc)

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop sampling and release connections (the meters stay the caller's)."""
        self.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for ep in self._endpoints:
            ep.transport.close()
        if self._window_open:
            try:
                self.meters.end_window(WATCH_WINDOW)
            except MeterError as exc:
                log.warning("closing the meters' window failed: %s", exc)
            self._window_open = False

    def __enter__(self) -> Watcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
