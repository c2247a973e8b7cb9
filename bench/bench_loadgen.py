"""How fast the load generator consumes streams, what a timestamp costs, how much memory the
traces take, and how it compares with a peer load generator (aiperf) on the same server.

The fast local SSE server (tests/sse_server.py) runs in its own process pinned to CPU 1;
every client runs in its own process pinned to CPU 0, so each client gets one core and the
server's CPU never counts against it. All clients see the same workload: N streamed chat
requests of T one-token chunks, C at a time. Rates are chunks per second of the client's own
benchmark window (first request sent to last response done).

    python bench/bench_loadgen.py                   # about 2 minutes
    python bench/bench_loadgen.py --quick           # about 40 s
    python bench/bench_loadgen.py --full-rss        # + a real 10,000 x 1,000-token run

"chunks/cpu-s" divides by the client's CPU time (aiperf: its whole process tree, less the
CPU of a one-request run, i.e. its start-up), which shared or busy machines disturb far
less than wall-clock rates. The paced row offers 512 streams x one chunk per 20 ms step; its
"lag" (chunk arrival past the step boundary) includes the server's own write time and is
only meaningful on an otherwise idle machine.

Peer: aiperf (``pip install aiperf`` into any environment; pass ``--aiperf PATH`` or put it on
PATH). It needs a Hugging Face tokenizer to build prompts; a tiny local byte-level BPE
tokenizer is written to a temp dir so nothing is downloaded, and ``--use-server-token-count``
makes it count output tokens from the server's usage (one per chunk here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SERVER_CPU, CLIENT_CPU = 1, 0
PACED = "joulelens paced 512 x 50/s"


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


# -- clients, each run in a pinned child process (``bench_loadgen.py client ...``) --------


def client_joulelens(url: str, n: int, tokens: int, concurrency: int, itl_s: float) -> dict:
    from joulelens.workloads import LoadConfig, LoadRequest, run_load_sync

    test = {"chunks": tokens, "itl_s": itl_s} if itl_s else {"chunks": tokens}
    requests = [LoadRequest.chat("hi", max_tokens=tokens, extra_body={"sse_test": test})] * n
    traces = run_load_sync(requests, LoadConfig(url, max_concurrency=concurrency))
    chunks = sum(len(t.chunk_times_s) for t in traces)
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


def run_client(kind: str, url: str, n: int, tokens: int, concurrency: int, itl_s: float) -> dict:
    """Runs one client in a child pinned to the client CPU; adds its CPU time and peak RSS."""
    argv = [sys.executable, __file__, "client", kind, url, str(n), str(tokens), str(concurrency)]
    out = subprocess.run([*argv, str(itl_s)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def client_main(args: list[str]) -> None:
    pin(CLIENT_CPU)
    import httpx  # noqa: F401  (imports outside the measured CPU time)

    import joulelens.workloads  # noqa: F401

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
    print(json.dumps(result))


# -- peer ----------------------------------------------------------------------------------


def write_tokenizer(directory: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 3, trainer)
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(directory)
    return directory


def run_aiperf(
    exe: str, url: str, n: int, tokens: int, concurrency: int, tmp: Path, fixed_cpu_s: float = 0.0
) -> dict:
    """One aiperf run pinned to the client CPU (all its processes). ``cpu_s`` is the CPU time
    of the whole process tree less ``fixed_cpu_s``, the cost of starting up and shutting
    down measured with a one-request run, so it compares with the in-run CPU of the others."""
    out_dir = tmp / f"aiperf-{n}-{concurrency}"
    argv = [exe, "profile", "-m", "test-model", "--url", url, "--endpoint-type", "chat"]
    argv += ["--streaming", "--concurrency", str(concurrency), "--request-count", str(n)]
    argv += ["--tokenizer", str(tmp / "tokenizer"), "--synthetic-input-tokens-mean", "10"]
    argv += ["--output-tokens-mean", str(tokens), "--use-legacy-max-tokens"]
    argv += ["--use-server-token-count", "--output-artifact-dir", str(out_dir), "--ui-type", "none"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        argv, capture_output=True, text=True, preexec_fn=lambda: pin(CLIENT_CPU), cwd=tmp
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return {
            "error": f"aiperf exited {proc.returncode}: {proc.stdout[-500:]}{proc.stderr[-500:]}"
        }
    report = json.loads((out_dir / "profile_export_aiperf.json").read_text())
    chunks = report["usage_completion_tokens"]["sum"]
    window = report["benchmark_duration"]["avg"]
    total_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu_s = max(total_cpu_s - fixed_cpu_s, 1e-9)
    return {
        "ok": int(report["request_count"]["avg"]),
        "chunks": chunks,
        "window_s": window,
        "chunks_per_s": chunks / window,
        "cpu_s": cpu_s,
        "total_cpu_s": total_cpu_s,
        "chunks_per_cpu_s": chunks / cpu_s,
        "process_wall_s": wall,
        "peak_rss_mb": None,
    }


def find_aiperf(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("JOULELENS_BENCH_AIPERF"), shutil.which("aiperf")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# -- in-process micro-benchmarks -------------------------------------------------------


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


def parse_cost_us(count: int = 200_000) -> float:
    """Framing + SSE + JSON + bookkeeping per chunk, fed from memory (no socket, no loop)."""
    sys.path.insert(0, str(REPO / "tests"))
    from joulelens.core.events import RequestTrace
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
        started = time.perf_counter()
        for _ in range(count):
            proto.data_received(framed)
        return (time.perf_counter() - started) / count * 1e6

    return asyncio.run(run())


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 40 s)")
    parser.add_argument("--full-rss", action="store_true", help="real 10,000 x 1,000 run")
    parser.add_argument("--aiperf", help="path of the aiperf executable")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, tokens, concurrency = (256, 500, 128) if args.quick else (512, 1000, 256)
    repeats = 1 if args.quick else args.repeats
    aiperf = find_aiperf(args.aiperf)
    server, url = start_server(tokens)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workload": {"requests": n, "tokens": tokens, "concurrency": concurrency},
    }
    rows: list[tuple[str, dict]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            write_tokenizer(tmp / "tokenizer")
            clients: list[tuple[str, Any]] = [
                ("joulelens", lambda: run_client("joulelens", url, n, tokens, concurrency, 0.0)),
                (
                    "httpx (reference)",
                    lambda: run_client("httpx", url, n, tokens, concurrency, 0.0),
                ),
            ]
            if aiperf:
                fixed = run_aiperf(aiperf, url, 1, 1, 1, tmp)
                fixed_cpu_s = fixed.get("total_cpu_s", 0.0)
                results["aiperf_fixed_cpu_s"] = fixed_cpu_s
                clients.append(
                    (
                        "aiperf",
                        lambda: run_aiperf(aiperf, url, n, tokens, concurrency, tmp, fixed_cpu_s),
                    )
                )
            for name, run in clients:
                runs = [run() for _ in range(repeats)]
                good = [r for r in runs if "error" not in r]
                best = max(good, key=lambda r: r["chunks_per_s"]) if good else runs[0]
                best["runs_chunks_per_s"] = [r.get("chunks_per_s") for r in runs]
                best["runs_chunks_per_cpu_s"] = [r.get("chunks_per_cpu_s") for r in runs]
                rows.append((name, best))
            paced = run_client("joulelens", url, 512, 200 if not args.quick else 100, 512, 0.02)
            rows.append((PACED, paced))
        results["clients"] = dict(rows)
        if not aiperf:
            results["clients"]["aiperf"] = {"error": "aiperf not found (pip install aiperf)"}
        if args.full_rss:
            results["full_run_10000x1000"] = run_client("joulelens", url, 10_000, 1000, 1024, 0.0)
    finally:
        server.terminate()
        server.wait()
    results["timestamp_ns_per_chunk"] = timestamp_cost_ns()
    results["parse_us_per_chunk"] = parse_cost_us()
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
    ours = by_name["joulelens"]
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
    print(f"framing + SSE + JSON per chunk (no socket): {results['parse_us_per_chunk']:.2f} us")
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
    elif len(sys.argv) > 1 and sys.argv[1] == "trace-rss":
        trace_rss_main(sys.argv[2:])
    else:
        main()
