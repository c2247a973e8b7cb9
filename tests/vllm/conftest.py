"""Fixtures for the tests against real vLLM: one server of the tiny model (tests/vllm_fixtures)
for every test here that only needs a server; tests of the lifecycle start their own through
joulelens. Package-scoped: it stops when these tests are done, not at the end of the suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from joulelens.engines.vllm_server import VllmServer
from vllm_helpers import tiny_vllm_server


@pytest.fixture(scope="package")
def vllm_server(
    vllm_command: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmServer]:
    """One real vLLM server (B = 8) shared by the endpoint tests; always stopped."""
    log = tmp_path_factory.mktemp("vllm-log") / "server.log"
    with tiny_vllm_server(vllm_command, tiny_model, log) as server:
        yield server
