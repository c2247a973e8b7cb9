"""Sweeps on a real two-node Ray cluster (separate ``ray start`` processes) in a loopback-only
network namespace: placement by GPU model, same records as a local sweep, a node killed
mid-sweep, Ctrl-C, the 85% rule, runs no node can take.

Nodes stand for GPU models with custom resources (two ``gpu_model:H100`` on the head, one
``gpu_model:B200`` on the worker); the runs are CPU runs against the project's SSE test
server and a tiny transformers model, all inside the namespace.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from joulelens.records import RunRecord, RunStatus
from joulelens.runner.sweep import SweepGrid, run_sweep
from joulelens.store import Store
from ray_netns import NetnsCluster, NodeSpec, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.ray]

CLI = [sys.executable, "-c", "from joulelens.cli.app import main; main()"]
HEAD, WORKER = 0, 1
QUICK = {
    "engine": "endpoint",
    "max_tokens": 20,
    "num_gpus": 0,
    "gpus": False,
    "idle_baseline_s": 0.3,
    "min_steady_state_s": 0.05,
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[NetnsCluster]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    with NetnsCluster([NodeSpec("H100", gpus=2), NodeSpec("B200")]) as made:
        made.start_sse_server()
        yield made


def _grid_file(tmp_path: Path, name: str = "grid.yaml", **grid: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(grid))
    return path


def _sweep(
    cluster: NetnsCluster,
    grid: Path,
    store: Path,
    *extra: str,
    ray: bool = True,
    address: str | None = None,
) -> subprocess.CompletedProcess[str]:
    executor = ["--executor", "ray", "--ray-address", address or cluster.address] if ray else []
    done = cluster.run([*CLI, "sweep", str(grid), *executor, *extra, "--store", str(store)])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def _timing_free(record: RunRecord) -> Any:
    """The record without what depends on timing: measured numbers (floats), timestamps,
    and the judgements and notes made from them."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not isinstance(v, float)}
        if isinstance(value, list):
            return [strip(v) for v in value if not isinstance(v, float)]
        return value

    data = record.model_dump(mode="json")
    for key in ("started_at", "finished_at", "recorded_at", "stable", "unstable_reasons"):
        data.pop(key)
    data.pop("warnings")  # they quote measured numbers
    # Which process ran it (a node's Ray worker, not the local CLI): its pid and name.
    scope = data["config"].get("cpu_estimate") or {}
    assert scope.get("scope") in (None, "process", "system"), scope
    for key in ("pids", "covers"):
        scope.pop(key, None)
    return strip(data)


def _started_on(output: str) -> dict[str, str]:
    """Config label -> node label, from the sweep's "started ..." lines."""
    return dict(re.findall(r"started \[\d+/\d+\] (.+?) on (127\.0\.0\.1 \w+ \[[^\]]*\])", output))


def _same_runs(local: Store, remote: Store) -> list[RunRecord]:
    mine = {r.run_id: r for r in local.all()}
    theirs = {r.run_id: r for r in remote.all()}
    assert sorted(mine) == sorted(theirs)
    for run_id, record in mine.items():
        assert _timing_free(theirs[run_id]) == _timing_free(record), run_id
        assert theirs[run_id].artifacts == record.artifacts
        for name in record.artifacts:
            assert remote.artifact_path(run_id, name).stat().st_size > 0
    return list(mine.values())


def test_twelve_configurations_on_two_nodes_match_a_local_sweep(
    cluster: NetnsCluster, tmp_path: Path
) -> None:
    grid = _grid_file(
        tmp_path,
        models=["test-model"],
        tasks=["lm-arena-chat", "gpqa"],
        gpu_models=["H100", "B200"],
        batch_sizes=[1, 2, 4],
        stop_at_unreachable_batch=False,  # timing must not decide which runs exist
        base={
            **QUICK,
            "endpoint": cluster.sse_url,
            "num_requests": 8,
            "extra_body": {"sse_test": {"itl_s": 0.02, "chunks": 15}},
        },
    )
    t0 = time.monotonic()
    _sweep(cluster, grid, tmp_path / "local", ray=False)
    local_s = time.monotonic() - t0
    t0 = time.monotonic()
    done = _sweep(cluster, grid, tmp_path / "ray", "--one-per-node")
    ray_s = time.monotonic() - t0
    print(f"12 configurations: local {local_s:.1f} s, two Ray nodes {ray_s:.1f} s")

    records = _same_runs(Store(tmp_path / "local"), Store(tmp_path / "ray"))
    assert len(records) == 12
    assert all(r.status is RunStatus.COMPLETED for r in records)
    # Each configuration ran on a node of its GPU model; one at a time on each node.
    placed = _started_on(done.stdout)
    assert len(placed) == 12, done.stdout
    for config, node in placed.items():
        model = re.search(r"\[(H100|B200)\]$", config)
        assert model is not None and f"[{model[1]}x" in node, (config, node)
    stored = {(r.task, r.gpu_model, r.max_num_seqs): r for r in Store(tmp_path / "ray").all()}
    for node in set(placed.values()):
        spans = []
        for config, where in placed.items():
            if where == node:
                _, task, b, gpu = re.match(r"(\S+) (\S+) B=(\d+) \[(\w+)\]", config).groups()  # type: ignore[union-attr]
                r = stored[(task, gpu, int(b))]
                spans.append((r.started_at, r.finished_at))
        spans.sort()
        assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))


