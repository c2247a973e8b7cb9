"""The streaming test server on a maintained HTTP stack: uvicorn (with its h11 protocol)
serving a small ASGI app, so the load generator's client (llhttp) and this server do not
share one reading of HTTP, as they would against ``tests/sse_server.py`` alone.

It answers ``POST /v1/chat/completions`` and ``/v1/completions`` with the same vLLM-shaped
SSE events and the same subset of ``sse_test`` fields: ``chunks``, ``tokens_per_chunk``,
``usage``, ``finish_reason``, ``prompt_tokens``, ``status``, ``no_done``, ``json`` and
``headers`` (extra response headers; h11 closes the connection after a ``connection:
close``). ``/health`` answers 200. h11 rather than uvicorn's httptools protocol: httptools
is the client's parser.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import uvicorn

from sse_server import ServerStats, _ChunkMaker, _json_answer

BURST = 16  # events per body message, as the asyncio server writes them
Send = Any
Receive = Any


class ASGISSEServer:
    """uvicorn in a daemon thread on 127.0.0.1, port 0; ``url`` is ready after :meth:`start`.

    ``certfile``/``keyfile`` serve HTTPS; ``keep_alive_s`` is uvicorn's idle keep-alive
    timeout. ``stats`` counts requests and connections (distinct client addresses).
    """

    def __init__(
        self,
        *,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        keep_alive_s: float = 5.0,
    ) -> None:
        self.stats = ServerStats()
        self._clients: set[tuple[str, int]] = set()
        self._scheme = "https" if certfile else "http"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            http="h11",
            loop="asyncio",
            interface="asgi3",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=int(keep_alive_s),
            timeout_graceful_shutdown=2,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def start(self) -> ASGISSEServer:
        self._thread = threading.Thread(target=self._server.run, name="asgi-sse", daemon=True)
        self._thread.start()
        for _ in range(200):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.05)
        raise RuntimeError("uvicorn test server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        client = scope.get("client")
        if client is not None:
            self._clients.add(tuple(client))
            self.stats.connections = len(self._clients)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/health":
            await _answer(send, 200, b"", [])
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            await self._generate(json.loads(body), path.endswith("chat/completions"), send)
        else:
            await _answer(send, 404, b'{"detail":"Not Found"}', [])

    async def _generate(self, request: dict[str, Any], chat: bool, send: Send) -> None:
        self.stats.requests += 1
        self.stats.bodies.append(request)
        test = request.get("sse_test") or {}
        extra = [(k.encode(), str(v).encode()) for k, v in (test.get("headers") or {}).items()]
        if "status" in test:
            failure = b'{"error":{"message":"injected failure"}}'
            await _answer(send, int(test["status"]), failure, extra)
            return
        options = request.get("stream_options") or {}
        max_tokens = request.get("max_tokens")
        chunks = int(test.get("chunks", max_tokens or 8))
        per_chunk = int(test.get("tokens_per_chunk", 1))
        total = chunks * per_chunk
        prompt_tokens = int(test.get("prompt_tokens", 7))
        usage_on = test.get("usage", "auto") != "none"
        finish = test.get("finish_reason") or (
            "length" if max_tokens is not None and total >= max_tokens else "stop"
        )
        if test.get("json") or not request.get("stream"):
            await _answer(send, 200, _json_answer(chat, prompt_tokens, total, finish), extra)
            return
        continuous = usage_on and bool(options.get("continuous_usage_stats"))
        make = _ChunkMaker(chat, prompt_tokens, continuous)
        headers = [(b"content-type", b"text/event-stream"), *extra]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        words = " ".join(["tok"] * per_chunk)
        events = [make.sse("content", "", 0, None)] if chat else []
        for k in range(chunks):
            last = k == chunks - 1
            events.append(
                make.sse(
                    "content", words, (k + 1) * per_chunk, finish if last and not chat else None
                )
            )
        if chat:
            events.append(make.sse(None, "", total, finish))
        if usage_on and options.get("include_usage"):
            events.append(make.usage_only(total))
        if not test.get("no_done"):
            events.append(b"data: [DONE]\n\n")
        for start in range(0, len(events), BURST):
            piece = b"".join(events[start : start + BURST])
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0)  # let other streams interleave
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if status not in (204, 304) else b""})
