"""CPU cost of ``joulelens watch`` beside two servers, scraped every second (goal: < 1% of
one core).

Two fast SSE test servers (tests/sse_server.py, vLLM's metric names, ``--engines`` label
sets each so the page is as long as a data-parallel vLLM's) serve a steady streamed load
from a client process; the exporter runs as ``joulelens watch --endpoint A --endpoint B``
with its defaults (1 s samples, 10 s / 1 m / 5 m windows) and is scraped every second by
Debian's Prometheus (``bash scripts/setup-prometheus``), or by this script when Prometheus
is not installed. The figure is the exporter process's CPU time (every thread: sampling,
scrapes, the HTTP server) per wall second after a warm-up, the median of ``--repeats``
windows of ``--seconds``.

    python bench/bench_watch.py                  # about 3 minutes
    python bench/bench_watch.py --quick          # about 1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
EXPORTER: list[object] = [None]


def start_server(engines: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "sse_server.py"), "--engines", str(engines)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


LOAD = """
import sys
from joulelens.workloads import LoadConfig, LoadRequest, run_load_sync
url = sys.argv[1]
test = {"chunks": 50, "itl_s": 0.02}
request = LoadRequest.chat("hi", max_tokens=50, extra_body={"sse_test": test})
while True:
    run_load_sync([request] * 64, LoadConfig(url, model=None, max_concurrency=16))
"""


def start_load(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", LOAD, url], text=True)


def start_exporter(urls: list[str]) -> tuple[subprocess.Popen[str], int]:
    entry = "from joulelens.cli.app import main; main()"
    args = [sys.executable, "-c", entry, "watch", "--port", "0"]
    for url in urls:
        args += ["--endpoint", url]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "serving metrics on http://" in line:
            port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # drain
            return proc, port
    raise SystemExit(f"the exporter exited with {proc.wait()}")


def start_scraper(port: int, workdir: Path) -> tuple[object, str]:
    """Prometheus at 1 s when installed, else a 1 s scrape loop in this process."""
    binary = shutil.which("prometheus")
    if binary is not None:
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: watch\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        )
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                "--web.listen-address=127.0.0.1:0",
                "--log.level=error",
            ],
            stderr=subprocess.DEVNULL,
        )
        return proc, "prometheus 1 s"
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(1.0):
            _direct.open(f"http://127.0.0.1:{port}/metrics", timeout=5).read()

    threading.Thread(target=loop, daemon=True).start()
    return stop, "python loop 1 s (prometheus not installed)"


def page_lines(url: str) -> int:
    return len(_direct.open(f"{url}/metrics", timeout=5).read().splitlines())


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def measure(pid: int, seconds: float, repeats: int) -> list[float]:
    proc = psutil.Process(pid)
    out = []
    for _ in range(repeats):
        c0, t0 = cpu_s(proc), time.monotonic()
        time.sleep(seconds)
        out.append(100.0 * (cpu_s(proc) - c0) / (time.monotonic() - t0))
    return out


def stop(proc: object) -> None:
    """Ctrl-C for the exporter (its clean stop), SIGTERM for the rest."""
    if isinstance(proc, threading.Event):
        proc.set()
    elif isinstance(proc, subprocess.Popen) and proc.poll() is None:
        proc.send_signal(signal.SIGINT if proc is EXPORTER[0] else signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=50.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 windows of 20 s")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats, args.warmup = 20.0, 2, 10.0
    started: list[object] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            servers = [start_server(args.engines) for _ in range(2)]
            started += [p for p, _ in servers]
            urls = [u for _, u in servers]
            started += [start_load(u) for u in urls]
            exporter, port = start_exporter(urls)
            EXPORTER[0] = exporter
            started.append(exporter)
            scraper, how = start_scraper(port, Path(tmp))
            started.append(scraper)
            time.sleep(args.warmup)
            lines = page_lines(urls[0])
            pct = measure(exporter.pid, args.seconds, args.repeats)
        finally:
            for proc in reversed(started):
                stop(proc)
    result = {
        "exporter_cpu_pct_of_one_core": round(statistics.median(pct), 3),
        "windows_pct": [round(p, 3) for p in pct],
        "endpoints": 2,
        "metrics_page_lines": lines,
        "sample_period_s": 1.0,
        "scraped_by": how,
        "window_s": args.seconds,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "watch.json").write_text(json.dumps(result, indent=1) + "\n")
    goal = "meets" if result["exporter_cpu_pct_of_one_core"] < 1.0 else "MISSES"
    print(f"exporter: {result['exporter_cpu_pct_of_one_core']:.2f}% of one core ({goal} < 1%)")


if __name__ == "__main__":
    main()
