"""joulelens against vLLM's own benchmark, on one real vLLM server (its CPU build).

Each of ``--reps`` repetitions starts one server (a tiny random Llama, built here, no hub),
warms it up, and runs against it, in turn:

* ``vllm bench serve`` (openai-chat, the prompts below, ``--ignore-eos``, and the task's own
  sampling parameters: the same work for the server), alone;
* ``joulelens run --engine endpoint`` with the same prompts, output cap and concurrency;
* ``vllm bench serve`` again while joulelens's sampler and ``/metrics`` scraper run beside
  it (no joulelens client): what the measurement itself costs the server.

Then that server is stopped and ``joulelens run --engine vllm`` starts its own with the same
settings, so every repetition compares runs made minutes apart. Printed: medians over the
reps of median TTFT, median ITL, median TPOT and output throughput, their ratios to
``vllm bench serve``'s (of the medians, and the range of the per-repetition ratios), each
client's CPU seconds and CPU wait during the load, and the server's throughput with and
without the measurement beside it.

    bash scripts/setup-vllm
    python bench/bench_vllm_agreement.py                  # --max-concurrency 8, ~4 min a rep
    python bench/bench_vllm_agreement.py --concurrency 0  # saturation (all at t=0)

``--vllm-command`` (or ``$JOULELENS_VLLM_COMMAND``) says what starts vLLM; the default is
``.venv-vllm/bin/vllm``. Results go to ``bench/results/vllm_agreement.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from joulelens.engines.vllm_server import (  # noqa: E402
    VLLM_COMMAND_ENV,
    VllmConfig,
    VllmServer,
    launch_command,
)
from joulelens.meters import TimelineSampler, detect_meters  # noqa: E402
from joulelens.runner import RunConfig, run_one  # noqa: E402
from joulelens.runner.requests import llm_requests  # noqa: E402
from joulelens.store import Store  # noqa: E402
from joulelens.tasks import get_task  # noqa: E402
from joulelens.workloads import MetricsScraper  # noqa: E402
from joulelens.workloads.loadgen import read_schedstat  # noqa: E402

SERVER_ARGS = ["--enforce-eager", "--kv-cache-memory-bytes", str(512 * 1024 * 1024)]
METRICS = ("median_ttft_ms", "median_itl_ms", "median_tpot_ms", "output_throughput")
BY_READ = "median_itl_ms_by_read"
# The task's sampling fields that vllm bench serve can send too (it sends no others).
BENCH_SAMPLING = ("temperature", "top_p", "top_k", "min_p")


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _group_cpu_s(pgid: int) -> float:
    total = 0.0
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                times = proc.cpu_times()
                total += times.user + times.system
        except (psutil.Error, ProcessLookupError):
            continue
    return total


def _threads_schedstat(pid: int) -> dict[str, tuple[float, float]]:
    """(seconds on a CPU, seconds waiting for one) of each thread of ``pid``."""
    paths = glob.glob(f"/proc/{pid}/task/[0-9]*/schedstat")
    return {path: stat for path in paths if (stat := read_schedstat(path)) is not None}


def run_watched(cmd: list[str], period_s: float = 0.2) -> list[tuple[float, float, float]]:
    """Run ``cmd`` (exit on failure); [(time, CPU s, CPU-wait s) so far] of all its threads,
    polled so that its start-up (imports) can be left out of what its load costs."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: dict[str, tuple[float, float]] = {}
    marks = []
    while proc.poll() is None:
        seen.update(_threads_schedstat(proc.pid))
        run_s = sum(r for r, _ in seen.values())
        marks.append((time.monotonic(), run_s, sum(w for _, w in seen.values())))
        time.sleep(period_s)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{err[-3000:]}")
    return marks


def _last(marks: list[tuple[float, float, float]], seconds: float) -> tuple[float, float]:
    """CPU s and CPU-wait fraction over the last ``seconds`` of ``marks``."""
    end = marks[-1]
    start = next((m for m in marks if m[0] >= end[0] - seconds), marks[0])
    return end[1] - start[1], (end[2] - start[2]) / seconds if seconds > 0 else 0.0


def sampling_args(config: RunConfig) -> list[str]:
    """The task's sampling parameters as vllm bench serve options (the same server work)."""
    body = dict(next(iter(llm_requests(config))).extra_body)
    body.pop("ignore_eos", None)
    args = []
    for name in BENCH_SAMPLING:
        if name in body:
            args += [f"--{name.replace('_', '-')}", str(body.pop(name))]
    if body:
        raise SystemExit(f"vllm bench serve cannot send the task's {sorted(body)}")
    return args


