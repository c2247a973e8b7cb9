"""bench/gpu_counter_check.py: the no-GPU exit here, and its comparison logic on fake GPUs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from joulelens.measure.clock import now_s
from joulelens.meters.fake import FakeGpu, FakeNvmlBackend, PowerTrace
from joulelens.meters.meterset import MeterSet
from joulelens.meters.nvml import NvmlGpuMeter

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_counter_check.py"


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_counter_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_skips_cleanly():
    if _nvml_works():
        pytest.skip("a GPU is present; the skip path is for machines without one")
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.startswith("SKIP: no NVIDIA GPU readable")
    assert out.stderr == ""  # no traceback


def test_rejects_windows_shorter_than_12_s():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--duration-s", "5"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "at least 12" in out.stderr


class _OverCountingBackend(FakeNvmlBackend):
    def energy_mj(self, index: int) -> int:
        return round(super().energy_mj(index) * 1.2)


def _fake_meters(backend_type: type[FakeNvmlBackend]) -> MeterSet:
    start = now_s()
    step = PowerTrace(
        ((start + 0.2, 60.0), (start + 0.25, 450.0), (start + 1.0, 450.0), (start + 1.05, 60.0))
    )
    backend = backend_type([FakeGpu("GPU-a", step, counter_period_s=0.01)], now_s)
    return MeterSet([NvmlGpuMeter(backend, 0, 0)])


def _nap() -> str:
    time.sleep(1.0)
    return "a nap"


@pytest.mark.parametrize(
    ("backend_type", "agrees"), [(FakeNvmlBackend, True), (_OverCountingBackend, False)]
)
def test_comparison_verdict(script, capsys, backend_type, agrees):
    ok = script.run_check(
        _fake_meters(backend_type),
        _nap,
        period_s=0.02,
        idle_before_s=0.1,
        idle_after_s=0.3,
    )
    printed = capsys.readouterr().out
    assert ok is agrees
    assert "gpu:0" in printed and ("OK:" in printed) is agrees
