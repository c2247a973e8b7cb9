"""The NVML GPU meter against the fake backend, and the real backend where a GPU exists."""

from __future__ import annotations

import threading
import time

import pytest

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters import MeterSet, NvmlGpuMeter, PynvmlBackend, UnavailableMeter
from joulelens.meters.fake import FakeClock, FakeGpu, FakeNvmlBackend, PowerTrace, fake_gpu_meters
from joulelens.meters.nvml import open_nvml_meters
from joulelens.records.schema import EnergyBoundary, EnergyMethod

UUID_A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
UUID_B = "GPU-bbbbbbbb-0000-0000-0000-000000000000"
UUID_C = "GPU-cccccccc-0000-0000-0000-000000000000"


def test_counter_window_is_exact_energy_in_joules():
    clock = FakeClock(1000.0)
    gpu = FakeGpu(UUID_A, PowerTrace(((1000.0, 100.0), (1010.0, 500.0))))
    meter = NvmlGpuMeter(FakeNvmlBackend([gpu], clock), 0, 0, clock=clock)
    assert meter.method is EnergyMethod.COUNTER
    assert meter.boundary is EnergyBoundary.GPU
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    clock.advance(10.0)
    window = meter_set.end_window("w")
    (component,) = window.components
    assert component.name == "gpu:0"
    assert component.joules == pytest.approx(3000.0, abs=1e-3)  # mean 300 W over 10 s
    assert window.duration_s == pytest.approx(10.0)
    assert window.warnings == ()


def test_counter_reads_mj_as_j():
    clock = FakeClock(1000.0)
    gpu = FakeGpu(UUID_A, PowerTrace.constant(0.0), energy_origin_mj=123_456_789)
    meter = NvmlGpuMeter(FakeNvmlBackend([gpu], clock), 0, 0, clock=clock)
    assert meter.read().energy_j == pytest.approx(123_456.789)


def test_window_shorter_than_the_counter_period_is_null_with_reason_not_0_j():
    """The fake counter refreshes every 100 ms like NVML's: a 50 ms window may read 0 J,
    which would be a measurement of nothing; it is null with the reason instead."""
    clock = FakeClock(1000.0)
    meter = NvmlGpuMeter(
        FakeNvmlBackend([FakeGpu(UUID_A, PowerTrace.constant(200.0))], clock), 0, 0, clock=clock
    )
    clock.advance(0.01)
    meter_set = MeterSet([meter])
    meter_set.begin_window("tiny")
    clock.advance(0.05)
    (component,) = meter_set.end_window("tiny").components
    assert component.joules is None
    assert "shorter than gpu:0's 0.100 s counter update period" in str(component.missing_reason)


def test_short_window_can_be_approximated_and_says_so():
    """Zeus's approx_instant_energy: instant power x duration, labelled as such."""
    clock = FakeClock(1000.0)
    gpu = FakeGpu(UUID_A, PowerTrace.constant(200.0))
    meter = NvmlGpuMeter(
        FakeNvmlBackend([gpu], clock), 0, 0, clock=clock, approximate_short_windows=True
    )
    clock.advance(0.01)
    meter_set = MeterSet([meter])
    meter_set.begin_window("tiny")
    clock.advance(0.05)
    window = meter_set.end_window("tiny")
    (component,) = window.components
    assert component.joules == pytest.approx(10.0)  # 200 W x 0.05 s
    assert component.method is EnergyMethod.INTEGRATED
    assert any("approximated as instant power x duration" in w for w in window.warnings)


@pytest.mark.parametrize(
    ("seconds", "null", "warns"),
    [
        (0.05, True, False),
        (0.5, False, True),
        (0.999, False, True),
        (1.0, False, False),
        (30.0, False, False),
    ],
)
def test_short_window_warning(seconds, null, warns):
    clock = FakeClock(1000.0)
    meters = fake_gpu_meters([FakeGpu(UUID_A, PowerTrace.constant(300.0))], clock)
    meters.begin_window("w")
    clock.advance(seconds)
    window = meters.end_window("w")
    assert (window.component("gpu:0").joules is None) is null
    assert any("update period" in w for w in window.warnings) is warns