def write_prompts(path: Path, count: int, output_len: int) -> None:
    """The built-in chat prompts, in vLLM bench's custom format (joulelens reads it too)."""
    items = get_task("lm-arena-chat").load_prompts(None, seed=0)
    rows = [items[i % len(items)].text for i in range(count)]
    path.write_text(
        "".join(json.dumps({"prompt": p, "output_tokens": output_len}) + "\n" for p in rows)
    )


def vllm_bench(
    vllm_bin: str, server: VllmServer, model: str, prompts: Path, args: Any, out: Path
) -> dict[str, Any]:
    cmd = [vllm_bin, "bench", "serve", "--backend", "openai-chat"]
    cmd += ["--endpoint", "/v1/chat/completions", "--base-url", server.base_url]
    cmd += ["--model", model, "--dataset-name", "custom", "--dataset-path", str(prompts)]
    cmd += ["--skip-chat-template", "--num-prompts", str(args.num_prompts), "--ignore-eos"]
    cmd += ["--custom-output-len", str(args.output_len), "--request-rate", "inf"]
    if args.concurrency:
        cmd += ["--max-concurrency", str(args.concurrency)]
    cmd += ["--save-result", "--save-detailed", "--result-dir", str(out.parent)]
    cmd += ["--result-filename", out.name, *args.sampling]
    server0 = _group_cpu_s(server.process.pid)  # type: ignore[union-attr]
    marks = run_watched(cmd)
    result = json.loads(out.read_text())
    row: dict[str, Any] = {name: float(result[name]) for name in METRICS}
    row["client_cpu_s"], row["client_wait"] = _last(marks, float(result["duration"]))
    row["client_total_cpu_s"] = marks[-1][1]  # with its start-up
    row["server_cpu_s"] = _group_cpu_s(server.process.pid) - server0  # type: ignore[union-attr]
    row["duration_s"] = float(result["duration"])
    row["median_itl_ms_by_read"] = _itl_by_read(result.get("itls") or [])
    return row


def _itl_by_read(itls: list[list[float]], same_read_s: float = 50e-6) -> float | None:
    """vllm bench serve's own timestamps, grouped as joulelens groups them: messages less
    than ``same_read_s`` apart came in one network read, and their tokens share the gap
    since the previous read (vllm bench serve counts the first one's gap and ~0 for the
    others). Median over every token, in ms."""
    gaps: list[float] = []
    for request in itls:
        span: float | None = None  # the gap that opened the current read
        pending = 0  # further tokens in that read
        for gap in request:
            if gap < same_read_s:
                if span is not None:
                    pending += 1
                continue  # read with the first token: no timing, as in joulelens
            if span is not None:
                gaps += [span / (pending + 1)] * (pending + 1)
            span, pending = gap, 0
        if span is not None:
            gaps += [span / (pending + 1)] * (pending + 1)
    return statistics.median(gaps) * 1000 if gaps else None


def joulelens_run(config: RunConfig, store: Store, server: VllmServer | None) -> dict[str, Any]:
    self0, children0 = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    server0 = _group_cpu_s(server.process.pid) if server else 0.0  # type: ignore[union-attr]
    record = run_one(config, store)
    if record.status.value != "completed":
        raise SystemExit(f"joulelens run failed: {record.failure_reason}")
    row: dict[str, Any] = {
        "median_ttft_ms": record.median_ttft_ms,
        "median_itl_ms": record.median_itl_ms,
        "median_tpot_ms": record.median_tpot_ms,
        # Tokens over the whole run (first send to last finish), as vllm bench counts them.
        "output_throughput": _whole_run_throughput(store, record),
        "client_cpu_s": _cpu_s(resource.RUSAGE_SELF) - self0,
        "scraper_cpu_s": _cpu_s(resource.RUSAGE_CHILDREN) - children0,
        "client_wait": _client_wait(record.warnings),
        "engine_version": record.provenance.engine_version,
        "warnings": record.warnings,
    }
    if server is not None:
        row["server_cpu_s"] = _group_cpu_s(server.process.pid) - server0  # type: ignore[union-attr]
    return row


def _client_wait(warnings: list[str]) -> float | None:
    """The load generator's CPU-wait share, as the record's warning states it (None: below
    the warning's threshold)."""
    for warning in warnings:
        if warning.startswith("the load generator waited"):
            return float(warning.split("(", 1)[1].split("%", 1)[0]) / 100
    return None


