"""CPU energy estimated from CPU time when no energy counter can be read.

energy_J = busy CPU seconds x ``watts_per_core``. Always method ``estimated``, boundary
``cpu``; the assumption is written into the component's name (``cpu-estimate:system@10W-per-cpu``)
so it travels with every figure.

* ``system`` (default): busy time of every logical CPU (``psutil.cpu_times``: all but idle
  and iowait), so other processes on the host count too.
* ``process``: CPU time of the processes doing the work (one or more pids, each with its
  descendants), so it excludes neighbours: another job's busy cores are not charged to the
  workload. New descendants are looked for every ``tree_refresh_s`` (default 1 s; the scan
  costs about 1 ms), so a child that lives shorter than that can be missed, and a child's
  time from its last read to its exit is lost. On every timeline sample it also records the
  whole machine's busy CPU seconds (``cpu_busy_seconds:machine``) and its own
  (``cpu_busy_seconds:processes``), so the machine-wide figure and the processes' share of
  a measured package can be cut for any window afterwards. On Linux a process's time is
  read from its CPU-time clock (``clock_gettime``, nanoseconds, about 1 µs a read) rather
  than in 10 ms ticks: a client that used 3 ms of CPU in a short window reads 3 ms, not 0.

Only busy time is charged: idle and static CPU power are not in the estimate. The default of
10 W per busy logical CPU is a rough figure: server parts run about 3-7 W per core at TDP
(e.g. 350 W / 56 cores), desktop and laptop cores at turbo 10-15 W; expect a factor ~2.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters.base import Clock, Reading, SeriesSink
from joulelens.records.schema import EnergyBoundary, EnergyMethod

DEFAULT_WATTS_PER_CORE = 10.0
CPU_TIME_RESOLUTION_S = 0.01  # Linux reports CPU time in 10 ms clock ticks (USER_HZ=100)
PROCESS_CLOCK_RESOLUTION_S = 1e-6  # a process's CPU-time clock: ns, read in about 1 µs
DEFAULT_TREE_REFRESH_S = 1.0

CpuScope = Literal["system", "process"]

MACHINE_BUSY_SERIES = "cpu_busy_seconds:machine"
PROCESS_BUSY_SERIES = "cpu_busy_seconds:processes"

_SYSTEM_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")  # guest is in user
_PROC_STAT_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)  # the same fields, by position in /proc/stat


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
        pid: int | Sequence[int] | None = None,
        clock: Clock = now_s,
        tree_refresh_s: float = DEFAULT_TREE_REFRESH_S,
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
        self.tree_refresh_s = tree_refresh_s
        self._roots: list[Any] = []
        self.pids: tuple[int, ...] = ()
        self.exited: set[int] = set()  # followed processes that ended while measured
        # Processes followed and their CPU seconds last seen, keyed by (pid, create time)
        # so a reused pid is a new process.
        self._processes: dict[tuple[int, float], Any] = {}
        self._seen_s: dict[tuple[int, float], float] = {}
        self._refreshed_s = -math.inf
        self._fine = False  # whether processes are read from their CPU-time clocks
        self._busy_s = 0.0
        # Linux: /proc/stat held open and re-read with pread, about 3x cheaper than psutil
        # at 10 Hz (which reopens and parses every line); psutil elsewhere.
        self._stat_fd: int | None = None
        self._ticks_per_s = 100
        if os.path.exists("/proc/stat"):
            self._stat_fd = os.open("/proc/stat", os.O_RDONLY)
            self._ticks_per_s = os.sysconf("SC_CLK_TCK")
        if scope == "process":
            wanted = [pid] if pid is None or isinstance(pid, int) else list(pid)
            if not wanted:
                raise MeterError("the process-scope CPU estimate needs at least one pid")
            for one in wanted:
                try:
                    root = psutil.Process(one)
                    self._processes[(root.pid, root.create_time())] = root
                except psutil.Error as exc:
                    raise MeterError(f"cannot follow process {one}: {exc}") from exc
                self._roots.append(root)
            self.pids = tuple(r.pid for r in self._roots)
            self._fine = _process_clock_s(os.getpid()) is not None
            if self._fine:
                self.update_period_s = PROCESS_CLOCK_RESOLUTION_S
            self._seen_s = self._tree_cpu_s()  # the baseline: time spent before now is not ours

    def __repr__(self) -> str:
        return f"CpuTimeMeter({self.name!r})"

    def _system_busy_s(self) -> float:
        if self._stat_fd is not None:
            # First line: "cpu  user nice system idle iowait irq softirq steal ..." in ticks.
            try:
                ticks = os.pread(self._stat_fd, 512, 0).split(b"\n", 1)[0].split()[1:9]
                busy = sum(int(ticks[i]) for i in _PROC_STAT_BUSY_COLUMNS if i < len(ticks))
            except (OSError, ValueError) as exc:
                raise MeterError(f"{self.name}: cannot read /proc/stat: {exc}") from exc
            return busy / self._ticks_per_s
        times = self._psutil.cpu_times()
        return float(sum(getattr(times, f, 0.0) for f in _SYSTEM_BUSY_FIELDS))

    def _refresh_tree(self) -> None:
        psutil = self._psutil
        children = []
        for root in self._roots:
            try:
                children += root.children(recursive=True)
            except psutil.Error:
                continue  # exited: its time so far stays counted, the engine reports why
        for child in children:
            try:
                key = (child.pid, child.create_time())
            except psutil.Error:
                continue  # exited between listing and reading
            self._processes.setdefault(key, child)
        self._refreshed_s = time.monotonic()

    def _tree_cpu_s(self) -> dict[tuple[int, float], float]:
        # Listing descendants scans every pid on the host (~1 ms), so it runs only every
        # tree_refresh_s; known processes are read on every call (~15 µs each).
        if time.monotonic() - self._refreshed_s >= self.tree_refresh_s:
            self._refresh_tree()
        seen: dict[tuple[int, float], float] = {}
        for key, process in list(self._processes.items()):
            cpu_s = _process_clock_s(process.pid) if self._fine else None
            if cpu_s is None:
                try:
                    times = process.cpu_times()
                except self._psutil.Error:
                    if any(process is root for root in self._roots):
                        self.exited.add(process.pid)
                    del self._processes[key]  # exited: its time up to our last read is counted
                    continue
                cpu_s = times.user + times.system
            seen[key] = cpu_s
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

    def machine_cpu_seconds(self) -> float:
        """Busy CPU seconds of every logical CPU (all processes), from an arbitrary origin."""
        return self._system_busy_s()

    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None:
        if self.scope != "process":
            return  # the energy series already is the machine's
        sink.append(MACHINE_BUSY_SERIES, t_s, self._system_busy_s())
        sink.append(PROCESS_BUSY_SERIES, t_s, self._busy_s)

    def describe(self) -> str:
        """What the estimate covers, in words, for notes and the console."""
        if self.scope == "system":
            return f"busy CPU time of the whole machine x {self.watts_per_core:g} W per busy CPU"
        names = []
        for root in self._roots:
            try:
                names.append(f"{root.name()} (pid {root.pid})")
            except self._psutil.Error:
                names.append(f"pid {root.pid}")
        return (
            f"CPU time of {', '.join(names)} and its child processes "
            f"x {self.watts_per_core:g} W per busy CPU"
        )

    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]:
        return tuple(
            f"{self.name}: process {pid} exited while measured; its CPU time after its last "
            "read is not counted"
            for pid in sorted(self.exited)
        )

    def close(self) -> None:
        with self._lock:
            if self._stat_fd is not None:
                os.close(self._stat_fd)
                self._stat_fd = None  # later reads fall back to psutil


def _process_clock_s(pid: int) -> float | None:
    """CPU seconds of every thread of ``pid``, from its Linux CPU-time clock; None where
    there is none (not Linux, or the process has exited)."""
    # Linux encodes a process's scheduler CPU clock as ((~pid) << 3) | CPUCLOCK_SCHED (2):
    # clock_getcpuclockid(3) returns exactly this id; Python's time module lacks that call.
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except (OSError, OverflowError):
        return None
