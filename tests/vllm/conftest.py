"""Fixtures for the tests against real vLLM (its CPU build, set up by ``scripts/setup-vllm``).

One tiny random Llama is built locally per session (no hub), and one vLLM server serves it
for every test that only needs a server; tests of the lifecycle start their own through
joulelens. They skip, with the reason, only where vLLM is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vllm_helpers import MAX_NUM_SEQS, SERVER_ARGS, vllm_command_line

from joulelens.engines.vllm_server import VllmConfig, VllmServer, launch_command


@pytest.fixture(scope="session")
def vllm_command() -> str:
    return vllm_command_line()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_model import build_tiny_chat_model

    return build_tiny_chat_model(
        tmp_path_factory.mktemp("vllm-model") / "tiny-llama", hidden_size=128, dtype="bfloat16"
    )


@pytest.fixture(scope="session")
def vllm_server(
    vllm_command: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmServer]:
    """One real vLLM server (B = 8) shared by the endpoint tests; always stopped."""
    config = VllmConfig(
        model=str(tiny_model),
        max_num_seqs=MAX_NUM_SEQS,
        dtype="bfloat16",
        max_model_len=1024,
        extra_args=list(SERVER_ARGS),
        command=launch_command(vllm_command),
    )
    log = tmp_path_factory.mktemp("vllm-log") / "server.log"
    with VllmServer(config, log, startup_timeout_s=300, stall_timeout_s=120) as server:
        yield server
