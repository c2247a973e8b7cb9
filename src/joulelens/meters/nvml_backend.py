"""The GPU library boundary: :class:`GpuBackend` and its ``pynvml`` implementation.

Units are NVML's own (mJ, mW); devices are named by NVML index, and a handle is opened only
for a device something asks about, so a GPU the run does not use is never touched.

Power follows Zeus's fallback chain, decided once per GPU so one timeline never mixes
sources: ``NVML_FI_DEV_POWER_INSTANT`` at GPU scope, then at module scope (GH200/GB200
superchips answer only module scope: GPU + CPU + memory), then ``NVML_FI_DEV_POWER_AVERAGE``
(GPU, then module scope), then ``nvmlDeviceGetPowerUsage`` (a 1 s average on Ampere and
newer except GA100, instantaneous before). :meth:`PynvmlBackend.power_source` says which.
Temperature uses ``nvmlDeviceGetTemperatureV`` (``nvmlDeviceGetTemperature`` is deprecated
and goes with CUDA 14), falling back to the old call only where the driver lacks the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from joulelens.errors import MeterError
from joulelens.meters.base import SensorUnavailable


@dataclass(frozen=True, slots=True)
class PowerSource:
    """Which NVML reading a GPU's power comes from, and what was tried before it."""

    kind: str  # "instant", "average" or "power-usage"
    scope: str  # "gpu" or "module" (superchip: GPU + CPU + memory)
    tried: tuple[str, ...] = ()  # "instant/gpu: Not Supported", ...

    @property
    def label(self) -> str:
        names = {
            "instant": "NVML_FI_DEV_POWER_INSTANT",
            "average": "NVML_FI_DEV_POWER_AVERAGE",
            "power-usage": "nvmlDeviceGetPowerUsage",
        }
        return f"{self.kind} ({names[self.kind]}, {self.scope} scope)"

    @property
    def averaged(self) -> bool:
        """True when readings may be a ~1 s running average that lags load steps."""
        return self.kind != "instant"


class GpuBackend(Protocol):
    """What the NVML meter needs from a GPU library, by NVML index, in NVML's own units.

    Every method raises :class:`SensorUnavailable` for a sensor the device does not offer
    (or may not be read) and :class:`MeterError` for any other failure.
    """

    def device_count(self) -> int: ...
    def lookup_uuid(self, uuid: str) -> tuple[int, bool]: ...
    def uuid(self, index: int) -> str: ...
    def name(self, index: int) -> str: ...
    def pci_bus_id(self, index: int) -> str: ...
    def mig_enabled(self, index: int) -> bool: ...
    def energy_mj(self, index: int) -> int: ...
    def power_mw(self, index: int) -> int: ...
    def power_source(self, index: int) -> PowerSource | None: ...
    def temperature_c(self, index: int) -> float: ...
    def utilization_pct(self, index: int) -> float: ...
    def sm_clock_mhz(self, index: int) -> float: ...
    def memory_used_bytes(self, index: int) -> int: ...
    def power_limit_mw(self, index: int) -> int: ...
    def close(self) -> None: ...


_POWER_CHAIN = (
    ("instant", "NVML_FI_DEV_POWER_INSTANT", "gpu"),
    ("instant", "NVML_FI_DEV_POWER_INSTANT", "module"),
    ("average", "NVML_FI_DEV_POWER_AVERAGE", "gpu"),
    ("average", "NVML_FI_DEV_POWER_AVERAGE", "module"),
)


