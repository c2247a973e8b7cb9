"""The factory: probe what this machine can measure and return one :class:`MeterSet`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters.base import Clock, Meter, UnavailableMeter
from joulelens.meters.cpu_estimate import DEFAULT_WATTS_PER_CORE, CpuTimeMeter
from joulelens.meters.meterset import MeterSet
from joulelens.meters.nvml import (
    DEFAULT_POLL_PERIOD_S,
    GpuBackend,
    open_backend,
    open_gpu_meters,
    open_nvml_meters,
)
from joulelens.meters.period import DEFAULT_PROBE_S
from joulelens.meters.rapl import DEFAULT_RAPL_ROOT, open_rapl_meters
from joulelens.meters.select import GpuSelection
from joulelens.records.schema import EnergyBoundary

CpuEstimateMode = Literal["auto", "system", "process", "off"]


def detect_meters(
    *,
    gpus: bool | GpuSelection = True,
    rapl: bool = True,
    cpu_estimate: CpuEstimateMode = "auto",
    watts_per_core: float = DEFAULT_WATTS_PER_CORE,
    pid: int | Sequence[int] | None = None,
    rapl_root: str | Path = DEFAULT_RAPL_ROOT,
    gpu_backend: GpuBackend | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock = now_s,
    gpu_poll_period_s: float | None = DEFAULT_POLL_PERIOD_S,
    gpu_probe_s: float = DEFAULT_PROBE_S,
    approximate_short_windows: bool = False,
) -> MeterSet:
    """Every energy source this process can read, unreadable ones kept as null-with-reason.

    * ``gpus``: ``True``: the NVIDIA GPUs visible under ``CUDA_VISIBLE_DEVICES`` (read from
      ``environ``, default ``os.environ``); a :class:`GpuSelection`: exactly those GPUs, by
      UUID (what a run uses; see :mod:`joulelens.meters.select`); ``False``: none.
      ``gpu_backend`` replaces NVML (tests pass a fake); ``gpu_probe_s`` is how long each GPU
      model's counter is polled to measure its update period (0: nominal 0.1 s);
      ``approximate_short_windows``: windows shorter than one counter update get instant
      power x duration, labelled, instead of null.
    * ``rapl``: CPU package and DRAM zones under ``rapl_root``.
    * ``cpu_estimate``: ``"auto"`` adds the system-wide CPU-time estimate only when no RAPL
      package is readable; ``"system"``/``"process"`` always add that variant (``pid``
      selects the process or processes, default this one); ``"off"`` never.

    The caller owns the result: ``close()`` it (or use ``with``) to shut NVML down.
    """
    env = os.environ if environ is None else environ
    meters: list[Meter] = []
    notes: list[str] = []
    closers = []
    if isinstance(gpus, GpuSelection):
        backend: GpuBackend | None = gpu_backend
        error: str | None = None
        if backend is None and gpus.devices:
            backend, error = open_backend()
        try:
            gpu_meters, gpu_notes = open_gpu_meters(
                gpus,
                backend,
                backend_error=error,
                clock=clock,
                poll_period_s=gpu_poll_period_s,
                probe_s=gpu_probe_s,
                approximate_short_windows=approximate_short_windows,
            )
        except BaseException:
            if backend is not None and gpu_backend is None:
                backend.close()
            raise
        meters.extend(gpu_meters)
        notes.extend(gpu_notes)
        if backend is not None and gpu_backend is None:
            closers.append(backend.close)
    elif gpus:
        gpu_meters, gpu_notes, backend = open_nvml_meters(
            env,
            backend=gpu_backend,
            clock=clock,
            poll_period_s=gpu_poll_period_s,
            probe_s=gpu_probe_s,
            approximate_short_windows=approximate_short_windows,
        )
        meters.extend(gpu_meters)
        notes.extend(gpu_notes)
        if backend is not None and gpu_backend is None:
            closers.append(backend.close)
    if rapl:
        meters.extend(open_rapl_meters(Path(rapl_root), clock=clock))
    package_readable = any(
        m.boundary is EnergyBoundary.CPU and not isinstance(m, UnavailableMeter) for m in meters
    )
    scope: Literal["system", "process"] | None
    if cpu_estimate == "auto":
        scope = None if package_readable else "system"
    elif cpu_estimate == "off":
        scope = None
    else:
        scope = cpu_estimate
    if scope is not None:
        try:
            meters.append(CpuTimeMeter(scope, watts_per_core=watts_per_core, pid=pid, clock=clock))
        except MeterError as exc:
            notes.append(f"CPU-time estimate unavailable: {exc}")
    return MeterSet(meters, notes=notes, on_close=closers, clock=clock)
