"""bench/gpu_validate.py (issue 18): it skips cleanly here, its checks judge synthetic series
right, and its phases run end to end on the NVML stand-in (time scaled down, torch faked at
the CUDA boundary, the load switching a fake GPU's power), so the GPU run is one call."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from joulelens.core.clock import now_s
from joulelens.meters.fake import FakeGpu, FakeNvmlBackend

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPT = BENCH / "gpu_validate.py"
sys.path.insert(0, str(BENCH))

import gpu_validate_lib as lib  # noqa: E402


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return False
    pynvml.nvmlShutdown()
    return True


def test_without_a_gpu_it_skips_cleanly(tmp_path: Path):
    if _nvml_works():
        pytest.skip("a GPU is present; the skip path is for machines without one")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert out.stdout.startswith("SKIP: no NVIDIA GPU readable")
    assert "nothing to validate on this machine" in out.stdout
    assert out.stderr == ""


# -- checks on synthetic figures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("idle", "statuses"),
    [
        (
            {"counter": 75.0, "instant": 74.0, "average": 76.0, "power_usage": 75.5},
            ["pass", "pass"],
        ),
        ({"counter": 20.0, "instant": 20.5}, ["fail", "pass"]),  # below 30 W
        ({"counter": 400.0, "instant": 401.0}, ["fail", "pass"]),  # above half of 700 W
        ({"counter": 75.0, "instant": 95.0}, ["pass", "fail"]),  # sources disagree
        ({"counter": None, "instant": 75.0}, ["fail"]),
    ],
)
def test_idle_checks(idle, statuses):
    assert [c.status for c in lib.idle_checks(idle, 700.0)] == statuses


def test_limit_and_load_checks():
    assert lib.limit_check(700.0, (200.0, 700.0), 700.0).status == "pass"
    assert lib.limit_check(50.0, None, None).status == "fail"
    assert lib.limit_check(None, None, None).status == "fail"
    assert lib.limit_check(900.0, (200.0, 700.0), None).status == "fail"
    assert lib.load_check(600.0, 700.0).status == "pass"
    assert lib.load_check(200.0, 700.0).status == "fail"  # < 0.5 x limit: not loaded
    assert lib.load_check(760.0, 700.0).status == "fail"  # > 1.05 x limit


@pytest.mark.parametrize(("integrated", "status"), [(1020.0, "pass"), (1060.0, "fail")])
def test_agreement_check(integrated, status):
    result = lib.agreement_check("a", 1000.0, integrated)
    assert result.status == status and result.value == pytest.approx(integrated / 10 - 100)


def test_step_lags_of_an_instant_and_a_1_s_average_reading():
    t = np.arange(0.0, 13.0, 0.01)
    ons, offs = [1.0, 5.0, 9.0], [3.0, 7.0, 11.0]
    loaded = np.zeros_like(t, dtype=bool)
    for a, b in zip(ons, offs, strict=True):
        loaded |= (t >= a) & (t < b)
    instant = np.where(loaded, 600.0, 80.0)
    window = 100  # samples in 1 s
    average = np.convolve(instant, np.ones(window) / window)[: len(t)]  # trailing 1 s mean
    fast = lib.step_lags(t, instant, ons, offs)
    slow = lib.step_lags(t, average, ons, offs)
    assert fast["rise_lag_s"] == pytest.approx(0.0, abs=0.011)
    assert slow["rise_lag_s"] == pytest.approx(0.5, abs=0.02)
    assert slow["fall_lag_s"] == pytest.approx(0.5, abs=0.02)


def test_polled_counter_power_and_means():
    polled = lib.Polled()
    for k in range(101):
        t = k * 0.02
        polled.add(t, {"counter_j": 300.0 * t, "instant": 300.0 if k % 10 else None})
    t, w = polled.counter_power(0.1)
    assert np.allclose(w, 300.0)
    assert polled.counter_mean_w(0.0, 2.0) == pytest.approx(300.0)
    assert polled.mean_w("instant", 0.0, 2.0) == 300.0  # failed reads (None) are skipped


def test_engine_plan_fits_the_time_left():
    plans = lib.plan_engine_runs(210.0, (1, 8, 64), step_s=0.03, overhead_s=30.0)
    assert [p.max_num_seqs for p in plans] == [1, 8, 64]
    assert all(p.est_s <= 70.0 + 1e-9 for p in plans)
    assert all(p.num_requests >= 2 * p.max_num_seqs for p in plans[1:])
    slow = lib.plan_engine_runs(90.0, (64,), step_s=0.2, overhead_s=30.0)[0]
    assert slow.max_tokens < 192  # fewer tokens rather than a run without a steady state
    assert slow.num_requests >= 128


def _record(b: int, jpt: float | None, **over: object) -> dict:
    record = {
        "status": "completed",
        "max_num_seqs": b,
        "energy_per_token_joules": jpt,
        "energy_boundary": "gpu",
        "energy_method": "counter",
        "avg_power_watts": 400.0,
        "median_itl_ms": 20.0,
        "avg_batch_size": float(b),
        "config": {"gpus": {"uuids": ["GPU-a"]}},
    }
    record.update(over)
    return record


def test_engine_checks():
    good = [_record(1, 3.0), _record(8, 0.6), _record(64, 0.15)]
    checks = lib.engine_checks(good, "GPU-a", {1: 0, 8: 0, 64: 1 << 20})
    assert {c.status for c in checks} == {"pass"}
    flat = [_record(1, 3.0), _record(8, 3.1)]
    assert lib.engine_checks(flat, "GPU-a", {})[-1].status == "fail"
    cpu = [_record(1, 3.0, energy_boundary="cpu"), _record(8, 1.0)]
    assert lib.engine_checks(cpu, "GPU-a", {})[0].status == "fail"
    two = [_record(1, 3.0, config={"gpus": {"uuids": ["GPU-a", "GPU-b"]}}), _record(8, 1.0)]
    assert lib.engine_checks(two, "GPU-a", {})[0].status == "fail"
    leak = lib.engine_checks([_record(1, 3.0), _record(8, 1.0)], "GPU-a", {1: 2 << 30})
    assert any(c.name == "engine B=1 memory released" and c.status == "fail" for c in leak)


def test_mlenergy_ratios_use_the_nearest_public_batch():
    reference = json.loads(
        (BENCH / "data" / "mlenergy_v3_h100_llama31_8b_lm_arena_chat.json").read_text()
    )
    rows = lib.mlenergy_ratios([_record(1, 0.9), _record(64, 0.2)], reference)
    assert [r["reference_max_num_seqs"] for r in rows] == [8, 64]
    public_64 = next(r for r in reference["rows"] if r["max_num_seqs"] == 64)
    assert rows[1]["ratio"]["energy_per_token_joules"] == pytest.approx(
        0.2 / public_64["energy_per_token_joules"]
    )


def test_bundled_reference_rows_match_the_shared_data():
    sys.path.insert(0, str(BENCH / "data"))
    import make_mlenergy_reference as make

    if not make.SHARED.is_dir():
        pytest.skip("../shared is not here")
    bundled = json.loads(make.OUT.read_text())
    assert bundled == json.loads(json.dumps(make.reference_rows()))


def test_exit_code_and_budget():
    assert lib.exit_code([lib.Check("a", "pass", ""), lib.Check("b", "warn", "")]) == 0
    assert lib.exit_code([lib.Check("a", "fail", "")]) == 1
    ticks = iter([0.0, 100.0, 100.0])
    budget = lib.Budget(120.0, clock=lambda: next(ticks))
    assert budget.allows(20.0) and not budget.allows(21.0)


# -- the phases on the NVML stand-in ----------------------------------------------------------


class SwitchTrace:
    """Power that steps between idle and loaded when a fake load switches it."""

    def __init__(self, idle_w: float, loaded_w: float) -> None:
        self.idle_w, self.loaded_w = idle_w, loaded_w
        self.spans: list[list[float]] = []  # [on, off]; off = inf while on
        self.lock = threading.Lock()

    def power_w(self, t: float) -> float:
        with self.lock:
            on = any(a <= t < b for a, b in self.spans)
        return self.loaded_w if on else self.idle_w

    def energy_j(self, a: float, b: float) -> float:
        with self.lock:
            overlap = sum(max(0.0, min(b, off) - max(a, on)) for on, off in self.spans)
        return self.idle_w * (b - a) + (self.loaded_w - self.idle_w) * overlap


class SwitchLoad:
    def __init__(self, trace: SwitchTrace) -> None:
        self.trace = trace

    def on(self) -> float:
        t = now_s()
        with self.trace.lock:
            if not self.trace.spans or self.trace.spans[-1][1] != float("inf"):
                self.trace.spans.append([t, float("inf")])
        return t

    def off(self) -> float:
        t = now_s()
        with self.trace.lock:
            if self.trace.spans and self.trace.spans[-1][1] == float("inf"):
                self.trace.spans[-1][1] = t
        return t

    def close(self) -> None:
        self.off()


def fake_torch(uuids: list[str]) -> SimpleNamespace:
    bare = [u.removeprefix("GPU-") for u in uuids]
    cuda = SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: len(bare),
        get_device_name=lambda k: "NVIDIA H200",
        get_device_properties=lambda k: SimpleNamespace(uuid=bare[k]),
    )
    return SimpleNamespace(
        __version__="2.11.0+cu130",
        version=SimpleNamespace(cuda="13.0"),
        cuda=cuda,
        device=lambda kind, index=None: f"{kind}:{index}",
    )


def test_phases_run_end_to_end_on_the_stand_in(tmp_path: Path):
    import gpu_validate

    uuids = ["GPU-11111111-aaaa-bbbb-cccc-000000000000", "GPU-22222222-aaaa-bbbb-cccc-000000000000"]
    busy = SwitchTrace(75.0, 600.0)
    gpus = [
        FakeGpu(uuids[0], busy, name="NVIDIA H200", counter_period_s=0.01, average_window_s=0.1),
        FakeGpu(uuids[1], SwitchTrace(72.0, 72.0), name="NVIDIA H200", counter_period_s=0.01),
    ]
    backend = FakeNvmlBackend(gpus, now_s)
    args = argparse.Namespace(
        out=str(tmp_path), budget_s=400.0, engine_budget_s=0.0, matrix=64, skip_engine=True
    )
    run = gpu_validate.Validation(
        args, backend, make_load=lambda m: SwitchLoad(busy), time_scale=0.1, torch=fake_torch(uuids)
    )
    run.probe_code = "print('[]')"  # CUDA_VISIBLE_DEVICES="" hides every GPU: torch sees none
    run.phase("preflight", run.preflight)
    for name in ("periods", "ranges", "mapping", "agreement", "sampler"):
        run.phase(name, getattr(run, name))
    run.save()
    from gpu_validate_plot import write_png

    write_png(run.series, tmp_path / "gpu_validate.png")
    assert (tmp_path / "gpu_validate.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "gpu_validate.json").read_text())
    status = {c["name"]: c["status"] for c in saved["checks"]}
    assert not [n for n, s in status.items() if n.endswith("phase")], status  # none crashed
    for name in (
        "torch can use the GPUs NVML sees",
        "counter update period measured",
        "idle power in range",
        "idle sources agree",
        "power limit plausible",
        "torch UUID == meter UUID for every cuda:k",
        "a load on cuda:0 raises only its GPU's power",
        "CUDA_VISIBLE_DEVICES='' resolves like CUDA",
        "counter vs integrated power (>= 10 s load)",
        "load power in range",
        "windows shorter than the counter period are null",
    ):
        assert status[name] == "pass", (name, saved["checks"])
    phases = saved["phases"]
    assert phases["preflight"]["raw_return_codes"]["NVML_FI_DEV_POWER_INSTANT/gpu"] == 0
    assert phases["periods"]["counter_j/idle"]["median_ms"] == pytest.approx(10.0, abs=3.0)
    assert phases["agreement"]["step"]["lags"]["instant"]["rise_lag_s"] is not None
    assert {r["size_s"] for r in phases["agreement"]["windows"]["rows"]} == {0.05, 0.2, 0.5, 1.0}
    assert "energy" in phases["sampler"]["nvml_call_latency"]
    assert backend.nvml.initialised == 1  # the caller closes NVML


@pytest.mark.engines
@pytest.mark.slow
def test_engine_phase_runs_a_sweep_on_this_cpu(tmp_path: Path):
    """The engine phase's code path with a tiny model on the CPU (the GPU run uses 8B)."""
    import torch

    from engine_sweep import run_engine_sweep

    figures = run_engine_sweep(
        torch,
        torch.device("cpu"),
        tmp_path / "store",
        120.0,
        (1, 4),
        model="arch:tiny-llama",
        base_extra={"idle_baseline_s": 0.5, "min_steady_state_s": 0.5, "cpu_threads": 1},
        memory_of=lambda: (0, 0),
    )
    records = figures["records"]
    assert [r["max_num_seqs"] for r in records] == [1, 4]
    assert all(r["status"] == "completed" for r in records), records
    assert figures["memory_allocated_after"] == {1: 0, 4: 0}
    assert all("cli" in p and p["num_requests"] >= p["max_num_seqs"] for p in figures["plans"])


@pytest.mark.engines
def test_torch_load_switches_on_and_off_on_this_cpu():
    """The load thread of the GPU phases, on the CPU: edges come back in order, it stops."""
    import torch

    from gpu_validate import TorchLoad

    load = TorchLoad(torch, torch.device("cpu"), 64)
    on = load.on()
    threading.Event().wait(0.05)
    off = load.off()
    load.close()
    assert on < off
    assert not load._thread.is_alive()
