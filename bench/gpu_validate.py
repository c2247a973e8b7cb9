"""Validate joulelens's measurement half on one real NVIDIA GPU, in one call (issue 18).

Phases, each budgeted (about 6 minutes in all, 8 at most; ``--budget-s``):

1. **preflight**: driver, CUDA and nvidia-ml-py versions; the raw NVML return codes of the
   energy counter, ``nvmlDeviceGetPowerUsage`` and the instant/average power fields; fails
   when NVML sees a GPU that torch cannot use;
2. **update periods** of the counter and the power readings, polled in a tight loop, idle
   and loaded;
3. **ranges**: idle power 30 W..half the limit; instant, averaged and counter-derived idle
   power within 10%; the enforced limit plausible; (load power 0.5x..1.05x the limit below);
4. **mapping**: torch's UUID of every ``cuda:k`` equals the meter's; a load on ``cuda:0``
   raises only its GPU's power; ``CUDA_VISIBLE_DEVICES`` as an index, a ``GPU-`` UUID prefix
   and empty, each in a subprocess, against joulelens's resolution;
5. **agreement**: >= 10 s of bf16 matmuls: counter energy against the integrated power
   timeline (within 5%); a 2 s on / 2 s off step for each power source's lag; windows of
   0.05, 0.2, 0.5 and 1 s against power x duration;
6. **sampler** at 50 Hz for 10 s with windows opening and closing; NVML call latency;
7. **engine**: the sweep ``joulelens sweep --engine transformers --model arch:llama-3.1-8b
   --task lm-arena-chat`` at max_num_seqs 1, 8 and 64 (requests sized to the time left),
   run through the same sweep code in this process so memory after each engine closes can
   be read; beside the public ML.ENERGY H100 rows (vLLM) at the nearest batch, as ratios.

Writes ``gpu_validate.json`` (every figure and check, rewritten after each phase) and
``gpu_validate.png`` (timelines) to ``--out`` (default ``$OUT``, else ``./gpu-validate-out``).
Exit status: 0 all checks pass (or no NVIDIA GPU here: a SKIP line); 1 a check failed;
3 no failure but a phase was not run for lack of time; 2 bad arguments.

    python bench/gpu_validate.py [--out DIR] [--budget-s 450] [--skip-engine]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_validate_lib as lib
from joulelens.engines.runtime import synchronize
from joulelens.errors import MeterError
from joulelens.meters import PynvmlBackend
from joulelens.meters.select import normalise_uuid

REFERENCE = Path(__file__).with_name("data") / "mlenergy_v3_h100_llama31_8b_lm_arena_chat.json"
ENGINE_BATCHES = (1, 8, 64)
# Seconds each phase may take at most (checked before it starts).
PHASE_NEEDS_S = {
    "preflight": 20,
    "periods": 15,
    "ranges": 10,
    "mapping": 45,
    "agreement": 45,
    "sampler": 20,
    "engine": 120,
}


class TorchLoad:
    """bf16 matmuls on one device from a background thread, switched on and off."""

    def __init__(self, torch: Any, device: Any, matrix: int) -> None:
        self.torch, self.device = torch, device
        self.a = torch.randn(matrix, matrix, device=device, dtype=torch.bfloat16)
        self.b = torch.randn(matrix, matrix, device=device, dtype=torch.bfloat16)
        self._on = threading.Event()
        self._quit = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="gpu-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._quit.is_set():
            if not self._on.wait(0.05):
                continue
            self._idle.clear()
            while self._on.is_set():
                for _ in range(8):
                    self.torch.matmul(self.a, self.b)
                synchronize(self.device)  # keeps the launch queue short: edges are real
            self._idle.set()

    def on(self) -> float:
        self._on.set()
        return time.monotonic()

    def off(self) -> float:
        self._on.clear()
        self._idle.wait()
        return time.monotonic()

    def close(self) -> None:
        self.off()
        self._quit.set()
        self._thread.join()


class Poller:
    """Polls every raw NVML reading of one GPU from a thread into a :class:`lib.Polled`."""

    def __init__(self, raw: lib.RawNvml, period_s: float) -> None:
        self.readers = raw.readers()
        self.period_s = period_s
        self.polled = lib.Polled()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nvml-poller", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            row = {name: read() for name, read in self.readers.items()}
            self.polled.add(time.monotonic(), row)
            self._stop.wait(self.period_s)

    def __enter__(self) -> lib.Polled:
        self._thread.start()
        return self.polled

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Validation:
    def __init__(
        self,
        args: argparse.Namespace,
        backend: PynvmlBackend,
        *,
        make_load: Callable[[int], Any] | None = None,
        time_scale: float = 1.0,
        torch: Any = None,
    ) -> None:
        """``torch``, ``make_load(matrix)`` and ``time_scale`` (every wait multiplied) let the
        phases run on the NVML stand-in in tests; on a GPU: real torch and :class:`TorchLoad`."""
        self.args = args
        self._make_load = make_load
        self.time_scale = time_scale
        self.probe_code = (
            "import json, torch; print(json.dumps(['GPU-' + str(torch.cuda.get_device_"
            "properties(k).uuid) for k in range(torch.cuda.device_count())]))"
        )
        self.backend = backend
        self.nvml = backend.nvml
        self.budget = lib.Budget(args.budget_s)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, Any] = {"phases": {}, "checks": []}
        self.checks: list[lib.Check] = []
        self.series: dict[str, Any] = {}  # for the PNG
        self.torch: Any = None
        self._torch = torch
        self.device: Any = None
        self.uuid = ""
        self.index = 0
        self.limit_w: float | None = None
        self.skipped_for_time: list[str] = []

    # -- plumbing ------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.time_scale)

    def make_load(self, matrix: int) -> Any:
        if self._make_load is not None:
            return self._make_load(matrix)
        return TorchLoad(self.torch, self.device, matrix)

    def add(self, *checks: lib.Check) -> None:
        for c in checks:
            self.checks.append(c)
            mark = {"pass": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}[c.status]
            print(f"  [{mark}] {c.name}: {c.detail}", flush=True)

    def save(self) -> None:
        self.results["checks"] = [c.as_dict() for c in self.checks]
        self.results["elapsed_s"] = round(self.budget.used_s, 1)
        self.results["exit_code"] = self.exit_code()
        path = self.out / "gpu_validate.json"
        path.write_text(json.dumps(self.results, indent=1, default=str) + "\n")

    def exit_code(self) -> int:
        code = lib.exit_code(self.checks)
        return 3 if code == 0 and self.skipped_for_time else code

    def phase(self, name: str, run: Callable[[], dict[str, Any]]) -> None:
        need = PHASE_NEEDS_S[name]
        if not self.budget.allows(need):
            self.skipped_for_time.append(name)
            self.add(
                lib.Check(
                    f"{name} phase",
                    lib.SKIP,
                    f"not run: {self.budget.left_s:.0f} s "
                    f"left of the budget, it needs about {need} s",
                )
            )
            self.save()
            return
        print(f"== {name} ({self.budget.left_s:.0f} s left)", flush=True)
        started = time.monotonic()
        try:
            figures = run()
        except Exception as exc:  # one broken phase must not lose the others' figures
            figures = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            self.add(lib.Check(f"{name} phase", lib.FAIL, f"crashed: {type(exc).__name__}: {exc}"))
        figures["elapsed_s"] = round(time.monotonic() - started, 2)
        self.results["phases"][name] = figures
        self.save()

    # -- phases --------------------------------------------------------------------------
    def preflight(self) -> dict[str, Any]:
        from gpu_counter_check import torch_problem
        from joulelens import __version__
        from joulelens.meters.nvml_backend import installed_pynvml_version

        nvml = self.nvml

        def safe(read: Callable[[], Any]) -> Any:
            try:
                return read()
            except Exception as exc:  # an old driver or library lacks a call: say so, go on
                return f"unreadable: {type(exc).__name__}: {exc}"

        cuda = safe(nvml.nvmlSystemGetCudaDriverVersion)
        figures: dict[str, Any] = {
            "driver_version": safe(nvml.nvmlSystemGetDriverVersion),
            "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}"
            if isinstance(cuda, int)
            else cuda,
            "nvidia_ml_py": installed_pynvml_version(),
            "python": platform.python_version(),
            "joulelens": __version__,
        }
        count = self.backend.device_count()
        figures["nvml_gpus"] = [self._describe_nvml(i) for i in range(count)]
        torch = self._torch
        if torch is None:
            try:
                import torch
            except ImportError:
                torch = None
        problem = torch_problem(count, torch)
        self.add(
            lib.check(
                "torch can use the GPUs NVML sees",
                problem is None,
                problem or f"{count} GPU(s), torch {torch.__version__}",
            )
        )
        if problem is not None:
            return figures
        self.torch = torch
        self.device = torch.device("cuda", 0)
        figures |= {
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "transformers": safe(lambda: __import__("transformers").__version__),
            "torch_gpus": [
                {
                    "cuda_index": k,
                    "name": torch.cuda.get_device_name(k),
                    "uuid": normalise_uuid(str(torch.cuda.get_device_properties(k).uuid)),
                }
                for k in range(torch.cuda.device_count())
            ],
        }
        self.uuid = figures["torch_gpus"][0]["uuid"]
        self.index, is_mig = self.backend.lookup_uuid(self.uuid)
        self.handle = self.nvml.nvmlDeviceGetHandleByIndex(self.index)
        self.raw = lib.RawNvml(self.nvml, self.handle)
        figures["target"] = {"cuda_index": 0, "uuid": self.uuid, "nvml_index": self.index}
        figures["raw_return_codes"] = self.raw.codes()
        self.add(lib.check("cuda:0 is a whole GPU", not is_mig, f"{self.uuid} (MIG: {is_mig})"))
        return figures

    def _describe_nvml(self, index: int) -> dict[str, Any]:
        b = self.backend
        out: dict[str, Any] = {"nvml_index": index}
        for key, read in (
            ("uuid", b.uuid),
            ("name", b.name),
            ("pci_bus_id", b.pci_bus_id),
            ("mig_enabled", b.mig_enabled),
            ("power_limit_w", lambda i: b.power_limit_mw(i) / 1e3),
        ):
            try:
                out[key] = read(index)
            except MeterError as exc:
                out[key] = f"unreadable: {exc}"
        return out

    def periods(self) -> dict[str, Any]:
        from joulelens.meters.period import probe_update_period

        readers = self.raw.readers()
        out: dict[str, Any] = {}
        load = self.make_load(self.args.matrix)
        try:
            for state in ("idle", "loaded"):
                if state == "loaded":
                    load.on()
                    self.sleep(1.0)
                for name in ("counter_j", "instant", "average", "power_usage"):
                    read = readers[name]
                    probe = probe_update_period(
                        lambda r=read: r() or 0.0,
                        time.monotonic,
                        duration_s=0.6 * self.time_scale,
                        min_changes=8,
                    )
                    out[f"{name}/{state}"] = {
                        "median_ms": None if probe.median_s is None else probe.median_s * 1e3,
                        "min_ms": None if probe.min_s is None else probe.min_s * 1e3,
                        "changes": probe.changes,
                        "reads": probe.reads,
                        "read_latency_us": probe.read_latency_s * 1e6,
                    }
        finally:
            load.close()
        counter = out["counter_j/idle"]["median_ms"]
        self.add(
            lib.check(
                "counter update period measured",
                counter is not None,
                f"idle {counter} ms, loaded {out['counter_j/loaded']['median_ms']} ms",
            )
        )
        return out

    def ranges(self) -> dict[str, Any]:
        nvml, h = self.nvml, self.handle
        self.limit_w = self.backend.power_limit_mw(self.index) / 1e3
        constraints = default = None
        try:
            low, high = nvml.nvmlDeviceGetPowerManagementLimitConstraints(h)
            constraints = (low / 1e3, high / 1e3)
            default = nvml.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1e3
        except (nvml.NVMLError, AttributeError):
            pass
        self.sleep(2.0)  # let the averaged readings settle after the previous load
        with Poller(self.raw, 0.02) as polled:
            self.sleep(5.0)
        end = polled.t_s[-1]
        start = polled.t_s[0]
        idle = {
            "counter": polled.counter_mean_w(start, end),
            "instant": polled.mean_w("instant", start, end),
            "average": polled.mean_w("average", start, end),
            "power_usage": polled.mean_w("power_usage", start, end),
        }
        self.add(
            *lib.idle_checks(idle, self.limit_w),
            lib.limit_check(self.limit_w, constraints, default),
        )
        return {
            "idle_w": idle,
            "limit_w": self.limit_w,
            "constraints_w": constraints,
            "default_limit_w": default,
        }

    def mapping(self) -> dict[str, Any]:
        from gpu_counter_check import load_mapping, mean_power_w, uuid_mapping
        from joulelens.meters import detect_meters
        from joulelens.meters.select import selection_from_uuids, visible_selection

        torch = self.torch
        torch_uuids = [
            str(torch.cuda.get_device_properties(k).uuid) for k in range(torch.cuda.device_count())
        ]
        resolved = list(visible_selection(self.backend, os.environ).uuids)
        problems = uuid_mapping(torch_uuids, resolved)
        self.add(
            lib.check(
                "torch UUID == meter UUID for every cuda:k",
                not problems,
                "; ".join(problems) or f"{len(torch_uuids)} GPU(s) agree",
            )
        )
        probes = self._subprocess_probes()
        pairs = list(enumerate(torch_uuids))
        meters = detect_meters(
            gpus=selection_from_uuids(pairs, source="torch"),
            rapl=False,
            cpu_estimate="off",
            gpu_backend=self.backend,
        )
        load = self.make_load(self.args.matrix)
        try:
            idle = mean_power_w(meters, 3.0 * self.time_scale, None)
            load.on()
            self.sleep(1.0)
            loaded = mean_power_w(meters, 3.0 * self.time_scale, None)
        finally:
            load.close()
            meters.close()
        issues = load_mapping(idle, loaded, "gpu:0")
        self.add(
            lib.check(
                "a load on cuda:0 raises only its GPU's power",
                not issues,
                "; ".join(issues)
                or ", ".join(f"{k} {idle[k]:.0f}->{loaded[k]:.0f} W" for k in sorted(idle)),
            )
        )
        for case in probes:
            self.add(
                lib.check(
                    f"CUDA_VISIBLE_DEVICES={case['value']!r} resolves like CUDA",
                    case["torch"] == case["joulelens"],
                    f"torch {case['torch']}, joulelens {case['joulelens']}",
                )
            )
        return {
            "torch_uuids": torch_uuids,
            "resolved": resolved,
            "idle_w": idle,
            "cuda0_loaded_w": loaded,
            "visible_devices": probes,
        }

    def _subprocess_probes(self) -> list[dict[str, Any]]:
        import subprocess

        from joulelens.meters.select import visible_selection

        code = self.probe_code
        values = ["0", self.uuid[:12], ""]
        procs = []
        for value in values:
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": value}
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", code],
                    env=env,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        out = []
        for value, proc in zip(values, procs, strict=True):
            stdout, stderr = proc.communicate(timeout=120)
            seen = None
            if proc.returncode == 0 and stdout.strip():
                seen = [normalise_uuid(u) for u in json.loads(stdout.strip().splitlines()[-1])]
            ours = list(visible_selection(self.backend, {"CUDA_VISIBLE_DEVICES": value}).uuids)
            out.append(
                {
                    "value": value,
                    "torch": seen,
                    "joulelens": ours,
                    "stderr": stderr[-500:] if proc.returncode else "",
                }
            )
        return out

    def agreement(self) -> dict[str, Any]:
        import numpy as np

        from joulelens.meters import TimelineSampler, detect_meters
        from joulelens.meters.select import selection_from_uuids
        from joulelens.meters.timeline import integrate_power_j

        selection = selection_from_uuids([(0, self.uuid)], source="cuda:0")
        meters = detect_meters(
            gpus=selection, rapl=False, cpu_estimate="off", gpu_backend=self.backend
        )
        gpu = meters["gpu:0"]
        load = self.make_load(self.args.matrix)
        figures: dict[str, Any] = {"meter": gpu.describe() if hasattr(gpu, "describe") else None}
        try:
            with Poller(self.raw, 0.02) as polled, TimelineSampler(meters) as sampler:
                meters.begin_window("agreement")
                self.sleep(1.0)
                on = load.on()
                self.sleep(12.0)
                off = load.off()
                self.sleep(2.0)
                window = meters.end_window("agreement")
            times, power = sampler.timeline.series("power_watts:gpu:0")
            counter_j = window.component("gpu:0").joules
            integrated = integrate_power_j(times, power, window.start_s, window.end_s)
            self.add(
                lib.agreement_check(
                    "counter vs integrated power (>= 10 s load)", counter_j, integrated
                )
            )
            others = {}
            for name in ("instant", "average", "power_usage"):
                t, w = polled.arrays(name)
                keep = (t >= window.start_s) & (t <= window.end_s) & ~np.isnan(w)
                t, w = t[keep], w[keep]
                trapezoids = (w[1:] + w[:-1]) / 2 * np.diff(t)
                others[name] = float(trapezoids.sum()) if len(t) > 1 else None
            load_w = polled.counter_mean_w(on + 1.0, off)
            self.add(lib.load_check(load_w, self.limit_w))
            self.series["agreement"] = {"t": list(times), "w": list(power), "on": on, "off": off}
            figures |= {
                "window_s": window.duration_s,
                "counter_j": counter_j,
                "integrated_j": integrated,
                "integrated_by_source_j": others,
                "load_mean_w": load_w,
                "warnings": list(window.warnings),
            }
            figures["step"] = self._step(load)
            figures["windows"] = self._windows(load, gpu)
        finally:
            load.close()
            meters.close()
        return figures

    def _step(self, load: TorchLoad) -> dict[str, Any]:
        ons, offs = [], []
        with Poller(self.raw, 0.01) as polled:
            self.sleep(1.0)
            for _ in range(3):
                ons.append(load.on())
                self.sleep(2.0)
                offs.append(load.off())
                self.sleep(2.0)
        lags = {}
        for name in ("instant", "average", "power_usage"):
            t, w = polled.arrays(name)
            lags[name] = lib.step_lags(t, w, ons, offs)
        t, w = polled.counter_power(0.1)
        lags["counter"] = lib.step_lags(t, w, ons, offs)
        self.series["step"] = {
            n: [list(a) for a in polled.arrays(n)] for n in ("instant", "average")
        }
        self.series["step"]["edges"] = [ons, offs]
        return {"lags": lags, "edges": {"on": ons, "off": offs}}

    def _windows(self, load: TorchLoad, gpu: Any) -> dict[str, Any]:
        from joulelens.meters import MeterSet, NvmlGpuMeter

        approx = NvmlGpuMeter(
            self.backend,
            self.index,
            0,
            approximate_short_windows=True,
            period=getattr(gpu, "period", None),
        )
        # Two meters of one GPU share its name, so each keeps its windows in its own set.
        exact_set, approx_set = MeterSet([gpu]), MeterSet([approx])
        rows = []
        with Poller(self.raw, 0.005) as polled:
            load.on()
            self.sleep(1.0)
            for size in (0.05, 0.2, 0.5, 1.0):
                for k in range(3):
                    name = f"w{size}-{k}"
                    exact_set.begin_window(name)
                    approx_set.begin_window(name)
                    t0 = time.monotonic()
                    self.sleep(size)
                    t1 = time.monotonic()
                    exact = exact_set.end_window(name).components[0]
                    approximated = approx_set.end_window(name)
                    power = polled.mean_w("instant", t0, t1)
                    reference = power * (t1 - t0) if power is not None else None
                    rows.append(
                        {
                            "size_s": size,
                            "joulelens_j": exact.joules,
                            "joulelens_reason": exact.missing_reason,
                            "approximated_j": approximated.components[0].joules,
                            "power_x_duration_j": reference,
                        }
                    )
            load.off()
        short_null = all(
            r["joulelens_j"] is None for r in rows if r["size_s"] < gpu.update_period_s
        )
        self.add(
            lib.check(
                "windows shorter than the counter period are null",
                short_null,
                f"update period {gpu.update_period_s * 1e3:.1f} ms",
            )
        )
        return {"rows": rows}

    def sampler(self) -> dict[str, Any]:
        from joulelens.core.series import energy_series
        from joulelens.meters import TimelineSampler, detect_meters
        from joulelens.meters.select import selection_from_uuids
        from joulelens.meters.timeline import energy_between_j

        meters = detect_meters(
            gpus=selection_from_uuids([(0, self.uuid)], source="cuda:0"),
            rapl=False,
            cpu_estimate="off",
            gpu_backend=self.backend,
        )
        load = self.make_load(self.args.matrix // 2)
        diffs = []
        try:
            with TimelineSampler(meters, period_s=0.02) as sampler:
                for k in range(5):  # 10 s at 50 Hz, windows opening and closing
                    (load.on if k % 2 else load.off)()
                    meters.begin_window(f"s{k}")
                    self.sleep(1.9)
                    window = meters.end_window(f"s{k}")
                    diffs.append((window.start_s, window.end_s, window.component("gpu:0").joules))
            times, energy = sampler.timeline.series(energy_series("gpu:0"))
        finally:
            load.close()
            meters.close()
        cut = [(j, energy_between_j(times, energy, a, b)) for a, b, j in diffs]
        stats = lib.tick_stats(times, 0.02)
        cpu_pct = 100 * (sampler.thread_cpu_s or 0.0) / max(1e-9, times[-1] - times[0])
        worst = max(abs(c - j) / j for j, c in cut if j)
        self.add(
            lib.check(
                "50 Hz sampler keeps time",
                stats["median_gap_ms"] is not None and abs(stats["median_gap_ms"] - 20.0) < 2.0,
                f"{stats}, missed {sampler.missed_ticks}, thread {cpu_pct:.2f}% CPU",
            ),
            lib.check(
                "timeline-cut windows match counter windows",
                worst < 0.10,  # both read the same counter, about one update apart
                f"worst difference {100 * worst:.2f}%",
                soft=True,
            ),
        )
        self.series["sampler"] = {"t": list(times), "e": list(energy)}
        return {
            "ticks": stats,
            "missed_ticks": sampler.missed_ticks,
            "thread_cpu_pct": cpu_pct,
            "windows_vs_timeline_j": cut,
            "nvml_call_latency": self._latency(),
        }

    def _latency(self) -> dict[str, Any]:
        nvml, h = self.nvml, self.handle
        calls = {
            "energy": lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h),
            "instant_field": lambda: self.raw.field_mw("NVML_FI_DEV_POWER_INSTANT", "gpu"),
            "power_usage": lambda: nvml.nvmlDeviceGetPowerUsage(h),
            "temperature_v": lambda: self.backend.temperature_c(self.index),
            "utilization": lambda: nvml.nvmlDeviceGetUtilizationRates(h),
            "memory": lambda: nvml.nvmlDeviceGetMemoryInfo(h),
        }
        out = {}
        for name, call in calls.items():
            samples = []
            for _ in range(200):
                t0 = time.perf_counter()
                call()
                samples.append(time.perf_counter() - t0)
            out[name] = lib.latency_stats(samples)
        return out

    def engine(self) -> dict[str, Any]:
        import gc
        import tempfile

        from engine_sweep import run_engine_sweep

        gc.collect()  # the earlier phases' matmul operands: give the engine all the memory
        self.torch.cuda.empty_cache()
        reference = json.loads(REFERENCE.read_text())
        store_dir = Path(tempfile.mkdtemp(prefix="gpu-validate-store-"))
        left = min(self.args.engine_budget_s, self.budget.left_s - 20)
        figures = run_engine_sweep(self.torch, self.device, store_dir, left, ENGINE_BATCHES)
        records = figures["records"]
        self.add(*lib.engine_checks(records, self.uuid, figures["memory_allocated_after"]))
        figures["mlenergy"] = {
            "source": reference["source"],
            "comparison": lib.mlenergy_ratios(records, reference),
        }
        self.series["engine"] = figures.pop("power_timelines", {})
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-validate-out")
    parser.add_argument("--budget-s", type=float, default=450.0)
    parser.add_argument("--engine-budget-s", type=float, default=230.0)
    parser.add_argument("--matrix", type=int, default=8192)
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    if args.budget_s < 60:
        parser.error("--budget-s must be at least 60")
    try:
        backend = PynvmlBackend()
    except MeterError as exc:
        print(f"SKIP: no NVIDIA GPU readable ({exc}); nothing to validate on this machine.")
        sys.exit(0)
    try:
        if backend.device_count() == 0:
            print("SKIP: NVML works but sees no GPU; nothing to validate on this machine.")
            sys.exit(0)
        run = Validation(args, backend)
        run.phase("preflight", run.preflight)
        if run.torch is not None:
            for name in ("periods", "ranges", "mapping", "agreement", "sampler"):
                run.phase(name, getattr(run, name))
            if not args.skip_engine:
                run.phase("engine", run.engine)
        from gpu_validate_plot import write_png

        try:
            write_png(run.series, run.out / "gpu_validate.png")
        except Exception as exc:  # a plot failure must not hide the figures
            run.add(lib.Check("timeline PNG", lib.WARN, f"{type(exc).__name__}: {exc}"))
        run.save()
    finally:
        backend.close()
    failed = [c.name for c in run.checks if c.status == lib.FAIL]
    print(
        f"{'FAIL' if failed else 'OK'}: {len(run.checks)} checks, {len(failed)} failed"
        f"{': ' + ', '.join(failed) if failed else ''}; figures in {run.out}"
    )
    sys.exit(run.exit_code())


if __name__ == "__main__":
    main()
