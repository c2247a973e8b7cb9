"""NVIDIA GPUs through NVML (``nvidia-ml-py``), read-only, one meter per GPU a run uses.

Energy comes from NVML's cumulative counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ,
Volta and newer); where that is not supported, from power polls integrated over time
(method ``integrated``). The counter's refresh period is measured at start-up
(:mod:`joulelens.meters.period`) once per GPU model and recorded. A window shorter than one
refresh cannot be resolved: it is null with the reason, or, if asked for, instant power x
duration labelled as that approximation (Zeus's ``approx_instant_energy``).

Optional sensors (temperature, utilization, clocks, memory, power limit, and power itself
when the counter gives the energy) that fail are dropped with the reason, at probe time or
mid-run; only the energy reading failing fails a measurement. The library boundary is
:class:`~joulelens.meters.nvml_backend.GpuBackend`; which GPUs to meter, by UUID, is
:mod:`joulelens.meters.select`'s business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from joulelens.core.clock import now_s
from joulelens.core.series import (
    GPU_UTILIZATION_PCT,
    MEMORY_USED_BYTES,
    POWER_LIMIT_WATTS,
    SM_CLOCK_MHZ,
    TEMPERATURE_C,
    is_power_series,
    power_series,
    series_name,
)
from joulelens.errors import MeterError
from joulelens.meters.base import (
    Clock,
    Reading,
    SensorUnavailable,
    SeriesSink,
    UnavailableMeter,
)
from joulelens.meters.integrate import PowerIntegrator
from joulelens.meters.nvml_backend import GpuBackend, PowerSource, PynvmlBackend
from joulelens.meters.period import DEFAULT_PROBE_S, UpdatePeriod, probe_update_period
from joulelens.meters.select import GpuSelection, GpuUnreadable, visible_selection
from joulelens.meters.units import mj_to_j, mw_to_w
from joulelens.records.schema import EnergyBoundary, EnergyMethod

NVML_COUNTER_PERIOD_S = 0.1  # nominal; used only when the probe is off or inconclusive
DEFAULT_POLL_PERIOD_S = 0.1

Sensor = tuple[str, Callable[[], float]]


class NvmlGpuMeter:
    """One GPU. ``name`` is ``gpu:<k>`` with *k* its CUDA index in the process doing the work.

    Built only for a device whose energy can be read, by counter or by integrated power;
    :func:`open_gpu_meters` reports any other device as an :class:`UnavailableMeter`.
    ``period`` reuses a probe of an identical GPU; ``probe_s=0`` keeps the nominal period.
    """

    boundary = EnergyBoundary.GPU

    def __init__(
        self,
        backend: GpuBackend,
        nvml_index: int,
        cuda_index: int,
        *,
        clock: Clock = now_s,
        poll_period_s: float | None = DEFAULT_POLL_PERIOD_S,
        probe_s: float = 0.0,
        period: UpdatePeriod | None = None,
        approximate_short_windows: bool = False,
    ) -> None:
        self._backend = backend
        self.nvml_index = nvml_index
        self.name = f"gpu:{cuda_index}"
        self.uuid = backend.uuid(nvml_index)
        self.model = backend.name(nvml_index)
        self.pci_bus_id = _optional(lambda: backend.pci_bus_id(nvml_index))
        self._clock = clock
        self._integrator: PowerIntegrator | None = None
        self.notes: list[str] = []
        self.dropped: dict[str, str] = {}
        try:
            backend.energy_mj(nvml_index)
            self.method = EnergyMethod.COUNTER
        except SensorUnavailable as exc:
            try:
                backend.power_mw(nvml_index)
            except SensorUnavailable as none:
                raise SensorUnavailable(
                    f"{self.model} offers neither an energy counter nor power (counter: "
                    f"{exc.__cause__ or exc}; {str(none).removeprefix('no power reading (')}"
                ) from none
            self.method = EnergyMethod.INTEGRATED
            self._integrator = PowerIntegrator(self._power_w, clock=clock, period_s=poll_period_s)
        self.period = period
        if self.period is None and probe_s > 0 and self.method is EnergyMethod.COUNTER:
            self.period = probe_update_period(
                lambda: backend.energy_mj(nvml_index), clock, duration_s=probe_s
            )
        if self.method is EnergyMethod.INTEGRATED:
            self.update_period_s = poll_period_s or DEFAULT_POLL_PERIOD_S
        elif self.period is not None and self.period.median_s is not None:
            self.update_period_s = self.period.median_s
        else:
            self.update_period_s = NVML_COUNTER_PERIOD_S
            if self.period is not None:
                self.notes.append(
                    f"{self.name}: energy counter update period {self.period.describe()}; "
                    f"assuming {NVML_COUNTER_PERIOD_S:.3f} s"
                )
        self._sensors = self._probe_sensors()
        self.power_source: PowerSource | None = _optional(lambda: backend.power_source(nvml_index))
        self._note_power_source()
        # Without a power sensor (counter only) the sampler derives power from the counter.
        self.offers_power = any(is_power_series(s) for s, _ in self._sensors)
        self.approximate_j: Callable[[float], float] | None = (
            self._approximate if approximate_short_windows else None
        )

    def __repr__(self) -> str:
        return f"NvmlGpuMeter({self.name!r}, {self.model!r}, {self.uuid}, {self.method})"

    def _power_w(self) -> float:
        return mw_to_w(self._backend.power_mw(self.nvml_index))

    def _approximate(self, elapsed_s: float) -> float:
        return self._power_w() * elapsed_s

    def _probe_sensors(self) -> tuple[Sensor, ...]:
        b, i, n = self._backend, self.nvml_index, self.name
        candidates: tuple[Sensor, ...] = (
            (power_series(n), self._power_w),  # first: sampled on every tick
            (series_name(TEMPERATURE_C, n), lambda: b.temperature_c(i)),
            (series_name(GPU_UTILIZATION_PCT, n), lambda: b.utilization_pct(i)),
            (series_name(SM_CLOCK_MHZ, n), lambda: b.sm_clock_mhz(i)),
            (series_name(MEMORY_USED_BYTES, n), lambda: float(b.memory_used_bytes(i))),
            (series_name(POWER_LIMIT_WATTS, n), lambda: mw_to_w(b.power_limit_mw(i))),
        )
        offered = []
        for series, read in candidates:
            try:
                read()
            except SensorUnavailable:
                continue  # not offered here: not a failure
            except MeterError as exc:
                if self._integrator is not None and is_power_series(series):
                    raise  # power is the energy of an integrated meter
                self._drop(series, f"failed when probed: {exc}")
                continue
            offered.append((series, read))
        return tuple(offered)

    def _drop(self, series: str, reason: str) -> None:
        self.dropped[series] = reason
        self.notes.append(f"{series} dropped, {reason}; the rest of {self.name} is still read")

    def _note_power_source(self) -> None:
        source = self.power_source
        if source is None:
            return
        if source.scope == "module":
            self.notes.append(
                f"{self.name} ({self.model}): power readings are module scope (GPU + CPU + "
                "memory of the superchip), as GPU scope is not offered; the power timeline "
                "is not the GPU's alone"
            )
        if source.averaged:
            self.notes.append(
                f"{self.name} ({self.model}): no instant power reading; power comes from "
                f"{source.label}, which may be a ~1 s average that lags load changes"
            )

    @property
    def sensor_series(self) -> tuple[str, ...]:
        """Timeline series this GPU offers beyond energy."""
        return tuple(series for series, _ in self._sensors)

    def describe(self) -> dict[str, Any]:
        """Identity and how this GPU is read, for the run record (``config["gpus"]``)."""
        period = self.period
        return {
            "name": self.name,
            "uuid": self.uuid,
            "model": self.model,
            "nvml_index": self.nvml_index,
            "pci_bus_id": self.pci_bus_id,
            "energy_method": self.method.value,
            "energy_source": "nvmlDeviceGetTotalEnergyConsumption"
            if self.method is EnergyMethod.COUNTER
            else "integrated power",
            "power_source": self.power_source.label if self.power_source else None,
            "power_scope": self.power_source.scope if self.power_source else None,
            "power_fallbacks": list(self.power_source.tried) if self.power_source else [],
            "update_period_s": self.update_period_s,
            "update_period": period.describe() if period is not None else "nominal (not measured)",
            "temperature_api": getattr(self._backend, "temperature_api", None),
            "sensors": list(self.sensor_series),
            "dropped_sensors": dict(self.dropped),
        }

    def read(self) -> Reading:
        if self._integrator is not None:
            return self._integrator.poll()
        energy_j = mj_to_j(self._backend.energy_mj(self.nvml_index))
        return Reading(self._clock(), energy_j)

    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None:
        failed: list[tuple[str, MeterError]] = []
        for series, read in self._sensors:
            if not state and not is_power_series(series):
                continue
            try:
                value = read()
            except MeterError as exc:
                if self._integrator is not None and is_power_series(series):
                    raise
                failed.append((series, exc))
                continue
            sink.append(series, t_s, value)
        if failed:
            gone = {series for series, _ in failed}
            self._sensors = tuple(s for s in self._sensors if s[0] not in gone)
            for series, error in failed:
                self._drop(series, f"failed mid-run: {error}")

    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]:
        return ()

    def window_opened(self) -> None:
        """An integrated GPU polls power in the background while any window is open."""
        if self._integrator is not None:
            self._integrator.acquire()

    def window_closed(self) -> None:
        if self._integrator is not None:
            self._integrator.release()

    def close(self) -> None:
        if self._integrator is not None:
            self._integrator.close()


def _optional(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except MeterError:
        return None


def open_backend() -> tuple[PynvmlBackend | None, str | None]:
    """The real NVML backend, or ``None`` and why NVML cannot be used here."""
    try:
        return PynvmlBackend(), None
    except MeterError as exc:
        return None, f"no NVIDIA GPU readable: {exc}"


def open_gpu_meters(
    selection: GpuSelection,
    backend: GpuBackend | None,
    *,
    backend_error: str | None = None,
    clock: Clock = now_s,
    poll_period_s: float | None = DEFAULT_POLL_PERIOD_S,
    probe_s: float = DEFAULT_PROBE_S,
    approximate_short_windows: bool = False,
) -> tuple[list[NvmlGpuMeter | UnavailableMeter], list[str]]:
    """One meter per selected GPU, opened by UUID (no other GPU is touched), and notes.

    A GPU that cannot be metered raises :class:`GpuUnreadable` when ``selection.required``,
    else becomes an :class:`UnavailableMeter` under its own name with the reason. No device
    selected gives one null ``gpu`` meter saying why.
    """
    notes = list(selection.notes)

    def unavailable(name: str, reason: str) -> UnavailableMeter:
        return UnavailableMeter(name, EnergyBoundary.GPU, EnergyMethod.COUNTER, reason, clock=clock)

    if not selection.devices:
        reason = selection.missing_reason or "no GPU selected"
        return [unavailable("gpu", reason)], [*notes, reason]
    meters: list[NvmlGpuMeter | UnavailableMeter] = []
    periods: dict[str, UpdatePeriod] = {}  # one probe per GPU model, as Zeus does
    for device in selection.devices:
        name = f"gpu:{device.cuda_index}"
        try:
            if backend is None:
                raise GpuUnreadable(backend_error or "NVML is not available")
            index = _nvml_index_of(backend, device.uuid)
            model = backend.name(index)
            meter = NvmlGpuMeter(
                backend,
                index,
                device.cuda_index,
                clock=clock,
                poll_period_s=poll_period_s,
                probe_s=probe_s,
                period=periods.get(model),
                approximate_short_windows=approximate_short_windows,
            )
        except MeterError as exc:
            reason = f"{name} ({device.uuid}, {selection.source}) cannot be metered: {exc}"
            if selection.required:
                raise GpuUnreadable(reason) from exc
            meters.append(unavailable(name, reason))
            notes.append(reason)
            continue
        if meter.period is not None:
            periods.setdefault(model, meter.period)
        meters.append(meter)
    return meters, notes


def _nvml_index_of(backend: GpuBackend, uuid: str) -> int:
    """The NVML index of ``uuid``; a MIG slice, or a GPU in MIG mode, is refused."""
    candidates = [uuid]
    if uuid.upper().startswith("GPU-"):
        candidates.append("MIG-" + uuid[4:])  # torch prints a MIG slice's UUID bare too
    error: MeterError | None = None
    for candidate in candidates:
        try:
            index, is_mig = backend.lookup_uuid(candidate)
        except MeterError as exc:
            error = error or exc
            continue
        if is_mig or backend.mig_enabled(index):
            what = "is a MIG slice" if is_mig else "has MIG mode enabled"
            raise GpuUnreadable(
                f"{candidate} {what} (NVML GPU {index}): NVML reads only the whole GPU's "
                "energy, which would charge this run for the other slices' work. Measure on a "
                f"GPU with MIG disabled (nvidia-smi -i {index} -mig 0, as root)"
            )
        return index
    assert error is not None
    raise error


def open_nvml_meters(
    environ: Mapping[str, str],
    *,
    backend: GpuBackend | None = None,
    clock: Clock = now_s,
    poll_period_s: float | None = DEFAULT_POLL_PERIOD_S,
    probe_s: float = DEFAULT_PROBE_S,
    approximate_short_windows: bool = False,
) -> tuple[list[NvmlGpuMeter | UnavailableMeter], list[str], GpuBackend | None]:
    """Meters for the GPUs ``CUDA_VISIBLE_DEVICES`` exposes, notes, and the backend to close.

    For measuring "whatever this process can see" (the library API, the GPU checks); a run
    meters exactly the GPUs it uses instead (``detect_meters(gpus=selection)``). No NVML or
    no GPU gives one null ``gpu`` meter saying why; a GPU that cannot be read is null with
    the reason under its own name.
    """
    owned = backend is None
    if backend is None:
        opened, error = open_backend()
        if opened is None:
            reason = error or "NVML is not available"
            gone = UnavailableMeter(
                "gpu", EnergyBoundary.GPU, EnergyMethod.COUNTER, reason, clock=clock
            )
            return [gone], [reason], None
        backend = opened
    try:
        selection = visible_selection(backend, environ, required=False)
        meters, notes = open_gpu_meters(
            selection,
            backend,
            clock=clock,
            poll_period_s=poll_period_s,
            probe_s=probe_s,
            approximate_short_windows=approximate_short_windows,
        )
    except BaseException:
        if owned:
            backend.close()
        raise
    return meters, notes, backend
