"""PynvmlBackend's mapping of NVML calls, units and errors, against a stand-in ``pynvml``.

The real library needs a driver; this stand-in implements the few functions the backend
calls with NVML's own conventions (mJ, mW, NVMLError.value codes), so the mapping is
checked on machines without a GPU. The GPU-marked test in test_nvml.py covers the real one.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import pytest

from joulelens.errors import MeterError
from joulelens.meters import NvmlGpuMeter, PynvmlBackend, SensorUnavailable
from joulelens.meters.fake import FakeClock
from joulelens.records.schema import EnergyMethod

NOT_SUPPORTED, NO_PERMISSION, GPU_IS_LOST = 3, 4, 15


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class Field:
    nvmlReturn: int
    value: types.SimpleNamespace


@dataclass
class Device:
    energy_mj: int | None = 123_456
    instant_mw: int | None = 250_000
    average_mw: int = 240_000
    lost: bool = False


def stand_in(devices: list[Device]) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError  # type: ignore[attr-defined]
    constants = {
        "NVML_SUCCESS": 0,
        "NVML_ERROR_NOT_SUPPORTED": NOT_SUPPORTED,
        "NVML_ERROR_NO_PERMISSION": NO_PERMISSION,
        "NVML_ERROR_FUNCTION_NOT_FOUND": 13,
        "NVML_FI_DEV_POWER_INSTANT": 186,
        "NVML_POWER_SCOPE_GPU": 0,
        "NVML_TEMPERATURE_GPU": 0,
        "NVML_CLOCK_SM": 1,
    }
    for name, value in constants.items():
        setattr(nvml, name, value)

    def device(handle: int) -> Device:
        if devices[handle].lost:
            raise NVMLError(GPU_IS_LOST)
        return devices[handle]

    def energy(handle: int) -> int:
        mj = device(handle).energy_mj
        if mj is None:
            raise NVMLError(NOT_SUPPORTED)
        return mj

    def fields(handle: int, ids: list[tuple[int, int]]) -> list[Field]:
        assert ids == [(186, 0)]
        mw = device(handle).instant_mw
        if mw is None:
            raise NVMLError(NOT_SUPPORTED)
        return [Field(0, types.SimpleNamespace(uiVal=mw))]

    def unsupported(*_: object) -> None:
        raise NVMLError(NO_PERMISSION)

    functions = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: len(devices),
        "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetUUID": lambda h: f"GPU-{h:08d}",
        "nvmlDeviceGetName": lambda h: "Tesla V100",
        "nvmlDeviceGetTotalEnergyConsumption": energy,
        "nvmlDeviceGetFieldValues": fields,
        "nvmlDeviceGetPowerUsage": lambda h: device(h).average_mw,
        "nvmlDeviceGetTemperature": lambda h, sensor: 51,
        "nvmlDeviceGetUtilizationRates": lambda h: types.SimpleNamespace(gpu=87, memory=40),
        "nvmlDeviceGetClockInfo": lambda h, clock: 1410,
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(used=3 << 30),
        "nvmlDeviceGetEnforcedPowerLimit": unsupported,
    }
    for name, function in functions.items():
        setattr(nvml, name, function)
    return nvml


@pytest.fixture
def devices(monkeypatch: pytest.MonkeyPatch) -> list[Device]:
    devices = [Device(), Device(energy_mj=None, instant_mw=None)]
    monkeypatch.setitem(__import__("sys").modules, "pynvml", stand_in(devices))
    return devices


def test_units_and_instant_power(devices):
    backend = PynvmlBackend()
    meter = NvmlGpuMeter(backend, 0, 0, clock=FakeClock())
    assert meter.method is EnergyMethod.COUNTER
    assert meter.read().energy_j == pytest.approx(123.456)
    assert backend.power_mw(0) == 250_000
    assert backend.power_source(0).startswith("instant")
    assert backend.memory_used_bytes(0) == 3 << 30
    # No permission to read the power limit: not offered, not an error.
    assert "power_limit_watts:gpu:0" not in meter.sensor_series
    assert "sm_clock_mhz:gpu:0" in meter.sensor_series


def test_pre_volta_falls_back_to_integrated_average_power(devices):
    backend = PynvmlBackend()
    meter = NvmlGpuMeter(backend, 1, 0, clock=FakeClock(), poll_period_s=None)
    assert meter.method is EnergyMethod.INTEGRATED
    assert backend.power_mw(1) == 240_000
    assert backend.power_source(1) == "nvmlDeviceGetPowerUsage"
    with pytest.raises(SensorUnavailable) as info:
        backend.energy_mj(1)
    assert isinstance(info.value.__cause__, NVMLError)


def test_other_nvml_errors_become_meter_errors(devices):
    backend = PynvmlBackend()
    devices[0].lost = True
    with pytest.raises(MeterError, match="read the energy counter") as info:
        backend.energy_mj(0)
    assert not isinstance(info.value, SensorUnavailable)
    assert isinstance(info.value.__cause__, NVMLError)
    assert info.value.__cause__.value == GPU_IS_LOST
