"""Check NVML's energy counter and the CUDA-to-NVML mapping on real GPUs (needs CUDA torch).

1. **Can torch use the GPUs NVML sees?** If NVML sees GPUs but torch cannot use CUDA (a CPU
   build of torch on a GPU machine, a driver too old for torch's CUDA), nothing would be
   checked: that is a failure, not a skip.
2. **Mapping by identity**: ``torch.cuda.get_device_properties(k).uuid`` for every k equals
   the UUID joulelens resolves for ``cuda:k`` from ``CUDA_VISIBLE_DEVICES`` (PCI bus order);
   then a load on ``cuda:0`` alone must raise only that GPU's power.
3. **Counter vs integrated power**: bf16 matmuls on every GPU for ``--duration-s`` (>= 12 s)
   inside one window with idle margins (1 s before, 2 s after, so the lag of averaged power
   cancels), power sampled at 10 Hz; per GPU the counter energy against the trapezoid of
   the power timeline (target: within ``--tolerance-pct``, default 5%).

Exit status: 0 when every check passes, or when no NVIDIA GPU is readable at all (a clear
SKIP line); 1 when a check fails (including "NVML sees GPUs, torch cannot use them"); 2 for
bad arguments.

    python bench/gpu_counter_check.py [--duration-s 15] [--matrix 8192]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from joulelens.core.windows import WindowEnergy
from joulelens.errors import MeterError
from joulelens.meters import (
    MeterSet,
    NvmlGpuMeter,
    PynvmlBackend,
    TimelineSampler,
    detect_meters,
)
from joulelens.meters.select import normalise_uuid, selection_from_uuids, visible_selection
from joulelens.meters.timeline import integrate_power_j
from joulelens.records.schema import EnergyMethod

MIN_DURATION_S = 12.0
# A loaded GPU must rise by this much over idle; an idle neighbour may rise by at most this.
MIN_LOAD_RISE_W = 30.0
MAX_NEIGHBOUR_RISE_W = 15.0


def skip(reason: str) -> NoReturn:
    print(f"SKIP: {reason}; nothing to check on this machine.")
    sys.exit(0)


def fail(reason: str) -> NoReturn:
    print(f"FAIL: {reason}")
    sys.exit(1)


def torch_problem(nvml_gpus: int, torch: Any) -> str | None:
    """Why torch cannot use the ``nvml_gpus`` GPUs NVML sees (``torch=None``: not installed)."""
    if nvml_gpus == 0:
        return None
    seen = f"NVML sees {nvml_gpus} NVIDIA GPU{'s' if nvml_gpus != 1 else ''}"
    if torch is None:
        return f"{seen} but torch is not installed"
    if not torch.cuda.is_available():
        cuda = getattr(torch.version, "cuda", None)
        build = f"torch {torch.__version__}" + ("" if cuda else ", a CPU-only build")
        return f"{seen} but torch cannot use CUDA ({build})"
    return None


def uuid_mapping(torch_uuids: Sequence[str], resolved: Sequence[str]) -> list[str]:
    """Differences between torch's UUID of cuda:k and the one joulelens resolved for it."""
    problems = []
    ours = [normalise_uuid(u) for u in resolved]
    theirs = [normalise_uuid(u) for u in torch_uuids]
    if len(ours) != len(theirs):
        problems.append(f"torch sees {len(theirs)} GPUs, joulelens resolves {len(ours)}")
    for k, (mine, cuda) in enumerate(zip(ours, theirs, strict=False)):
        if mine.lower() != cuda.lower():
            problems.append(f"cuda:{k} is {cuda} for torch but {mine} for joulelens")
    return problems


def load_mapping(
    idle_w: Mapping[str, float], loaded_w: Mapping[str, float], loaded: str
) -> list[str]:
    """Problems with "a load on ``loaded`` raises only its power" (W per meter name)."""
    problems = []
    rise = {name: loaded_w[name] - idle_w[name] for name in idle_w}
    if rise[loaded] < MIN_LOAD_RISE_W:
        problems.append(
            f"{loaded} rose only {rise[loaded]:+.1f} W under its own load "
            f"(want >= {MIN_LOAD_RISE_W:.0f} W): the load ran on another GPU?"
        )
    for name, delta in sorted(rise.items()):
        if name != loaded and delta > MAX_NEIGHBOUR_RISE_W:
            problems.append(
                f"{name} rose {delta:+.1f} W while only {loaded} was loaded "
                f"(allowed {MAX_NEIGHBOUR_RISE_W:.0f} W): the meters and CUDA disagree on devices"
            )
    return problems


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


