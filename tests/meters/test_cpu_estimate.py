"""The CPU-time estimate on this real machine (no fakes: psutil reads /proc)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from joulelens.errors import MeterError
from joulelens.meters import CpuTimeMeter, MeterSet
from joulelens.records.schema import EnergyBoundary, EnergyMethod


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.mark.parametrize("scope", ["system", "process"])
def test_busy_loop_gives_positive_estimated_energy(scope):
    meter = CpuTimeMeter(scope, watts_per_core=10.0)
    meter_set = MeterSet([meter])
    meter_set.begin_window("busy")
    _spin(0.3)
    window = meter_set.end_window("busy")
    (component,) = window.components
    assert component.method is EnergyMethod.ESTIMATED
    assert component.boundary is EnergyBoundary.CPU
    assert component.name == f"cpu-estimate:{scope}@10W-per-cpu"
    # 0.3 CPU-s of our own at 10 W; CPU time is counted in 10 ms ticks.
    assert component.joules is not None and component.joules >= 2.5
    if scope == "process":
        assert component.joules <= 4.5


def test_watts_per_core_scales_the_estimate():
    low, high = (
        CpuTimeMeter("process", watts_per_core=5.0),
        CpuTimeMeter("process", watts_per_core=20.0),
    )
    low_set = MeterSet([low])
    low_set.begin_window("w")
    high_set = MeterSet([high])
    high_set.begin_window("w")
    _spin(0.3)
    low_j = low_set.end_window("w").components[0].joules
    high_j = high_set.end_window("w").components[0].joules
    assert low_j is not None and high_j is not None
    assert high_j / low_j == pytest.approx(4.0, rel=0.15)


def test_process_tree_counts_children():
    meter = CpuTimeMeter("process", watts_per_core=1.0, tree_refresh_s=0.0)
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    spin_child = (
        "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    )
    child = subprocess.Popen([sys.executable, "-c", spin_child])
    while child.poll() is None:  # a sampler's reads: a child's time is seen while it lives
        meter.read()
        time.sleep(0.02)
    joules = meter_set.end_window("w").components[0].joules
    assert joules is not None and joules >= 0.35  # most of the child's 0.5 CPU-s (1 W/cpu)


def test_rejects_nonsense():
    with pytest.raises(ValueError):
        CpuTimeMeter(watts_per_core=0.0)
    with pytest.raises(ValueError):
        CpuTimeMeter("node")
    with pytest.raises(MeterError):
        CpuTimeMeter("process", pid=2**22 + 12345)  # above Linux's pid_max


def test_children_between_tree_refreshes_are_missed():
    meter = CpuTimeMeter("process", watts_per_core=1.0, tree_refresh_s=3600.0)
    spin_child = (
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    )
    child = subprocess.Popen([sys.executable, "-c", spin_child])
    seen_early = meter.read().energy_j
    child.wait()
    assert seen_early is not None and meter.read().energy_j == pytest.approx(seen_early, abs=0.05)


def test_proc_stat_fast_path_agrees_with_psutil():
    meter = CpuTimeMeter("system")
    fast_s = meter.cpu_seconds()
    meter.close()  # drops the held /proc/stat: psutil from here on
    slow_s = meter.cpu_seconds()
    assert slow_s == pytest.approx(fast_s, abs=0.1)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux's per-process CPU-time clocks")
def test_process_scope_resolves_milliseconds_not_ticks():
    """An endpoint run's client used a few ms of CPU in a short window: in 10 ms ticks that
    read 0 J (a 0 J window), or 10 ms in one run and 0 in another."""
    meter = CpuTimeMeter("process", watts_per_core=1.0, tree_refresh_s=3600.0)
    for want_s in (0.002, 0.035):
        before = meter.read().energy_j
        start = time.process_time()
        _spin(want_s)
        spent_s = time.process_time() - start
        after = meter.read().energy_j
        assert before is not None and after is not None
        assert after - before == pytest.approx(spent_s, abs=0.001), (want_s, spent_s)
    assert meter.update_period_s < 0.001
