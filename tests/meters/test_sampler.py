"""Timeline sampler: schedule, derived power, columnar output, failure, and cutting windows."""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

import pytest

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters import (
    Timeline,
    TimelineSampler,
    detect_meters,
    energy_between_j,
    integrate_power_j,
)
from joulelens.meters.fake import (
    FakeClock,
    FakeGpu,
    FakeNvmlBackend,
    FakeRaplTree,
    FakeRaplZone,
    PowerTrace,
    fake_gpu_meters,
)
from joulelens.meters.sampler import next_tick
from joulelens.records.schema import TimelineSample


@pytest.mark.parametrize(
    ("now", "done", "expected"),
    [
        pytest.param(0.001, 1, 1, id="on-time"),
        pytest.param(0.099, 1, 1, id="late-in-period"),
        pytest.param(0.1005, 1, 2, id="missed-one"),
        pytest.param(0.55, 1, 6, id="stalled-skips-to-next-future"),
        pytest.param(0.05, 3, 3, id="never-goes-back"),
    ],
)
def test_next_tick_keeps_a_fixed_grid(now, done, expected):
    assert next_tick(0.0, 0.1, now, done) == expected


def test_period_is_kept_on_the_real_clock():
    """50 ms period for 1.5 s: mean interval and grid alignment within a few ms."""
    gpu = FakeGpu("GPU-a", PowerTrace.constant(250.0))
    meters = fake_gpu_meters([gpu], now_s)
    sampler = TimelineSampler(meters, period_s=0.05)
    with sampler:
        time.sleep(1.5)
    times, values = sampler.timeline.series("power_watts:gpu:0")
    inner = times[1:-1]  # the first and last samples come from start() and stop()
    intervals = [b - a for a, b in itertools.pairwise(inner)]
    assert statistics.mean(intervals) == pytest.approx(0.05, rel=0.1)
    assert sampler.started_s is not None
    # No drift: every threaded sample sits near its slot on the start + k * period grid.
    offsets = [((t - sampler.started_s) / 0.05) % 1.0 for t in inner]
    late = [o for o in offsets if 0.4 < o < 0.95]
    assert len(late) <= len(offsets) // 10
    assert set(values) == {250.0}
    assert sampler.ticks == len(times)


def test_gpu_series_and_columnar_output():
    clock = FakeClock(100.0)
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(300.0))], clock)
    sampler = TimelineSampler(meters, clock=clock, state_period_s=None)
    for _ in range(5):
        sampler.sample_once()
        clock.advance(0.1)
    timeline = sampler.timeline
    assert timeline.series_names == [
        "energy_joules:gpu:0",
        "gpu_utilization_pct:gpu:0",
        "memory_used_bytes:gpu:0",
        "power_limit_watts:gpu:0",
        "power_watts:gpu:0",
        "sm_clock_mhz:gpu:0",
        "temperature_c:gpu:0",
    ]
    _times, energy = timeline.series("energy_joules:gpu:0")
    assert list(energy) == pytest.approx([0.0, 30.0, 60.0, 90.0, 120.0])
    assert timeline.series("power_limit_watts:gpu:0")[1][0] == 700.0
    rows = timeline.to_samples(origin_s=100.0)
    assert len(rows) == len(timeline) == 35
    assert isinstance(rows[0], TimelineSample)
    assert rows[0].t_s == pytest.approx(0.0)
    columns = timeline.to_columns(origin_s=100.0)
    assert len(columns["t_s"]) == len(columns["series"]) == len(columns["value"]) == 35


def test_device_state_is_read_less_often_than_power():
    clock = FakeClock(100.0)
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(300.0))], clock)
    sampler = TimelineSampler(meters, clock=clock, period_s=0.1, state_period_s=0.5)
    for _ in range(10):
        sampler.sample_once()
        clock.advance(0.1)
    power_times, _ = sampler.timeline.series("power_watts:gpu:0")
    temp_times, _ = sampler.timeline.series("temperature_c:gpu:0")
    assert len(power_times) == 10
    assert list(temp_times) == pytest.approx([100.0, 100.5])


