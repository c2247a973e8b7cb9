"""Sweeps: resumable, failure-tolerant, the 85% rule, Ctrl-C safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from joulelens.records import RunStatus
from joulelens.runner.sweep import SweepGrid, run_sweep
from joulelens.store import STORE_ENV, Store
from runner.conftest import ServerProcess

BASE = {
    "engine": "endpoint",
    "max_tokens": 20,
    "num_gpus": 0,
    "gpus": False,
    "idle_baseline_s": 0.2,
    "min_steady_state_s": 0.05,
    "extra_body": {"sse_test": {"itl_s": 0.01, "chunks": 15}},
}


def _grid(url: str, batches: list[int], **extra: object) -> SweepGrid:
    base = {**BASE, "endpoint": url, **extra}
    return SweepGrid(models=["test-model"], tasks=["lm-arena-chat"], batch_sizes=batches, base=base)


def test_sweep_is_resumable(tmp_store: Store, sse_url: str) -> None:
    grid = _grid(sse_url, [1, 2])
    first = run_sweep(grid, tmp_store)
    assert [r.max_num_seqs for r in first.completed] == [1, 2]
    again = run_sweep(grid, tmp_store)
    assert again.completed == [] and len(again.skipped) == 2
    assert len(tmp_store.query()) == 2


def test_sweep_stops_growing_the_batch_the_server_cannot_reach(
    tmp_store: Store, server_process: Callable[..., ServerProcess]
) -> None:
    server = server_process("--max-running", "2")
    longer = {"sse_test": {"itl_s": 0.01, "chunks": 40}}  # a steady state well past ramp gaps
    grid = _grid(server.url, [2, 8, 16], extra_body=longer, max_tokens=60)
    outcome = run_sweep(grid, tmp_store)
    b2, b8 = outcome.completed
    assert b2.stable, b2.unstable_reasons
    assert b8.stable is False
    assert any("low batch utilization" in r for r in b8.unstable_reasons)
    [group] = grid.groups()
    assert outcome.not_run == [group[-1].run_id()]


def test_failed_configuration_is_recorded_and_the_sweep_goes_on(
    tmp_store: Store, server_process: Callable[..., ServerProcess]
) -> None:
    server = server_process()
    paced = {"sse_test": {"itl_s": 0.05, "chunks": 30}}  # 1.5 s a request, all at once
    grid = _grid(server.url, [1, 2, 4], extra_body=paced, max_tokens=40, num_requests=8)

    class KillDuringSecond:
        def __init__(self) -> None:
            self.count = 0

        def __call__(self, config, store, **kw):  # type: ignore[no-untyped-def]
            from joulelens.runner import run_one

            self.count += 1
            if self.count != 2:
                return run_one(config, store, **kw)
            killer = threading.Timer(0.9, server.kill)  # mid-run; back up for the third
            killer.start()
            try:
                return run_one(config, store, **kw)
            finally:
                killer.join()
                server.start()

    outcome = run_sweep(grid, tmp_store, measure=KillDuringSecond())
    assert [r.max_num_seqs for r in outcome.completed] == [1, 4]
    [failed] = outcome.failed
    assert failed.status is RunStatus.FAILED and "stopped answering" in failed.failure_reason
    assert all(tmp_store.get(r.run_id) == r for r in outcome.completed)


def test_ctrl_c_keeps_finished_runs_and_leaves_no_partial_files(
    tmp_path: Path, server_process: Callable[..., ServerProcess]
) -> None:
    server = server_process()
    store_dir = tmp_path / "store"
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        "models: [test-model]\ntasks: [lm-arena-chat]\nbatch_sizes: [1, 2]\n"
        f"base: {{engine: endpoint, endpoint: '{server.url}', max_tokens: 400, num_gpus: 0,"
        " gpus: false, idle_baseline_s: 0.2, min_steady_state_s: 0.05,"
        " num_requests: 8, extra_body: {sse_test: {itl_s: 0.02, chunks: 300}}}\n"
    )
    env = {**os.environ, STORE_ENV: str(store_dir), "COLUMNS": "200"}
    cli = [sys.executable, "-c", "from joulelens.cli.app import main; main()"]
    proc = subprocess.Popen(
        [*cli, "sweep", str(sweep_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    runs = store_dir / "runs"
    while time.monotonic() < deadline:  # wait for the first run, then well into the second
        if runs.is_dir() and any((p / "run.json").is_file() for p in runs.iterdir()):
            break
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out.decode()
    store = Store(store_dir)
    records = {r.max_num_seqs: r for r in store.all()}
    assert records[1].status is RunStatus.COMPLETED
    assert records[2].status is RunStatus.FAILED
    assert "interrupted" in (records[2].failure_reason or "")
    assert not [p.name for p in runs.iterdir() if p.name.startswith(".")]
    assert (runs / records[1].run_id / "requests.parquet").is_file()


@pytest.mark.engines
@pytest.mark.slow
def test_cli_run_against_transformers_serve(tmp_path: Path) -> None:
    """`joulelens run --endpoint` against a real `transformers serve` with a tiny model."""
    from joulelens.engines.vllm_server import free_port
    from tiny_model import build_tiny_chat_model

    model = build_tiny_chat_model(tmp_path / "tiny")
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        STORE_ENV: str(tmp_path / "store"),
        "COLUMNS": "200",
    }
    serve = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("transformers")),
            "serve",
            str(model),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        cli = [sys.executable, "-c", "from joulelens.cli.app import main; main()"]
        result = subprocess.run(
            [
                *cli,
                "run",
                "--engine",
                "endpoint",
                "--endpoint",
                f"http://127.0.0.1:{port}",
                "--model",
                str(model),
                "--task",
                "lm-arena-chat",
                "--max-num-seqs",
                "2",
                "--num-requests",
                "8",
                "--max-tokens",
                "16",
                "--num-gpus",
                "0",
                "--no-gpus",
                "--idle-baseline-s",
                "0.5",
                "--min-steady-state-s",
                "0.1",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    [record] = Store(tmp_path / "store").all()
    assert record.status is RunStatus.COMPLETED
    assert record.energy_method.value == "estimated"
    assert record.num_completed_requests == 8
    assert record.energy_per_token_joules is not None and record.energy_per_token_joules > 0
    assert record.median_itl_ms is not None and record.median_ttft_ms is not None
    assert record.avg_batch_size is not None and record.avg_batch_size > 0
    # transformers serve has no /metrics: the batch comes from client-side counts.
    assert any("client-side counts" in w for w in record.warnings)
    assert record.avg_kv_cache_usage is None and "avg_kv_cache_usage" in record.missing