def _whole_run_throughput(store: Store, record: Any) -> float:
    import pyarrow.parquet as pq

    rows = pq.read_table(store.artifact_path(record.run_id, "requests.parquet")).to_pydict()
    ends = [s + e / 1000 for s, e in zip(rows["sent_s"], rows["e2e_latency_ms"], strict=True)]
    return sum(rows["output_tokens"]) / (max(ends) - min(rows["sent_s"]))


def bench_beside_measurement(
    vllm_bin: str, server: VllmServer, model: str, prompts: Path, args: Any, out: Path
) -> dict[str, Any]:
    """vllm bench serve while joulelens's sampler and scraper run (what they cost)."""
    self0, children0 = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    with detect_meters(gpus=False, cpu_estimate="auto") as meters:
        sampler = TimelineSampler(meters, period_s=0.1)
        with MetricsScraper(server.base_url):
            sampler.start()
            try:
                row = vllm_bench(vllm_bin, server, model, prompts, args, out)
            finally:
                sampler.stop()
    # Children CPU now includes vllm bench's (counted in row) and the scraper's.
    row["sampler_cpu_s"] = _cpu_s(resource.RUSAGE_SELF) - self0
    bench_cpu_s = row["client_total_cpu_s"]
    row["scraper_cpu_s"] = _cpu_s(resource.RUSAGE_CHILDREN) - children0 - bench_cpu_s
    return row


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="0: saturation")
    parser.add_argument("--num-prompts", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--max-num-seqs", type=int, default=8)
    parser.add_argument("--vllm-command", default=os.environ.get(VLLM_COMMAND_ENV))
    args = parser.parse_args()
    command = args.vllm_command or str(REPO / ".venv-vllm" / "bin" / "vllm")
    prefix = launch_command(command)
    vllm_bin = next((w for w in prefix if Path(w).name == "vllm"), None)
    if vllm_bin is None:
        raise SystemExit("--vllm-command must name a vllm executable (vllm bench serve runs it)")

    from tiny_model import build_tiny_chat_model

    with tempfile.TemporaryDirectory(prefix="jl-agreement-") as tmp_dir:
        tmp = Path(tmp_dir)
        model = str(build_tiny_chat_model(tmp / "tiny-llama", hidden_size=128, dtype="bfloat16"))
        prompts = tmp / "prompts.jsonl"
        write_prompts(prompts, args.num_prompts, args.output_len)
        store = Store(tmp / "store")
        common: dict[str, Any] = {
            "model": model,
            "task": "lm-arena-chat",
            "prompts": str(prompts),
            "max_num_seqs": args.max_num_seqs,
            "num_requests": args.num_prompts,
            "max_tokens": args.output_len,
            "max_concurrency": args.concurrency or None,
            "ignore_eos": True,
            "num_gpus": 0,
            "gpus": False,
            "idle_baseline_s": 0,
            "min_steady_state_s": 0.5,
        }
        server_fields = {"dtype": "bfloat16", "max_model_len": 1024, "vllm_args": SERVER_ARGS}
        config = VllmConfig(
            model=model,
            max_num_seqs=args.max_num_seqs,
            dtype="bfloat16",
            max_model_len=1024,
            extra_args=SERVER_ARGS,
            command=prefix,
        )
        args.sampling = sampling_args(
            RunConfig.model_validate({**common, "engine": "endpoint", "endpoint": "http://x"})
        )
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("bench", "endpoint", "beside")}
        rows["vllm"] = []
        for rep in range(args.reps):
            with VllmServer(config, tmp / f"server{rep}.log", startup_timeout_s=300) as server:
                vllm_bench(vllm_bin, server, model, prompts, args, tmp / "warmup.json")
                rows["bench"].append(
                    vllm_bench(vllm_bin, server, model, prompts, args, tmp / f"b{rep}.json")
                )
                endpoint = RunConfig.model_validate(
                    {**common, "engine": "endpoint", "endpoint": server.base_url, "seed": rep}
                )
                rows["endpoint"].append(joulelens_run(endpoint, Store(tmp / f"s{rep}"), server))
                rows["beside"].append(
                    bench_beside_measurement(
                        vllm_bin, server, model, prompts, args, tmp / f"c{rep}.json"
                    )
                )
            started = RunConfig.model_validate(
                {**common, **server_fields, "engine": "vllm", "vllm_command": command, "seed": rep}
            )
            rows["vllm"].append(joulelens_run(started, store, None))
            print(f"rep {rep + 1}/{args.reps} done", flush=True)
    report(rows, args)


