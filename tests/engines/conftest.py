"""Fixtures for the in-process engine tests: a private model cache, offline hub, one thread."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from joulelens.engines.models import CACHE_ENV


@pytest.fixture(scope="session")
def engine_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache per session, so the SmolLM2 conversion (~20 s) happens at most once."""
    return tmp_path_factory.mktemp("joulelens-cache")


@pytest.fixture(autouse=True)
def _offline_private_cache(
    engine_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv(CACHE_ENV, str(engine_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and threads is not None:
        torch.set_num_threads(threads)  # engines under test may have changed it