@pytest.mark.engines
def test_tiny_transformers_model_on_the_nodes_matches_local(
    cluster: NetnsCluster, tmp_path: Path
) -> None:
    from tiny_model import build_tiny_chat_model

    model = build_tiny_chat_model(tmp_path / "tiny")
    grid = _grid_file(
        tmp_path,
        models=[str(model)],
        tasks=["lm-arena-chat"],
        gpu_models=["H100", "B200"],
        batch_sizes=[2],
        base={
            "engine": "transformers",
            "device": "cpu",
            "cpu_threads": 1,
            "num_gpus": 0,
            "gpus": False,
            "num_requests": 4,
            "max_tokens": 8,
            "idle_baseline_s": 0.1,
            "min_steady_state_s": 0.05,
        },
    )
    run_sweep(SweepGrid.from_yaml(grid), Store(tmp_path / "local"))  # no network: in-process
    done = _sweep(cluster, grid, tmp_path / "ray")
    records = _same_runs(Store(tmp_path / "local"), Store(tmp_path / "ray"))
    assert [r.status for r in records] == [RunStatus.COMPLETED] * 2
    assert all(r.provenance.engine == "transformers" for r in records)
    nodes = {node.split("[")[-1] for node in _started_on(done.stdout).values()}
    assert nodes == {"H100x2]", "B200x1]"}  # one run on each node


def test_the_85_percent_rule_drops_larger_batches_as_results_arrive(
    cluster: NetnsCluster, tmp_path: Path
) -> None:
    """B=8 cannot be reached on a server that runs 2 requests at once: B=32, already
    running on the cluster, is cancelled and not kept, as a local sweep never starts it."""
    cluster.start_sse_server("--max-running", "2", port=8002)
    grid = _grid_file(
        tmp_path,
        models=["test-model"],
        tasks=["lm-arena-chat"],
        gpu_models=["H100"],  # the head has 2 "H100s": both batches start at once
        batch_sizes=[8, 32],
        base={
            **QUICK,
            "endpoint": "http://127.0.0.1:8002",
            "extra_body": {"sse_test": {"itl_s": 0.01, "chunks": 25}},  # B=8: ~8 s
        },
    )
    _sweep(cluster, grid, tmp_path / "local", ray=False)
    done = _sweep(cluster, grid, tmp_path / "ray")
    [b8] = _same_runs(Store(tmp_path / "local"), Store(tmp_path / "ray"))
    assert b8.max_num_seqs == 8 and b8.stable is False
    assert any("low batch utilization" in r for r in b8.unstable_reasons)
    assert "started [2/2] test-model lm-arena-chat B=32" in done.stdout
    assert re.search(r"skip test-model lm-arena-chat B=32 \[H100\]: a smaller batch", done.stdout)
    assert "0 failed, 1 not run" in done.stdout


def test_runs_no_node_can_take_fail_at_once_and_the_rest_run(
    cluster: NetnsCluster, tmp_path: Path
) -> None:
    grid = _grid_file(
        tmp_path,
        models=["test-model"],
        tasks=["lm-arena-chat"],
        gpu_models=["H100", "A100"],
        num_gpus=[0, 1],
        batch_sizes=[1],
        base={**QUICK, "endpoint": cluster.sse_url, "num_requests": 4},
    )
    t0 = time.monotonic()
    done = _sweep(cluster, grid, tmp_path / "ray", address="ray://127.0.0.1:10001")  # client
    assert time.monotonic() - t0 < 120
    by = {(r.gpu_model, r.num_gpus): r for r in Store(tmp_path / "ray").all()}
    assert by["H100", 0].status is RunStatus.COMPLETED
    assert "needs 1 GPUs on one node, but the most any alive node has is 0" in (
        by["H100", 1].failure_reason or ""
    )
    for gpus in (0, 1):
        reason = by["A100", gpus].failure_reason or ""
        assert "no alive node offers gpu_model:A100" in reason, reason
        assert "ray start --resources" in reason
    assert "1 measured, 0 already stored, 3 failed" in done.stdout


