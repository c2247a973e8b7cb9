"""Idle baseline: watts per device and boundary, or null with why."""

from __future__ import annotations

import pytest

from joulelens.meters import measure_idle_power
from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.records.schema import EnergyBoundary


def test_idle_power_of_fake_gpus():
    clock = FakeClock()
    gpus = [
        FakeGpu("GPU-a", PowerTrace.constant(62.0)),
        FakeGpu("GPU-b", PowerTrace.constant(70.0)),
    ]
    meters = fake_gpu_meters(gpus, clock)
    idle = measure_idle_power(meters, 5.0, sleep=clock.sleep)
    assert idle.duration_s == pytest.approx(5.0)
    assert idle.by_device_w == pytest.approx({"gpu:0": 62.0, "gpu:1": 70.0})
    assert idle.watts(EnergyBoundary.GPU) == pytest.approx(132.0)
    assert idle.missing == {}
    assert idle.window is not None


def test_disabled_idle_baseline_is_null_with_reason():
    clock = FakeClock()
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(62.0))], clock)
    idle = measure_idle_power(meters, enabled=False, sleep=clock.sleep)
    assert clock() == 1000.0  # did not wait
    assert idle.watts(EnergyBoundary.GPU) is None
    assert idle.by_device_w == {"gpu:0": None}
    assert idle.missing == {
        "gpu:0": "idle baseline disabled by the caller",
        "gpu": "idle baseline disabled by the caller",
    }


def test_unreadable_devices_are_missing_not_zero():
    clock = FakeClock()
    gpus = [
        FakeGpu("GPU-a", PowerTrace.constant(62.0)),
        FakeGpu("GPU-b", PowerTrace.constant(1.0), energy_counter=False, power_sensor=False),
    ]
    idle = measure_idle_power(fake_gpu_meters(gpus, clock), 2.0, sleep=clock.sleep)
    assert idle.by_device_w["gpu:0"] == pytest.approx(62.0)
    assert idle.by_device_w["gpu:1"] is None
    assert idle.watts(EnergyBoundary.GPU) is None
    assert "neither an energy counter nor power" in idle.missing["gpu:1"]
    assert "gpu:1" in idle.missing["gpu"]
