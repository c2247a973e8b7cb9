"""Micro-benchmarks of ``bench_loadgen.py``: what a timestamp costs, what framing + SSE +
JSON cost per chunk without a socket (in a child, so an earlier version can be measured
too), and how much memory traces take. ``python bench/loadgen_micro.py parse-cost`` and
``trace-rss REQUESTS TOKENS`` are the children."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen_before import child_env

REPO = Path(__file__).resolve().parents[1]
CLIENT_CPU = 0  # as in bench_loadgen.py


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def timestamp_cost_ns(count: int = 1_000_000) -> float:
    """now_s() + RequestTrace.add_chunk per chunk, the only per-chunk bookkeeping."""
    from joulelens.core.clock import now_s
    from joulelens.core.events import RequestTrace

    trace = RequestTrace("x", 0.0)
    add = trace.add_chunk
    started = time.perf_counter()
    for _ in range(count):
        add(now_s(), 1)
    return (time.perf_counter() - started) / count * 1e9


def parse_cost_main(count: int = 200_000) -> None:
    """Child: framing + SSE + JSON + bookkeeping per chunk, fed from memory (no socket, no
    loop), in CPU microseconds of this thread; the median of three passes."""
    pin(CLIENT_CPU)
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from joulelens.core.events import RequestTrace
    except ImportError:  # an earlier version (--before), from before joulelens.core
        from joulelens.measure.events import RequestTrace  # type: ignore[no-redef]
    from joulelens.workloads.http1 import ResponseProtocol
    from joulelens.workloads.stream import StreamParser
    from sse_server import _ChunkMaker

    framed = _ChunkMaker(True, 7, True).event("content", "tok", 5, None)

    class Sink(asyncio.Transport):
        def write(self, data: Any) -> None:
            pass

    async def run() -> float:
        proto = ResponseProtocol()
        proto.connection_made(Sink())
        proto.start(b"", StreamParser(RequestTrace("x", 0.0)).feed)
        proto.data_received(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        started = time.thread_time()
        for _ in range(count):
            proto.data_received(framed)
        return (time.thread_time() - started) / count * 1e6

    print(json.dumps(statistics.median(asyncio.run(run()) for _ in range(3))))


def parse_cost_us(src: Path | None = None) -> float:
    argv = [sys.executable, __file__, "parse-cost"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=child_env(src))
    return float(out.stdout.strip().splitlines()[-1])


def trace_rss_main(args: list[str]) -> None:
    """Child: RSS growth from holding ``requests`` traces of ``tokens`` one-token chunks."""
    import psutil

    from joulelens.core.events import RequestTrace

    requests, tokens = int(args[0]), int(args[1])
    process = psutil.Process()
    base = process.memory_info().rss
    traces = []
    t = 0.0
    for i in range(requests):
        trace = RequestTrace(str(i), t)
        add = trace.add_chunk
        for _ in range(tokens):
            t += 1e-3
            add(t, 1)
        traces.append(trace)
    rss = process.memory_info().rss
    print(json.dumps({"base_rss_mb": base / 2**20, "rss_mb": rss / 2**20}))


def trace_rss(requests: int, tokens: int) -> dict:
    argv = [sys.executable, __file__, "trace-rss", str(requests), str(tokens)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1] == "parse-cost":
        parse_cost_main()
    elif sys.argv[1] == "trace-rss":
        trace_rss_main(sys.argv[2:])