@pytest.mark.parametrize("period_s", [0.02, 0.1])
def test_counter_update_period_is_measured_at_start_up_and_recorded(period_s):
    """Before: 0.1 s was assumed for every GPU; now it is measured (once per model)."""
    clock = FakeClock(1000.0)
    gpus = [
        FakeGpu(u, PowerTrace.constant(70.0), counter_period_s=period_s) for u in (UUID_A, UUID_B)
    ]
    backend = FakeNvmlBackend(gpus, clock, call_latency_s=50e-6)  # each NVML call takes 50 us
    meters, _, _ = open_nvml_meters({}, backend=backend, clock=clock, probe_s=0.35)
    first, second = meters
    assert isinstance(first, NvmlGpuMeter) and isinstance(second, NvmlGpuMeter)
    assert first.update_period_s == pytest.approx(period_s, abs=2e-4)
    assert "measured at start-up" in first.describe()["update_period"]
    assert second.period is first.period  # same model: probed once
    # The short-window rule follows the measured period.
    first_set = MeterSet([first])
    first_set.begin_window("w")
    clock.advance(5 * period_s)
    assert first_set.end_window("w").components[0].joules is not None


def test_a_counter_that_never_changes_keeps_the_nominal_period_with_a_note():
    clock = FakeClock(1000.0)
    gpu = FakeGpu(UUID_A, PowerTrace.constant(0.0))
    meter = NvmlGpuMeter(
        FakeNvmlBackend([gpu], clock, call_latency_s=1e-4), 0, 0, clock=clock, probe_s=0.3
    )
    assert meter.update_period_s == 0.1
    assert any("not measured" in n for n in meter.notes)


def test_integrated_fallback_matches_a_known_trace():
    """Pre-Volta path: 10 Hz power polls integrated by trapezoids vs the exact integral."""
    clock = FakeClock(1000.0)
    knots = [(1000.0 + 0.37 * k, 150.0 + 250.0 * ((k * 7919) % 11) / 10) for k in range(60)]
    trace = PowerTrace(tuple(knots))
    gpu = FakeGpu(UUID_A, trace, energy_counter=False)
    meter = NvmlGpuMeter(FakeNvmlBackend([gpu], clock), 0, 0, clock=clock, poll_period_s=None)
    assert meter.method is EnergyMethod.INTEGRATED
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    for _ in range(200):  # 20 s at 10 Hz; reads drive the integration
        clock.advance(0.1)
        meter.read()
    window = meter_set.end_window("w")
    exact = trace.energy_j(1000.0, 1020.0)
    assert window.components[0].method is EnergyMethod.INTEGRATED
    assert window.components[0].joules == pytest.approx(exact, rel=0.01)
    assert window.totals[0].method is EnergyMethod.INTEGRATED


def test_integrated_fallback_polls_in_the_background():
    """Reading only at the window's ends would miss a pulse; the poller must catch it."""
    start = now_s()
    pulse = PowerTrace(((start + 0.1, 0.0), (start + 0.35, 400.0), (start + 0.6, 0.0)))
    gpu = FakeGpu(UUID_A, pulse, energy_counter=False)
    meter = NvmlGpuMeter(FakeNvmlBackend([gpu], now_s), 0, 0, poll_period_s=0.01)
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    time.sleep(0.8)
    window = meter_set.end_window("w")
    meter.close()
    assert window.components[0].joules == pytest.approx(100.0, rel=0.1)  # 0.5 x 400 W x 0.5 s


def _pollers() -> int:
    return sum(t.name == "joulelens-power-integrator" for t in threading.enumerate())


def test_integrated_poller_runs_only_while_a_window_is_open():
    """The set keeps the windows; the meter polls from the first open to the last close,
    and a window that failed to open on another meter leaves no poller behind."""
    gpus = [
        FakeGpu(UUID_A, PowerTrace.constant(100.0), energy_counter=False),
        FakeGpu(UUID_B, PowerTrace.constant(100.0)),
    ]
    meters = fake_gpu_meters(gpus, now_s, poll_period_s=0.01)
    before = _pollers()
    meters.begin_window("run")
    meters.begin_window("steady")
    assert _pollers() == before + 1
    meters.end_window("steady")
    assert _pollers() == before + 1  # "run" is still open
    meters.end_window("run")
    assert _pollers() == before
    gpus[1].broken = True
    with pytest.raises(MeterError):
        meters.begin_window("w")
    assert _pollers() == before
    meters.close()


def test_gpu_without_counter_or_power_is_null_with_reason():
    clock = FakeClock()
    gpus = [
        FakeGpu(UUID_A, PowerTrace.constant(100.0)),
        FakeGpu(UUID_B, PowerTrace.constant(100.0), energy_counter=False, power_sensor=False),
    ]
    meters = fake_gpu_meters(gpus, clock)
    assert isinstance(meters["gpu:1"], UnavailableMeter)
    meters.begin_window("w")
    clock.advance(5.0)
    window = meters.end_window("w")
    broken = window.component("gpu:1")
    assert broken.joules is None
    assert "neither an energy counter nor power" in str(broken.missing_reason)
    assert window.component("gpu:0").joules == pytest.approx(500.0)
    total = window.total(EnergyBoundary.GPU)
    assert total is not None and total.joules is None  # never a partial sum acting as the total
    assert "gpu:1" in str(total.missing_reason)


