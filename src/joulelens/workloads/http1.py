"""A minimal HTTP/1.1 client on asyncio protocols, just enough for streamed POSTs.

Why not httpx: per streamed chunk httpx (via httpcore and h11) runs several layers of
Python generators and events; a protocol that decodes framing inside ``data_received``
costs a few microseconds per chunk, so the client is never the bottleneck (see
``bench/bench_loadgen.py``). It supports ``Content-Length``, ``chunked`` and
read-until-close bodies, keep-alive reuse through :class:`ConnectionPool`, and TLS.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from joulelens.core.clock import now_s
from joulelens.workloads.config import Endpoint

BUFFERED_BODY_LIMIT = 16 * 1024 * 1024

# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)

BodySink = Callable[[bytes, float], None]


class ResponseProtocol(asyncio.Protocol):
    """One connection; :meth:`start` sends a request and ``done`` resolves when it ends.

    Body bytes (decoded from the transfer framing) go to ``sink`` with the time of the read
    that delivered them; error responses and plain JSON answers are kept in ``body``
    instead. After ``done``: ``status``, ``error`` (``None`` if the response was complete),
    ``reusable`` (may carry another request), ``lost_before_response`` (the server closed the
    connection before answering, e.g. an idle keep-alive connection it was closing).
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
        self.reusable = False
        self._state = _DONE
        self._buf = b""
        self._left = 0
        self._keep_alive = True
        self.body = b""

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._state == _DONE:
            return
        if self._state == _UNTIL_CLOSE:
            self._complete(now_s())
            return
        reason = f": {exc}" if exc else ""
        self.lost_before_response = not self.received_any
        what = "connection dropped mid-stream" if self.received_any else "connection closed"
        self._fail(f"{what}{reason}")

    def data_received(self, data: bytes) -> None:
        t_s = now_s()
        self.last_rx_s = t_s
        self.received_any = True
        state = self._state
        if state == _CHUNK_DATA and not self._buf and len(data) < self._left:
            # The common case mid-chunk: the whole read is body, nothing to frame.
            self._left -= len(data)
            self._deliver(data, t_s)
            return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if state == _HEAD:
            rest = self._parse_head(data, t_s)
            if rest is None:
                return
            data = rest
            state = self._state
        if _CHUNK_SIZE <= state <= _TRAILER:
            self._parse_chunked(data, t_s)
        elif state == _LENGTH:
            if len(data) >= self._left:
                self._deliver(data[: self._left], t_s)
                self._complete(t_s)
            else:
                self._left -= len(data)
                self._deliver(data, t_s)
        elif state == _UNTIL_CLOSE:
            self._deliver(data, t_s)

    # -- request lifecycle -------------------------------------------------------------

    def start(self, request: bytes, sink: BodySink) -> asyncio.Future[None]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.sink = sink
        self.status = 0
        self.error = None
        self.received_any = False
        self.lost_before_response = False
        self.buffered = False
        self.reusable = False
        self.body = b""
        self._state = _HEAD
        self._buf = b""
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

    def _fail(self, reason: str) -> None:
        if self._state == _DONE:
            return
        self._state = _DONE
        self.error = reason
        self.reusable = False
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _complete(self, t_s: float) -> None:
        self._state = _DONE
        self.reusable = self._keep_alive and not self.closed
        self.idle_since_s = t_s
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _deliver(self, data: bytes, t_s: float) -> None:
        if not self.buffered:
            assert self.sink is not None
            self.sink(data, t_s)
        elif len(self.body) < BUFFERED_BODY_LIMIT:
            self.body += data[: BUFFERED_BODY_LIMIT - len(self.body)]

    # -- framing -----------------------------------------------------------------------

    def _parse_head(self, data: bytes, t_s: float) -> bytes | None:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > 65536:
                self.abort("response head too large")
            else:
                self._buf = data
            return None
        head, rest = data[:end], data[end + 4 :]
        lines = head.split(b"\r\n")
        parts = lines[0].split(None, 2)
        try:
            self.status = int(parts[1])
        except (IndexError, ValueError):
            self.abort(f"malformed status line: {lines[0][:100]!r}")
            return None
        if 100 <= self.status < 200:  # informational; the real head follows
            self._buf = b""
            return self._parse_head(rest, t_s) if rest else None
        length: int | None = None
        chunked = False
        self.buffered = self.status != 200
        self._keep_alive = parts[0] != b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-type":
                self.buffered = self.status != 200 or b"json" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                self._keep_alive = token != b"close" and (
                    self._keep_alive or token == b"keep-alive"
                )
        if chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._state = _LENGTH
            self._left = length
            if length == 0:
                self._complete(t_s)
                return None
        else:
            self._state = _UNTIL_CLOSE
            self._keep_alive = False
        return rest

    def _parse_chunked(self, data: bytes, t_s: float) -> None:
        pos = 0
        size = len(data)
        pieces: list[bytes] = []
        state = self._state
        while pos < size:
            if state == _CHUNK_DATA:
                take = min(self._left, size - pos)
                pieces.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if size - pos < 2:
                    break
                pos += 2
                state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    break
                try:
                    self._left = int(data[pos:eol].split(b";", 1)[0], 16)
                except ValueError:
                    self._state = state
                    self.abort(f"malformed chunk size: {data[pos:eol][:40]!r}")
                    return
                pos = eol + 2
                state = _CHUNK_DATA if self._left else _TRAILER
            else:  # _TRAILER: optional trailer fields, then an empty line
                if data[pos : pos + 2] == b"\r\n":
                    pos += 2
                    self._state = _DONE
                    if pieces:
                        self._deliver(b"".join(pieces), t_s)
                    self._complete(t_s)
                    return
                eol = data.find(b"\r\n\r\n", pos)
                if eol < 0:
                    break
                pos = eol + 4
                self._state = _DONE
                if pieces:
                    self._deliver(b"".join(pieces), t_s)
                self._complete(t_s)
                return
        self._state = state
        self._buf = data[pos:]
        if pieces:
            self._deliver(pieces[0] if len(pieces) == 1 else b"".join(pieces), t_s)


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

    Idle connections older than ``max_idle_s`` are dropped rather than reused: servers close
    idle keep-alive connections (uvicorn after 5 s) and a request written into a connection
    the server is closing fails without ever reaching it.
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
            if not proto.closed and t_s - proto.idle_since_s < self.max_idle_s:
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
