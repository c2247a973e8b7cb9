"""Responses no conforming server sends, from a server that writes exact bytes: each ends in
a clear error on the request (or a correct parse), never a hang and never an asyncio
"Fatal error" traceback. Runs are bounded in time and idle timeouts stay off (the default),
so a hang fails the test."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from joulelens.core.events import RequestTrace
from joulelens.workloads import LoadConfig, LoadRequest, LoadRun

BOUND_S = 5.0
BODY = b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
OK_LENGTH = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n"


@pytest.fixture(autouse=True)
def no_event_loop_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        yield
    client = threading.get_ident()  # the servers' threads may log their own shutdown
    assert [
        r.getMessage() for r in caplog.records if r.thread == client and r.levelno >= logging.ERROR
    ] == []


def run(url: str, count: int = 1) -> list[RequestTrace]:
    load = LoadRun([LoadRequest.chat("hi")] * count, LoadConfig(url, max_concurrency=1))
    asyncio.run(asyncio.wait_for(load.run(), BOUND_S))
    return load.traces


def with_length(extra_head: bytes, body: bytes = BODY) -> bytes:
    return OK_LENGTH % len(body) + extra_head + b"\r\n" + body


MALFORMED = {
    "repeated length in one field": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 62, 62\r\n\r\n" + BODY[:62],
        "malformed response: Invalid character in Content-Length",
    ),
    "garbage length": (
        b"HTTP/1.1 200 OK\r\ncontent-length: sixty-two\r\n\r\n" + BODY,
        "malformed response: Invalid character in Content-Length",
    ),
    "two length fields": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nxxxxx",
        "malformed response: Duplicate Content-Length",
    ),
    "bare LF line endings": (
        with_length(b"").replace(b"\r\n", b"\n"),
        "malformed response: Missing expected CR after response line",
    ),
    "folded header line": (
        with_length(b"x-note: first\r\n second\r\n"),
        "malformed response: Unexpected whitespace after header value",
    ),
    "CR inside a header value": (
        with_length(b"x-note: a\rb\r\n"),
        "malformed response: Missing expected LF after header value",
    ),
    "LF inside a header value": (
        with_length(b"x-note: a\nb\r\n"),
        "malformed response: Missing expected CR after header value",
    ),
    "NUL inside a header value": (
        with_length(b"x-note: a\x00b\r\n"),
        "malformed response: Invalid header value char",
    ),
    "bad status line": (b"HTTP/1.1 2x0 OK\r\n\r\n", "malformed response: Invalid status code"),
    "not HTTP at all": (b"\x16\x03\x01\x02\x00hello\r\n\r\n", None),
    "bad chunk size": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n" + BODY,
        "malformed response: Invalid character in chunk size",
    ),
    "length and chunked together": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n",
        "malformed response: Content-Length can't be present with Transfer-Encoding",
    ),
    "protocol switch": (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
        "malformed response: the server switched protocols (HTTP 101)",
    ),
}


@pytest.mark.parametrize("wire,error", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_response_is_a_clear_error(scripted, wire: bytes, error: str | None) -> None:
    trace = run(scripted([wire]))[0]
    assert trace.error is not None
    if error is None:
        assert trace.error.startswith("malformed response: ")
    else:
        assert trace.error == error
    assert trace.finished_s is None and trace.output_tokens == 0


def test_no_content_without_length_does_not_wait_for_a_body(scripted_server) -> None:
    server = scripted_server([b"HTTP/1.1 204 No Content\r\nserver: scripted\r\n\r\n"])
    traces = run(f"http://127.0.0.1:{server.port}", count=2)
    assert [t.error for t in traces] == ["HTTP 204: ", "HTTP 204: "]
    assert server.connections == 1  # the 204 was complete at its head: connection reused


def test_connection_close_is_honoured(scripted_server) -> None:
    # The scripted server would answer a second request on the same connection too.
    server = scripted_server([with_length(b"connection: close\r\n")])
    traces = run(f"http://127.0.0.1:{server.port}", count=2)
    assert all(t.ok and t.output_tokens == 1 for t in traces), [t.error for t in traces]
    assert server.connections == 2


def test_http_1_0_without_keep_alive_is_not_reused(scripted_server) -> None:
    server = scripted_server([with_length(b"").replace(b"HTTP/1.1", b"HTTP/1.0")])
    traces = run(f"http://127.0.0.1:{server.port}", count=2)
    assert all(t.ok for t in traces) and server.connections == 2


def test_bytes_after_the_response_make_the_connection_unusable(scripted_server) -> None:
    server = scripted_server([with_length(b"") + b"HTTP/1.1 200 OK\r\n"])
    traces = run(f"http://127.0.0.1:{server.port}", count=2)
    assert all(t.ok and t.output_tokens == 1 for t in traces)
    assert server.connections == 2


def test_response_head_too_large(scripted) -> None:
    wire = b"HTTP/1.1 200 OK\r\nx-pad: " + b"a" * 70_000  # and still no end of the head
    trace = run(scripted([wire[:30_000], wire[30_000:]]))[0]
    assert trace.error == "response head too large"


def test_head_cut_off_by_the_server(scripted) -> None:
    trace = run(scripted([b"HTTP/1.1 200 OK\r\ncontent-ty"], close=True))[0]
    assert trace.error is not None and trace.error.startswith("connection dropped mid-stream")
