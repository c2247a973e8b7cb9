"""The demo's CPU-estimate J/token alone and beside a busy core, side by side.

Runs the demo's measurement (SmolLM2-135M, the same RunConfig as ``joulelens demo``) at the
given batch sizes, alternating "alone" and "beside one CPU-bound process", ``--repeats``
times, and prints the median J/token of each with the machine-wide estimate beside it. The
workload's figure should stay close in both; the machine-wide one should not. Each round
runs in a fresh process, as the demo does, so ``OMP_WAIT_POLICY`` takes effect
(``--spin`` leaves OpenMP's default spin-waiting on, to show what it costs).

    python bench/bench_cpu_scope.py                        # batch 1 and 4, about 4 min
    python bench/bench_cpu_scope.py --batch 1 4 16 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROUND = """
import json, sys
from joulelens.cli.demo import demo_config
from joulelens.runner import run_one
from joulelens.store import Store
out = []
for batch in json.loads(sys.argv[2]):
    r = run_one(demo_config(batch, "cpu", False), Store(sys.argv[1]))
    machine = [c.joules for c in r.energy_components if c.name.startswith("machine-wide:")]
    out.append([batch, r.energy_per_token_joules, r.output_throughput_tokens_per_sec,
                machine[0] / r.steady_state_duration_s if machine else None, r.avg_power_watts])
print(json.dumps(out))
"""


def one_round(batches: list[int], busy: bool, spin: bool) -> list[list[float]]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env["OMP_WAIT_POLICY"] = "ACTIVE" if spin else "PASSIVE"
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run(
                [sys.executable, "-c", ROUND, str(Path(tmp) / "store"), json.dumps(batches)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
            )
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--spin", action="store_true", help="OpenMP threads spin while waiting")
    args = parser.parse_args()
    rows: dict[tuple[bool, int], list[list[float]]] = {}
    for _ in range(args.repeats):
        for busy in (False, True):
            for batch, *values in one_round(args.batch, busy, args.spin):
                rows.setdefault((busy, batch), []).append(values)
    print("batch  beside   J/token  tokens/s  workload W  machine-wide W")
    for (busy, batch), values in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        med = [statistics.median(v[i] for v in values) for i in range(4)]
        print(
            f"{batch:5d}  {'busy' if busy else 'alone':6s}  {med[0]:8.3g}  {med[1]:8.3g}  "
            f"{med[3]:10.3g}  {med[2]:14.3g}"
        )


if __name__ == "__main__":
    main()
