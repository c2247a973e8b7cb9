"""The peer of ``bench_loadgen.py``: aiperf, run on the same server and workload.

aiperf (``pip install aiperf`` into any environment; ``--aiperf PATH`` or on PATH) needs a
Hugging Face tokenizer to build prompts: a tiny local byte-level BPE tokenizer is written to
a temp dir so nothing is downloaded, and ``--use-server-token-count`` makes it count output
tokens from the server's usage (one per chunk here).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


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
    pin_client: Callable[[], None],
    exe: str,
    url: str,
    n: int,
    tokens: int,
    concurrency: int,
    tmp: Path,
    fixed_cpu_s: float = 0.0,
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
    proc = subprocess.run(argv, capture_output=True, text=True, preexec_fn=pin_client, cwd=tmp)
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
