"""CPU cost of the timeline sampler at 10 Hz, as % of one core (target: < 1%).

Measures the sampler thread's own CPU time (``time.thread_time`` inside the thread) over
``--duration-s`` windows after a warm-up, takes the median of ``--repeats``, and cross-checks
with the whole process's CPU time while the main thread sleeps. Sources are those this
machine offers without hardware: the system-wide CPU-time estimate and a fake RAPL tree
(two packages, two DRAM zones) in a temporary directory; ``--fake-gpus N`` adds fake GPUs,
whose cost is Python arithmetic rather than NVML calls, so treat that row as indicative.

    python bench/bench_sampler.py                 # about 70 s
    python bench/bench_sampler.py --all           # every configuration, about 4 min
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joulelens.core.clock import now_s
from joulelens.meters import MeterSet, TimelineSampler, detect_meters
from joulelens.meters.fake import SERVER_ZONES, FakeGpu, FakeNvmlBackend, FakeRaplTree, PowerTrace


@dataclass
class Run:
    thread_pct: float
    process_pct: float
    ticks: int
    missed: int
    mean_interval_s: float


def run_once(meters: MeterSet, period_s: float, duration_s: float) -> Run:
    sampler = TimelineSampler(meters, period_s=period_s)
    process_start = time.process_time()
    wall_start = time.perf_counter()
    sampler.start()
    time.sleep(duration_s)
    sampler.stop()
    wall_s = time.perf_counter() - wall_start
    process_s = time.process_time() - process_start
    energy_series = next(n for n in sampler.timeline.series_names if n.startswith("energy_"))
    times, _ = sampler.timeline.series(energy_series)
    inner = list(times[1:-1])  # without the samples start() and stop() take
    assert sampler.thread_cpu_s is not None
    return Run(
        thread_pct=100.0 * sampler.thread_cpu_s / wall_s,
        process_pct=100.0 * process_s / wall_s,
        ticks=sampler.ticks,
        missed=sampler.missed_ticks,
        mean_interval_s=(inner[-1] - inner[0]) / (len(inner) - 1),
    )


def bench(name: str, make: Callable[[], MeterSet], args: argparse.Namespace) -> None:
    with make() as meters:
        run_once(meters, args.period_s, args.warmup_s)
        runs = [run_once(meters, args.period_s, args.duration_s) for _ in range(args.repeats)]
    thread = statistics.median(r.thread_pct for r in runs)
    process = statistics.median(r.process_pct for r in runs)
    interval_ms = 1e3 * statistics.median(r.mean_interval_s for r in runs)
    missed = sum(r.missed for r in runs)
    print(
        f"{name:<44} {len(meters):>3} {thread:>9.3f} {process:>10.3f} "
        f"{interval_ms:>10.2f} {missed:>7}   {[round(r.thread_pct, 3) for r in runs]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period-s", type=float, default=0.1)
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fake-gpus", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="also process-tree and fake-GPU rows")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rapl_root = Path(tmp)
        FakeRaplTree(rapl_root, SERVER_ZONES)

        def gpus(count: int) -> FakeNvmlBackend:
            trace = PowerTrace.constant(300.0)
            return FakeNvmlBackend([FakeGpu(f"GPU-{i:08d}", trace) for i in range(count)], now_s)

        configs: list[tuple[str, Callable[[], MeterSet]]] = [
            (
                "system CPU estimate + fake RAPL (4 zones)",
                lambda: detect_meters(gpus=False, rapl_root=rapl_root, cpu_estimate="system"),
            )
        ]
        if args.all:
            configs.append(
                (
                    "process-tree CPU estimate + fake RAPL",
                    lambda: detect_meters(gpus=False, rapl_root=rapl_root, cpu_estimate="process"),
                )
            )
        fake_gpus = args.fake_gpus or (2 if args.all else 0)
        if fake_gpus:
            configs.append(
                (
                    f"{fake_gpus} fake GPUs + system estimate + fake RAPL",
                    lambda: detect_meters(
                        rapl_root=rapl_root,
                        cpu_estimate="system",
                        gpu_backend=gpus(fake_gpus),
                        environ={},
                    ),
                )
            )
        print(
            f"sampler CPU cost at {1 / args.period_s:g} Hz, median of {args.repeats} x "
            f"{args.duration_s:g} s (after {args.warmup_s:g} s warm-up)"
        )
        print(
            f"{'configuration':<44} {'n':>3} {'thread %':>9} {'process %':>10} "
            f"{'period ms':>10} {'missed':>7}   thread % per run"
        )
        for name, make in configs:
            bench(name, make, args)
        print("% = CPU seconds per wall second x 100, of one core; target < 1")


if __name__ == "__main__":
    main()
