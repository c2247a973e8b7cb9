"""Session fixtures for the tests against real vLLM (its CPU build, from ``scripts/setup-vllm``),
registered by the root conftest so that tests/vllm and tests/watch share them: where vLLM is,
and one tiny random Llama built locally (no hub). They skip, with the reason, only where vLLM
is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_helpers import vllm_command_line


@pytest.fixture(scope="session")
def vllm_command() -> str:
    return vllm_command_line()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_model import build_tiny_chat_model

    return build_tiny_chat_model(
        tmp_path_factory.mktemp("vllm-model") / "tiny-llama", hidden_size=128, dtype="bfloat16"
    )
