"""joulelens starting real vLLM (``--engine vllm``): failures. (Start, health, stop and the
records of good runs are checked on the sweep in ``test_vllm_sweep.py``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from joulelens.errors import EngineError
from joulelens.records import RunStatus
from joulelens.runner import run_one
from joulelens.store import STORE_ENV, Store
from vllm_helpers import run_config, vllm_processes

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _new_vllm_processes(before: set[int], timeout_s: float = 30.0) -> list[psutil.Process]:
    """vLLM processes that appeared since ``before`` and are still alive after a grace."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in vllm_processes() if p.pid not in before]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _cli(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, STORE_ENV: str(store), "COLUMNS": "200"}
    code = "from joulelens.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_bad_server_flag_fails_the_run_with_the_log_tail(
    vllm_command: str, tiny_model: Path, tmp_path: Path
) -> None:
    before = {p.pid for p in vllm_processes()}
    store = tmp_path / "store"
    result = _cli(
        "run",
        "--engine=vllm",
        f"--model={tiny_model}",
        "--task=lm-arena-chat",
        "--max-num-seqs=4",
        "--num-gpus=0",
        "--no-gpus",
        "--idle-baseline-s=0",
        f"--vllm-command={vllm_command}",
        "--vllm-arg=--no-such-flag",
        store=store,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # an engine failure
    assert "Traceback" not in result.stderr
    assert "exited with code" in result.stderr and "--no-such-flag" in result.stderr
    (failed,) = Store(store).all()
    assert failed.status is RunStatus.FAILED
    assert "--no-such-flag" in (failed.failure_reason or "")
    assert _new_vllm_processes(before) == []


class _KillServerWhenMeasuring:
    """Observer that kills the vLLM API server process (only it: joulelens must stop the
    rest of its process group) a while after the measurement started."""

    def __init__(self, after_s: float, spare_pid: int) -> None:
        self.after_s = after_s
        self.spare_pid = spare_pid  # the shared server, also a child of this process
        self.killed: int | None = None
        self.timer: threading.Timer | None = None

    def phase(self, text: str) -> None:
        if text == "measuring" and self.timer is None:
            self.timer = threading.Timer(self.after_s, self._kill)
            self.timer.start()

    def progress(self, done: int, total: int, output_tokens: int, power_w: float | None) -> None:
        pass

    def _kill(self) -> None:
        servers = [
            p
            for p in psutil.Process().children()
            if "vllm" in " ".join(p.cmdline()) and p.pid != self.spare_pid
        ]
        for server in servers:
            self.killed = server.pid
            os.kill(server.pid, signal.SIGKILL)


def test_server_killed_mid_run_fails_the_run_and_keeps_finished_ones(
    vllm_command: str, tiny_model: Path, tmp_store: Store, vllm_server
) -> None:
    earlier = run_one(
        run_config(tiny_model, engine="endpoint", endpoint=vllm_server.base_url, num_requests=16),
        tmp_store,
    )
    assert earlier.status is RunStatus.COMPLETED
    before = {p.pid for p in vllm_processes()}
    config = run_config(
        tiny_model, engine="vllm", vllm_command=vllm_command, num_requests=512, max_num_seqs=4
    )
    killer = _KillServerWhenMeasuring(after_s=2.0, spare_pid=vllm_server.process.pid)
    with pytest.raises(EngineError, match="exited"):
        run_one(config, tmp_store, observer=killer)
    assert killer.timer is not None
    killer.timer.join()
    assert killer.killed is not None
    failed = tmp_store.get(config.run_id())
    assert failed.status is RunStatus.FAILED
    assert "exited (code -9) during the run" in (failed.failure_reason or "")
    assert "requests failed" in (failed.failure_reason or "")
    assert tmp_store.get(earlier.run_id) == earlier
    assert not [p for p in tmp_store.runs_dir.iterdir() if p.name.startswith(".")]
    assert _new_vllm_processes(before) == []
