"""How fast the load generator consumes streams, what a timestamp costs, how much memory the
traces take, how it compares with its own earlier version (``--before REF``, by default the
hand-written framing it had before llhttp) and with a peer load generator (aiperf) on the
same server.

The fast local SSE server (tests/sse_server.py) runs in its own process pinned to CPU 1;
every client runs in its own process pinned to CPU 0, so each client gets one core and the
server's CPU never counts against it. All clients see the same workload: N streamed chat
requests of T one-token chunks, C at a time. Rates are chunks per second of the client's own
benchmark window (first request sent to last response done).

    python bench/bench_loadgen.py                   # minutes; the httpx and aiperf runs take most
    python bench/bench_loadgen.py --quick           # about 40 s
    python bench/bench_loadgen.py --full-rss        # + a real 10,000 x 1,000-token run
    python bench/bench_loadgen.py --before none     # without the earlier version

Each client runs once to warm up (discarded), then ``--repeats`` times; a row holds the
medians. The earlier version and the current one alternate (ABBA), so a machine whose load
drifts during the run disturbs both alike.

"chunks/cpu-s" divides by the client's CPU time (aiperf: its whole process tree, less the
CPU of a one-request run, i.e. its start-up), which shared or busy machines disturb far
less than wall-clock rates. The paced row offers 512 streams x one chunk per 20 ms step; its
"lag" (chunk arrival past the step boundary) includes the server's own write time and is
only meaningful on an otherwise idle machine.

Peer: aiperf (``pip install aiperf`` into any environment; pass ``--aiperf PATH`` or put it on
PATH); see ``loadgen_aiperf.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadgen_aiperf import find_aiperf, run_aiperf, write_tokenizer
from loadgen_before import BEFORE_REF, child_env, unpack_src
from loadgen_micro import parse_cost_us, timestamp_cost_ns, trace_rss

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SERVER_CPU, CLIENT_CPU = 1, 0
PACED = "joulelens paced 512 x 50/s"
OURS = "joulelens"
BEFORE = "joulelens before"


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


# -- clients, each run in a pinned child process (``bench_loadgen.py client ...``) --------


def client_joulelens(url: str, n: int, tokens: int, concurrency: int, itl_s: float) -> dict:
    from joulelens.workloads import LoadConfig, LoadRequest, run_load_sync

    test = {"chunks": tokens, "itl_s": itl_s} if itl_s else {"chunks": tokens}
    requests = [LoadRequest.chat("hi", max_tokens=tokens, extra_body={"sse_test": test})] * n
    traces = run_load_sync(requests, LoadConfig(url, max_concurrency=concurrency))
    # SSE chunks (one token each here), as the other clients count them; the trace merges
    # the chunks of one read into one entry, so its entries count reads, not chunks.
    chunks = sum(sum(t.chunk_tokens) for t in traces)
    result = {
        "ok": sum(t.ok for t in traces),
        "chunks": chunks,
        "window_s": max(t.finished_s or 0 for t in traces) - min(t.sent_s for t in traces),
    }
    if itl_s:  # lag of each chunk behind the server's step grid (server write time included)
        lags = sorted(x % itl_s for t in traces for x in t.chunk_times_s[1:])
        result["lag_ms_p50"] = lags[len(lags) // 2] * 1e3
        result["lag_ms_p99"] = lags[int(len(lags) * 0.99)] * 1e3
    return result


def client_httpx(url: str, n: int, tokens: int, concurrency: int, itl_s: float) -> dict:
    """A straightforward httpx + aiter_lines client: why the load generator does not use it."""
    import httpx

    from joulelens.core.clock import now_s

    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens, "stream": True}
    body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    spans: list[tuple[float, float]] = []
    chunks = 0

    async def one(client: httpx.AsyncClient, slots: asyncio.Semaphore) -> None:
        nonlocal chunks
        async with slots:
            sent = now_s()
            async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        event = json.loads(line[6:])
                        if event["choices"] and event["choices"][0]["delta"].get("content"):
                            chunks += 1
            spans.append((sent, now_s()))

    async def main() -> None:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=None) as client:
            slots = asyncio.Semaphore(concurrency)
            await asyncio.gather(*(one(client, slots) for _ in range(n)))

    asyncio.run(main())
    window = max(e for _, e in spans) - min(s for s, _ in spans)
    return {"ok": len(spans), "chunks": chunks, "window_s": window}


def run_client(
    kind: str,
    url: str,
    n: int,
    tokens: int,
    concurrency: int,
    itl_s: float,
    src: Path | None = None,
) -> dict:
    """Runs one client in a child pinned to the client CPU; adds its CPU time and peak RSS.
    ``src``: import ``joulelens`` from there (an earlier version) instead."""
    argv = [sys.executable, __file__, "client", kind, url, str(n), str(tokens), str(concurrency)]
    out = subprocess.run(
        [*argv, str(itl_s)], capture_output=True, text=True, check=True, env=child_env(src)
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def client_main(args: list[str]) -> None:
    pin(CLIENT_CPU)
    import httpx  # noqa: F401  (imports outside the measured CPU time)

    import joulelens.workloads.http1

    kind, url = args[0], args[1]
    n, tokens, concurrency, itl_s = int(args[2]), int(args[3]), int(args[4]), float(args[5])
    before = resource.getrusage(resource.RUSAGE_SELF)
    client = client_joulelens if kind == "joulelens" else client_httpx
    result = client(url, n, tokens, concurrency, itl_s)
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["peak_rss_mb"] = after.ru_maxrss / 1024
    result["chunks_per_s"] = result["chunks"] / result["window_s"]
    result["chunks_per_cpu_s"] = result["chunks"] / result["cpu_s"]
    result["http1"] = joulelens.workloads.http1.__file__  # which version ran
    print(json.dumps(result))


# -- main ------------------------------------------------------------------------------


def start_server(default_chunks: int) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, str(REPO / "tests" / "sse_server.py"), "--chunks", str(default_chunks)]
    server = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: pin(SERVER_CPU)
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    return server, f"http://127.0.0.1:{port}"


def fmt(value: Any, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def medians(runs: list[dict]) -> dict:
    """One row from repeated runs: the run with the median CPU rate, with both rates replaced
    by their medians and every run's rates kept."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    good.sort(key=lambda r: r["chunks_per_cpu_s"])
    row = dict(good[len(good) // 2])
    row["chunks_per_s"] = statistics.median(r["chunks_per_s"] for r in good)
    row["chunks_per_cpu_s"] = statistics.median(r["chunks_per_cpu_s"] for r in good)
    row["runs_chunks_per_s"] = [r.get("chunks_per_s") for r in runs]
    row["runs_chunks_per_cpu_s"] = [r.get("chunks_per_cpu_s") for r in runs]
    return row


def measure(clients: list[tuple[str, Callable[[], dict]]], repeats: int) -> dict[str, dict]:
    """A warm-up run of each client, then ``repeats`` rounds; the order flips every round
    (ABBA...) so drifting machine load falls on every client alike."""
    for _, run in clients:
        run()
    runs: dict[str, list[dict]] = {name: [] for name, _ in clients}
    for round_ in range(repeats):
        for name, run in clients if round_ % 2 == 0 else clients[::-1]:
            runs[name].append(run())
    return {name: medians(rows) for name, rows in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 40 s)")
    parser.add_argument("--full-rss", action="store_true", help="real 10,000 x 1,000 run")
    parser.add_argument("--aiperf", help="path of the aiperf executable")
    parser.add_argument("--repeats", type=int, help="measured runs per client (5; quick: 1)")
    parser.add_argument(
        "--before", default=BEFORE_REF, help=f"git ref to compare with (default {BEFORE_REF})"
    )
    args = parser.parse_args()
    n, tokens, concurrency = (256, 500, 128) if args.quick else (512, 1000, 256)
    repeats = args.repeats or (1 if args.quick else 5)
    aiperf = find_aiperf(args.aiperf)
    server, url = start_server(tokens)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg_1m": {"start": os.getloadavg()[0]},
        "workload": {"requests": n, "tokens": tokens, "concurrency": concurrency},
        "repeats": repeats,
    }
    rows: list[tuple[str, dict]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            before_src = None
            if args.before.lower() != "none":
                before_src = unpack_src(REPO, args.before, tmp / "before")
                results["before_ref"] = args.before

            def ours(src: Path | None = None) -> Callable[[], dict]:
                return lambda: run_client("joulelens", url, n, tokens, concurrency, 0.0, src)

            pair = [(OURS, ours())] + ([(BEFORE, ours(before_src))] if before_src else [])
            measured = measure(pair, repeats)
            rows += [(name, measured[name]) for name, _ in pair]
            others: list[tuple[str, Callable[[], dict]]] = [
                ("httpx (reference)", lambda: run_client("httpx", url, n, tokens, concurrency, 0.0))
            ]
            if aiperf:
                write_tokenizer(tmp / "tokenizer")

                def client_pin() -> None:
                    pin(CLIENT_CPU)

                fixed = run_aiperf(client_pin, aiperf, url, 1, 1, 1, tmp)
                fixed_cpu_s = fixed.get("total_cpu_s", 0.0)
                results["aiperf_fixed_cpu_s"] = fixed_cpu_s
                others.append(
                    (
                        "aiperf",
                        lambda: run_aiperf(
                            client_pin, aiperf, url, n, tokens, concurrency, tmp, fixed_cpu_s
                        ),
                    )
                )
            # Fewer rounds: slower clients, and not what the before/after figures compare.
            measured = measure(others, max(1, (repeats + 1) // 2))
            rows += [(name, measured[name]) for name, _ in others]
            paced = run_client("joulelens", url, 512, 200 if not args.quick else 100, 512, 0.02)
            rows.append((PACED, paced))
            results["parse_us_per_chunk"] = parse_cost_us()
            if before_src:
                results["parse_us_per_chunk_before"] = parse_cost_us(before_src)
        results["clients"] = dict(rows)
        if not aiperf:
            results["clients"]["aiperf"] = {"error": "aiperf not found (pip install aiperf)"}
        if args.full_rss:
            results["full_run_10000x1000"] = run_client("joulelens", url, 10_000, 1000, 1024, 0.0)
    finally:
        server.terminate()
        server.wait()
    results["load_avg_1m"]["end"] = os.getloadavg()[0]
    results["timestamp_ns_per_chunk"] = timestamp_cost_ns()
    results["trace_rss_10000x1000"] = trace_rss(10_000, 1000)
    report(results, rows)


def report(results: dict[str, Any], rows: list[tuple[str, dict]]) -> None:
    print(
        f"\nworkload: {results['workload']}"
        f"  (client on CPU {CLIENT_CPU}, server on CPU {SERVER_CPU})"
    )
    header = f"{'client':28} {'chunks/s':>10} {'chunks/cpu-s':>13} {'ok':>6} {'window s':>9}"
    print(f"{header} {'cpu s':>7} {'RSS MB':>7}")
    for name, r in rows:
        if "error" in r:
            print(f"{name:28} error: {r['error'][:200]}")
            continue
        print(
            f"{name:28} {fmt(r['chunks_per_s']):>10} {fmt(r['chunks_per_cpu_s']):>13} "
            f"{r['ok']:>6} {r['window_s']:>9.2f} {r['cpu_s']:>7.2f} {fmt(r.get('peak_rss_mb')):>7}"
        )
    by_name = dict(rows)
    ours = by_name[OURS]
    before = by_name.get(BEFORE)
    if before is not None and "error" not in before:
        cpu = ours["chunks_per_cpu_s"] / before["chunks_per_cpu_s"]
        wall = ours["chunks_per_s"] / before["chunks_per_s"]
        results["after_vs_before"] = {"chunks_per_s": wall, "chunks_per_cpu_s": cpu}
        print(
            f"joulelens / joulelens at {results['before_ref']}: {cpu:.3f}x chunks per CPU-second,"
            f" {wall:.3f}x chunks/s (medians of {results['repeats']})"
        )
    for peer in ("aiperf", "httpx (reference)"):
        other = by_name.get(peer)
        if other is None or "error" in other:
            continue
        wall = ours["chunks_per_s"] / other["chunks_per_s"]
        cpu = ours["chunks_per_cpu_s"] / other["chunks_per_cpu_s"]
        results[f"speedup_vs_{peer.split()[0]}"] = {"chunks_per_s": wall, "chunks_per_cpu_s": cpu}
        print(f"joulelens / {peer}: {wall:.1f}x chunks/s, {cpu:.1f}x chunks per CPU-second")
    paced = by_name[PACED]
    print(
        f"paced (25,600 chunks/s offered): lag behind server step p50 {paced['lag_ms_p50']:.2f} ms,"
        f" p99 {paced['lag_ms_p99']:.2f} ms (server write time included), client CPU "
        f"{paced['cpu_s'] / paced['window_s'] * 100:.0f}% of one core"
    )
    print(f"now_s() + add_chunk: {results['timestamp_ns_per_chunk']:.0f} ns per chunk")
    parse = f"{results['parse_us_per_chunk']:.2f} us"
    if "parse_us_per_chunk_before" in results:
        parse += f" (at {results['before_ref']}: {results['parse_us_per_chunk_before']:.2f} us)"
    print(f"framing + SSE + JSON per chunk (no socket, CPU time): {parse}")
    load = results["load_avg_1m"]
    print(f"1-minute load average: {load['start']:.1f} at the start, {load['end']:.1f} at the end")
    rss = results["trace_rss_10000x1000"]
    print(
        f"10,000 x 1,000-token traces: {rss['rss_mb'] - rss['base_rss_mb']:.0f} MB of traces,"
        f" process RSS {rss['rss_mb']:.0f} MB"
    )
    if "full_run_10000x1000" in results:
        full = results["full_run_10000x1000"]
        print(
            f"real 10,000 x 1,000 run: {fmt(full['chunks_per_s'])} chunks/s, "
            f"peak RSS {full['peak_rss_mb']:.0f} MB"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"loadgen-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2:])
    else:
        main()