class _Lines:
    """A process's output, read as it comes (to act on a line mid-sweep)."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc, self.text = proc, ""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.text += line.decode(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not re.search(pattern, self.text):
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.text}"
            assert self.proc.poll() is None or re.search(pattern, self.text), self.text
            time.sleep(0.1)

    def finish(self, timeout_s: float = 180) -> int:
        code = self.proc.wait(timeout=timeout_s)
        self._thread.join(timeout=10)
        return code


def _slow_grid(cluster: NetnsCluster, tmp_path: Path, gpu_models: list[str]) -> Path:
    return _grid_file(
        tmp_path,
        models=["test-model"],
        tasks=["lm-arena-chat"],
        gpu_models=gpu_models,
        batch_sizes=[1, 2, 4],
        stop_at_unreachable_batch=False,
        base={
            **QUICK,
            "endpoint": cluster.sse_url,
            "num_requests": 8,  # all sent at once: 3 s a run
            "extra_body": {"sse_test": {"itl_s": 0.05, "chunks": 60}},
        },
    )


def test_ctrl_c_cancels_outstanding_runs_and_keeps_finished_ones(
    cluster: NetnsCluster, tmp_path: Path
) -> None:
    grid = _slow_grid(cluster, tmp_path, ["H100"])  # the head: 2 at a time, then the third
    store = tmp_path / "ray"
    cli = [*CLI, "sweep", str(grid), "--executor", "ray", "--ray-address", cluster.address]
    proc = cluster.popen(
        [*cli, "--store", str(store)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out = _Lines(proc)
    out.wait_for(r"started \[3/3\]")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    assert out.finish(timeout_s=60) == 130, out.text
    records = Store(store).all()
    done = [r for r in records if r.status is RunStatus.COMPLETED]
    cut = [r for r in records if r.status is RunStatus.FAILED]
    assert done and cut, out.text
    assert all("interrupted (Ctrl-C)" in (r.failure_reason or "") for r in cut)
    assert all((store / "runs" / r.run_id / "requests.parquet").is_file() for r in done)
    assert not [p.name for p in (store / "runs").iterdir() if p.name.startswith(".")]
    again = _sweep(cluster, grid, store)  # resumes what was cut short
    assert f"{len(cut)} measured, {len(done)} already stored, 0 failed" in again.stdout


def test_a_node_killed_mid_sweep_fails_its_runs_and_a_rerun_measures_only_those(
    cluster: NetnsCluster, tmp_path: Path
) -> None:
    grid = _slow_grid(cluster, tmp_path, ["H100", "B200"])
    store = tmp_path / "ray"
    cli = [*CLI, "sweep", str(grid), "--executor", "ray", "--ray-address", cluster.address]
    proc = cluster.popen(
        [*cli, "--store", str(store)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out = _Lines(proc)
    out.wait_for(r"started \[\d/6\] test-model lm-arena-chat B=\d \[B200\] on ")
    # At once: a run takes about 3 s, and on a loaded machine the line may be read late.
    time.sleep(0.2)
    cluster.kill_node(WORKER)
    try:
        assert out.finish() == 0, out.text
        records = {(r.gpu_model, r.max_num_seqs): r for r in Store(store).all()}
        assert len(records) == 6
        for b in (1, 2, 4):
            assert records["H100", b].status is RunStatus.COMPLETED
            lost = records["B200", b]
            assert lost.status is RunStatus.FAILED
            assert re.search(
                r"died while measuring|no alive node offers gpu_model:B200",
                (lost.failure_reason or ""),
            ), lost.failure_reason
        assert "died while measuring" in out.text
    finally:
        cluster.start_node(WORKER)  # the cluster as the other tests expect it
    again = _sweep(cluster, grid, store)
    assert "3 measured, 3 already stored, 0 failed" in again.stdout
    assert all(r.status is RunStatus.COMPLETED for r in Store(store).all())
    assert set(_started_on(again.stdout)) == {
        f"test-model lm-arena-chat B={b} [B200]" for b in (1, 2, 4)
    }
