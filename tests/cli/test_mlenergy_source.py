"""Where the ML.ENERGY data come from: the published JSON at a base URL (a local HTTP server
serving the snapshot here), and ``$JOULELENS_MLENERGY_DATA`` pointing the tests at a copy."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from joulelens.cli.app import run_cli
from joulelens.store import Store

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT_ENV = "JOULELENS_MLENERGY_DATA"  # read by tests/conftest.py


@pytest.fixture
def snapshot_url(public_snapshot: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(public_snapshot))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_import_from_a_base_url(
    snapshot_url: str, tmp_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["import", "mlenergy", snapshot_url + "/"]) == 0, capsys.readouterr().err
    assert "imported 1858 configurations" in capsys.readouterr().out
    assert len(Store(tmp_store.root).query()) == 1858


def _pytest(env_value: str) -> subprocess.CompletedProcess[str]:
    test = "tests/cli/test_data_cli.py::test_public_snapshot_import_twice_gives_1858"
    return subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env={**os.environ, SNAPSHOT_ENV: env_value},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_the_env_var_points_real_data_tests_anywhere(public_snapshot: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "leaderboard"
    shutil.copytree(public_snapshot, elsewhere)
    ran = _pytest(str(elsewhere))
    assert "1 passed" in ran.stdout, ran.stdout[-2000:]
    skipped = _pytest(str(tmp_path / "missing"))
    assert "1 skipped" in skipped.stdout, skipped.stdout[-2000:]
    reasons = [line for line in skipped.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(reasons) == 1 and SNAPSHOT_ENV in reasons[0], skipped.stdout[-2000:]
