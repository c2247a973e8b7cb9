"""The vLLM lifecycle against a real subprocess that speaks the same argv and /health."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from joulelens.engines.vllm_server import VllmConfig, VllmServer, redact
from joulelens.errors import EngineError

FAKE = Path(__file__).with_name("fake_vllm.py")


def _config(**kw: object) -> VllmConfig:
    return VllmConfig(model="org/model", max_num_seqs=8, command=(sys.executable, str(FAKE)), **kw)  # type: ignore[arg-type]


def _env(mode: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "FAKE_VLLM_MODE": mode, **extra}


def test_argv_is_a_list_with_the_knobs() -> None:
    cfg = VllmConfig(
        model="Qwen/Qwen3-8B",
        max_num_seqs=128,
        tensor_parallel=2,
        data_parallel=2,
        expert_parallel=True,
        dtype="bfloat16",
        quantization="fp8",
        max_model_len=8192,
        extra_args=["--enforce-eager"],
    )
    argv = cfg.argv(8123)
    assert argv[:3] == ["vllm", "serve", "Qwen/Qwen3-8B"]
    joined = " ".join(argv)
    for part in [
        "--port 8123",
        "--max-num-seqs 128",
        "--tensor-parallel-size 2",
        "--data-parallel-size 2",
        "--enable-expert-parallel",
        "--dtype bfloat16",
        "--quantization fp8",
        "--max-model-len 8192",
        "--enforce-eager",
    ]:
        assert part in joined
    assert cfg.num_gpus == 4


def test_starts_waits_for_health_and_always_stops(tmp_path: Path) -> None:
    server = VllmServer(_config(), tmp_path / "vllm.log", env=_env("ok"))
    with server:
        assert httpx.get(f"{server.base_url}/health").status_code == 200
        pid = server.process.pid  # type: ignore[union-attr]
    assert not server.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "startup complete" in (tmp_path / "vllm.log").read_text()


def test_crash_before_health_is_reported_with_log_tail(tmp_path: Path) -> None:
    server = VllmServer(_config(), tmp_path / "vllm.log", env=_env("crash"))
    with pytest.raises(EngineError, match=r"exited with code 3[\s\S]*out of memory"), server:
        pass
    assert not server.alive()


def test_log_stall_is_detected(tmp_path: Path) -> None:
    server = VllmServer(_config(), tmp_path / "vllm.log", env=_env("stall"), stall_timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(EngineError, match="stalled"), server:
        pass
    assert time.monotonic() - started < 15
    assert not server.alive()


def test_stopped_on_exception_inside_the_block(tmp_path: Path) -> None:
    server = VllmServer(_config(), tmp_path / "vllm.log", env=_env("ok"))
    with pytest.raises(KeyboardInterrupt), server:
        raise KeyboardInterrupt
    assert not server.alive()


def test_secrets_never_reach_the_saved_log_or_argv(tmp_path: Path) -> None:
    token = "hf_abcdefghijklmnopqrstuvwxyz012345"
    cfg = _config(extra_args=["--api-key", "sk-very-secret-value"])
    server = VllmServer(cfg, tmp_path / "vllm.log", env=_env("leak", HF_TOKEN=token))
    with server:
        pass
    log = (tmp_path / "vllm.log").read_text()
    assert "token is" in log and token not in log
    assert "sk-very-secret-value" not in " ".join(server.redacted_argv())


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("Authorization: Bearer abcdefgh12345", {}, "Authorization: Bearer ***"),
        ("x hf_AAAAAAAAAAAA y", {}, "x *** y"),
        ("key=swordfish123", {"MY_API_KEY": "swordfish123"}, "key=***"),
        ("model=llama", {"MODEL": "llama-long"}, "model=llama"),
    ],
)
def test_redact(text: str, env: dict[str, str], expected: str) -> None:
    assert redact(text, env) == expected
