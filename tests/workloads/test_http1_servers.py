"""The client against two HTTP stacks: the asyncio test server and uvicorn + h11 (the
``make_server`` fixture runs each test on both). Every run is bounded in time, so a response
the client cannot frame fails the test instead of hanging it."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from workload_helpers import chat

from joulelens.core.events import RequestTrace
from joulelens.workloads import LoadConfig, LoadRequest, LoadRun
from joulelens.workloads.config import Endpoint
from joulelens.workloads.http1 import ConnectionPool, ResponseProtocol, encode_post

BOUND_S = 10.0


@pytest.fixture(autouse=True)
def no_event_loop_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """asyncio logs "Fatal error: protocol.data_received() call failed" and the like at
    ERROR; none may appear."""
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        yield
    client = threading.get_ident()  # the servers' threads may log their own shutdown
    assert [
        r.getMessage() for r in caplog.records if r.thread == client and r.levelno >= logging.ERROR
    ] == []


def run(url: str, requests: list[LoadRequest], **fields: object) -> list[RequestTrace]:
    load = LoadRun(requests, LoadConfig(url, model="test-model", **fields))  # type: ignore[arg-type]
    asyncio.run(asyncio.wait_for(load.run(), BOUND_S))
    return load.traces


def test_streams_are_counted_exactly(make_server) -> None:
    server = make_server()
    traces = run(server.url, [chat(None, chunks=40, tokens_per_chunk=2)] * 3)
    for trace in traces:
        assert trace.ok, trace.error
        assert trace.output_tokens == 80 and sum(trace.chunk_tokens) == 80
        assert trace.input_tokens == 7 and trace.finish_reason == "stop"
        assert list(trace.chunk_times_s) == sorted(trace.chunk_times_s)
    assert server.stats.requests == 3


def test_keep_alive_connections_are_reused(make_server) -> None:
    server = make_server()
    traces = run(server.url, [chat(None, chunks=3)] * 12, max_concurrency=3)
    assert all(t.ok and t.output_tokens == 3 for t in traces)
    assert server.stats.requests == 12
    assert server.stats.connections == 3


def test_no_content_answer_is_an_error_and_the_connection_stays_usable(make_server) -> None:
    server = make_server()
    requests = [chat(status=204), chat(status=204), chat(None, chunks=3)]
    traces = run(server.url, requests, max_concurrency=1)
    assert [t.error for t in traces] == ["HTTP 204: ", "HTTP 204: ", None]
    assert traces[2].output_tokens == 3
    assert server.stats.connections == 1  # a 204 has no body to wait for


def test_error_status_keeps_its_body(make_server) -> None:
    server = make_server()
    trace = run(server.url, [chat(status=500)])[0]
    assert trace.error is not None and trace.error.startswith("HTTP 500: ")
    assert "injected failure" in trace.error and trace.output_tokens == 0


def test_unstreamed_json_answer(make_server) -> None:
    server = make_server()
    trace = run(server.url, [chat(None, chunks=5, json=True)])[0]
    assert trace.ok, trace.error
    assert list(trace.chunk_tokens) == [5] and trace.input_tokens == 7


def test_connection_close_from_the_server_means_a_new_connection(make_server) -> None:
    server = make_server()
    closing = chat(None, chunks=2, headers={"connection": "close"})
    traces = run(server.url, [closing] * 3, max_concurrency=1)
    assert all(t.ok and t.output_tokens == 2 for t in traces)
    assert server.stats.requests == 3 and server.stats.connections == 3


async def exchange(pool: ConnectionPool, **sse_test: object) -> tuple[ResponseProtocol, bool]:
    """One request through ``pool``; the protocol (after its response) and whether the
    connection was a reused one."""
    body = json.dumps({"model": "m", "stream": True, "messages": [], "sse_test": sse_test})
    endpoint = pool.endpoint
    message = encode_post(endpoint, endpoint.path_for("chat"), body.encode(), {})
    proto, reused = await pool.acquire()
    await asyncio.wait_for(proto.start(message, lambda data, t_s: None), BOUND_S)
    assert proto.error is None and proto.status == 200
    pool.release(proto)
    return proto, reused


def test_pool_honours_connection_close(make_server) -> None:
    server = make_server()

    async def main() -> list[bool]:
        pool = ConnectionPool(Endpoint.parse(server.url), connect_timeout_s=5)
        first, _ = await exchange(pool, chunks=1, headers={"connection": "close"})
        assert not first.reusable
        _, reused = await exchange(pool, chunks=1)
        _, reused_again = await exchange(pool, chunks=1)
        pool.close()
        return [reused, reused_again]

    assert asyncio.run(main()) == [False, True]


def test_pool_honours_keep_alive_timeout_and_max(make_server) -> None:
    server = make_server()

    async def main() -> list[bool]:
        pool = ConnectionPool(Endpoint.parse(server.url), connect_timeout_s=5)
        proto, _ = await exchange(pool, chunks=1, headers={"keep-alive": "timeout=2, max=50"})
        assert proto.idle_limit_s == 1.0  # half the server's window
        _, soon = await exchange(pool, chunks=1, headers={"keep-alive": "timeout=2"})
        await asyncio.sleep(1.2)
        _, late = await exchange(pool, chunks=1, headers={"keep-alive": "timeout=2, max=0"})
        _, after_max = await exchange(pool, chunks=1)
        pool.close()
        return [soon, late, after_max]

    # Reused within half the timeout; a new connection after it; none after max=0.
    assert asyncio.run(main()) == [True, False, False]


def test_https_with_a_local_certificate_authority(
    make_server, tls_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(tls=True)
    assert server.url.startswith("https://")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))
    traces = run(server.url, [chat(None, chunks=30, tokens_per_chunk=3)] * 4, max_concurrency=2)
    assert all(t.ok and t.output_tokens == 90 and sum(t.chunk_tokens) == 90 for t in traces)
    assert server.stats.connections == 2


def test_https_rejects_a_certificate_it_cannot_verify(make_server, tls_files) -> None:
    server = make_server(tls=True)
    trace = run(server.url, [chat(None, chunks=3)])[0]
    assert trace.error is not None and trace.error.startswith("connection failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in trace.error
    assert server.stats.requests == 0
