"""The live server on a real local port: page, payload, version token, refresh on new runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import httpx
import pytest

from joulelens.errors import InputError
from joulelens.records import RunRecord
from joulelens.report.server import make_server, server_url, store_token
from joulelens.store import RunFilter, Store


@pytest.fixture
def live_server(report_store: Store) -> Iterator[ThreadingHTTPServer]:
    server = make_server(report_store.root, port=0, poll_ms=300)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_binds_loopback_by_default(live_server: ThreadingHTTPServer) -> None:
    assert live_server.server_address[0] == "127.0.0.1"
    assert server_url(live_server).startswith("http://127.0.0.1:")


def test_routes(live_server: ThreadingHTTPServer) -> None:
    base = server_url(live_server)
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<script src="/static/plotly.min.js"></script>' in page.text
        assert '"poll_ms":300' in page.text
        js = client.get("/static/plotly.min.js")
        assert js.status_code == 200 and len(js.content) > 1_000_000
        version = client.get("/api/version").json()
        assert version["runs"] == 12
        payload = client.get("/api/payload").json()
        assert payload["token"] == version["token"] and payload["runs"]["n"] == 12
        assert client.get("/nope").status_code == 404


def test_new_runs_change_the_token_and_payload(
    live_server: ThreadingHTTPServer, report_store: Store, make_record: Callable[..., RunRecord]
) -> None:
    with httpx.Client(base_url=server_url(live_server), timeout=10) as client:
        before = client.get("/api/version").json()
        report_store.put(make_record(run_id="added-later", median_itl_ms=7.0))
        after = client.get("/api/version").json()
        assert after["runs"] == before["runs"] + 1
        assert after["token"] != before["token"]
        payload = client.get("/api/payload").json()
        assert payload["token"] == after["token"]
        assert "added-later" in payload["runs"]["cols"]["run_id"]


def test_token_ignores_staging_and_non_runs(tmp_store: Store) -> None:
    (tmp_store.runs_dir / ".x.staging").mkdir()
    (tmp_store.runs_dir / "not-a-run").mkdir()
    token, count = store_token(tmp_store.runs_dir)
    assert count == 0 and token == "0-0"


def test_filters_apply_to_the_live_view(report_store: Store) -> None:
    server = make_server(report_store.root, port=0, filters=RunFilter(kind="diffusion"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        payload = httpx.get(server_url(server) + "api/payload", timeout=10).json()
        assert payload["runs"]["n"] == 2
    finally:
        server.shutdown()
        server.server_close()


def test_port_in_use_is_a_clear_error(
    live_server: ThreadingHTTPServer, report_store: Store
) -> None:
    port = live_server.server_address[1]
    with pytest.raises(InputError, match="cannot listen"):
        make_server(report_store.root, port=port)
