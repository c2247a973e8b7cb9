"""The vLLM lifecycle against a real subprocess that speaks the same argv and /health."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from joulelens.engines.vllm_server import (
    API_SERVER_MODULE,
    VLLM_COMMAND_ENV,
    VllmConfig,
    VllmServer,
    launch_command,
    redact,
)
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
    assert argv[:3] == ["vllm", "serve", "Qwen/Qwen3-8B"]  # the default command
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


@pytest.mark.parametrize(
    ("command", "prefix", "model_args"),
    [
        (None, ["vllm", "serve"], ["m"]),
        (".venv-vllm/bin/vllm", [".venv-vllm/bin/vllm", "serve"], ["m"]),
        ("/opt/vllm/bin/python3.12", ["/opt/vllm/bin/python3.12", "-m", API_SERVER_MODULE], None),
        ("nice -n 10 /v/bin/vllm", ["nice", "-n", "10", "/v/bin/vllm", "serve"], ["m"]),
        (
            "docker run --rm --network host 'vllm/vllm-openai:v0.9.2'",
            ["docker", "run", "--rm", "--network", "host", "vllm/vllm-openai:v0.9.2"],
            None,
        ),
    ],
)
def test_launch_command(
    command: str | None, prefix: list[str], model_args: list[str] | None, monkeypatch
) -> None:
    monkeypatch.delenv(VLLM_COMMAND_ENV, raising=False)
    words = launch_command(command)
    assert words == prefix
    argv = VllmConfig(model="m", max_num_seqs=4, command=words).argv(8000)
    expected = model_args or ["--model", "m"]
    assert argv[len(prefix) : len(prefix) + len(expected)] == expected


def test_launch_command_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(VLLM_COMMAND_ENV, "/envs/vllm/bin/python")
    assert launch_command(None) == ["/envs/vllm/bin/python", "-m", API_SERVER_MODULE]
    assert launch_command("vllm") == ["vllm", "serve"]  # the option wins


def test_missing_executable_says_what_to_set(tmp_path: Path) -> None:
    cfg = VllmConfig(model="m", max_num_seqs=4, command=launch_command(str(tmp_path / "vllm")))
    with pytest.raises(EngineError, match=f"{VLLM_COMMAND_ENV}"), VllmServer(cfg, tmp_path / "l"):
        pass


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


def test_workers_are_stopped_when_the_server_process_died_first(tmp_path: Path) -> None:
    # Seen on real vLLM: the API server killed, its engine and worker processes ran on.
    import re
    import signal

    server = VllmServer(_config(), tmp_path / "vllm.log", env=_env("child"))
    with server:
        found = re.search(r"worker pid (\d+)", (tmp_path / "vllm.log").read_text())
        assert found is not None
        worker = int(found.group(1))
        os.kill(server.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        server.process.wait(10)  # type: ignore[union-attr]
        os.kill(worker, 0)  # the worker outlived its server
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)


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
