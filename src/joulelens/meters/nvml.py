"""NVIDIA GPUs through NVML (``nvidia-ml-py``), read-only.

Energy comes from NVML's cumulative counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ,
Volta and newer, refreshed about every 100 ms); where that is not supported, from power
polls integrated over time (method ``integrated``). The meter talks to a tiny
:class:`GpuBackend` so tests drive it with :class:`joulelens.meters.fake.FakeNvmlBackend`;
:class:`PynvmlBackend` is the real one and imports ``pynvml`` only when constructed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from joulelens.errors import MeterError
from joulelens.measure.clock import now_s
from joulelens.meters.base import (
    Clock,
    Reading,
    SensorUnavailable,
    SeriesSink,
    UnavailableMeter,
    WindowResult,
    Windows,
)
from joulelens.meters.integrate import PowerIntegrator
from joulelens.meters.units import mj_to_j, mw_to_w
from joulelens.meters.visible import visible_gpus_from_env
from joulelens.records.schema import EnergyBoundary, EnergyMethod

NVML_COUNTER_PERIOD_S = 0.1
DEFAULT_POLL_PERIOD_S = 0.1


class GpuBackend(Protocol):
    """What the NVML meter needs from a GPU library, by NVML index, in NVML's own units.

    Every method raises :class:`SensorUnavailable` for a sensor the device does not offer
    and :class:`MeterError` for any other failure.
    """

    def device_count(self) -> int: ...
    def uuid(self, index: int) -> str: ...
    def name(self, index: int) -> str: ...
    def energy_mj(self, index: int) -> int: ...
    def power_mw(self, index: int) -> int: ...
    def temperature_c(self, index: int) -> float: ...
    def utilization_pct(self, index: int) -> float: ...
    def sm_clock_mhz(self, index: int) -> float: ...
    def memory_used_bytes(self, index: int) -> int: ...
    def power_limit_mw(self, index: int) -> int: ...
    def close(self) -> None: ...


class PynvmlBackend:
    """:class:`GpuBackend` over ``pynvml``; NVML errors become :class:`MeterError` here.

    Power prefers the instantaneous field (``NVML_FI_DEV_POWER_INSTANT``): on Ampere and
    newer, ``nvmlDeviceGetPowerUsage`` is a one-second average that lags load changes.
    """

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as exc:  # the dependency is declared; a broken install lands here
            raise MeterError(f"cannot import pynvml (nvidia-ml-py): {exc}") from exc
        self._nvml: Any = pynvml
        self._call("initialise", pynvml.nvmlInit)
        self._handles: dict[int, Any] = {}
        self._instant_power: dict[int, bool] = {}
        self._closed = False

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        nvml = self._nvml
        try:
            return fn(*args)
        except nvml.NVMLError as exc:
            unavailable = (
                nvml.NVML_ERROR_NOT_SUPPORTED,
                nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
                nvml.NVML_ERROR_NO_PERMISSION,
            )
            if getattr(exc, "value", None) in unavailable:
                raise SensorUnavailable(f"NVML cannot {what}: {exc}") from exc
            raise MeterError(f"NVML failed to {what}: {exc}") from exc

    def _handle(self, index: int) -> Any:
        handle = self._handles.get(index)
        if handle is None:
            handle = self._call(f"open GPU {index}", self._nvml.nvmlDeviceGetHandleByIndex, index)
            self._handles[index] = handle
        return handle

    def device_count(self) -> int:
        return int(self._call("count GPUs", self._nvml.nvmlDeviceGetCount))

    def uuid(self, index: int) -> str:
        return str(self._call("read a UUID", self._nvml.nvmlDeviceGetUUID, self._handle(index)))

    def name(self, index: int) -> str:
        return str(self._call("read a name", self._nvml.nvmlDeviceGetName, self._handle(index)))

    def energy_mj(self, index: int) -> int:
        return int(
            self._call(
                "read the energy counter",
                self._nvml.nvmlDeviceGetTotalEnergyConsumption,
                self._handle(index),
            )
        )

    def _instant_power_works(self, handle: Any) -> bool:
        nvml = self._nvml
        try:  # old nvidia-ml-py lacks the constant or the (field, scope) form
            field = (nvml.NVML_FI_DEV_POWER_INSTANT, nvml.NVML_POWER_SCOPE_GPU)
            value = nvml.nvmlDeviceGetFieldValues(handle, [field])[0]
        except (AttributeError, TypeError, nvml.NVMLError):
            return False
        return bool(value.nvmlReturn == nvml.NVML_SUCCESS)

    def power_mw(self, index: int) -> int:
        nvml, handle = self._nvml, self._handle(index)
        instant = self._instant_power.get(index)
        if instant is None:  # decided once per GPU, so one timeline never mixes the two
            instant = self._instant_power[index] = self._instant_power_works(handle)
        if not instant:
            return int(self._call("read power", nvml.nvmlDeviceGetPowerUsage, handle))
        field = (nvml.NVML_FI_DEV_POWER_INSTANT, nvml.NVML_POWER_SCOPE_GPU)
        value = self._call("read instant power", nvml.nvmlDeviceGetFieldValues, handle, [field])[0]
        if value.nvmlReturn != nvml.NVML_SUCCESS:
            raise MeterError(
                f"NVML failed to read instant power of GPU {index}: {value.nvmlReturn}"
            )
        return int(value.value.uiVal)

    def power_source(self, index: int) -> str:
        """Which NVML reading :meth:`power_mw` uses for this GPU (after its first call)."""
        instant = self._instant_power.get(index)
        if instant is None:
            return "not read yet"
        return "instant (NVML_FI_DEV_POWER_INSTANT)" if instant else "nvmlDeviceGetPowerUsage"

    def temperature_c(self, index: int) -> float:
        nvml = self._nvml
        return float(
            self._call(
                "read the temperature",
                nvml.nvmlDeviceGetTemperature,
                self._handle(index),
                nvml.NVML_TEMPERATURE_GPU,
            )
        )

    def utilization_pct(self, index: int) -> float:
        rates = self._call(
            "read utilization", self._nvml.nvmlDeviceGetUtilizationRates, self._handle(index)
        )
        return float(rates.gpu)

    def sm_clock_mhz(self, index: int) -> float:
        nvml = self._nvml
        return float(
            self._call(
                "read the SM clock",
                nvml.nvmlDeviceGetClockInfo,
                self._handle(index),
                nvml.NVML_CLOCK_SM,
            )
        )

    def memory_used_bytes(self, index: int) -> int:
        info = self._call(
            "read memory use", self._nvml.nvmlDeviceGetMemoryInfo, self._handle(index)
        )
        return int(info.used)

    def power_limit_mw(self, index: int) -> int:
        return int(
            self._call(
                "read the power limit",
                self._nvml.nvmlDeviceGetEnforcedPowerLimit,
                self._handle(index),
            )
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._call("shut down", self._nvml.nvmlShutdown)


class NvmlGpuMeter:
    """One GPU. ``name`` is ``gpu:<k>`` with *k* its CUDA index (position in the visible list).

    Built only for a device whose energy can be read, by counter or by integrated power;
    :func:`open_nvml_meters` reports any other device as an :class:`UnavailableMeter`.
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
    ) -> None:
        self._backend = backend
        self.nvml_index = nvml_index
        self.name = f"gpu:{cuda_index}"
        self.uuid = backend.uuid(nvml_index)
        self.model = backend.name(nvml_index)
        self._clock = clock
        self._integrator: PowerIntegrator | None = None
        try:
            backend.energy_mj(nvml_index)
            self.method = EnergyMethod.COUNTER
            self.update_period_s = NVML_COUNTER_PERIOD_S
        except SensorUnavailable:
            backend.power_mw(nvml_index)  # no power either: SensorUnavailable to the caller
            self.method = EnergyMethod.INTEGRATED
            self._integrator = PowerIntegrator(self._power_w, clock=clock, period_s=poll_period_s)
            self.update_period_s = poll_period_s or NVML_COUNTER_PERIOD_S
        self._sensors = self._probe_sensors()
        self._power_sensors = tuple(s for s in self._sensors if s[0].startswith("power_watts:"))
        # Without a power sensor (counter only) the sampler derives power from the counter.
        self.offers_power = bool(self._power_sensors)
        self._windows = Windows(self)

    def __repr__(self) -> str:
        return f"NvmlGpuMeter({self.name!r}, {self.model!r}, nvml={self.nvml_index}, {self.method})"

    def _power_w(self) -> float:
        return mw_to_w(self._backend.power_mw(self.nvml_index))

    def _probe_sensors(self) -> tuple[tuple[str, Callable[[], float]], ...]:
        b, i, n = self._backend, self.nvml_index, self.name
        candidates: tuple[tuple[str, Callable[[], float]], ...] = (
            (f"power_watts:{n}", self._power_w),  # first: sampled on every tick
            (f"temperature_c:{n}", lambda: b.temperature_c(i)),
            (f"gpu_utilization_pct:{n}", lambda: b.utilization_pct(i)),
            (f"sm_clock_mhz:{n}", lambda: b.sm_clock_mhz(i)),
            (f"memory_used_bytes:{n}", lambda: float(b.memory_used_bytes(i))),
            (f"power_limit_watts:{n}", lambda: mw_to_w(b.power_limit_mw(i))),
        )
        offered = []
        for series, read in candidates:
            try:
                read()
            except SensorUnavailable:
                continue
            offered.append((series, read))
        return tuple(offered)

    @property
    def sensor_series(self) -> tuple[str, ...]:
        """Timeline series this GPU offers beyond energy."""
        return tuple(series for series, _ in self._sensors)

    def read(self) -> Reading:
        if self._integrator is not None:
            return self._integrator.poll()
        energy_j = mj_to_j(self._backend.energy_mj(self.nvml_index))
        return Reading(self._clock(), energy_j)

    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None:
        sensors = self._sensors if state else self._power_sensors
        for series, read in sensors:
            sink.append(series, t_s, read())

    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]:
        return ()

    def begin_window(self, name: str) -> None:
        if self._integrator is not None:
            self._integrator.acquire()
        try:
            self._windows.begin(name)
        except MeterError:
            if self._integrator is not None:
                self._integrator.release()
            raise

    def end_window(self, name: str) -> WindowResult:
        try:
            return self._windows.end(name)
        finally:
            if self._integrator is not None:
                self._integrator.release()

    def close(self) -> None:
        if self._integrator is not None:
            self._integrator.close()


