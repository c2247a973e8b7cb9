"""A small, fast OpenAI-compatible streaming server for tests and benchmarks.

Serves ``POST /v1/chat/completions`` and ``/v1/completions`` (SSE over chunked HTTP/1.1,
keep-alive), ``GET /health`` and ``GET /metrics`` (vLLM's Prometheus names, from a private
``prometheus_client`` registry, so counters carry ``_total``/``_created`` exactly as vLLM's
do). Each request picks its behaviour with an ``sse_test`` object in the body::

    chunks (int)            content chunks to send (default: max_tokens or 8)
    tokens_per_chunk (int)  tokens carried by each content chunk (default 1)
    reasoning (int)         leading chunks sent as reasoning deltas instead of content
    reasoning_field (str)   "reasoning_content" (default) or "reasoning"
    empty_every (int)       insert an empty-content delta after every k content chunks
    usage (str)             "auto" (follow stream_options, default) or "none"
    finish_reason (str)     default "length" when chunks == max_tokens else "stop"
    prompt_tokens (int)     reported prompt tokens (default 7)
    status (int)            answer with this HTTP status and a JSON error instead (204 and
                            304: no body, no Content-Length)
    headers (dict)          extra response headers; ``connection: close`` also makes the
                            server close the connection after the response
    malformed_at (int)      send a broken JSON line before content chunk k
    error_at (int)          send a ``{"error": ...}`` event before content chunk k, then end
    stall_at, stall_s       stop sending for stall_s seconds before content chunk k
    drop_at (int)           drop the connection before content chunk k (no terminator)
    ttft_s, itl_s           delay before the first chunk; between chunks (aligned to a
                            global grid of multiples of itl_s, like a batched decode step)
    no_done (bool)          omit the final ``data: [DONE]``
    json (bool)             ignore ``stream`` and answer with one JSON object
    preempt (bool)          count one preemption in /metrics

Run ``python tests/sse_server.py`` to serve in a separate process (prints the port).
``SSEServer(ssl=context)`` serves HTTPS. ``tests/asgi_sse_server.py`` serves the same
requests from uvicorn, so the client is also tested against a maintained HTTP stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import ssl as ssl_module
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MODEL = "test-model"
STARTED = int(time.time())
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclass
class ServerOptions:
    reject_continuous_usage: bool = False  # 400 on stream_options.continuous_usage_stats
    reject_stream_options: bool = False  # 400 on any stream_options
    metrics: bool = True  # False: /metrics answers 404
    metric_names: str = "new"  # "new" (kv_cache_usage_perc), "old" (gpu_cache_...), "both"
    engines: int = 1  # label sets engine="0".."n-1" (vLLM data parallel)
    max_running: int | None = None  # requests beyond this wait (num_requests_waiting)
    kv_capacity: int = 64  # running requests that fill the KV cache (usage = running / this)
    # Close a connection, unanswered, when its (n+1)-th request arrives: the race of a server
    # closing an idle keep-alive connection just as the client reuses it.
    drop_after_requests: int | None = None
    default_chunks: int = 8  # chunks for a request with neither sse_test.chunks nor max_tokens
    # Accepted Authorization header values for /v1/* and /metrics; None: no auth required.
    authorization: frozenset[str] | None = None


@dataclass
class ServerStats:
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0
    connections: int = 0
    received_s: list[float] = field(default_factory=list)  # time.monotonic of each POST
    bodies: list[dict[str, Any]] = field(default_factory=list)
    authorized: dict[str, int] = field(default_factory=dict)  # path -> requests let through


class _Metrics:
    def __init__(self, options: ServerOptions) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        r = self.registry
        new = options.metric_names in ("new", "both")
        old = options.metric_names in ("old", "both")
        self.running = Gauge("vllm:num_requests_running", "running", labels, registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "waiting", labels, registry=r)
        self.kv = [
            Gauge(name, "KV-cache usage. 1 means 100 percent usage.", labels, registry=r)
            for name, on in (("vllm:kv_cache_usage_perc", new), ("vllm:gpu_cache_usage_perc", old))
            if on
        ]
        self.preemptions = Counter("vllm:num_preemptions", "preemptions", labels, registry=r)
        self.generation = Counter("vllm:generation_tokens", "tokens", labels, registry=r)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds", "ttft", labels, buckets=TTFT_BUCKETS, registry=r
        )
        itl_names = (["vllm:inter_token_latency_seconds"] if new else []) + (
            ["vllm:time_per_output_token_seconds"] if old else []
        )
        self.itl = [Histogram(n, "itl", labels, buckets=ITL_BUCKETS, registry=r) for n in itl_names]
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds", "e2e", labels, buckets=E2E_BUCKETS, registry=r
        )
        self.gen_hist = Histogram(
            "vllm:request_generation_tokens", "gen", labels, buckets=TOKEN_BUCKETS, registry=r
        )
        self.engines = [(MODEL, str(i)) for i in range(options.engines)]
        for engine in self.engines:  # make every series exist from the start, as vLLM does
            self.running.labels(*engine).set(0)
            self.waiting.labels(*engine).set(0)
            self.preemptions.labels(*engine)
            for gauge in self.kv:
                gauge.labels(*engine).set(0)


class SSEServer:
    """The server on its own event loop in a daemon thread; ``url`` is ``http://127.0.0.1:port``."""

    def __init__(
        self,
        options: ServerOptions | None = None,
        port: int = 0,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self.options = options or ServerOptions()
        self.stats = ServerStats()
        self._port = port
        self._ssl = ssl
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._metrics = _Metrics(self.options)
        self._running = [0] * self.options.engines
        self._waiting = [0] * self.options.engines
        self._slots: asyncio.Semaphore | None = None
        self._steppers: dict[float, _Stepper] = {}
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> SSEServer:
        self._thread = threading.Thread(target=self._serve_thread, name="sse-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test SSE server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._shutdown)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> SSEServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_thread(self) -> None:
        asyncio.run(self.serve())

    async def serve(self, announce: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        if self.options.max_running:
            self._slots = asyncio.Semaphore(self.options.max_running)
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self._port, backlog=4096, ssl=self._ssl
        )
        if announce:
            print(self.port, flush=True)
        self._ready.set()
        async with self._server:
            with contextlib.suppress(asyncio.CancelledError):
                await self._server.serve_forever()

    def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in asyncio.all_tasks():
            task.cancel()

    # -- HTTP ------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.stats.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if served == self.options.drop_after_requests:
                    writer.transport.abort()
                    break
                served += 1
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                if not self._authorized(path, headers):
                    keep = _respond(writer, 401, b'{"error":{"message":"unauthorized"}}')
                else:
                    keep = await self._route(method, path, body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # shutdown: a stalled stream is cut off; nothing to report
        finally:
            self._writers.discard(writer)
            writer.close()

    def _authorized(self, path: str, headers: dict[str, str]) -> bool:
        accepted = self.options.authorization
        if accepted is None or path == "/health":
            return True
        if headers.get("authorization") not in accepted:
            return False
        self.stats.authorized[path] = self.stats.authorized.get(path, 0) + 1
        return True

    async def _route(self, method: str, path: str, body: bytes, w: asyncio.StreamWriter) -> bool:
        if method == "GET" and path == "/health":
            return _respond(w, 200, b"", "text/plain")
        if method == "GET" and path == "/metrics":
            if not self.options.metrics:
                return _respond(w, 404, b'{"detail":"Not Found"}')
            self._publish_gauges()
            return _respond(w, 200, generate_latest(self._metrics.registry), "text/plain")
        if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            request = json.loads(body)
            return await self._generate(request, path.endswith("chat/completions"), w)
        return _respond(w, 404, b'{"detail":"Not Found"}')

    def _publish_gauges(self) -> None:
        m = self._metrics
        for i, engine in enumerate(m.engines):
            m.running.labels(*engine).set(self._running[i])
            m.waiting.labels(*engine).set(self._waiting[i])
            for gauge in m.kv:
                gauge.labels(*engine).set(min(1.0, self._running[i] / self.options.kv_capacity))

    # -- generation ------------------------------------------------------------------

    async def _generate(self, request: dict[str, Any], chat: bool, w: asyncio.StreamWriter) -> bool:
        stats = self.stats
        stats.requests += 1
        stats.received_s.append(time.monotonic())
        if len(stats.bodies) < 1000:
            stats.bodies.append(request)
        test = request.get("sse_test") or {}
        options = request.get("stream_options") or {}
        if self.options.reject_stream_options and "stream_options" in request:
            return _respond(w, 400, _pydantic_error("stream_options"))
        if self.options.reject_continuous_usage and "continuous_usage_stats" in options:
            return _respond(w, 400, _pydantic_error("stream_options.continuous_usage_stats"))
        extra = test.get("headers") or {}
        head = "".join(f"{name}: {value}\r\n" for name, value in extra.items()).encode()
        keep = all(f"{n}: {v}".lower() != "connection: close" for n, v in extra.items())
        if "status" in test:
            failure = b'{"error":{"message":"injected failure"}}'
            return _respond(w, int(test["status"]), failure, extra=head) and keep
        engine = stats.requests % self.options.engines
        self._waiting[engine] += 1
        if self._slots is not None:
            await self._slots.acquire()
        self._waiting[engine] -= 1
        self._running[engine] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._stream(request, test, options, chat, engine, w, head) and keep
        finally:
            stats.in_flight -= 1
            self._running[engine] -= 1
            if self._slots is not None:
                self._slots.release()

    async def _stream(
        self,
        request: dict[str, Any],
        test: dict[str, Any],
        options: dict[str, Any],
        chat: bool,
        engine: int,
        w: asyncio.StreamWriter,
        head: bytes = b"",
    ) -> bool:
        t0 = time.monotonic()
        max_tokens = request.get("max_tokens", request.get("max_completion_tokens"))
        chunks = int(test.get("chunks", max_tokens or self.options.default_chunks))
        per_chunk = int(test.get("tokens_per_chunk", 1))
        total = chunks * per_chunk
        prompt_tokens = int(test.get("prompt_tokens", 7))
        usage_on = test.get("usage", "auto") != "none"
        continuous = usage_on and bool(options.get("continuous_usage_stats"))
        final_usage = usage_on and bool(options.get("include_usage"))
        finish = test.get("finish_reason") or (
            "length" if max_tokens is not None and total >= max_tokens else "stop"
        )
        if test.get("json") or not request.get("stream"):
            return _respond(w, 200, _json_answer(chat, prompt_tokens, total, finish), extra=head)
        special = {test.get(key) for key in ("drop_at", "stall_at", "malformed_at", "error_at")}
        w.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n" + head + b"\r\n"
        )
        make = _ChunkMaker(chat, prompt_tokens, continuous)
        reasoning = int(test.get("reasoning", 0))
        reasoning_field = test.get("reasoning_field", "reasoning_content")
        empty_every = int(test.get("empty_every", 0))
        itl_s = float(test.get("itl_s", 0.0))
        burst = int(test.get("burst", 16))
        words = " ".join(["tok"] * per_chunk)
        out: list[bytes] = []  # framed events not yet written: one write per burst

        def flush() -> None:
            if out:
                w.write(b"".join(out))
                out.clear()

        if chat:
            out.append(make.event("content", "", 0, None))
        if test.get("ttft_s"):
            flush()
            await asyncio.sleep(float(test["ttft_s"]))
        first_s = None
        sent = 0
        if itl_s and special == {None} and chunks > 1:
            # Paced: a shared stepper writes every stream's next chunk once per step.
            events = []
            for k in range(chunks):
                sent += per_chunk
                name = reasoning_field if (chat and k < reasoning) else "content"
                last = k == chunks - 1
                events.append(make.event(name, words, sent, finish if last and not chat else None))
            out.append(events[0])
            flush()
            first_s = time.monotonic()
            stepper = self._steppers.get(itl_s)
            if stepper is None:
                stepper = self._steppers[itl_s] = _Stepper(itl_s)
            await stepper.add(w, iter(events[1:]))
            chunks = 0  # all sent; fall through to the tail
        for k in range(chunks):
            if k in special:
                flush()
                if k == test.get("drop_at"):
                    w.transport.abort()
                    return False
                if k == test.get("stall_at"):
                    await asyncio.sleep(float(test.get("stall_s", 1.0)))
                if k == test.get("malformed_at"):
                    _send(w, b'data: {"choices": [{"delta": {"content": "x"\n\n')
                if k == test.get("error_at"):
                    _send(w, b'data: {"error": {"message": "engine died", "code": 500}}\n\n')
                    _send(w, b"data: [DONE]\n\n")
                    w.write(b"0\r\n\r\n")
                    return True
            if k and itl_s:
                flush()
                await asyncio.sleep(itl_s - time.monotonic() % itl_s)
            field_name = reasoning_field if (chat and k < reasoning) else "content"
            sent += per_chunk
            last = k == chunks - 1
            out.append(make.event(field_name, words, sent, finish if last and not chat else None))
            if first_s is None:
                first_s = time.monotonic()
            if empty_every and (k + 1) % empty_every == 0 and not last:
                out.append(make.event("content", "", sent, None))
            if itl_s:
                flush()
            elif k % burst == burst - 1:
                flush()
                await w.drain()
                await asyncio.sleep(0)  # let other streams interleave, like a batched step
        if chat:
            out.append(make.event(None, "", sent, finish))
        if final_usage:
            out.append(_framed(make.usage_only(sent)))
        if not test.get("no_done"):
            out.append(_framed(b"data: [DONE]\n\n"))
        out.append(b"0\r\n\r\n")
        # Metrics first, so a scrape after the client has seen the end includes this request.
        self._observe(test, engine, t0, first_s, sent)
        flush()
        await w.drain()
        return True

    def _observe(
        self, test: dict[str, Any], engine: int, t0: float, first_s: float | None, sent: int
    ) -> None:
        m = self._metrics
        labels = m.engines[engine]
        end_s = time.monotonic()
        if first_s is not None:
            m.ttft.labels(*labels).observe(first_s - t0)
            if sent > 1:
                for hist in m.itl:
                    hist.labels(*labels).observe((end_s - first_s) / (sent - 1))
        m.e2e.labels(*labels).observe(end_s - t0)
        m.gen_hist.labels(*labels).observe(sent)
        m.generation.labels(*labels).inc(sent)
        if test.get("preempt"):
            m.preemptions.labels(*labels).inc()


class _Stepper:
    """One timer for all paced streams: each step writes the next chunk of every stream, as
    a batched decode step does, instead of one timer wake-up per stream and chunk."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.streams: list[tuple[asyncio.StreamWriter, Iterator[bytes], asyncio.Future[None]]] = []
        self.task: asyncio.Task[None] | None = None

    def add(self, w: asyncio.StreamWriter, chunks: Iterator[bytes]) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        self.streams.append((w, chunks, done))
        if self.task is None:
            self.task = asyncio.create_task(self.run())
        return done

    async def run(self) -> None:
        while self.streams:
            await asyncio.sleep(self.step_s - time.monotonic() % self.step_s)
            alive = []
            for entry in self.streams:
                w, chunks, done = entry
                piece = next(chunks, None)
                if piece is None or w.transport.is_closing():
                    if not done.done():
                        done.set_result(None)
                    continue
                w.write(piece)
                alive.append(entry)
            self.streams = alive
        self.task = None


class _ChunkMaker:
    """vLLM-shaped chunk JSON from string templates; framed events are cached, so a
    benchmark's server spends about a microsecond per chunk."""

    def __init__(self, chat: bool, prompt_tokens: int, continuous: bool) -> None:
        self.chat = chat
        self.prompt_tokens = prompt_tokens
        self.continuous = continuous

    def event(self, field: str | None, text: str, completion: int, finish: str | None) -> bytes:
        """One framed chunk: ``{field: text}`` delta (chat; ``None`` = empty delta) or text."""
        return _event(
            self.chat, self.prompt_tokens, self.continuous, field, text, completion, finish
        )

    def sse(self, field: str | None, text: str, completion: int, finish: str | None) -> bytes:
        """:meth:`event` without the chunked framing (for a server that frames itself)."""
        return _sse_event(
            self.chat, self.prompt_tokens, self.continuous, field, text, completion, finish
        )

    def usage_only(self, completion: int) -> bytes:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        usage = _usage(self.prompt_tokens, completion)
        return f"{_head(kind)}],{usage}}}\n\n".encode()


def _head(kind: str) -> str:
    fields = f'"id":"cmpl-test","object":"{kind}","created":{STARTED},"model":"{MODEL}"'
    return f'data: {{{fields},"choices":['


def _usage(prompt_tokens: int, completion: int) -> str:
    total = prompt_tokens + completion
    return (
        f'"usage":{{"prompt_tokens":{prompt_tokens},"total_tokens":{total},'
        f'"completion_tokens":{completion}}}'
    )


@functools.lru_cache(maxsize=1 << 16)
def _event(*key: Any) -> bytes:
    return _framed(_sse_event(*key))


@functools.lru_cache(maxsize=1 << 16)
def _sse_event(
    chat: bool,
    prompt_tokens: int,
    continuous: bool,
    field: str | None,
    text: str,
    completion: int,
    finish: str | None,
) -> bytes:
    reason = "null" if finish is None else f'"{finish}"'
    if chat:
        delta = json.dumps({field: text} if field else {})
        choice = f'{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{reason}}}'
    else:
        choice = f'{{"index":0,"text":{json.dumps(text)},"logprobs":null,"finish_reason":{reason}}}'
    usage = "," + _usage(prompt_tokens, completion) if continuous else ""
    kind = "chat.completion.chunk" if chat else "text_completion"
    return f"{_head(kind)}{choice}]{usage}}}\n\n".encode()


def _framed(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def _send(w: asyncio.StreamWriter, event: bytes) -> None:
    w.write(_framed(event))


def _respond(
    w: asyncio.StreamWriter,
    status: int,
    body: bytes,
    ctype: str = "application/json",
    extra: bytes = b"",
) -> bool:
    reasons = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized"}
    reason = {**reasons, 404: "Not Found"}.get(status, "Error")
    if status in (204, 304):  # no body, and no framing for one
        w.write(f"HTTP/1.1 {status} {reason}\r\n".encode() + extra + b"\r\n")
        return True
    w.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\n"
        f"content-length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )
    return True


def _pydantic_error(loc: str) -> bytes:
    message = f"1 validation error: {loc}: Extra inputs are not permitted"
    return json.dumps({"object": "error", "message": message, "type": "BadRequestError"}).encode()


def _json_answer(chat: bool, prompt_tokens: int, total: int, finish: str) -> bytes:
    text = " ".join(["tok"] * total)
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": total}
    return json.dumps({"id": "x", "choices": [choice], "usage": usage}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--engines", type=int, default=1)
    parser.add_argument("--max-running", type=int, default=None)
    parser.add_argument("--chunks", type=int, default=8, help="default chunks per request")
    args = parser.parse_args()
    options = ServerOptions(
        engines=args.engines, max_running=args.max_running, default_chunks=args.chunks
    )
    asyncio.run(SSEServer(options, port=args.port).serve(announce=True))


if __name__ == "__main__":
    main()
