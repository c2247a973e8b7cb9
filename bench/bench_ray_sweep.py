"""Wall time of one 12-configuration sweep: local (one at a time) vs a two-node Ray cluster.

The cluster is the one the tests use (tests/ray_netns.py): a head and a worker started with
``ray start`` inside a loopback-only network namespace, standing for an H100 node and a B200
node with custom resources. The grid is 2 tasks x 2 GPU models x B in {1, 2, 4} against the
project's SSE test server; each run measures a 1 s idle baseline and about 1.5 s of load, as
CPU runs (no GPU is read). Ray runs with ``--one-per-node``: one configuration per node at a
time, the isolation a per-machine energy boundary needs. Both sweeps are timed end to end as
a user sees them (``joulelens sweep`` process start to exit, Ray connection included), in
alternating pairs after one warm-up pair; the medians are printed.

    sudo python bench/bench_ray_sweep.py            # about 3 minutes; needs root (netns)
    sudo python bench/bench_ray_sweep.py --pairs 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from ray_netns import NetnsCluster, NodeSpec, unavailable  # noqa: E402

CLI = [sys.executable, "-c", "from joulelens.cli.app import main; main()"]


def grid(url: str) -> dict[str, object]:
    return {
        "models": ["test-model"],
        "tasks": ["lm-arena-chat", "gpqa"],
        "gpu_models": ["H100", "B200"],
        "batch_sizes": [1, 2, 4],
        "stop_at_unreachable_batch": False,
        "base": {
            "engine": "endpoint",
            "endpoint": url,
            "num_gpus": 0,
            "gpus": False,
            "max_tokens": 30,
            "num_requests": 16,
            "idle_baseline_s": 1.0,
            "min_steady_state_s": 0.05,
            "extra_body": {"sse_test": {"itl_s": 0.05, "chunks": 30}},
        },
    }


def timed_sweep(cluster: NetnsCluster, grid_file: Path, store: Path, *extra: str) -> float:
    t0 = time.monotonic()
    done = cluster.run([*CLI, "sweep", str(grid_file), *extra, "--store", str(store)])
    wall = time.monotonic() - t0
    if done.returncode != 0 or "12 measured" not in done.stdout:
        raise SystemExit(f"sweep failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=2, help="timed local/Ray pairs")
    args = parser.parse_args()
    why = unavailable()
    if why:
        raise SystemExit(f"cannot run: {why}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        NetnsCluster([NodeSpec("H100", num_cpus=1), NodeSpec("B200", num_cpus=1)]) as cluster,
    ):
        cluster.start_sse_server()
        grid_file = Path(tmp) / "grid.yaml"
        grid_file.write_text(yaml.safe_dump(grid(cluster.sse_url)))
        ray = ["--executor", "ray", "--ray-address", cluster.address, "--one-per-node"]
        local_s, ray_s = [], []
        for i in range(args.pairs + 1):  # the first pair warms caches up and is not counted
            a = timed_sweep(cluster, grid_file, Path(tmp) / f"local{i}")
            b = timed_sweep(cluster, grid_file, Path(tmp) / f"ray{i}", *ray)
            print(f"pair {i}{' (warm-up)' if i == 0 else ''}: local {a:.1f} s, Ray {b:.1f} s")
            if i:
                local_s.append(a)
                ray_s.append(b)
        lm, rm = statistics.median(local_s), statistics.median(ray_s)
        print(f"median of {args.pairs}: local {lm:.1f} s, two Ray nodes {rm:.1f} s, x{lm / rm:.2f}")


if __name__ == "__main__":
    main()
