"""Many readers and writers on one store at once: no command fails, counts stay exact.

Three writers (two leaderboard importers, one raw-results importer) rewrite their runs over
and over for 30 s, each alternating two versions of its data so every import really writes;
three readers (`runs --format json`, `summary`, and `serve` polled over HTTP) read all the
while. Every command is a separate `joulelens` process, as a user would run them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ingest.benchmark_fixtures import write_llm_run
from ingest.leaderboard_fixtures import llm_row, write_snapshot
from joulelens.store import STORE_ENV, Store

DURATION_S = 30.0
ROWS = 120  # runs per leaderboard importer
RAW_BATCHES = (8, 16, 32, 64)
COUNTS = re.compile(r"\((\d+) new, (\d+) updated, (\d+) unchanged")


def _snapshot(root: Path, model: str, energy: float) -> Path:
    rows = [
        llm_row(model, max_num_seqs=b, energy_per_token_joules=energy) for b in range(1, ROWS + 1)
    ]
    docs: dict[str, Any] = {
        "index.json": {
            "architectures": {"llm": ["gpqa"]},
            "last_updated": "2026-02-16",
            "models": {},
            "tasks": ["gpqa"],
        },
        "tasks/gpqa.json": {"task": "gpqa", "configurations": rows},
    }
    return write_snapshot(root, docs)


def _raw_tree(root: Path, energy: float) -> Path:
    for batch in RAW_BATCHES:
        write_llm_run(root, max_num_seqs=batch, steady_state_energy=energy)
    return root


def _joulelens(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from joulelens.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Loop(threading.Thread):
    """Runs one command after another (cycling ``commands``) until the deadline."""

    def __init__(self, commands: list[list[str]], env: dict[str, str], deadline: float):
        super().__init__(daemon=True)
        self.commands, self.env, self.deadline = commands, env, deadline
        self.results: list[subprocess.CompletedProcess[str]] = []

    def run(self) -> None:
        i = 0
        while time.monotonic() < self.deadline:
            self.results.append(_joulelens(*self.commands[i % len(self.commands)], env=self.env))
            i += 1


class Poller(threading.Thread):
    def __init__(self, url: str, deadline: float):
        super().__init__(daemon=True)
        self.url, self.deadline = url, deadline
        self.ok = 0
        self.failures: list[str] = []
        self.runs_seen: list[int] = []

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            for path in ("api/version", "api/payload"):
                try:
                    with urllib.request.urlopen(self.url + path, timeout=60) as response:
                        body = json.loads(response.read())
                    self.ok += 1
                    if path == "api/version":
                        self.runs_seen.append(body["runs"])
                except Exception as exc:
                    self.failures.append(f"{path}: {exc}")
            time.sleep(0.2)


def _free_port() -> int:
    from joulelens.engines.vllm_server import free_port

    return free_port()


@pytest.mark.slow
def test_three_writers_and_three_readers_for_30_s(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, STORE_ENV: str(store), "PYTHONPATH": os.pathsep.join(sys.path)}
    sources = {
        "a": [_snapshot(tmp_path / f"a{v}", "acme/Alpha-8B", e) for v, e in ((1, 0.5), (2, 0.6))],
        "b": [_snapshot(tmp_path / f"b{v}", "acme/Beta-8B", e) for v, e in ((1, 0.3), (2, 0.4))],
        "raw": [_raw_tree(tmp_path / f"raw{v}", e) for v, e in ((1, 6000.0), (2, 6600.0))],
    }
    Store(store)  # created empty, so that serve starts at once
    port = _free_port()
    serve = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from joulelens.cli.app import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        started = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(url + "api/version", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() - started < 60, serve.stderr
                time.sleep(0.2)
        deadline = time.monotonic() + DURATION_S
        writers = {
            name: Loop(
                [
                    ["import", "mlenergy" if name != "raw" else "mlenergy-raw", str(p)]
                    for p in paths
                ],
                env,
                deadline,
            )
            for name, paths in sources.items()
        }
        readers = [
            Loop([["runs", "--format", "json"]], env, deadline),
            Loop([["summary", "--format", "json"]], env, deadline),
        ]
        poller = Poller(url, deadline)
        threads: list[threading.Thread] = [*writers.values(), *readers, poller]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DURATION_S + 300)
    finally:
        serve.terminate()
        serve.wait(timeout=30)

    everything = [r for loop in [*writers.values(), *readers] for r in loop.results]
    failed = [(r.args[3:], r.returncode, r.stderr[-500:]) for r in everything if r.returncode]
    assert failed == []
    assert poller.failures == [] and poller.ok > 10
    assert all(len(loop.results) >= 2 for loop in writers.values())
    assert all(len(loop.results) >= 2 for loop in readers)

    expected = {"a": ROWS, "b": ROWS, "raw": len(RAW_BATCHES)}
    for name, loop in writers.items():
        counts = [tuple(map(int, COUNTS.search(r.stdout).groups())) for r in loop.results]  # type: ignore[union-attr]
        n = expected[name]
        # The first import creates every run; each later one rewrites all of them (the
        # other version of the data was imported last), whatever the others do meanwhile.
        assert counts[0] == (n, 0, 0), (name, counts)
        assert all(c == (0, n, 0) for c in counts[1:]), (name, counts)
    for loop in readers[:1]:
        sizes = {len(json.loads(r.stdout)) for r in loop.results}
        assert sizes <= set(range(sum(expected.values()) + 1))
    assert set(poller.runs_seen) <= set(range(sum(expected.values()) + 1))
    final = json.loads(_joulelens("runs", "--format", "json", env=env).stdout)
    assert len(final) == sum(expected.values())
    assert len({r["run_id"] for r in final}) == len(final)
    info = _joulelens("store", "doctor", env=env)
    assert info.returncode == 0, info.stdout + info.stderr