def test_per_gpu_then_sum_and_weakest_method():
    clock = FakeClock()
    gpus = [
        FakeGpu(UUID_A, PowerTrace.constant(300.0)),
        FakeGpu(UUID_B, PowerTrace.constant(200.0), energy_counter=False),
    ]
    meters = fake_gpu_meters(gpus, clock)
    meters.begin_window("w")
    for _ in range(20):
        clock.advance(0.1)
        meters["gpu:1"].read()
    window = meters.end_window("w")
    assert [c.joules for c in window.components] == pytest.approx([600.0, 400.0])
    total = window.total(EnergyBoundary.GPU)
    assert total is not None
    assert total.joules == pytest.approx(1000.0)
    assert total.method is EnergyMethod.INTEGRATED


def test_cuda_visible_devices_maps_meters_to_nvml_gpus():
    clock = FakeClock()
    gpus = [
        FakeGpu(UUID_A, PowerTrace.constant(100.0)),
        FakeGpu(UUID_B, PowerTrace.constant(200.0)),
        FakeGpu(UUID_C, PowerTrace.constant(300.0)),
    ]
    meters = fake_gpu_meters(gpus, clock, environ={"CUDA_VISIBLE_DEVICES": "GPU-cccc,0"})
    assert [m.name for m in meters] == ["gpu:0", "gpu:1"]
    assert [m.uuid for m in meters if isinstance(m, NvmlGpuMeter)] == [UUID_C, UUID_A]
    meters.begin_window("w")
    clock.advance(2.0)
    window = meters.end_window("w")
    assert [c.joules for c in window.components] == pytest.approx([600.0, 200.0])


def test_all_gpus_hidden_leaves_a_null_gpu_boundary():
    clock = FakeClock()
    meters = fake_gpu_meters(
        [FakeGpu(UUID_A, PowerTrace.constant(100.0))], clock, environ={"CUDA_VISIBLE_DEVICES": ""}
    )
    assert [m.name for m in meters] == ["gpu"]
    assert any("hides all 1 GPUs" in n for n in meters.notes)


def test_sensors_offered_are_probed_once():
    clock = FakeClock()
    gpu = FakeGpu(UUID_A, PowerTrace.constant(100.0), sm_clock_mhz=None, power_limit_w=None)
    meter = NvmlGpuMeter(FakeNvmlBackend([gpu], clock), 0, 0, clock=clock)
    assert meter.sensor_series == (
        "power_watts:gpu:0",
        "temperature_c:gpu:0",
        "gpu_utilization_pct:gpu:0",
        "memory_used_bytes:gpu:0",
    )


def test_failure_mid_run_raises_meter_error():
    clock = FakeClock()
    gpu = FakeGpu(UUID_A, PowerTrace.constant(100.0))
    meters = fake_gpu_meters([gpu], clock)
    meters.begin_window("w")
    gpu.broken = True
    with pytest.raises(MeterError, match="lost"):
        meters.end_window("w")


def test_fake_backend_is_closed_only_by_its_owner():
    clock = FakeClock()
    backend = FakeNvmlBackend([FakeGpu(UUID_A, PowerTrace.constant(1.0))], clock)
    meters, notes, used = open_nvml_meters({}, backend=backend, clock=clock)
    assert used is backend and notes == [] and len(meters) == 1
    assert backend.closed is False


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return False
    pynvml.nvmlShutdown()
    return True


def test_pynvml_errors_become_meter_errors():
    if _nvml_works():
        pytest.skip("NVML works here; the failure path needs a machine without it")
    with pytest.raises(MeterError, match="NVML failed to initialise") as info:
        PynvmlBackend()
    import pynvml

    assert isinstance(info.value.__cause__, pynvml.NVMLError)


@pytest.mark.gpu
def test_real_gpu_counter_advances():
    if not _nvml_works():
        pytest.skip("no NVIDIA GPU (pynvml.nvmlInit() failed)")
    meters, notes, backend = open_nvml_meters({})
    try:
        gpu = meters[0]
        assert isinstance(gpu, NvmlGpuMeter), notes
        gpu_set = MeterSet([gpu])
        gpu_set.begin_window("w")
        time.sleep(1.5)
        window = gpu_set.end_window("w")
        joules = window.components[0].joules
        assert joules is not None and joules > 0  # an idle GPU still draws tens of watts
        assert "power_watts:gpu:0" in gpu.sensor_series
    finally:
        if backend is not None:
            backend.close()
