"""Secrets reach the servers that need them and nothing joulelens stores, exports or shows.

Distinct secrets are planted in every way one can come in: server flags (``--api-key``,
``--hf-token``), user info in endpoint and import URLs, the endpoint API key from the
environment (default and named variable), secret-looking environment variables and server
log lines. Then every file of the store, the catalog, the exports and the report are
searched for each of them.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ingest.leaderboard_fixtures import write_snapshot
from joulelens.cli.app import app
from joulelens.errors import EngineError
from joulelens.records import RunStatus
from joulelens.runner import RunConfig, run_one
from joulelens.store import Store
from runner.conftest import endpoint_config
from sse_server import ServerOptions, SSEServer

TESTS = Path(__file__).resolve().parents[1]
SECRETS = {
    "flag": "flagSecret-1f2e3d4c",  # --api-key VALUE (plain text, not token-shaped)
    "hf": "hf_QwErTy1234567890AbCdEfGh",  # --hf-token=VALUE
    "url": "urlPass-9a8b7c6d",  # http://user:VALUE@host (endpoint)
    "import": "importPass-77aa66bb",  # http://user:VALUE@host (leaderboard import)
    "env_key": "sk-proj-envKey1234567890abcdef",  # $OPENAI_API_KEY
    "named_key": "namedKey-0c0d0e0f",  # --api-key-env MY_ENDPOINT_TOKEN
    "env": "dbPass-5e6f7a8b",  # $MY_DB_PASS, printed by the server
    "log": "logTok-abc12345xyz",  # "Authorization: Bearer VALUE" in the server log
}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def guarded_server() -> Iterator[SSEServer]:
    accepted = frozenset(
        {
            f"Bearer {SECRETS['env_key']}",
            f"Bearer {SECRETS['named_key']}",
            _basic("bob", SECRETS["url"]),
        }
    )
    server = SSEServer(ServerOptions(max_running=2, authorization=accepted)).start()
    yield server
    server.stop()


@pytest.fixture
def guarded_snapshot(tmp_path: Path) -> Iterator[str]:
    """The leaderboard JSON over HTTP, behind Basic auth."""
    root = write_snapshot(tmp_path / "lb")
    expected = _basic("alice", SECRETS["import"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = root / self.path.lstrip("/")
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                body = b""
            elif path.is_file():
                self.send_response(200)
                body = path.read_bytes()
            else:
                self.send_response(404)
                body = b""
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://alice:{SECRETS['import']}@127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _fake_vllm_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "vllm"
    fake = TESTS / "engines" / "fake_vllm.py"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_VLLM_MODE", "echo")
    lines = [
        f"DEBUG sending Authorization: Bearer {SECRETS['log']}",
        f"DEBUG the api key {SECRETS['flag']} again",
    ]
    monkeypatch.setenv("FAKE_VLLM_LINES", "|".join(lines))


def _texts_of(path: Path) -> str:
    """Everything a file says, decoded the way a reader would see it."""
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    if path.suffix == ".duckdb":
        store = Store(path.parent)
        rows = store.catalog.sql("SELECT * FROM runs")
        problems = store.catalog.sql("SELECT * FROM problems")
        return repr(rows) + repr(problems) + path.read_bytes().decode("latin-1")
    return path.read_bytes().decode("utf-8", "replace")


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def test_planted_secrets_are_used_but_never_stored_exported_or_reported(
    tmp_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guarded_server: SSEServer,
    guarded_snapshot: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["env_key"])
    monkeypatch.setenv("MY_ENDPOINT_TOKEN", SECRETS["named_key"])
    monkeypatch.setenv("MY_DB_PASS", SECRETS["env"])
    port = guarded_server.url.rsplit(":", 1)[1]

    # The endpoint's key from $OPENAI_API_KEY, sent as Bearer to /v1 and /metrics.
    by_env = run_one(endpoint_config(guarded_server.url, 2), tmp_store)
    assert by_env.status is RunStatus.COMPLETED and by_env.num_failed_requests == 0
    assert guarded_server.stats.authorized.get("/metrics", 0) > 0
    assert guarded_server.stats.authorized.get("/v1/chat/completions", 0) == 8
    # A named variable, and credentials in the URL (HTTP Basic).
    named = endpoint_config(guarded_server.url, 1, api_key_env="MY_ENDPOINT_TOKEN")
    url_auth = endpoint_config(f"http://bob:{SECRETS['url']}@127.0.0.1:{port}", 3)
    for config in (named, url_auth):
        record = run_one(config, tmp_store)
        assert record.status is RunStatus.COMPLETED and record.num_failed_requests == 0
    assert url_auth.endpoint == f"http://127.0.0.1:{port}"

    # A vLLM server started with secret flags, that logs them, its environment and more.
    _fake_vllm_on_path(tmp_path, monkeypatch)
    flags = ["--api-key", SECRETS["flag"], f"--hf-token={SECRETS['hf']}"]
    vllm = RunConfig.model_validate(
        {
            "engine": "vllm",
            "model": "acme/m",
            "task": "lm-arena-chat",
            "max_num_seqs": 2,
            "num_gpus": 0,
            "gpus": False,
            "idle_baseline_s": 0,
            "vllm_args": flags,
        }
    )
    with pytest.raises(EngineError) as failure:
        run_one(vllm, tmp_store)
    assert _leaks(str(failure.value)) == []
    failed = tmp_store.get(vllm.run_id())
    assert failed.status is RunStatus.FAILED and "server.log" in failed.artifacts
    log = tmp_store.artifact_path(failed.run_id, "server.log").read_text()
    assert "non-default args" in log and "***" in log

    # An import from a URL with user info.
    runner = CliRunner()
    imported = runner.invoke(app, ["import", "mlenergy", guarded_snapshot])
    assert imported.exit_code == 0, imported.output
    assert _leaks(imported.output) == []

    # Exports and the report.
    out = tmp_path / "out"
    out.mkdir()
    for fmt in ("json", "csv", "parquet"):
        result = runner.invoke(
            app, ["runs", "--failed", "--format", fmt, "-o", str(out / f"runs.{fmt}")]
        )
        assert result.exit_code == 0, result.output
    listing = runner.invoke(app, ["runs", "--failed", "--format", "json"])
    assert listing.exit_code == 0 and len(json.loads(listing.stdout)) == 4 + 7
    report = runner.invoke(app, ["report", "-o", str(out / "report.html")])
    assert report.exit_code == 0, report.output

    searched = [p for p in [*tmp_store.root.rglob("*"), *out.iterdir()] if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in searched)
    leaks = {str(p.relative_to(tmp_path)): _leaks(_texts_of(p)) for p in searched}
    assert {where: found for where, found in leaks.items() if found} == {}
    assert _leaks(listing.stdout) == []
