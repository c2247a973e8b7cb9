"""Accuracy and speed of planning on the public snapshot.

Prints the leave-one-out accuracy of energy-per-unit predictions at interior batch sizes
(joulelens's PCHIP vs the ML.ENERGY-style logistic fit and two simpler baselines), and the
median wall time of ``--repeats`` calls of each planning entry point on the records read
from a store (what the CLI does past Python start-up): the whole leave-one-out validation,
one prediction, a deadline plan with and without predictions, a datacenter sizing, advice
on one run, and the store-wide savings report.

    python bench/bench_predict.py
    python bench/bench_predict.py --repeats 5 --json results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joulelens.analysis import planning as pl
from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.store import Store

SNAPSHOT = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mlenergy-leaderboard-v3"
)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="Also write the numbers here.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="joulelens-bench-") as tmp:
        store = Store(Path(tmp) / "store")
        store.put_many(read_leaderboard(args.snapshot))
        records = store.all()

    qwen = [r for r in records if r.task == "lm-arena-chat"]
    run = next(
        r
        for r in qwen
        if r.model_id == "Qwen/Qwen3-235B-A22B-Instruct-2507"
        and r.gpu_model == "B200"
        and r.num_gpus == 4
        and r.batch == 64
    )
    facility = pl.Facility(power_mw=10.0, pue=1.2, host_watts_per_gpu=200.0)
    cases: dict[str, Callable[[], Any]] = {
        "leave-one-out, 4 methods": lambda: pl.leave_one_out(records),
        "leave-one-out, PCHIP only": lambda: pl.leave_one_out(records, ["pchip"]),
        "predict (one setup, batch 100)": lambda: pl.predict(
            records, 100, model="Qwen/Qwen3-14B", task="gpqa", gpu="B200", num_gpus=1
        ),
        "plan lm-arena-chat, 30 ms": lambda: pl.plan(qwen, "lm-arena-chat", 30.0),
        "plan with predictions": lambda: pl.plan(
            qwen, "lm-arena-chat", 30.0, with_predictions=True
        ),
        "datacenter 10 MW": lambda: pl.datacenter(qwen, "lm-arena-chat", 50.0, facility),
        "advise one run": lambda: pl.advise(run, qwen, 60.0),
        "savings report (all tasks)": lambda: pl.deadline_savings(records),
    }
    timings: dict[str, float] = {}
    results: dict[str, Any] = {}
    for name, fn in cases.items():
        timings[name], results[name] = timed(fn, args.repeats)

    report: pl.ValidationReport = results["leave-one-out, 4 methods"]
    print(
        f"leave-one-out over {report.setups_with_interior} setups, "
        f"{len(report.points)} held-out interior runs (energy per unit, |error| %)"
    )
    print(f"{'method':<72} {'median':>7} {'p90':>7} {'LLM med/p90':>14} {'diff. med/p90':>14}")
    for s in report.scores.values():
        llm, diff = s.by_kind.get("llm", {}), s.by_kind.get("diffusion", {})
        print(
            f"{s.label:<72} {s.median_pct:7.2f} {s.p90_pct:7.2f} "
            f"{llm.get('median_pct', 0):6.2f}/{llm.get('p90_pct', 0):6.2f} "
            f"{diff.get('median_pct', 0):6.2f}/{diff.get('p90_pct', 0):6.2f}"
        )
    print(
        f"meets targets (median < 5%, p90 < 15%): {report.meets_targets}; "
        f"beats the logistic fit: {report.beats_logistic}"
    )
    print()
    for name, seconds in timings.items():
        print(f"{name:<34} {seconds * 1000:9.1f} ms")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"validation": report.to_dict(), "timings_s": timings, "repeats": args.repeats},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