class PynvmlBackend:
    """:class:`GpuBackend` over ``pynvml``; NVML errors become :class:`MeterError` here.

    ``nvml`` replaces the ``pynvml`` module (tests pass :class:`~joulelens.meters.fake.FakeNvml`).
    """

    def __init__(self, nvml: Any = None) -> None:
        if nvml is None:
            try:
                import pynvml
            except ImportError as exc:  # the dependency is declared; a broken install lands here
                raise MeterError(f"cannot import pynvml (nvidia-ml-py): {exc}") from exc
            nvml = pynvml
        self._nvml: Any = nvml
        self._call("initialise", nvml.nvmlInit)
        self._handles: dict[int, Any] = {}
        self._power: dict[int, tuple[PowerSource, Callable[[Any], int]]] = {}
        self._legacy_temperature = False
        self._closed = False

    @property
    def nvml(self) -> Any:
        return self._nvml

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

    # -- identity ----------------------------------------------------------------------------
    def device_count(self) -> int:
        return int(self._call("count GPUs", self._nvml.nvmlDeviceGetCount))

    def lookup_uuid(self, uuid: str) -> tuple[int, bool]:
        """The NVML index of the GPU ``uuid`` names, and whether it names a MIG slice of it.

        Opens that GPU's handle only (``nvmlDeviceGetHandleByUUID``).
        """
        nvml = self._nvml
        handle = self._call(f"find GPU {uuid}", nvml.nvmlDeviceGetHandleByUUID, uuid)
        is_mig = False
        probe = getattr(nvml, "nvmlDeviceIsMigDeviceHandle", None)
        if probe is not None:
            try:
                flag = self._call("ask whether a handle is a MIG slice", probe, handle)
                is_mig = bool(getattr(flag, "value", flag))
            except SensorUnavailable:
                is_mig = False
        if is_mig:
            handle = self._call(
                f"find the GPU of MIG slice {uuid}",
                nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle,
                handle,
            )
        index = int(self._call(f"read the index of GPU {uuid}", nvml.nvmlDeviceGetIndex, handle))
        self._handles.setdefault(index, handle)
        return index, is_mig

    def uuid(self, index: int) -> str:
        return str(self._call("read a UUID", self._nvml.nvmlDeviceGetUUID, self._handle(index)))

    def name(self, index: int) -> str:
        return str(self._call("read a name", self._nvml.nvmlDeviceGetName, self._handle(index)))

    def pci_bus_id(self, index: int) -> str:
        info = self._call(
            "read the PCI bus id", self._nvml.nvmlDeviceGetPciInfo, self._handle(index)
        )
        bus = info.busId
        return (bus.decode() if isinstance(bus, bytes) else str(bus)).upper()

    def mig_enabled(self, index: int) -> bool:
        nvml = self._nvml
        try:
            current, _pending = self._call(
                "read the MIG mode", nvml.nvmlDeviceGetMigMode, self._handle(index)
            )
        except SensorUnavailable:  # GPUs without MIG answer "not supported"
            return False
        return bool(current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1))

    # -- energy and power --------------------------------------------------------------------
    def energy_mj(self, index: int) -> int:
        return int(
            self._call(
                "read the energy counter",
                self._nvml.nvmlDeviceGetTotalEnergyConsumption,
                self._handle(index),
            )
        )

    def _field_reader(self, constant: str, scope: str) -> Callable[[Any], int] | None:
        nvml = self._nvml
        try:  # old nvidia-ml-py lacks the constants or the (field, scope) form
            key = (getattr(nvml, constant), getattr(nvml, f"NVML_POWER_SCOPE_{scope.upper()}"))
        except AttributeError:
            return None

        def read(handle: Any) -> int:
            value = self._call(
                f"read {constant} ({scope} scope)", nvml.nvmlDeviceGetFieldValues, handle, [key]
            )[0]
            if value.nvmlReturn != nvml.NVML_SUCCESS:
                error = nvml.NVMLError(value.nvmlReturn)
                raise MeterError(
                    f"NVML failed to read {constant} ({scope} scope): {error}"
                ) from error
            return int(value.value.uiVal)

        return read

    def _resolve_power(self, index: int) -> tuple[PowerSource, Callable[[Any], int]]:
        handle = self._handle(index)
        tried: list[str] = []
        for kind, constant, scope in _POWER_CHAIN:
            read = self._field_reader(constant, scope)
            if read is None:
                tried.append(f"{kind}/{scope}: this nvidia-ml-py lacks {constant}")
                continue
            try:
                read(handle)
            except (MeterError, TypeError) as exc:
                tried.append(f"{kind}/{scope}: {exc.__cause__ or exc}")
                continue
            return PowerSource(kind, scope, tuple(tried)), read

        def usage(h: Any) -> int:
            return int(self._call("read power", self._nvml.nvmlDeviceGetPowerUsage, h))

        try:
            usage(handle)
        except MeterError as exc:
            tried.append(f"power-usage: {exc.__cause__ or exc}")
            error = SensorUnavailable if isinstance(exc, SensorUnavailable) else MeterError
            raise error(f"no power reading ({'; '.join(tried)})") from exc
        return PowerSource("power-usage", "gpu", tuple(tried)), usage

    def power_mw(self, index: int) -> int:
        chosen = self._power.get(index)
        if chosen is None:  # decided once per GPU, so one timeline never mixes sources
            chosen = self._power[index] = self._resolve_power(index)
        return chosen[1](self._handle(index))

    def power_source(self, index: int) -> PowerSource | None:
        """Which NVML reading :meth:`power_mw` uses here (``None`` before its first call)."""
        chosen = self._power.get(index)
        return None if chosen is None else chosen[0]

    # -- device state ------------------------------------------------------------------------
    def temperature_c(self, index: int) -> float:
        nvml, handle = self._nvml, self._handle(index)
        sensor = nvml.NVML_TEMPERATURE_GPU
        new_api = getattr(nvml, "nvmlDeviceGetTemperatureV", None)
        if new_api is not None and not self._legacy_temperature:
            try:
                return float(self._call("read the temperature", new_api, handle, sensor))
            except SensorUnavailable as exc:
                cause = getattr(exc.__cause__, "value", None)
                if cause != nvml.NVML_ERROR_FUNCTION_NOT_FOUND:
                    raise
                self._legacy_temperature = True  # a driver older than the new call
        return float(
            self._call("read the temperature", nvml.nvmlDeviceGetTemperature, handle, sensor)
        )

    @property
    def temperature_api(self) -> str:
        if self._legacy_temperature or not hasattr(self._nvml, "nvmlDeviceGetTemperatureV"):
            return "nvmlDeviceGetTemperature"
        return "nvmlDeviceGetTemperatureV"

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


def installed_pynvml_version() -> str | None:
    """nvidia-ml-py's version, for records and the GPU validation's preflight."""
    import importlib.metadata

    for dist in ("nvidia-ml-py", "pynvml"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
