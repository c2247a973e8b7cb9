"""Fixtures of the exporter tests: servers to watch and a real Prometheus server.

``served`` is the server under watch. Today it is the fast SSE test server
(tests/sse_server.py, vLLM's metric names); a real vLLM server (CPU build, started by
``scripts/setup-vllm``'s venv) plugs in as one more parameter that builds the same
:class:`~watch_helpers.Served` with plain chat requests and the served model name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watch_helpers import PrometheusServer, Served

from joulelens.workloads import LoadRequest
from sse_server import ServerOptions, SSEServer


def _sse_requests(n: int) -> list[LoadRequest]:
    # 40 tokens per request, one every 20 ms: a steady ~400 tokens/s at 8 in flight.
    test = {"chunks": 40, "itl_s": 0.02}
    return [LoadRequest.chat("hello", max_tokens=40, extra_body={"sse_test": test})] * n


@pytest.fixture(params=["sse"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The server the exporter watches (see the module docstring for adding real vLLM)."""
    assert request.param == "sse"
    server = SSEServer(ServerOptions(max_running=16, kv_capacity=32)).start()
    try:
        yield Served(server.url, None, _sse_requests, server.stop)
    finally:
        server.stop()


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
