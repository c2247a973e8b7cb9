"""CPU energy estimated from CPU time when no energy counter can be read.

energy_J = busy CPU seconds x ``watts_per_core``. Always method ``estimated``, boundary
``cpu``; the assumption is written into the component's name (``cpu-estimate:system@10W-per-cpu``)
so it travels with every figure.

* ``system`` (default): busy time of every logical CPU (``psutil.cpu_times``: all but idle
  and iowait), so other processes on the host count too.
* ``process``: CPU time of one process and its live descendants, so it excludes neighbours
  but misses a child's last moments (from its final read to its exit).

Only busy time is charged: idle and static CPU power are not in the estimate. The default of
10 W per busy logical CPU is a rough figure: server parts run about 3-7 W per core at TDP
(e.g. 350 W / 56 cores), desktop and laptop cores at turbo 10-15 W; expect a factor ~2.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from joulelens.errors import MeterError
from joulelens.measure.clock import now_s
from joulelens.meters.base import Clock, Reading, SeriesSink, WindowResult, Windows
from joulelens.records.schema import EnergyBoundary, EnergyMethod

DEFAULT_WATTS_PER_CORE = 10.0
CPU_TIME_RESOLUTION_S = 0.01  # Linux reports CPU time in 10 ms clock ticks (USER_HZ=100)

CpuScope = Literal["system", "process"]

_SYSTEM_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")  # guest is in user


class CpuTimeMeter:
    """Busy CPU seconds x watts per core, as a cumulative estimated counter."""

    boundary = EnergyBoundary.CPU
    method = EnergyMethod.ESTIMATED
    offers_power = False
    update_period_s = CPU_TIME_RESOLUTION_S

    def __init__(
        self,
        scope: CpuScope = "system",
        *,
        watts_per_core: float = DEFAULT_WATTS_PER_CORE,
        pid: int | None = None,
        clock: Clock = now_s,
    ) -> None:
        if watts_per_core <= 0:
            raise ValueError(f"watts_per_core must be positive, got {watts_per_core}")
        if scope not in ("system", "process"):
            raise ValueError(f"scope must be 'system' or 'process', got {scope!r}")
        import psutil  # imported here so that importing joulelens stays light

        self._psutil: Any = psutil
        self.scope = scope
        self.watts_per_core = watts_per_core
        self.name = f"cpu-estimate:{scope}@{watts_per_core:g}W-per-cpu"
        self._clock = clock
        self._lock = threading.Lock()
        self._windows = Windows(self)
        self._root: Any = None
        # Per-process CPU seconds last seen, keyed by (pid, create time) against pid reuse.
        self._seen_s: dict[tuple[int, float], float] = {}
        self._busy_s = 0.0
        if scope == "process":
            try:
                self._root = psutil.Process(pid)
            except psutil.Error as exc:
                raise MeterError(f"cannot follow process {pid}: {exc}") from exc
            self._seen_s = self._tree_cpu_s()  # the baseline: time spent before now is not ours

    def __repr__(self) -> str:
        return f"CpuTimeMeter({self.name!r})"

    def _system_busy_s(self) -> float:
        times = self._psutil.cpu_times()
        return float(sum(getattr(times, f, 0.0) for f in _SYSTEM_BUSY_FIELDS))

    def _tree_cpu_s(self) -> dict[tuple[int, float], float]:
        psutil = self._psutil
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error as exc:
            raise MeterError(f"{self.name}: lost process {self._root.pid}: {exc}") from exc
        seen: dict[tuple[int, float], float] = {}
        for process in processes:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
            except psutil.Error:
                continue  # a child that exited between listing and reading
            seen[key] = times.user + times.system
        return seen

    def _process_tree_busy_s(self) -> float:
        # Sum per-process increases: a child's time would otherwise vanish from the sum
        # when it exits (or appear twice once its parent reaps it into children_user).
        with self._lock:  # held while listing too: merging stale lists would double count
            seen = self._tree_cpu_s()
            for key, cpu_s in seen.items():
                self._busy_s += max(0.0, cpu_s - self._seen_s.get(key, 0.0))
            self._seen_s = seen
            return self._busy_s

    def cpu_seconds(self) -> float:
        """Busy CPU seconds so far, from this meter's origin (only differences mean anything)."""
        if self.scope == "system":
            return self._system_busy_s()
        return self._process_tree_busy_s()

    def read(self) -> Reading:
        busy_s = self.cpu_seconds()
        return Reading(self._clock(), busy_s * self.watts_per_core)

    def sample(self, t_s: float, sink: SeriesSink) -> None:
        return None

    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]:
        return ()

    def begin_window(self, name: str) -> None:
        self._windows.begin(name)

    def end_window(self, name: str) -> WindowResult:
        return self._windows.end(name)

    def close(self) -> None:
        return None
