"""What the exporter serves, as of the newest tick: which devices belong to which endpoint,
every window's figures, and the endpoints' state. Immutable, built once per tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from joulelens.core.boundaries import boundary_totals
from joulelens.errors import InputError
from joulelens.records import EnergyBoundary, EnergyComponent
from joulelens.watch.config import ALL_ENDPOINTS, EndpointSpec, WatchConfig
from joulelens.watch.figures import (
    DeviceInfo,
    WindowFigures,
    aggregate_window,
    device_components,
    endpoint_window,
    window_start,
)
from joulelens.watch.history import History, Tick


@dataclass(frozen=True)
class EndpointStatus:
    label: str
    up: bool
    error: str | None
    resets: int
    failures: int  # failed scrapes since the watcher started


@dataclass(frozen=True)
class DeviceWindow:
    window: str
    duration_s: float
    components: tuple[EnergyComponent, ...]


@dataclass(frozen=True)
class Snapshot:
    """Everything the exporter serves, as of the newest tick (immutable)."""

    tick: Tick | None
    devices: tuple[DeviceInfo, ...]
    owned: Mapping[str, tuple[str, ...]]
    endpoints: tuple[EndpointStatus, ...]
    windows: tuple[WindowFigures, ...] = ()
    device_windows: tuple[DeviceWindow, ...] = ()
    idle_w: Mapping[str, Mapping[EnergyBoundary, float]] = field(default_factory=dict)
    samples: int = 0
    missed_samples: int = 0
    last_sample_duration_s: float | None = None

    def totals(self, owner: str) -> tuple[EnergyComponent, ...]:
        """Energy totals per boundary of ``owner``'s devices since the watcher started
        (boundaries with a device unreadable right now are left out)."""
        if self.tick is None:
            return ()
        names = set(self.owned.get(owner, ()))
        now = self.tick.energy_j
        parts = [
            EnergyComponent(
                name=d.name,
                joules=now.get(d.name),
                boundary=d.boundary,
                method=d.method,
                missing_reason=None if now.get(d.name) is not None else "not readable now",
            )
            for d in self.devices
            if d.name in names
        ]
        return tuple(t for t in boundary_totals(parts) if t.joules is not None)


def assign_devices(
    endpoints: tuple[EndpointSpec, ...], devices: tuple[DeviceInfo, ...]
) -> dict[str, tuple[str, ...]]:
    """Which devices' energy belongs to which endpoint.

    One endpoint owns the host (CPU, DRAM) and its ``--gpus`` (all GPUs when not given).
    With several, each owns only its ``--gpus``: host meters are shared, so they count only
    in the ``all`` aggregate, which owns every device.
    """
    names = {d.name for d in devices}
    readable_gpus = sorted(
        d.name for d in devices if d.boundary is EnergyBoundary.GPU and d.reason is None
    )
    for spec in endpoints:
        for k in spec.gpus or ():
            if f"gpu:{k}" not in names or f"gpu:{k}" not in readable_gpus:
                seen = ", ".join(readable_gpus) or "none"
                why = next((d.reason for d in devices if d.reason and "gpu" in d.name), None)
                raise InputError(
                    f"{spec.label}: GPU {k} is not readable here (readable GPUs: {seen}"
                    + (f"; {why}" if why else "")
                    + ")",
                    field="gpus",
                )
    owned: dict[str, tuple[str, ...]] = {}
    if len(endpoints) == 1:
        spec = endpoints[0]
        mine = {f"gpu:{k}" for k in spec.gpus} if spec.gpus is not None else None
        owned[spec.label] = tuple(
            d.name
            for d in devices
            if d.boundary is not EnergyBoundary.GPU or mine is None or d.name in mine
        )
        return owned
    for spec in endpoints:
        owned[spec.label] = tuple(f"gpu:{k}" for k in spec.gpus or ())
    owned[ALL_ENDPOINTS] = tuple(d.name for d in devices)
    return owned


def compute_windows(
    history: History,
    config: WatchConfig,
    devices: tuple[DeviceInfo, ...],
    owned: Mapping[str, tuple[str, ...]],
    idle_w: Mapping[str, Mapping[EnergyBoundary, float]],
) -> tuple[tuple[WindowFigures, ...], tuple[DeviceWindow, ...]]:
    """Every window that the history covers, per endpoint (and ``all``) and per device."""
    end = history.latest
    if end is None:
        return (), ()
    windows: list[WindowFigures] = []
    device_windows: list[DeviceWindow] = []
    labels = [spec.label for spec in config.endpoints]
    for window_s, window in zip(config.windows_s, config.window_labels, strict=True):
        start = window_start(history, end, window_s, config.sample_period_s)
        if start is None:
            continue
        components = device_components(start, end, devices)
        by_name = {c.name: c for c in components}
        device_windows.append(DeviceWindow(window, end.t_s - start.t_s, components))
        samples = history.between(start, end)
        for spec in config.endpoints:
            figures = endpoint_window(
                spec.label,
                window,
                window_s,
                start,
                end,
                samples,
                [by_name[n] for n in owned[spec.label]],
                cap=spec.max_num_seqs,
                idle_w=idle_w[spec.label],
            )
            if figures is not None:
                windows.append(figures)
        if ALL_ENDPOINTS in owned:
            figures = aggregate_window(
                ALL_ENDPOINTS,
                window,
                window_s,
                start,
                end,
                labels,
                components,
                idle_w[ALL_ENDPOINTS],
            )
            if figures is not None:
                windows.append(figures)
    return tuple(windows), tuple(device_windows)
