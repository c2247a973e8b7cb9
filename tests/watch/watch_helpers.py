"""Real servers for the exporter tests: Debian's Prometheus, the exporter as a child process
(``joulelens watch``), a steady load, and a simulated vLLM page for the week-long test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from joulelens.watch import ScrapeFailed
from joulelens.workloads import LoadConfig, LoadRequest, run_load_sync

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A port free right now on 127.0.0.1 (for programs that cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    with _direct.open(url, timeout=timeout_s) as response:
        return json.loads(response.read())


def get_text(url: str, timeout_s: float = 5.0) -> str:
    with _direct.open(url, timeout=timeout_s) as response:
        return str(response.read().decode())


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, period_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(period_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} (last: {last})")


class PrometheusServer:
    """Debian's ``prometheus`` on 127.0.0.1, scraping ``targets`` every ``interval``."""

    def __init__(self, workdir: Path, targets: Sequence[str], interval: str = "1s") -> None:
        binary = shutil.which("prometheus")
        assert binary is not None
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {interval}\n"
            f"  evaluation_interval: {interval}\n"
            "scrape_configs:\n"
            "  - job_name: joulelens\n"
            f"    scrape_interval: {interval}\n"
            "    scrape_timeout: 900ms\n"
            "    static_configs:\n"
            f"      - targets: {json.dumps(list(targets))}\n"
        )
        self.log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(self._ready, 30, "prometheus to be ready")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}")
        return bool(get_text(f"{self.url}/-/ready", 2.0))

    def query(self, promql: str, at_s: float | None = None) -> list[dict[str, Any]]:
        """Instant query (vector or matrix result) through the HTTP API."""
        params = {"query": promql}
        if at_s is not None:
            params["time"] = f"{at_s:.3f}"
        answer = get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class ExporterProcess:
    """``joulelens watch ARGS`` in a child process; :attr:`port` once it serves."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        entry = "from joulelens.cli.app import main; main()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", entry, "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.port = int(wait_for(self._port, 60, "the exporter to serve"))
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _port(self) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError("exporter exited:\n" + "\n".join(self.lines))
        for line in self.lines:
            if "serving metrics on http://" in line:
                return int(line.rsplit(":", 1)[1].split("/", 1)[0])
        return None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


@dataclass
class Served:
    """A server the tests watch: where it is, which requests load it, how to make it vanish.

    The SSE test server is one; a real vLLM server (CPU build) is another, given by a fixture
    that builds the same object with plain chat requests and the served model name.
    """

    url: str
    model: str | None
    make_requests: Callable[[int], list[LoadRequest]]
    stop: Callable[[], None]


class LoadLoop:
    """A steady load: batches of requests, ``concurrency`` at a time, until stopped."""

    def __init__(self, served: Served, concurrency: int = 8, batch: int = 32) -> None:
        self.served = served
        self.config = LoadConfig(served.url, model=served.model, max_concurrency=concurrency)
        self.batch = batch
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            traces = run_load_sync(self.served.make_requests(self.batch), self.config)
            self.done += sum(t.ok for t in traces)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


@dataclass
class SimulatedVllm:
    """A vLLM-shaped ``/metrics`` page from a real prometheus_client registry, served through
    the exporter's transport boundary so a simulated week runs without a week of HTTP.

    ``restart()`` starts a fresh registry (counters from 0, a new process start time), as a
    restarted server does; ``down`` makes every fetch fail, as a vanished server does.
    """

    clock: Callable[[], float]
    tokens_per_s: float = 100.0
    down: bool = False
    generated: float = 0.0  # every token the simulated server produced
    fetches: int = 0
    _registry: CollectorRegistry = field(init=False)
    _last_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self._registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        r = self._registry
        self._running = Gauge("vllm:num_requests_running", "r", labels, registry=r)
        self._waiting = Gauge("vllm:num_requests_waiting", "w", labels, registry=r)
        self._kv = Gauge("vllm:kv_cache_usage_perc", "kv", labels, registry=r)
        self._tokens = Counter("vllm:generation_tokens", "t", labels, registry=r)
        self._start = Gauge("process_start_time_seconds", "s", registry=r)
        self._start.set(self.clock())
        self._running.labels("m", "0").set(16)
        self._waiting.labels("m", "0").set(0)
        self._kv.labels("m", "0").set(0.3)
        self._tokens.labels("m", "0")
        self._last_s = self.clock()

    def advance(self) -> None:
        now = self.clock()
        if not self.down:
            produced = self.tokens_per_s * (now - self._last_s)
            self._tokens.labels("m", "0").inc(produced)
            self.generated += produced
        self._last_s = now

    def fetch(self) -> str:
        self.fetches += 1
        self.advance()
        if self.down:
            raise ScrapeFailed("simulated server unreachable: connection refused")
        return generate_latest(self._registry).decode()

    def close(self) -> None:
        return None


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def samples_named(text_or_map: Any, name: str, **labels: str) -> list[float]:
    values = parse_exposition(text_or_map) if isinstance(text_or_map, str) else text_or_map
    return [
        v
        for (n, lbl), v in values.items()
        if n == name and all(dict(lbl).get(k) == val for k, val in labels.items())
    ]
