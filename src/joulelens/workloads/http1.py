"""A small HTTP/1.1 client on asyncio protocols, just enough for streamed POSTs.

Framing is llhttp's (Node.js's C parser, through ``httptools``): each network read goes to
the parser inside ``data_received`` and comes back as body pieces, stamped with the time of
that read. Why not httpx: per streamed chunk httpx (via httpcore and h11) runs several
layers of Python generators and events; here a chunk costs a few microseconds, so the client
is never the bottleneck (see ``bench/bench_loadgen.py``). Keep-alive connections are reused
through :class:`ConnectionPool`, as long as the server's ``Connection`` and ``Keep-Alive``
headers allow; ``https`` URLs use TLS with the system's certificate authorities.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import Callable

import httptools

from joulelens.core.clock import now_s
from joulelens.workloads.config import Endpoint

BUFFERED_BODY_LIMIT = 16 * 1024 * 1024
HEAD_LIMIT = 64 * 1024
NO_BODY_STATUSES = (204, 304)

# Where the current request is.
_IDLE, _HEAD, _BODY, _DONE = range(4)

BodySink = Callable[[bytes, float], None]


class ResponseProtocol(asyncio.Protocol):
    """One connection; :meth:`start` sends a request and ``done`` resolves when it ends.

    Body bytes (decoded from the transfer framing) go to ``sink`` with the time of the read
    that delivered them; error responses and plain JSON answers are kept in ``body``
    instead. After ``done``: ``status``, ``error`` (``None`` if the response was complete),
    ``reusable`` (may carry another request), ``lost_before_response`` (the server closed the
    connection before answering, e.g. an idle keep-alive connection it was closing) and
    ``idle_limit_s`` (how long it may sit idle before reuse, from ``Keep-Alive: timeout``).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.done: asyncio.Future[None] | None = None
        self.sink: BodySink | None = None
        self.status = 0
        self.error: str | None = None
        self.received_any = False
        self.lost_before_response = False
        self.buffered = False
        self.last_rx_s = 0.0
        self.idle_since_s = 0.0
        self.idle_limit_s = math.inf
        self.reusable = False
        self.body = b""
        self._state = _IDLE
        self._parser: httptools.HttpResponseParser | None = None
        self._pieces: list[bytes] = []
        self._head_bytes = 0
        self._informational = False
        self._framed = False
        self._until_close = False
        self._server_allows_reuse = True

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._state in (_IDLE, _DONE):
            return
        if self._state == _BODY and self._until_close:
            self._complete(now_s())
            return
        reason = f": {exc}" if exc else ""
        self.lost_before_response = not self.received_any
        what = "connection dropped mid-stream" if self.received_any else "connection closed"
        self._fail(f"{what}{reason}")

    def data_received(self, data: bytes) -> None:
        t_s = now_s()
        self.last_rx_s = t_s
        if self._state in (_IDLE, _DONE):
            # Bytes nobody asked for: the connection is out of step, never reuse it.
            self.reusable = False
            self.close()
            return
        self.received_any = True
        assert self._parser is not None
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._malformed("the server switched protocols (HTTP 101)")
            return
        except httptools.HttpParserError as exc:
            self._malformed(str(exc) or type(exc).__name__)
            return
        pieces = self._pieces
        if pieces:
            self._deliver(pieces[0] if len(pieces) == 1 else b"".join(pieces), t_s)
            pieces.clear()
        if self._state == _HEAD:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT:
                self.abort("response head too large")

    # -- llhttp callbacks (run inside ``feed_data``) -----------------------------------

    def on_message_begin(self) -> None:
        if self._state != _HEAD:  # a second response after ours: the server is out of step
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._state != _HEAD:
            return
        name = name.lower()
        if name == b"content-type":
            self.buffered = b"json" in value.lower()
        elif name == b"keep-alive":
            self._keep_alive_params(value)
        elif _is_framing_header(name, value):
            self._framed = True

    def on_headers_complete(self) -> None:
        if self._state != _HEAD:
            return
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational; the real head follows
            self._informational = True
            return
        self.status = status
        self.buffered = self.buffered or status != 200
        self._state = _BODY
        # llhttp reads a body without Content-Length or chunked framing until the close.
        self._until_close = status not in NO_BODY_STATUSES and not self._framed

    def on_body(self, body: bytes) -> None:
        if self._state == _BODY:
            self._pieces.append(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._reset_head()
            return
        if self._state != _BODY:
            return
        assert self._parser is not None
        self._server_allows_reuse = self._server_allows_reuse and self._parser.should_keep_alive()
        if self._pieces:
            self._deliver(b"".join(self._pieces), self.last_rx_s)
            self._pieces.clear()
        self._complete(self.last_rx_s)

    # -- request lifecycle -------------------------------------------------------------

    def start(self, request: bytes, sink: BodySink) -> asyncio.Future[None]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.sink = sink
        self.status = 0
        self.error = None
        self.received_any = False
        self.lost_before_response = False
        self.reusable = False
        self.body = b""
        self._parser = httptools.HttpResponseParser(self)
        self._pieces.clear()
        self._server_allows_reuse = True
        self.idle_limit_s = math.inf
        self._reset_head()
        self.last_rx_s = now_s()
        self.transport.write(request)
        return self.done

    def abort(self, reason: str) -> None:
        """Fail the current request (timeout, cancellation) and drop the connection."""
        self._fail(reason)
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def _reset_head(self) -> None:
        self._state = _HEAD
        self._head_bytes = 0
        self._informational = False
        self.buffered = False
        self._framed = False
        self._until_close = False

    def _malformed(self, reason: str) -> None:
        if self._state == _DONE:  # the response was complete; only what followed is bad
            self.reusable = False
            self.close()
            return
        self._pieces.clear()
        self.abort(f"malformed response: {reason}")

    def _fail(self, reason: str) -> None:
        if self._state in (_IDLE, _DONE):
            return
        self._state = _DONE
        self.error = reason
        self.reusable = False
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _complete(self, t_s: float) -> None:
        self._state = _DONE
        self.reusable = self._server_allows_reuse and not self._until_close and not self.closed
        self.idle_since_s = t_s
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _deliver(self, data: bytes, t_s: float) -> None:
        if not self.buffered:
            assert self.sink is not None
            self.sink(data, t_s)
        elif len(self.body) < BUFFERED_BODY_LIMIT:
            self.body += data[: BUFFERED_BODY_LIMIT - len(self.body)]

    def _keep_alive_params(self, value: bytes) -> None:
        """``Keep-Alive: timeout=5, max=100``: idle seconds the server keeps the connection
        open, and requests it still takes on it."""
        for param in value.split(b","):
            key, _, number = param.strip().partition(b"=")
            key = key.strip().lower()
            try:
                if key == b"timeout":
                    # Half the server's window: a request written near the limit must still
                    # reach the server before its timer closes the connection.
                    self.idle_limit_s = float(number) / 2
                elif key == b"max" and int(number) <= 0:
                    self._server_allows_reuse = False
            except ValueError:
                continue


def _is_framing_header(name: bytes, value: bytes) -> bool:
    return name == b"content-length" or (
        name == b"transfer-encoding" and value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
    )


def encode_post(endpoint: Endpoint, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {endpoint.host_header}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ConnectionPool:
    """Idle keep-alive connections to one endpoint, reused newest first.

    Idle connections older than ``max_idle_s`` (or the half of the server's ``Keep-Alive:
    timeout``, if shorter) are dropped rather than reused: servers close idle keep-alive
    connections (uvicorn after 5 s) and a request written into a connection the server is
    closing fails without ever reaching it.
    """

    def __init__(self, endpoint: Endpoint, *, connect_timeout_s: float, max_idle_s: float = 2.0):
        self.endpoint = endpoint
        self.connect_timeout_s = connect_timeout_s
        self.max_idle_s = max_idle_s
        self._idle: list[ResponseProtocol] = []
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if endpoint.scheme == "https" else None
        )
        self.opened = 0

    async def acquire(self) -> tuple[ResponseProtocol, bool]:
        """A connection and whether it was reused (a reused one may turn out stale)."""
        t_s = now_s()
        while self._idle:
            proto = self._idle.pop()
            limit_s = min(self.max_idle_s, proto.idle_limit_s)
            if not proto.closed and t_s - proto.idle_since_s < limit_s:
                return proto, True
            proto.close()
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(
                ResponseProtocol,
                self.endpoint.host,
                self.endpoint.port,
                ssl=self._ssl,
                server_hostname=self.endpoint.host if self._ssl else None,
            ),
            self.connect_timeout_s,
        )
        self.opened += 1
        return proto, False

    def release(self, proto: ResponseProtocol) -> None:
        if proto.reusable and not proto.closed:
            self._idle.append(proto)
        else:
            proto.close()

    def close(self) -> None:
        for proto in self._idle:
            proto.close()
        self._idle.clear()
