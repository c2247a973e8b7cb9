"""bench/gpu_counter_check.py: the no-GPU exit here, its failure when NVML sees GPUs torch
cannot use (issue 17, defect 2), and its mapping and comparison logic on fake GPUs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from joulelens.core.clock import now_s
from joulelens.meters.fake import FakeGpu, FakeNvml, FakeNvmlBackend, PowerTrace
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


def test_nvml_seeing_gpus_torch_cannot_use_is_a_failure(script, capsys, monkeypatch):
    """Before: a CPU build of torch on a GPU machine printed SKIP and exited 0."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        pytest.skip("torch can use CUDA here")
    node = [FakeGpu(f"GPU-{k}", PowerTrace.constant(70.0)) for k in range(8)]
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(node, now_s))
    monkeypatch.setattr(sys, "argv", ["gpu_counter_check.py"])
    with pytest.raises(SystemExit) as info:
        script.main()
    assert info.value.code == 1
    out = capsys.readouterr().out
    why = "torch cannot use CUDA" if torch is not None else "torch is not installed"
    assert out.startswith(f"FAIL: NVML sees 8 NVIDIA GPUs but {why}")


def test_torch_problem_wording(script):
    assert script.torch_problem(0, None) is None
    assert "torch is not installed" in script.torch_problem(2, None)


def test_uuid_mapping_catches_a_swapped_order(script):
    a, b = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6", "GPU-5f0c1b2a-1111-2222-3333-444455556666"
    assert script.uuid_mapping([a[4:], b[4:]], [a, b]) == []
    swapped = script.uuid_mapping([b[4:], a[4:]], [a, b])
    assert len(swapped) == 2 and "cuda:0 is" in swapped[0]
    assert "torch sees 1 GPUs" in script.uuid_mapping([a], [a, b])[0]


@pytest.mark.parametrize(
    ("loaded_w", "problems"),
    [
        ({"gpu:0": 450.0, "gpu:1": 75.0, "gpu:2": 71.0}, 0),  # only cuda:0's GPU rose
        ({"gpu:0": 72.0, "gpu:1": 450.0, "gpu:2": 71.0}, 2),  # the load ran elsewhere
        ({"gpu:0": 450.0, "gpu:1": 300.0, "gpu:2": 71.0}, 1),  # a neighbour rose too
    ],
)
def test_load_mapping_verdict(script, loaded_w, problems):
    idle = {"gpu:0": 70.0, "gpu:1": 72.0, "gpu:2": 69.0}
    assert len(script.load_mapping(idle, loaded_w, "gpu:0")) == problems


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