def mean_power_w(
    meters: MeterSet, seconds: float, during: Callable[[], object] | None
) -> dict[str, float]:
    """Mean power per GPU over a window of ``seconds`` (idle, or while ``during`` runs)."""
    meters.begin_window("mapping")
    if during is None:
        time.sleep(seconds)
    else:
        during()
    window = meters.end_window("mapping")
    return {
        c.name: (c.joules or 0.0) / window.duration_s
        for c in window.components
        if c.name.startswith("gpu:")
    }


def run_check(
    meters: MeterSet,
    workload: Callable[[], str],
    *,
    period_s: float = 0.1,
    tolerance_pct: float = 5.0,
    idle_before_s: float = 1.0,
    idle_after_s: float = 2.0,
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
    print(f"window {window.duration_s:.2f} s: {what}; power sampled every {period_s * 1e3:.0f} ms")
    ok = report(gpus, window, sampler, tolerance_pct)
    print(f"{'OK' if ok else 'FAIL'}: counter vs integrated power, tolerance {tolerance_pct:g}%")
    return ok


def report(
    gpus: list[NvmlGpuMeter], window: WindowEnergy, sampler: TimelineSampler, tolerance_pct: float
) -> bool:
    """Print the per-GPU table; true when every counter GPU is within tolerance."""
    print(
        f"{'gpu':<7} {'model':<28} {'counter J':>11} {'integrated J':>13} {'diff %':>8} "
        f"{'mean W':>8} {'peak W':>8}  power reading"
    )
    ok = True
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
        source = gpu.power_source.label if gpu.power_source else "?"
        print(
            f"{gpu.name:<7} {gpu.model[:28]:<28} {component.joules:>11.1f} "
            f"{integrated_j:>13.1f} {diff_pct:>+8.2f} "
            f"{component.joules / window.duration_s:>8.1f} {max(power):>8.1f}  {source}"
        )
    if sampler.thread_cpu_s is not None and sampler.started_s is not None:
        cpu_pct = 100.0 * sampler.thread_cpu_s / max(window.duration_s, 1e-9)
        print(f"sampler thread CPU: {cpu_pct:.3f}% of one core ({sampler.ticks} ticks)")
    for warning in window.warnings:
        print(f"warning: {warning}")
    return ok


def check_mapping(torch: Any, backend: PynvmlBackend, meters: MeterSet, matrix: int) -> bool:
    """UUID equality for every cuda:k, then the cuda:0-only load."""
    torch_uuids = [
        str(torch.cuda.get_device_properties(k).uuid) for k in range(torch.cuda.device_count())
    ]
    resolved = visible_selection(backend, os.environ).uuids
    problems = uuid_mapping(torch_uuids, resolved)
    idle = mean_power_w(meters, 3.0, None)
    loaded = mean_power_w(
        meters, 0.0, lambda: spin_matmuls(torch, [torch.device("cuda", 0)], matrix, 5.0)
    )
    problems += load_mapping(idle, loaded, "gpu:0")
    for name in sorted(idle):
        print(f"{name}: idle {idle[name]:.1f} W, while cuda:0 loaded {loaded[name]:.1f} W")
    for problem in problems:
        print(f"mapping: {problem}")
    print(f"{'OK' if not problems else 'FAIL'}: CUDA-to-NVML mapping ({len(torch_uuids)} GPUs)")
    return not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    try:
        count = backend.device_count()
        if count == 0:
            skip("NVML works but sees no GPU")
        torch: Any
        try:
            import torch
        except ImportError:
            torch = None
        problem = torch_problem(count, torch)
        if problem:
            fail(problem + "; install a CUDA build of torch to check anything")
        assert torch is not None
        torch_uuids = [
            (k, str(torch.cuda.get_device_properties(k).uuid))
            for k in range(torch.cuda.device_count())
        ]
        selection = selection_from_uuids(torch_uuids, source="torch's CUDA devices")
        meters = detect_meters(gpus=selection, rapl=False, cpu_estimate="off", gpu_backend=backend)
        mapped = check_mapping(torch, backend, meters, args.matrix)
        devices = [torch.device("cuda", k) for k, _ in torch_uuids]
        agreed = run_check(
            meters,
            lambda: spin_matmuls(torch, devices, args.matrix, args.duration_s),
            period_s=args.period_s,
            tolerance_pct=args.tolerance_pct,
        )
    finally:
        backend.close()
    sys.exit(0 if mapped and agreed else 1)


if __name__ == "__main__":
    main()
