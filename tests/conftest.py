"""Fixtures shared across the suite: fresh stores, the public snapshot, synthetic records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Provenance,
    RunKind,
    RunRecord,
    SourceKind,
    missing_reasons,
    required_metric_fields,
)
from joulelens.store import STORE_ENV, Store

REPO = Path(__file__).resolve().parents[1]
PUBLIC_SNAPSHOT = REPO.parent / "shared" / "data" / "mlenergy-leaderboard-v3"


@pytest.fixture
def tmp_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh, empty store; ``$JOULELENS_STORE`` points at it for CLI calls."""
    root = tmp_path / "store"
    monkeypatch.setenv(STORE_ENV, str(root))
    return Store(root)


@pytest.fixture(scope="session")
def public_snapshot() -> Path:
    if not (PUBLIC_SNAPSHOT / "index.json").is_file():
        pytest.skip("the public ML.ENERGY snapshot (../shared/data) is not present")
    return PUBLIC_SNAPSHOT


@pytest.fixture(scope="session")
def public_records(public_snapshot: Path) -> list[RunRecord]:
    from joulelens.ingest.mlenergy_leaderboard import read_leaderboard

    return read_leaderboard(public_snapshot)


@pytest.fixture(scope="session")
def public_store(
    public_records: list[RunRecord], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The whole public snapshot imported once per session (treat it as read-only)."""
    store = Store(tmp_path_factory.mktemp("public") / "store")
    store.put_many(public_records)
    yield store


def _record(**overrides: Any) -> RunRecord:
    """A valid synthetic run; every field not given is null with reason "synthetic test run"."""
    kind = RunKind(overrides.pop("kind", "llm"))
    task = overrides.pop(
        "task", "lm-arena-chat" if kind is not RunKind.DIFFUSION else "text-to-image"
    )
    fields: dict[str, Any] = {
        "run_id": overrides.pop("run_id", None)
        or f"test-{abs(hash(repr(sorted(overrides.items())))):x}",
        "kind": kind,
        "task": task,
        "model_id": "test/model",
        "energy_boundary": EnergyBoundary.GPU,
        "energy_method": EnergyMethod.COUNTER,
        "provenance": Provenance(source=SourceKind.JOULELENS),
        "stable": True,
        "gpu_model": "H100",
    }
    fields.update(overrides)
    missing = missing_reasons(
        [f for f in required_metric_fields(kind, task) if fields.get(f) is None],
        "synthetic test run",
    )
    missing.update(fields.pop("missing", {}))
    return RunRecord(**fields, missing=missing)


@pytest.fixture
def make_record() -> Callable[..., RunRecord]:
    """Factory: ``make_record(kind="llm", max_num_seqs=64, energy_per_token_joules=0.2, ...)``."""
    return _record
