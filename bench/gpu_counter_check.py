"""Check NVML's energy counter against integrated power on real GPUs (needs CUDA torch).

Runs bf16 matmuls on every visible GPU for ``--duration-s`` (at least 12 s) inside one
energy window with idle margins (1 s before, 2 s after, so the lag of averaged power
readings cancels), samples power at 10 Hz with :class:`TimelineSampler`, and prints per GPU
the counter energy, the trapezoid of the power timeline over the same window, and their
difference (target: within ``--tolerance-pct``, default 5%).

Exit status: 0 when every GPU is within tolerance, or when there is no GPU (a clear SKIP
line, nothing else to do); 1 when a GPU is outside tolerance; 2 for bad arguments.

    python bench/gpu_counter_check.py [--duration-s 15] [--matrix 8192]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from joulelens.errors import MeterError
from joulelens.meters import (
    MeterSet,
    NvmlGpuMeter,
    PynvmlBackend,
    TimelineSampler,
    WindowResult,
    detect_meters,
)
from joulelens.meters.timeline import integrate_power_j
from joulelens.records.schema import EnergyMethod

MIN_DURATION_S = 12.0


def skip(reason: str) -> NoReturn:
    print(f"SKIP: {reason}; nothing to check on this machine.")
    sys.exit(0)


def spin_matmuls(torch: Any, devices: list[Any], matrix: int, duration_s: float) -> str:
    """Queue bf16 matmuls round-robin on every device for ``duration_s``; says how many."""
    operands = [
        (
            torch.randn(matrix, matrix, device=d, dtype=torch.bfloat16),
            torch.randn(matrix, matrix, device=d, dtype=torch.bfloat16),
        )
        for d in devices
    ]
    done = 0
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        for a, b in operands:
            for _ in range(8):
                torch.matmul(a, b)
        done += 8 * len(operands)
        for d in devices:  # keep the launch queue short so the loop tracks wall time
            torch.cuda.synchronize(d)
    return f"{done} matmuls of {matrix}^2 bf16 on {len(devices)} GPU(s)"


def run_check(
    meters: MeterSet,
    workload: Callable[[], str],
    *,
    period_s: float = 0.1,
    tolerance_pct: float = 5.0,
    idle_before_s: float = 1.0,
    idle_after_s: float = 2.0,
    power_source: Callable[[int], str] | None = None,
) -> bool:
    """Run ``workload`` inside an energy window with a power timeline; print the comparison.

    The idle margins inside the window let averaged power readings catch up with the steps
    at the workload's start and end. Closes ``meters``.
    """
    gpus = [m for m in meters if isinstance(m, NvmlGpuMeter)]
    with meters, TimelineSampler(meters, period_s=period_s) as sampler:
        meters.begin_window("check")
        time.sleep(idle_before_s)
        what = workload()
        time.sleep(idle_after_s)
        window = meters.end_window("check")
    print(f"window {window.elapsed_s:.2f} s: {what}; power sampled every {period_s * 1e3:.0f} ms")
    ok = report(gpus, window, sampler, tolerance_pct, power_source)
    print(f"{'OK' if ok else 'FAIL'}: counter vs integrated power, tolerance {tolerance_pct:g}%")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--matrix", type=int, default=8192)
    parser.add_argument("--period-s", type=float, default=0.1)
    parser.add_argument("--tolerance-pct", type=float, default=5.0)
    args = parser.parse_args()
    if args.duration_s < MIN_DURATION_S:
        parser.error(f"--duration-s must be at least {MIN_DURATION_S:g} s")

    try:
        backend = PynvmlBackend()  # probe NVML before importing torch: fast when absent
    except MeterError as exc:
        skip(f"no NVIDIA GPU readable ({exc})")
    meters = detect_meters(rapl=False, cpu_estimate="off", gpu_backend=backend)
    gpus = [m for m in meters if isinstance(m, NvmlGpuMeter)]
    if not gpus:
        backend.close()
        skip("NVML works but no GPU energy is readable: " + "; ".join(meters.notes))
    try:
        import torch
    except ImportError:
        backend.close()
        skip("torch is not installed")
    if not torch.cuda.is_available() or torch.cuda.device_count() < len(gpus):
        backend.close()
        skip(f"CUDA torch sees {torch.cuda.device_count()} GPUs, NVML {len(gpus)}")

    devices = [torch.device("cuda", i) for i in range(len(gpus))]
    try:
        ok = run_check(
            meters,
            lambda: spin_matmuls(torch, devices, args.matrix, args.duration_s),
            period_s=args.period_s,
            tolerance_pct=args.tolerance_pct,
            power_source=backend.power_source,
        )
    finally:
        backend.close()
    sys.exit(0 if ok else 1)


def report(
    gpus: list[NvmlGpuMeter],
    window: WindowResult,
    sampler: TimelineSampler,
    tolerance_pct: float,
    power_source: Callable[[int], str] | None,
) -> bool:
    """Print the per-GPU table; true when every counter GPU is within tolerance."""
    print(
        f"{'gpu':<7} {'model':<28} {'counter J':>11} {'integrated J':>13} {'diff %':>8} "
        f"{'mean W':>8} {'peak W':>8}  power reading"
    )
    ok = True
    counter_sum_j = integrated_sum_j = 0.0
    for gpu in gpus:
        component = window.component(gpu.name)
        times, power = sampler.timeline.series(f"power_watts:{gpu.name}")
        integrated_j = integrate_power_j(times, power, window.start_s, window.end_s)
        if component.joules is None or gpu.method is not EnergyMethod.COUNTER:
            print(f"{gpu.name:<7} no energy counter ({component.missing_reason or gpu.method})")
            ok = False
            continue
        diff_pct = 100.0 * (integrated_j - component.joules) / component.joules
        ok &= abs(diff_pct) <= tolerance_pct
        counter_sum_j += component.joules
        integrated_sum_j += integrated_j
        print(
            f"{gpu.name:<7} {gpu.model[:28]:<28} {component.joules:>11.1f} "
            f"{integrated_j:>13.1f} {diff_pct:>+8.2f} "
            f"{component.joules / window.elapsed_s:>8.1f} {max(power):>8.1f}  "
            f"{power_source(gpu.nvml_index) if power_source else ''}"
        )
    if len(gpus) > 1 and counter_sum_j > 0:
        diff_pct = 100.0 * (integrated_sum_j - counter_sum_j) / counter_sum_j
        print(f"{'total':<36} {counter_sum_j:>11.1f} {integrated_sum_j:>13.1f} {diff_pct:>+8.2f}")
    times, _ = sampler.timeline.series(f"energy_joules:{gpus[0].name}")
    if sampler.thread_cpu_s is not None and len(times) > 1:
        cpu_pct = 100.0 * sampler.thread_cpu_s / (times[-1] - times[0])
        print(
            f"sampler thread CPU: {cpu_pct:.3f}% of one core "
            f"({sampler.ticks} ticks, {sampler.missed_ticks} missed)"
        )
    for warning in window.warnings:
        print(f"warning: {warning}")
    return ok


if __name__ == "__main__":
    main()
