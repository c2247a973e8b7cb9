"""The fakes other parts' tests rely on must themselves be right."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulelens.meters.fake import (
    FakeClock,
    FakeGpu,
    FakeRaplTree,
    FakeRaplZone,
    PowerTrace,
    fake_gpu_meters,
)


@pytest.mark.parametrize(
    ("trace", "start", "end", "joules"),
    [
        (PowerTrace.constant(300.0), 0.0, 10.0, 3000.0),
        (PowerTrace(((0.0, 100.0), (10.0, 300.0))), 0.0, 10.0, 2000.0),
        (PowerTrace(((0.0, 100.0), (10.0, 300.0))), -5.0, 15.0, 500.0 + 2000.0 + 1500.0),
        (PowerTrace(((0.0, 0.0), (1.0, 100.0), (2.0, 0.0))), 0.5, 1.5, 75.0),
    ],
)
def test_power_trace_energy_is_exact(trace, start, end, joules):
    assert trace.energy_j(start, end) == pytest.approx(joules)


def test_square_trace_averages_its_levels():
    trace = PowerTrace.square(100.0, 500.0, start_s=0.0, period_s=2.0, cycles=10)
    assert trace.power_w(0.5) == 500.0 and trace.power_w(1.5) == 100.0
    assert trace.energy_j(0.0, 20.0) == pytest.approx(300.0 * 20.0, rel=1e-3)


def test_power_trace_rejects_unordered_points():
    with pytest.raises(ValueError):
        PowerTrace(((1.0, 5.0), (0.0, 5.0)))


def test_fake_rapl_counter_wraps_like_hardware(tmp_path: Path):
    tree = FakeRaplTree(tmp_path, [FakeRaplZone("intel-rapl:0", "package-0", 990, 999)])
    tree.add_energy_j("intel-rapl:0", 20e-6)
    assert (tmp_path / "intel-rapl:0" / "energy_uj").read_text() == "10\n"


def test_counter_only_gpu_gets_power_derived_by_the_sampler():
    from joulelens.meters import TimelineSampler

    clock = FakeClock(0.0)
    gpu = FakeGpu("GPU-a", PowerTrace.constant(250.0), power_sensor=False)
    meters = fake_gpu_meters([gpu], clock)
    sampler = TimelineSampler(meters, clock=clock)
    for _ in range(3):
        sampler.sample_once()
        clock.advance(1.0)
    _, power = sampler.timeline.series("power_watts:gpu:0")
    assert list(power) == pytest.approx([250.0, 250.0])