COLUMNS = {
    "median_ttft_ms": "TTFT ms",
    "median_itl_ms": "ITL ms",
    "median_tpot_ms": "TPOT ms",
    "output_throughput": "tok/s",
}


def report(rows: dict[str, list[dict[str, Any]]], args: Any) -> None:
    mode = f"--max-concurrency {args.concurrency}" if args.concurrency else "saturation"
    print(f"\n{args.num_prompts} prompts x {args.output_len} tokens (--ignore-eos), {mode},")
    print(f"B = {args.max_num_seqs}, sampling {' '.join(args.sampling) or 'server defaults'};")
    print(f"medians of {args.reps} reps; ratios are joulelens / vllm bench serve\n")
    print(f"{'':34}" + "".join(f"{COLUMNS[m]:>11}" for m in METRICS))
    base = {m: _median(rows["bench"], m) for m in METRICS}
    for label, key in (
        ("vllm bench serve", "bench"),
        ("joulelens --engine endpoint", "endpoint"),
        ("joulelens --engine vllm", "vllm"),
        ("vllm bench beside the sampler", "beside"),
    ):
        values = {m: _median(rows[key], m) for m in METRICS}
        print(f"{label:34}" + "".join(f"{_fmt(values[m]):>11}" for m in METRICS))
        if key in ("endpoint", "vllm"):
            ratios = "".join(f"{_ratio(values[m], base[m]):>11}" for m in METRICS)
            print(f"{'  ratio':34}{ratios}")
    by_read = _median(rows["bench"], BY_READ)
    print(f"\nvllm bench serve's median ITL with its messages grouped by read: {_fmt(by_read)} ms")
    for label, key in (("endpoint", "endpoint"), ("vllm", "vllm")):
        ratio = _ratio(_median(rows[key], "median_itl_ms"), by_read)
        pairs = [
            r["median_itl_ms"] / b[BY_READ]
            for r, b in zip(rows[key], rows["bench"], strict=False)
            if r.get("median_itl_ms") and b.get(BY_READ)
        ]
        spread = f" (per repetition {min(pairs):.2f}-{max(pairs):.2f})" if pairs else ""
        print(f"  joulelens --engine {label} / that: {ratio}{spread}")
    cost = {
        "vllm bench serve client CPU s (during load)": _median(rows["bench"], "client_cpu_s"),
        "vllm bench serve start-up + load CPU s": _median(rows["bench"], "client_total_cpu_s"),
        "joulelens client+sampler CPU s": _median(rows["endpoint"], "client_cpu_s"),
        "joulelens scraper CPU s": _median(rows["endpoint"], "scraper_cpu_s"),
        "sampler CPU s beside vllm bench": _median(rows["beside"], "sampler_cpu_s"),
        "scraper CPU s beside vllm bench": _median(rows["beside"], "scraper_cpu_s"),
        "server CPU s, vllm bench alone": _median(rows["bench"], "server_cpu_s"),
        "server CPU s, joulelens client": _median(rows["endpoint"], "server_cpu_s"),
    }
    print("\nmeasurement cost")
    for name, value in cost.items():
        print(f"  {name:44}{_fmt(value):>10}")
    alone = _median(rows["bench"], "output_throughput")
    beside = _median(rows["beside"], "output_throughput")
    if alone and beside:
        print(f"  {'server tok/s with sampler+scraper beside':44}{beside / alone - 1:>+10.1%}")
    print("\nclient's CPU wait during the load, per repetition (- : under 20%, not stated)")
    for label, key in (
        ("vllm bench serve", "bench"),
        ("--engine endpoint", "endpoint"),
        ("--engine vllm", "vllm"),
    ):
        waits = [r.get("client_wait") for r in rows[key]]
        print(f"  {label:44}" + " ".join("-" if w is None else f"{w:.0%}" for w in waits))
    versions = {r.get("engine_version") for r in rows["endpoint"] + rows["vllm"]}
    print(f"  engine_version in the records: {sorted(map(str, versions))}")
    out = REPO / "bench" / "results" / "vllm_agreement.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=str))
    print(f"\nwritten: {out.relative_to(REPO)}")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or not base else f"{value / base:.2f}"


if __name__ == "__main__":
    main()
