"""Whose CPU time the CPU estimate charges, and the CPU figures kept beside the headline.

Without a power sensor the CPU energy is an estimate from CPU time. Counting every busy core
of the machine charges the workload for whatever else runs (another job's busy loop costs it
10 W), so the estimate follows the processes doing the inference instead:

* an in-process engine (transformers, diffusers): this process;
* a vLLM server joulelens started: the server's process tree;
* an endpoint: the processes listening on its port, when the server runs on this machine
  and they can be seen; otherwise the whole machine, with a note saying so.

Two figures go beside the headline as extra energy components, never into the totals:

* ``machine-wide:<estimate>``: the whole machine's busy CPU time over the same window, so the
  difference to the workload's share stays visible;
* ``attributed:cpu-package share of the workload's processes``: with a measured RAPL package,
  its energy times the processes' share of the machine's busy CPU time (method
  ``attributed``), next to the measured package energy that stays the headline.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from joulelens.meters import CpuTimeMeter, GpuSelection, MeterSet, detect_meters
from joulelens.meters.cpu_estimate import MACHINE_BUSY_SERIES, PROCESS_BUSY_SERIES
from joulelens.meters.nvml import GpuBackend
from joulelens.records import EnergyBoundary, EnergyComponent, EnergyMethod, RunRecord
from joulelens.records.schema import TimelineSample
from joulelens.runner.config import RunConfig

MACHINE_PREFIX = "machine-wide:"
ATTRIBUTED_NAME = "attributed:cpu-package share of the workload's processes"


def inference_pids(config: RunConfig, engine: Any) -> tuple[list[int], str | None]:
    """The pids doing the inference and, when none can be found, why (for a note)."""
    if config.engine in ("transformers", "diffusers"):
        return [os.getpid()], None
    server = getattr(engine, "server", None)
    process = getattr(server, "process", None)
    if process is not None:
        return [process.pid], None
    return endpoint_pids(str(getattr(engine, "base_url", config.endpoint or "")))


def endpoint_pids(url: str) -> tuple[list[int], str | None]:
    """Processes listening on ``url``'s port when its host is this machine."""
    import psutil

    parts = urlsplit(url if "//" in url else f"//{url}")
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if not _is_local(host):
        return [], f"the endpoint {host} is not this machine, so its processes cannot be seen"
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error as exc:
        return [], f"cannot list this machine's sockets to find the endpoint's server: {exc}"
    pids = sorted(
        {
            c.pid
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        }
    )
    if not pids:
        return [], f"no process this user can see listens on port {port}"
    return pids, None


def _is_local(host: str) -> bool:
    if host in ("localhost", socket.gethostname()):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.ip_address(socket.gethostbyname(host))
        except OSError:
            return False
    if address.is_loopback:
        return True
    try:
        mine = {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        mine = set()
    return str(address) in mine


def open_meters(
    config: RunConfig,
    pids: Sequence[int],
    note: str | None,
    *,
    gpus: bool | GpuSelection,
    gpu_backend: GpuBackend | None = None,
) -> MeterSet:
    """The run's meters: the run's GPUs, RAPL as found, the CPU estimate on ``pids``."""
    mode = config.cpu_estimate
    if mode == "auto" and pids:
        mode = "process"  # beside RAPL too: its share of the package is attributed from it
    meters = detect_meters(
        gpus=gpus,
        gpu_backend=gpu_backend,
        cpu_estimate=mode,
        watts_per_core=config.watts_per_core,
        pid=list(pids) if pids else None,
    )
    estimate = cpu_estimate_meter(meters)
    if note and estimate is not None and estimate.scope == "system":
        meters.add_note(
            f"the CPU estimate counts the whole machine, other processes included: {note}"
        )
    return meters


def cpu_estimate_meter(meters: MeterSet) -> CpuTimeMeter | None:
    return next((m for m in meters if isinstance(m, CpuTimeMeter)), None)


def with_cpu_context(
    record: RunRecord, timeline: Sequence[TimelineSample], meters: MeterSet
) -> RunRecord:
    """``record`` with the machine-wide and attributed CPU figures, and what the estimate
    covered (``config["cpu_estimate"]``)."""
    meter = cpu_estimate_meter(meters)
    if meter is None:
        return record
    info: dict[str, Any] = {
        "scope": meter.scope,
        "covers": meter.describe(),
        "watts_per_cpu": meter.watts_per_core,
        "pids": list(meter.pids),
        "cannot_see": "idle and static CPU power, DRAM, and the rest of the machine",
    }
    extra: list[EnergyComponent] = []
    windows = measured_windows(record)
    if meter.scope == "process" and windows:
        machine_s = _busy_over(timeline, MACHINE_BUSY_SERIES, windows)
        process_s = _busy_over(timeline, PROCESS_BUSY_SERIES, windows)
        if machine_s is not None and process_s is not None:
            info |= {"machine_busy_cpu_s": machine_s, "processes_busy_cpu_s": process_s}
            extra.append(
                EnergyComponent(
                    name=f"{MACHINE_PREFIX}cpu-estimate:system@{meter.watts_per_core:g}W-per-cpu",
                    joules=machine_s * meter.watts_per_core,
                    boundary=EnergyBoundary.CPU,
                    method=EnergyMethod.ESTIMATED,
                )
            )
            extra += _package_share(record, process_s, machine_s)
    return record.model_copy(
        update={
            "energy_components": [*record.energy_components, *extra],
            "config": {**record.config, "cpu_estimate": info},
        }
    )


def _package_share(record: RunRecord, process_s: float, machine_s: float) -> list[EnergyComponent]:
    package = next(
        (
            c
            for c in record.energy_components
            if c.name == f"total:{EnergyBoundary.CPU.value}"
            and c.method is not EnergyMethod.ESTIMATED
        ),
        None,
    )
    if package is None:
        return []
    share = min(1.0, process_s / machine_s) if machine_s > 0 else None
    return [
        EnergyComponent(
            name=ATTRIBUTED_NAME,
            joules=None if share is None or package.joules is None else package.joules * share,
            boundary=EnergyBoundary.CPU,
            method=EnergyMethod.ATTRIBUTED,
            missing_reason=None
            if share is not None and package.joules is not None
            else "no busy CPU time or no package energy in the window",
        )
    ]


def measured_windows(record: RunRecord) -> list[tuple[float, float]]:
    """The windows the headline energy covers, on the artifacts' time axis."""
    steady = record.config.get("steady_state")
    if isinstance(steady, dict) and "start_s" in steady and "end_s" in steady:
        return [(float(steady["start_s"]), float(steady["end_s"]))]
    batches = record.config.get("batches")
    if isinstance(batches, list):
        return [
            (float(b["start_s"]), float(b["end_s"]))
            for b in batches
            if isinstance(b, dict) and not b.get("warmup") and not b.get("error")
        ]
    return []


def _busy_over(
    timeline: Sequence[TimelineSample], series: str, windows: Sequence[tuple[float, float]]
) -> float | None:
    points = sorted((r.t_s, r.value) for r in timeline if r.series == series)
    if len(points) < 2:
        return None
    t = np.array([p[0] for p in points])
    v = np.array([p[1] for p in points])
    total = 0.0
    for start, end in windows:
        if start < t[0] or end > t[-1]:
            return None
        low, high = np.interp([start, end], t, v)
        total += float(high - low)
    return max(0.0, total)