def test_power_derived_from_rapl_counter(tmp_path: Path):
    tree = FakeRaplTree(tmp_path, [FakeRaplZone("intel-rapl:0", "package-0", 2**32 - 1000)])
    clock = FakeClock()
    meters = detect_meters(gpus=False, cpu_estimate="off", rapl_root=tmp_path, clock=clock)
    sampler = TimelineSampler(meters, clock=clock)
    sampler.sample_once()
    for joules in (5.0, 12.0):  # the first step wraps the 32-bit counter
        clock.advance(0.1)
        tree.add_energy_j("intel-rapl:0", joules)
        sampler.sample_once()
    _, power = sampler.timeline.series("power_watts:cpu-package:0")
    assert list(power) == pytest.approx([50.0, 120.0])
    assert "energy_joules:dram" not in sampler.timeline  # null sources are not sampled


def test_meter_failure_stops_sampling_and_is_raised():
    gpu = FakeGpu("GPU-a", PowerTrace.constant(100.0))
    meters = fake_gpu_meters([gpu], now_s)
    sampler = TimelineSampler(meters, period_s=0.01)
    sampler.start()
    time.sleep(0.05)
    gpu.broken = True
    deadline = time.monotonic() + 2.0
    while sampler.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not sampler.running
    with pytest.raises(MeterError, match="sampling failed"):
        sampler.stop()


def test_sampler_reports_its_own_cpu_time():
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(1.0))], now_s)
    with TimelineSampler(meters, period_s=0.02) as sampler:
        time.sleep(0.2)
    assert sampler.thread_cpu_s is not None and 0.0 <= sampler.thread_cpu_s < 0.2


def test_window_cut_afterwards_from_the_energy_series():
    """The steady-state window is known only after the run: cut it from the timeline."""
    clock = FakeClock(0.0)
    trace = PowerTrace(((0.0, 100.0), (10.0, 100.0), (10.001, 400.0)))
    backend = FakeNvmlBackend([FakeGpu("GPU-a", trace, counter_period_s=0.1)], clock)
    meters = detect_meters(
        rapl=False, cpu_estimate="off", gpu_backend=backend, environ={}, clock=clock
    )
    sampler = TimelineSampler(meters, clock=clock)
    for _ in range(201):
        sampler.sample_once()
        clock.advance(0.1)
    times, energy = sampler.timeline.series("energy_joules:gpu:0")
    exact = trace.energy_j(3.05, 17.25)
    assert energy_between_j(times, energy, 3.05, 17.25) == pytest.approx(exact, rel=0.005)
    ptimes, power = sampler.timeline.series("power_watts:gpu:0")
    assert integrate_power_j(ptimes, power, 3.05, 17.25) == pytest.approx(exact, rel=0.005)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0.0, 2.0, 20.0), (0.5, 1.5, 10.0), (0.25, 0.25, 0.0), (1.0, 2.0, 10.0)],
)
def test_interpolated_helpers_on_exact_series(start, end, expected):
    times, energy = [0.0, 1.0, 2.0], [0.0, 10.0, 20.0]
    assert energy_between_j(times, energy, start, end) == pytest.approx(expected)
    assert integrate_power_j(times, [10.0, 10.0, 10.0], start, end) == pytest.approx(expected)


def test_helpers_refuse_windows_the_series_does_not_cover():
    with pytest.raises(MeterError, match="covers"):
        energy_between_j([1.0, 2.0], [0.0, 1.0], 0.5, 1.5)
    with pytest.raises(MeterError, match="nothing"):
        integrate_power_j([], [], 0.0, 1.0)


def test_timeline_append_and_copy():
    timeline = Timeline()
    timeline.append("power_watts:x", 1.0, 5.0)
    times, _values = timeline.series("power_watts:x")
    times.append(99.0)
    assert len(timeline) == 1  # series() hands out copies
    with pytest.raises(KeyError):
        timeline.series("absent")
