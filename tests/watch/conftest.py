"""Fixtures of the exporter tests: servers to watch and a real Prometheus server.

``served`` is the server under watch: the fast SSE test server (tests/sse_server.py, vLLM's
metric names), and real vLLM (its CPU build from ``scripts/setup-vllm``, serving the tiny
model; skipped with the reason where it is not installed). Each test gets its own server,
since tests make it vanish.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watch_helpers import PrometheusServer, Served

from joulelens.workloads import LoadRequest
from sse_server import ServerOptions, SSEServer
from vllm_helpers import tiny_vllm_server


def _sse_requests(n: int) -> list[LoadRequest]:
    # 40 tokens per request, one every 20 ms: a steady ~400 tokens/s at 8 in flight.
    test = {"chunks": 40, "itl_s": 0.02}
    return [LoadRequest.chat("hello", max_tokens=40, extra_body={"sse_test": test})] * n


def _vllm_requests(n: int) -> list[LoadRequest]:
    # Plain chat: the tiny random model streams until EOS or the cap.
    return [LoadRequest.chat("Tell me about the sea.", max_tokens=64)] * n


@pytest.fixture(params=["sse", pytest.param("vllm", marks=[pytest.mark.vllm, pytest.mark.slow])])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """The server the exporter watches (see the module docstring)."""
    if request.param == "sse":
        server = SSEServer(ServerOptions(max_running=16, kv_capacity=32)).start()
        try:
            yield Served(server.url, None, _sse_requests, server.stop)
        finally:
            server.stop()
        return
    command = request.getfixturevalue("vllm_command")
    model = request.getfixturevalue("tiny_model")
    with tiny_vllm_server(command, model, tmp_path / "vllm.log") as vllm:
        yield Served(vllm.base_url, str(model), _vllm_requests, vllm.stop)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """``prometheus(["127.0.0.1:PORT"])`` starts Debian's Prometheus scraping those targets
    every second; stopped at teardown. Skipped (with the reason) where it is not installed."""
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus is not installed (bash scripts/setup-prometheus)")
    started: list[PrometheusServer] = []

    def start(targets: list[str], interval: str = "1s") -> PrometheusServer:
        workdir = tmp_path / f"prometheus-{len(started)}"
        workdir.mkdir()
        server = PrometheusServer(workdir, targets, interval)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
