"""Request and config builders for tests against tests/sse_server.py."""

from __future__ import annotations

from typing import Any

from joulelens.workloads import LoadConfig, LoadRequest
from sse_server import SSEServer


def chat(max_tokens: int | None = 8, **sse_test: Any) -> LoadRequest:
    """A chat request whose ``sse_test`` fields pick the server's behaviour."""
    return LoadRequest.chat("hello", max_tokens=max_tokens, extra_body={"sse_test": sse_test})


def config(server: SSEServer, **fields: Any) -> LoadConfig:
    return LoadConfig(server.url, model="test-model", **fields)