def open_nvml_meters(
    environ: Mapping[str, str],
    *,
    backend: GpuBackend | None = None,
    clock: Clock = now_s,
    poll_period_s: float | None = DEFAULT_POLL_PERIOD_S,
) -> tuple[list[NvmlGpuMeter | UnavailableMeter], list[str], GpuBackend | None]:
    """Meters for the GPUs ``CUDA_VISIBLE_DEVICES`` exposes, notes, and the backend to close.

    No NVML, no GPU, or none visible gives one ``gpu`` :class:`UnavailableMeter` saying why
    (the null object: the GPU boundary stays in every window, as null with its reason); a
    visible GPU whose energy cannot be read gives an ``UnavailableMeter`` under its own name.
    """
    notes: list[str] = []
    owned = backend is None
    if backend is None:
        try:
            backend = PynvmlBackend()
        except MeterError as exc:
            reason = f"no NVIDIA GPU readable: {exc}"
            gone = UnavailableMeter(
                "gpu", EnergyBoundary.GPU, EnergyMethod.COUNTER, reason, clock=clock
            )
            return [gone], [reason], None
    try:
        meters = _visible_meters(environ, backend, notes, clock, poll_period_s)
    except BaseException:
        if owned:
            backend.close()
        raise
    return meters, notes, backend


