"""One exporter session: meters, idle baseline, watcher, recorder and HTTP server, opened
in order and closed in reverse (what ``joulelens watch`` runs; the library's way too)."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from types import TracebackType

from joulelens.meters import CpuEstimateMode, MeterSet, detect_meters, measure_idle_power
from joulelens.store import Store
from joulelens.watch.config import WatchConfig
from joulelens.watch.exporter import ExporterServer
from joulelens.watch.record import StoreRecorder
from joulelens.watch.watcher import Watcher

log = logging.getLogger("joulelens.watch")


@dataclass
class MeterChoice:
    """Which meters to open (as ``joulelens run``'s options)."""

    gpus: bool = True
    cpu_estimate: CpuEstimateMode = "auto"
    watts_per_core: float = 10.0
    idle_baseline_s: float = 0.0  # > 0: measure idle power for this long before watching


@dataclass
class WatchSession:
    """``with WatchSession(config, host, port) as s:`` serves until the block ends.

    ``meters`` may be given (tests pass fake GPUs); otherwise they are detected and closed
    with the session. ``store`` is needed when ``config.record_every_s`` is set.
    """

    config: WatchConfig
    host: str
    port: int
    store: Store | None = None
    choice: MeterChoice = field(default_factory=MeterChoice)
    meters: MeterSet | None = None
    watcher: Watcher | None = None
    server: ExporterServer | None = None
    recorder: StoreRecorder | None = None
    _stack: ExitStack = field(default_factory=ExitStack)

    def __enter__(self) -> WatchSession:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _open(self) -> None:
        stack = self._stack
        if self.meters is None:
            self.meters = stack.enter_context(
                detect_meters(
                    gpus=self.choice.gpus,
                    cpu_estimate=self.choice.cpu_estimate,
                    watts_per_core=self.choice.watts_per_core,
                )
            )
        told = {str(getattr(m, "reason", "")) for m in self.meters}
        for note in self.meters.notes:
            if note not in told:  # the watcher names each unreadable device itself
                log.warning("meters: %s", note)
        if self.choice.idle_baseline_s > 0:
            log.info(
                "measuring idle power for %g s (the servers should be idle now)",
                self.choice.idle_baseline_s,
            )
            idle = measure_idle_power(self.meters, self.choice.idle_baseline_s)
            measured = {k: v for k, v in idle.by_device_w.items() if v is not None}
            self.config = replace(self.config, idle_watts={**measured, **self.config.idle_watts})
        if self.config.record_every_s is not None:
            if self.store is None:
                raise ValueError("recording needs a store")
            gpu_models = {m.name: str(getattr(m, "model", "")) for m in self.meters}
            self.recorder = StoreRecorder(self.store, task=self.config.task, gpu_models=gpu_models)
            stack.callback(self.recorder.close)
        self.watcher = Watcher(self.config, self.meters, on_record=self.recorder)
        stack.callback(self.watcher.close)
        self.server = ExporterServer(self.watcher, self.host, self.port)
        stack.callback(self.server.close)
        self.watcher.start()
        log.info("serving metrics on http://%s:%d/metrics", self.host, self.server.port)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.port}/metrics"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
