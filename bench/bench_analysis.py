"""Speed of the diagnosis on the public snapshot (targets: whole study < 1 s after import,
``diagnose`` < 100 ms).

Imports ``../shared/data/mlenergy-leaderboard-v3`` into a temporary store once, then times,
as medians of ``--repeats``: reading every run back from the store, the whole study from
those records, ``diagnose`` on Qwen 3 32B text conversation vs problem solving (1x B200,
largest stable batches, with the store's runs for the batch reasons), and ``why`` on the
Qwen 3 VL 8B video-chat run. "Study after import" is store read + study, what
``joulelens study`` does past Python start-up.

    python bench/bench_analysis.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joulelens.analysis.diagnose import diagnose
from joulelens.analysis.selection import RunIndex
from joulelens.analysis.study import run_study
from joulelens.analysis.why import why
from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.records import RunRecord
from joulelens.store import Store

SNAPSHOT = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mlenergy-leaderboard-v3"
)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def largest(records: list[RunRecord], model: str, task: str) -> RunRecord:
    runs = [
        r
        for r in records
        if r.model_id == model and r.task == task and r.gpu_model == "B200" and r.num_gpus == 1
    ]
    return max(runs, key=lambda r: r.batch or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        store = Store(Path(tmp) / "store")
        store.put_many(read_leaderboard(args.snapshot))
        import_s = time.perf_counter() - started

        load_s, records = timed(store.all, args.repeats)
        study_s, findings = timed(lambda: run_study(records), args.repeats)
        both_s, _ = timed(lambda: run_study(store.all()), args.repeats)

        a = largest(records, "Qwen/Qwen3-32B", "lm-arena-chat")
        b = largest(records, "Qwen/Qwen3-32B", "gpqa")
        index = RunIndex(records)
        diag_s, diag = timed(lambda: diagnose(a, b, index), args.repeats * 5)
        diag_cold_s, _ = timed(lambda: diagnose(a, b, records), args.repeats)
        video = largest(records, "Qwen/Qwen3-VL-8B-Instruct", "video-chat")
        why_s, report = timed(lambda: why(video, index), args.repeats * 5)

    print(f"runs: {len(records)}  (import into a fresh store: {import_s:.2f} s)")
    print(f"store read (all runs)        {load_s * 1000:8.1f} ms")
    print(f"study, 9 findings            {study_s * 1000:8.1f} ms")
    print(f"study after import (read+run){both_s * 1000:8.1f} ms   target < 1000 ms")
    print(f"diagnose (indexed store)     {diag_s * 1000:8.2f} ms   target < 100 ms")
    print(f"diagnose (index built too)   {diag_cold_s * 1000:8.2f} ms")
    print(f"why                          {why_s * 1000:8.2f} ms")
    print(
        f"check: {len(findings)} findings; diagnose {diag.observed_ratio:.1f}x, "
        f"causes {diag.main_causes}; why {report.batch_stop.value}"
    )


if __name__ == "__main__":
    main()
