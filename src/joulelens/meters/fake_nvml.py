"""A stand-in for the ``pynvml`` module (nvidia-ml-py), driven by fake GPUs and a clock.

It answers the calls :class:`~joulelens.meters.nvml_backend.PynvmlBackend` makes the way a
real driver does, so the real backend code runs in tests:

* ``NVMLError`` carries NVML's return code in ``.value``; messages read like pynvml's;
* ``nvmlDeviceGetCount`` counts every GPU, also those this process may not open
  (``no_permission``, as on cgroup-limited nodes) and lost ones (``lost``); opening those
  raises ``NO_PERMISSION`` / ``GPU_IS_LOST``;
* ``nvmlDeviceGetFieldValues`` fails **per field** (``nvmlReturn`` of each value), not by
  raising; GH200/GB200-like GPUs (``gpu_scope_power=False``) answer only module scope;
* NVML index order need not be PCI bus order (``pci_bus_id``), and CUDA's FASTEST_FIRST
  order is another matter again (see :mod:`joulelens.meters.select`);
* MIG: ``mig_mode`` on the parent, ``mig_uuids`` resolvable by ``nvmlDeviceGetHandleByUUID``;
* ``errors`` injects a return code for any function name or field (``"field:186/0"``),
  also mid-run.

Power: the instant field follows the trace; the average field and ``nvmlDeviceGetPowerUsage``
are the trailing ``average_window_s`` mean (1 s on Ampere and newer; 0 = instantaneous).
The energy counter refreshes every ``counter_period_s``. ``call_latency_s`` advances a
:class:`~joulelens.meters.fake.FakeClock` on every call, so tight polling loops see time pass.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from joulelens.meters.base import Clock

SUCCESS = 0
UNINITIALIZED = 1
INVALID_ARGUMENT = 2
NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
LIB_RM_VERSION_MISMATCH = 18
UNKNOWN = 999

MESSAGES = {
    UNINITIALIZED: "Uninitialized",
    INVALID_ARGUMENT: "Invalid Argument",
    NOT_SUPPORTED: "Not Supported",
    NO_PERMISSION: "Insufficient Permissions",
    NOT_FOUND: "Not Found",
    DRIVER_NOT_LOADED: "Driver Not Loaded",
    LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    FUNCTION_NOT_FOUND: "Function Not Found",
    GPU_IS_LOST: "GPU is lost",
    LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
    UNKNOWN: "Unknown Error",
}

FI_POWER_AVERAGE = 185
FI_POWER_INSTANT = 186
SCOPE_GPU, SCOPE_MODULE = 0, 1


class NVMLError(Exception):
    """Like ``pynvml.NVMLError``: ``.value`` is the return code."""

    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(MESSAGES.get(value, f"NVML error {value}"))


@dataclass(slots=True)
class FakeGpu:
    """One fake GPU; a sensor set to ``None`` (or a flag set False) is "not supported"."""

    uuid: str
    trace: Any  # a PowerTrace (power_w(t), energy_j(a, b))
    name: str = "NVIDIA H100 80GB HBM3"
    energy_counter: bool = True
    counter_period_s: float = 0.1
    power_sensor: bool = True  # no power reading of any kind when False
    instant_power: bool = True  # NVML_FI_DEV_POWER_INSTANT offered
    gpu_scope_power: bool = True  # False: power fields answer module scope only (GH200)
    module_extra_w: float = 0.0  # module scope adds the superchip's CPU and memory
    average_window_s: float = 1.0  # nvmlDeviceGetPowerUsage / average field window
    temperature_c: float | None = 45.0
    temperature_v: bool = True  # nvmlDeviceGetTemperatureV offered (drivers >= 535)
    utilization_pct: float | None = 0.0
    sm_clock_mhz: float | None = 1980.0
    memory_used_bytes: int | None = 1 << 30
    power_limit_w: float | None = 700.0
    energy_origin_mj: int = 123_456_789  # counters count from driver load, not from 0
    pci_bus_id: str | None = None  # default: from the NVML index
    mig_capable: bool = True  # A100/H100/H200/B200 are; consumer and older GPUs are not
    mig_mode: bool = False
    mig_uuids: tuple[str, ...] = ()
    no_permission: bool = False  # this process may not open it (cgroup-limited node)
    broken: bool = False  # every call raises GPU_IS_LOST (a GPU that fell off the bus)
    errors: dict[str, int] = field(default_factory=dict)  # function or "field:F/S" -> code


@dataclass(frozen=True, slots=True)
class _Handle:
    index: int
    mig_uuid: str | None = None


class FakeNvml:
    """Module-like stand-in for ``pynvml``: ``sys.modules["pynvml"] = FakeNvml(...)``."""

    NVMLError = NVMLError
    NVML_SUCCESS = SUCCESS
    NVML_ERROR_UNINITIALIZED = UNINITIALIZED
    NVML_ERROR_INVALID_ARGUMENT = INVALID_ARGUMENT
    NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED
    NVML_ERROR_NO_PERMISSION = NO_PERMISSION
    NVML_ERROR_NOT_FOUND = NOT_FOUND
    NVML_ERROR_DRIVER_NOT_LOADED = DRIVER_NOT_LOADED
    NVML_ERROR_LIBRARY_NOT_FOUND = LIBRARY_NOT_FOUND
    NVML_ERROR_FUNCTION_NOT_FOUND = FUNCTION_NOT_FOUND
    NVML_ERROR_GPU_IS_LOST = GPU_IS_LOST
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = LIB_RM_VERSION_MISMATCH
    NVML_ERROR_UNKNOWN = UNKNOWN
    NVML_FI_DEV_POWER_AVERAGE = FI_POWER_AVERAGE
    NVML_FI_DEV_POWER_INSTANT = FI_POWER_INSTANT
    NVML_POWER_SCOPE_GPU = SCOPE_GPU
    NVML_POWER_SCOPE_MODULE = SCOPE_MODULE
    NVML_POWER_SCOPE_MEMORY = 2
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_DEVICE_MIG_DISABLE = 0
    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(
        self,
        gpus: Sequence[FakeGpu],
        clock: Clock,
        *,
        init_error: int | None = None,
        call_latency_s: float = 0.0,
        driver_version: str = "570.124.06",
        cuda_driver_version: int = 12080,
    ) -> None:
        self.gpus = gpus
        self.clock = clock
        self.init_error = init_error
        self.call_latency_s = call_latency_s
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.calls: Counter[str] = Counter()
        self.opened: set[int] = set()  # NVML indices a handle was given out for
        self.initialised = 0
        self.__name__ = "pynvml"

    # -- plumbing ------------------------------------------------------------------------
    def _enter(self, what: str) -> None:
        self.calls[what] += 1
        if self.call_latency_s > 0:
            advance: Callable[[float], None] | None = getattr(self.clock, "advance", None)
            if advance is not None:
                advance(self.call_latency_s)
        if what not in ("nvmlInit", "nvmlShutdown") and self.initialised <= 0:
            raise NVMLError(UNINITIALIZED)

    def _gpu(self, handle: _Handle, what: str) -> FakeGpu:
        self._enter(what)
        gpu = self.gpus[handle.index]
        if gpu.broken:
            raise NVMLError(GPU_IS_LOST)
        if gpu.no_permission:
            raise NVMLError(NO_PERMISSION)
        code = gpu.errors.get(what)
        if code is not None:
            raise NVMLError(code)
        return gpu

    def _open(self, index: int) -> _Handle:
        gpu = self.gpus[index]
        if gpu.broken:
            raise NVMLError(GPU_IS_LOST)
        if gpu.no_permission:
            raise NVMLError(NO_PERMISSION)
        self.opened.add(index)
        return _Handle(index)

    # -- system --------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self._enter("nvmlInit")
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        if self.initialised <= 0:
            raise NVMLError(UNINITIALIZED)
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.cuda_driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)  # like _v2: includes GPUs this process may not open

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError(INVALID_ARGUMENT)
        return self._open(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> _Handle:
        self._enter("nvmlDeviceGetHandleByUUID")
        for index, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return self._open(index)
            if uuid in gpu.mig_uuids:
                self._open(index)
                return _Handle(index, uuid)
        raise NVMLError(NOT_FOUND)

    # -- identity ------------------------------------------------------------------------
    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        self._gpu(handle, "nvmlDeviceGetIndex")
        return handle.index

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu = self._gpu(handle, "nvmlDeviceGetUUID")
        return handle.mig_uuid or gpu.uuid

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetPciInfo(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetPciInfo")
        bus = gpu.pci_bus_id or f"00000000:{0x18 + 0x10 * handle.index:02X}:00.0"
        return SimpleNamespace(busId=bus.encode())  # pynvml hands the char array as bytes

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")
        if not gpu.mig_capable:
            raise NVMLError(NOT_SUPPORTED)  # GPUs without MIG say so
        mode = int(gpu.mig_mode)
        return [mode, mode]

    def nvmlDeviceIsMigDeviceHandle(self, handle: _Handle) -> int:
        self._gpu(handle, "nvmlDeviceIsMigDeviceHandle")
        return int(handle.mig_uuid is not None)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: _Handle) -> _Handle:
        self._gpu(handle, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if handle.mig_uuid is None:
            raise NVMLError(INVALID_ARGUMENT)
        return _Handle(handle.index)

    # -- energy and power ----------------------------------------------------------------
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEnergyConsumption")
        if not gpu.energy_counter:
            raise NVMLError(NOT_SUPPORTED)  # pre-Volta
        # (The epsilon keeps 100.1 / 0.1 = 1000.999... from losing a whole period.)
        periods = math.floor(self.clock() / gpu.counter_period_s + 1e-9)
        refreshed_s = periods * gpu.counter_period_s
        return gpu.energy_origin_mj + round(gpu.trace.energy_j(0.0, refreshed_s) * 1e3)

    def _average_w(self, gpu: FakeGpu) -> float:
        now = self.clock()
        if gpu.average_window_s <= 0:
            return float(gpu.trace.power_w(now))
        window = gpu.average_window_s
        return float(gpu.trace.energy_j(now - window, now) / window)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetPowerUsage")
        if not gpu.power_sensor or not gpu.gpu_scope_power:
            raise NVMLError(NOT_SUPPORTED)
        return round(self._average_w(gpu) * 1e3)

    def nvmlDeviceGetFieldValues(self, handle: _Handle, ids: list[Any]) -> list[SimpleNamespace]:
        gpu = self._gpu(handle, "nvmlDeviceGetFieldValues")
        return [self._field(gpu, *(i if isinstance(i, tuple) else (i, SCOPE_GPU))) for i in ids]

    def _field(self, gpu: FakeGpu, field_id: int, scope: int) -> SimpleNamespace:
        def value(code: int, milliwatts: int = 0) -> SimpleNamespace:
            stamp = round(self.clock() * 1e6)
            return SimpleNamespace(
                fieldId=field_id,
                scopeId=scope,
                timestamp=stamp,
                latencyUsec=0,
                nvmlReturn=code,
                value=SimpleNamespace(uiVal=milliwatts),
            )

        injected = gpu.errors.get(f"field:{field_id}/{scope}")
        if injected is not None:
            return value(injected)
        if field_id not in (FI_POWER_INSTANT, FI_POWER_AVERAGE) or not gpu.power_sensor:
            return value(NOT_SUPPORTED)
        if scope == SCOPE_GPU and not gpu.gpu_scope_power:
            return value(NOT_SUPPORTED)
        if scope not in (SCOPE_GPU, SCOPE_MODULE):
            return value(NOT_SUPPORTED)
        if field_id == FI_POWER_INSTANT and not gpu.instant_power:
            return value(NOT_SUPPORTED)
        watts = (
            float(gpu.trace.power_w(self.clock()))
            if field_id == FI_POWER_INSTANT
            else self._average_w(gpu)
        )
        if scope == SCOPE_MODULE:
            watts += gpu.module_extra_w
        return value(SUCCESS, round(watts * 1e3))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit")
        return round(_offered(gpu.power_limit_w) * 1e3)

    # -- device state --------------------------------------------------------------------
    def nvmlDeviceGetTemperatureV(self, handle: _Handle, sensor: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTemperatureV")
        if not gpu.temperature_v:
            raise NVMLError(FUNCTION_NOT_FOUND)  # a driver older than the API
        return round(_offered(gpu.temperature_c))

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTemperature")
        return round(_offered(gpu.temperature_c))

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=_offered(gpu.utilization_pct), memory=0)

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetClockInfo")
        return round(_offered(gpu.sm_clock_mhz))

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(used=_offered(gpu.memory_used_bytes), total=80 << 30)


def _offered(value: float | None) -> float:
    if value is None:
        raise NVMLError(NOT_SUPPORTED)
    return value
