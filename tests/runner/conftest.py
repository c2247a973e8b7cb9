"""Runner fixtures: SSE test servers in-thread and as killable subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from joulelens.runner import RunConfig
from sse_server import ServerOptions, SSEServer

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def sse_url() -> Iterator[str]:
    """A server that runs at most 4 requests at once (its max_num_seqs), the rest wait."""
    server = SSEServer(ServerOptions(max_running=4)).start()
    yield server.url
    server.stop()


class ServerProcess:
    """``python tests/sse_server.py`` on a fixed port, so it can be killed and restarted."""

    def __init__(self, port: int, *extra: str):
        self.port = port
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / "sse_server.py"), "--port", str(self.port), *self.extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("test SSE server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    made: list[ServerProcess] = []

    def make(*extra: str) -> ServerProcess:
        from joulelens.engines.vllm_server import free_port

        proc = ServerProcess(free_port(), *extra).start()
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.kill()


def endpoint_config(url: str, batch: int, **overrides: Any) -> RunConfig:
    """A quick endpoint run: CPU estimate only, short baseline and steady-state minimum."""
    fields: dict[str, Any] = {
        "engine": "endpoint",
        "endpoint": url,
        "model": "test-model",
        "task": "lm-arena-chat",
        "max_num_seqs": batch,
        "num_requests": 4 * batch,
        "max_tokens": 20,
        "num_gpus": 0,
        "gpus": False,
        "idle_baseline_s": 0.2,
        "min_steady_state_s": 0.05,
        "extra_body": {"sse_test": {"itl_s": 0.01, "chunks": 15}},
    }
    fields.update(overrides)
    return RunConfig.model_validate(fields)