def _visible_meters(
    environ: Mapping[str, str],
    backend: GpuBackend,
    notes: list[str],
    clock: Clock,
    poll_period_s: float | None,
) -> list[NvmlGpuMeter | UnavailableMeter]:
    count = backend.device_count()
    uuids = [backend.uuid(i) for i in range(count)]
    names = [backend.name(i) for i in range(count)]
    visible = visible_gpus_from_env(environ, uuids, names)
    notes.extend(visible.warnings)
    meters: list[NvmlGpuMeter | UnavailableMeter] = []
    for cuda_index, nvml_index in enumerate(visible.nvml_indices):
        try:
            meter = NvmlGpuMeter(
                backend, nvml_index, cuda_index, clock=clock, poll_period_s=poll_period_s
            )
        except SensorUnavailable as exc:
            reason = f"{names[nvml_index]} offers neither an energy counter nor power: {exc}"
            meters.append(
                UnavailableMeter(
                    f"gpu:{cuda_index}",
                    EnergyBoundary.GPU,
                    EnergyMethod.COUNTER,
                    reason,
                    clock=clock,
                )
            )
            continue
        meters.append(meter)
    if not meters:
        reason = (
            "NVML sees no GPU"
            if count == 0
            else f"no GPU visible: CUDA_VISIBLE_DEVICES hides all {count} GPUs"
        )
        notes.append(reason)
        meters.append(
            UnavailableMeter("gpu", EnergyBoundary.GPU, EnergyMethod.COUNTER, reason, clock=clock)
        )
    return meters
