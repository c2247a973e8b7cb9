"""``joulelens serve``: the report's views served live from the store.

Routes: ``/`` the page (same HTML as the file report, Plotly referenced instead of inlined),
``/static/plotly.min.js``, ``/api/version`` (a token that changes when runs are added or
rewritten, plus the run count) and ``/api/payload`` (the JSON payload). The page polls the
version and swaps in a new payload when it changes, so a running sweep shows up as it goes.

The version token comes from the run files (count and newest ``run.json`` mtime), so polling
never opens the DuckDB catalog; the catalog is read only when the token changed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joulelens.errors import InputError, StoreError
from joulelens.store import RunFilter, Store

LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_POLL_MS = 3000
_CATALOG_RETRIES = 5  # a sweep writing the catalog holds its lock for milliseconds


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


def _handler(live: LiveReport, poll_ms: int) -> type[BaseHTTPRequestHandler]:
    from joulelens.report.html import plotly_js_path, render_html

    class Handler(BaseHTTPRequestHandler):
        server_version = "joulelens"

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
            except (StoreError, InputError) as exc:
                body = json.dumps({"error": str(exc)}).encode()
                self._send(body, "application/json", HTTPStatus.SERVICE_UNAVAILABLE)

        def _send(
            self,
            body: bytes,
            content_type: str,
            status: HTTPStatus = HTTPStatus.OK,
            cache: str = "no-store",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the CLI prints the URL once; polling every few seconds is noise

    return Handler


def make_server(
    store_root: Path,
    *,
    host: str = LOCAL_HOST,
    port: int = DEFAULT_PORT,
    filters: RunFilter | None = None,
    poll_ms: int = DEFAULT_POLL_MS,
    title: str = "joulelens live report",
) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0 picks a free one); call ``serve_forever``."""
    live = LiveReport(Path(store_root), filters, title)
    live.payload()  # fail now, not on the first request, if the store cannot be read
    try:
        server = ThreadingHTTPServer((host, port), _handler(live, poll_ms))
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc}", field="--port") from exc
    server.daemon_threads = True
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"
