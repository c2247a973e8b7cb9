"""PynvmlBackend's mapping of NVML calls, units and errors, on the ``pynvml`` stand-in.

The real library needs a driver; :class:`FakeNvml` answers the same calls with NVML's own
conventions (mJ, mW, ``NVMLError.value`` codes, per-field return codes), so the mapping is
checked on machines without a GPU. The GPU-marked test in test_nvml.py covers the real one.
"""

from __future__ import annotations

import pytest

from joulelens.errors import MeterError
from joulelens.meters import NvmlGpuMeter, PynvmlBackend, SensorUnavailable
from joulelens.meters.fake import FakeClock, FakeGpu, FakeNvml, NVMLError, PowerTrace
from joulelens.meters.fake_nvml import FUNCTION_NOT_FOUND, GPU_IS_LOST, NO_PERMISSION, UNKNOWN
from joulelens.records.schema import EnergyMethod


def backend_of(*gpus: FakeGpu, clock: FakeClock | None = None, **nvml: object) -> PynvmlBackend:
    return PynvmlBackend(FakeNvml(list(gpus), clock or FakeClock(), **nvml))  # type: ignore[arg-type]


def gpu(**fields: object) -> FakeGpu:
    return FakeGpu("GPU-aaaa", PowerTrace.constant(250.0), **fields)  # type: ignore[arg-type]


def test_units_and_instant_power():
    clock = FakeClock(0.0)
    backend = backend_of(gpu(energy_origin_mj=123_456, memory_used_bytes=3 << 30), clock=clock)
    meter = NvmlGpuMeter(backend, 0, 0, clock=clock)
    assert meter.method is EnergyMethod.COUNTER
    assert meter.read().energy_j == pytest.approx(123.456)
    assert backend.power_mw(0) == 250_000
    source = backend.power_source(0)
    assert source is not None and (source.kind, source.scope) == ("instant", "gpu")
    assert backend.memory_used_bytes(0) == 3 << 30


def test_no_permission_for_a_sensor_means_not_offered_not_an_error():
    backend = backend_of(gpu(errors={"nvmlDeviceGetEnforcedPowerLimit": NO_PERMISSION}))
    meter = NvmlGpuMeter(backend, 0, 0, clock=FakeClock())
    assert "power_limit_watts:gpu:0" not in meter.sensor_series
    assert "sm_clock_mhz:gpu:0" in meter.sensor_series
    assert meter.dropped == {}


# -- defect 7: the power source, Zeus's fallback chain, recorded ------------------------------


def test_gh200_falls_back_to_module_scope_and_says_so():
    """GH200/GB200: GPU-scope power fields fail per field; module scope answers (GPU + CPU)."""
    clock = FakeClock(10.0)
    superchip = gpu(name="NVIDIA GH200 480GB", gpu_scope_power=False, module_extra_w=150.0)
    backend = backend_of(superchip, clock=clock)
    meter = NvmlGpuMeter(backend, 0, 0, clock=clock)
    assert backend.power_mw(0) == 400_000  # 250 W GPU + 150 W of the module
    assert meter.power_source is not None
    assert (meter.power_source.kind, meter.power_source.scope) == ("instant", "module")
    assert meter.power_source.tried == ("instant/gpu: Not Supported",)
    assert meter.describe()["power_scope"] == "module"
    assert any("module scope" in n for n in meter.notes)


def test_without_instant_power_the_average_field_is_used_and_labelled():
    clock = FakeClock(10.0)
    backend = backend_of(gpu(instant_power=False), clock=clock)
    meter = NvmlGpuMeter(backend, 0, 0, clock=clock)
    assert meter.power_source is not None and meter.power_source.kind == "average"
    assert any("~1 s average" in n for n in meter.notes)


class _OldNvml(FakeNvml):
    """An nvidia-ml-py from before the power field constants."""

    def __getattribute__(self, name: str) -> object:
        if name in ("NVML_FI_DEV_POWER_INSTANT", "NVML_FI_DEV_POWER_AVERAGE"):
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_power_usage_is_the_last_resort_of_an_old_library():
    backend = PynvmlBackend(_OldNvml([gpu(average_window_s=0.0)], FakeClock(10.0)))
    assert backend.power_mw(0) == 250_000
    source = backend.power_source(0)
    assert source is not None and source.kind == "power-usage"
    assert any("lacks NVML_FI_DEV_POWER_INSTANT" in t for t in source.tried)


def test_the_source_is_decided_once_so_a_timeline_never_mixes_sources():
    clock = FakeClock(10.0)
    device = gpu()
    backend = backend_of(device, clock=clock)
    backend.power_mw(0)
    device.errors["field:186/0"] = UNKNOWN  # instant fails later: an error, not a switch
    with pytest.raises(MeterError, match="POWER_INSTANT"):
        backend.power_mw(0)


# -- defect 9: the temperature API that survives CUDA 14 --------------------------------------


def test_temperature_uses_the_v_api():
    backend = backend_of(gpu(temperature_c=61.0))
    assert backend.temperature_c(0) == 61.0
    assert backend.nvml.calls["nvmlDeviceGetTemperatureV"] == 1
    assert backend.nvml.calls["nvmlDeviceGetTemperature"] == 0
    assert backend.temperature_api == "nvmlDeviceGetTemperatureV"


def test_temperature_falls_back_where_the_driver_lacks_the_v_api():
    backend = backend_of(gpu(temperature_c=61.0, temperature_v=False))
    assert backend.temperature_c(0) == 61.0
    assert backend.temperature_c(0) == 61.0
    assert backend.nvml.calls["nvmlDeviceGetTemperatureV"] == 1  # tried once only
    assert backend.temperature_api == "nvmlDeviceGetTemperature"


# -- errors ------------------------------------------------------------------------------------


def test_pre_volta_falls_back_to_integrated_power():
    backend = backend_of(gpu(name="Tesla P100", energy_counter=False, average_window_s=0.0))
    meter = NvmlGpuMeter(backend, 0, 0, clock=FakeClock(), poll_period_s=None)
    assert meter.method is EnergyMethod.INTEGRATED
    with pytest.raises(SensorUnavailable) as info:
        backend.energy_mj(0)
    assert isinstance(info.value.__cause__, NVMLError)


def test_other_nvml_errors_become_meter_errors():
    device = gpu()
    backend = backend_of(device)
    backend.energy_mj(0)
    device.broken = True
    with pytest.raises(MeterError, match="read the energy counter") as info:
        backend.energy_mj(0)
    assert not isinstance(info.value, SensorUnavailable)
    assert isinstance(info.value.__cause__, NVMLError)
    assert info.value.__cause__.value == GPU_IS_LOST


@pytest.mark.parametrize("code", [9, 12, 18])  # driver not loaded, no library, RM mismatch
def test_nvml_that_cannot_start_says_why(code: int):
    with pytest.raises(MeterError, match="NVML failed to initialise"):
        backend_of(gpu(), init_error=code)


def test_function_not_found_is_unavailable():
    backend = backend_of(gpu(errors={"nvmlDeviceGetClockInfo": FUNCTION_NOT_FOUND}))
    with pytest.raises(SensorUnavailable):
        backend.sm_clock_mhz(0)
