"""Fixtures for the workload tests: the fast SSE test server (tests/sse_server.py) on port 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sse_server import ServerOptions, SSEServer

ServerFactory = Callable[..., SSEServer]


@pytest.fixture
def make_sse_server() -> Iterator[ServerFactory]:
    """``make_sse_server(**ServerOptions fields)`` starts a server; all stop at teardown."""
    servers: list[SSEServer] = []

    def make(**options: Any) -> SSEServer:
        server = SSEServer(ServerOptions(**options)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sse_server(make_sse_server: ServerFactory) -> SSEServer:
    """A default server: honours stream_options, serves /metrics with one engine."""
    return make_sse_server()
