"""``joulelens serve``: the report's views served live from the store.

Routes: ``/`` the page (same HTML as the file report, Plotly referenced instead of inlined),
``/static/plotly.min.js``, ``/api/version`` (a token that changes when runs are added or
rewritten, plus the run count) and ``/api/payload`` (the JSON payload). The page polls the
version and swaps in a new payload when it changes, so a running sweep shows up as it goes.

The version token comes from the run files (count and newest ``run.json`` mtime), so polling
never opens the DuckDB catalog; the catalog is read only when the token changed.

The server guards itself: a connection must send its request head within
``header_timeout_s``, at most ``max_connections`` are served at once (more are answered
503 at once and closed), and a client that goes away mid-answer is no error worth a word.
Error answers never carry the store's paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joulelens.errors import InputError, JoulelensError, StoreError
from joulelens.store import RunFilter, Store

LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_POLL_MS = 3000
HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 32
_CATALOG_RETRIES = 5  # a sweep writing the catalog holds its lock for milliseconds
# Clients that hang up (a closed tab, a killed poller) surface as these; nothing to report.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 29\r\nConnection: close\r\n\r\n"
    b'{"error": "too many clients"}'
)


def store_token(runs_dir: Path) -> tuple[str, int]:
    """(token, run count) from the run files: cheap enough to compute on every poll."""
    count, newest_ns = 0, 0
    try:
        entries = list(os.scandir(runs_dir))
    except OSError as exc:
        raise StoreError(f"cannot list {runs_dir}: {exc}") from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            mtime_ns = os.stat(os.path.join(entry.path, "run.json")).st_mtime_ns
        except OSError:
            continue  # not a run directory, or being replaced right now
        count += 1
        newest_ns = max(newest_ns, mtime_ns)
    return f"{count}-{newest_ns}", count


@dataclass
class LiveReport:
    """The payload for the current state of the store, rebuilt only when the token changes."""

    store_root: Path
    filters: RunFilter | None = None
    title: str = "joulelens live report"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _token: str | None = None
    _payload_bytes: bytes = b""
    _payload: dict[str, Any] | None = None

    def version(self) -> dict[str, Any]:
        token, count = store_token(self.store_root / "runs")
        return {"token": token, "runs": count}

    def payload(self) -> tuple[dict[str, Any], bytes]:
        from joulelens.report.html import payload_json
        from joulelens.report.payload import build_payload

        with self._lock:
            token, _ = store_token(self.store_root / "runs")
            if token != self._token or self._payload is None:
                payload = self._build(build_payload, token)
                self._payload, self._token = payload, token
                self._payload_bytes = payload_json(payload).encode()
            return self._payload, self._payload_bytes

    def _build(self, build: Any, token: str) -> dict[str, Any]:
        for attempt in range(_CATALOG_RETRIES):
            try:
                payload: dict[str, Any] = build(
                    Store(self.store_root), self.filters, title=self.title
                )
                payload["token"] = token
                return payload
            except StoreError:
                if attempt == _CATALOG_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")


class GuardedServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them; quiet on hang-ups."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: a burst of clients is not dropped

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int):
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _GONE):
            return
        print(f"joulelens serve: {type(exc).__name__}: {exc}", file=sys.stderr)


def _handler(
    live: LiveReport, poll_ms: int, header_timeout_s: float
) -> type[BaseHTTPRequestHandler]:
    from joulelens.report.html import plotly_js_path, render_html

    class Handler(BaseHTTPRequestHandler):
        server_version = "joulelens"
        timeout = header_timeout_s  # per socket operation: a stalled client is cut off

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path in ("/", "/index.html"):
                    payload, _ = live.payload()
                    live_cfg = {
                        "version_url": "/api/version",
                        "payload_url": "/api/payload",
                        "poll_ms": poll_ms,
                    }
                    page = render_html(payload, plotly_src="/static/plotly.min.js", live=live_cfg)
                    self._send(page.encode(), "text/html; charset=utf-8")
                elif path == "/api/version":
                    self._send(json.dumps(live.version()).encode(), "application/json")
                elif path == "/api/payload":
                    self._send(live.payload()[1], "application/json")
                elif path == "/static/plotly.min.js":
                    self._send(
                        plotly_js_path().read_bytes(),
                        "text/javascript; charset=utf-8",
                        cache="public, max-age=86400",
                    )
                else:
                    self._send(b'{"error": "not found"}', "application/json", HTTPStatus.NOT_FOUND)
            except _GONE:
                raise
            except JoulelensError as exc:
                # The terminal gets the whole story; the page gets no paths of this machine.
                print(f"joulelens serve: {exc}", file=sys.stderr)
                body = json.dumps({"error": _public_message(exc, live.store_root)}).encode()
                self._send(body, "application/json", HTTPStatus.SERVICE_UNAVAILABLE)

        def _send(
            self,
            body: bytes,
            content_type: str,
            status: HTTPStatus = HTTPStatus.OK,
            cache: str = "no-store",
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", cache)
                self.end_headers()
                self.wfile.write(body)
            except _GONE:
                self.close_connection = True  # the client left; nobody to tell

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the CLI prints the URL once; polling every few seconds is noise

    return Handler


def _public_message(exc: Exception, root: Path) -> str:
    text = str(exc).replace(str(root.resolve()), "STORE").replace(str(root), "STORE")
    return text.replace(str(Path.home()), "~")


def make_server(
    store_root: Path,
    *,
    host: str = LOCAL_HOST,
    port: int = DEFAULT_PORT,
    filters: RunFilter | None = None,
    poll_ms: int = DEFAULT_POLL_MS,
    title: str = "joulelens live report",
    header_timeout_s: float = HEADER_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0 picks a free one); call ``serve_forever``."""
    live = LiveReport(Path(store_root), filters, title)
    live.payload()  # fail now, not on the first request, if the store cannot be read
    try:
        server = GuardedServer(
            (host, port), _handler(live, poll_ms, header_timeout_s), max_connections
        )
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc}", field="--port") from exc
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"
