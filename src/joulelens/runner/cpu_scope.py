"""Whose CPU time the CPU estimate charges, and what it covers (for the compile step).

Without a power sensor the CPU energy is an estimate from CPU time. Counting every busy core
of the machine charges the workload for whatever else runs (another job's busy loop costs it
10 W), so the estimate follows the processes doing the inference instead:

* an in-process engine (transformers, diffusers): this process;
* a vLLM server joulelens started: the server's process tree;
* an endpoint: the processes listening on its port, when the server runs on this machine
  and they can be seen; otherwise the whole machine, with a note saying so.

Each engine adapter says which processes do the inference (``EngineRun.inference_pids``);
the figures kept beside the headline (the machine-wide estimate, a measured package's share)
are computed by the compile step from :class:`~joulelens.measure.cpu_share.CpuEstimate`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from joulelens.measure.cpu_share import CpuEstimate
from joulelens.meters import CpuTimeMeter, GpuSelection, MeterSet, detect_meters
from joulelens.meters.cpu_estimate import MACHINE_BUSY_SERIES, PROCESS_BUSY_SERIES
from joulelens.meters.nvml import GpuBackend
from joulelens.runner.config import RunConfig


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


def cpu_estimate(meters: MeterSet) -> CpuEstimate | None:
    """What the run's CPU estimate covers, for the compile step's CPU figures."""
    meter = cpu_estimate_meter(meters)
    if meter is None:
        return None
    return CpuEstimate(
        scope=meter.scope,
        covers=meter.describe(),
        watts_per_cpu=meter.watts_per_core,
        pids=tuple(meter.pids),
        machine_busy_series=MACHINE_BUSY_SERIES,
        process_busy_series=PROCESS_BUSY_SERIES,
    )
