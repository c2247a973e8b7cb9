"""Time of importing the whole public ML.ENERGY Leaderboard snapshot (target: < 3 s).

Each repeat imports into a fresh store: parse and validate every file, write one run
directory per configuration (atomically) and index them in the DuckDB catalog. Reports the
median of ``--repeats`` after one warm-up, both in-process (the library call the CLI makes)
and end to end through the ``joulelens import mlenergy`` command (interpreter start-up
included); the target applies to the end-to-end figure.

    python bench/bench_import.py
    python bench/bench_import.py --snapshot DIR --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.store import Store

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SNAPSHOT = REPO.parent / "shared" / "data" / "mlenergy-leaderboard-v3"
TARGET_S = 3.0


def import_in_process(snapshot: Path, store_dir: Path) -> None:
    Store(store_dir).put_many(read_leaderboard(snapshot))


def import_cli(snapshot: Path, store_dir: Path) -> None:
    cli = Path(sys.executable).with_name("joulelens")
    proc = subprocess.run(
        [str(cli), "import", "mlenergy", str(snapshot), "--store", str(store_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"joulelens import failed:\n{proc.stderr}")


def cli_startup(snapshot: Path, store_dir: Path) -> None:
    """Interpreter and CLI start-up alone, for reading the end-to-end figure."""
    del snapshot, store_dir
    cli = Path(sys.executable).with_name("joulelens")
    subprocess.run([str(cli), "--version"], check=True, capture_output=True)


def timed(fn: Callable[[Path, Path], None], snapshot: Path, repeats: int) -> list[float]:
    """Seconds per import into a fresh store; the first (warm-up) run is dropped."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="joulelens-bench-") as tmp:
        for i in range(repeats + 1):
            store_dir = Path(tmp) / f"store-{i}"
            started = time.perf_counter()
            fn(snapshot, store_dir)
            elapsed = time.perf_counter() - started
            if store_dir.exists():  # checked outside the timed region
                n = len(Store(store_dir).catalog.run_ids())
                if n != 1858 and snapshot == DEFAULT_SNAPSHOT:
                    raise SystemExit(f"expected 1858 runs, the store holds {n}")
            # Stores are deleted only at the end: a big deletion (discard) just before an
            # import would slow the file system under the next timed run.
            if i:
                times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (args.snapshot / "index.json").is_file():
        raise SystemExit(f"no leaderboard snapshot at {args.snapshot}")
    load = os.getloadavg()[0]
    print(f"snapshot: {args.snapshot}  cores: {os.cpu_count()}  load average (1 min): {load:.2f}")
    rows = [
        (
            "in-process (read + write + index)",
            timed(import_in_process, args.snapshot, args.repeats),
        ),
        ("CLI end to end (joulelens import)", timed(import_cli, args.snapshot, args.repeats)),
        ("  of which start-up (--version)", timed(cli_startup, args.snapshot, 3)),
    ]
    for label, times in rows:
        spread = f"min {min(times):.2f}  max {max(times):.2f}"
        print(f"{label:36s} median {statistics.median(times):.2f} s  ({spread}, n={len(times)})")
    cli_median = statistics.median(rows[1][1])
    verdict = "meets" if cli_median < TARGET_S else "MISSES"
    print(f"target < {TARGET_S:.0f} s end to end: {verdict} ({cli_median:.2f} s)")


if __name__ == "__main__":
    main()
