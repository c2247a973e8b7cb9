"""Fixtures shared across the suite: fresh stores, the public snapshot, synthetic records."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import signal
import sys
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

# vLLM fixtures shared by tests/vllm and tests/watch.
pytest_plugins = ["vllm_fixtures"]

REPO = Path(__file__).resolve().parents[1]
# The ML.ENERGY Leaderboard v3 snapshot (index.json, tasks/, models/): wherever
# $JOULELENS_MLENERGY_DATA points, else ../shared/data/... beside the clone.
SNAPSHOT_ENV = "JOULELENS_MLENERGY_DATA"
DEFAULT_SNAPSHOT = REPO.parent / "shared" / "data" / "mlenergy-leaderboard-v3"


def pytest_configure(config: pytest.Config) -> None:
    """Started as a background job (``cmd &`` in a script), the suite inherits SIGINT ignored,
    and so would every process it starts: the Ctrl-C tests need it delivered."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


ENGINES_EXTRA = ("torch", "transformers", "diffusers")


def _absent(module: str) -> bool:
    """Without importing it (torch takes seconds); ``sys.modules[name] = None`` counts."""
    if module in sys.modules:
        return sys.modules[module] is None
    return importlib.util.find_spec(module) is None


@pytest.hookimpl(tryfirst=True)  # before fixtures that build a torch model
def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.engines`` tests skip, with one reason, where the extra is not installed."""
    if item.get_closest_marker("engines") is not None:
        missing = [m for m in ENGINES_EXTRA if _absent(m)]
        if missing:
            pytest.skip(
                f"needs the engines extra ({', '.join(missing)} missing): "
                "pip install 'joulelens[engines]'"
            )


def public_snapshot_dir() -> Path:
    given = os.environ.get(SNAPSHOT_ENV)
    return Path(given).expanduser() if given else DEFAULT_SNAPSHOT


@pytest.fixture
def tmp_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh, empty store; ``$JOULELENS_STORE`` points at it for CLI calls."""
    root = tmp_path / "store"
    monkeypatch.setenv(STORE_ENV, str(root))
    return Store(root)


REAL_DATA_SKIP = "real-data test"
_SKIP_LINE = inspect.currentframe().f_lineno  # type: ignore[union-attr]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every real-data skip reported from one place, so ``-ra`` lists its reason once."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and REAL_DATA_SKIP in str(longrepr[2]):
        report.longrepr = (__file__, _SKIP_LINE, longrepr[2])
    return report


@pytest.fixture(scope="session")
def public_snapshot() -> Path:
    """The public snapshot; every test on it skips, with one reason, where it is absent."""
    path = public_snapshot_dir()
    if not (path / "index.json").is_file():
        where = f"${SNAPSHOT_ENV}={path}" if os.environ.get(SNAPSHOT_ENV) else str(path)
        pytest.skip(
            f"{REAL_DATA_SKIP}s skipped: no ML.ENERGY Leaderboard v3 snapshot (index.json) "
            f"at {where}; set {SNAPSHOT_ENV} to its directory"
        )
    return path


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


def _stable_id(fields: dict[str, Any]) -> str:
    """The same fields give the same id in every process (``hash()`` of a str is salted)."""
    digest = hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()
    return f"test-{digest[:16]}"


def _record(**overrides: Any) -> RunRecord:
    """A valid synthetic run; every field not given is null with reason "synthetic test run"."""
    kind = RunKind(overrides.pop("kind", "llm"))
    task = overrides.pop(
        "task", "lm-arena-chat" if kind is not RunKind.DIFFUSION else "text-to-image"
    )
    fields: dict[str, Any] = {
        "run_id": overrides.pop("run_id", None) or _stable_id(overrides),
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


# Builders of internally consistent synthetic runs (diagnosis, planning and CLI tests).
@pytest.fixture
def llm_run(make_record: Callable[..., RunRecord]) -> Callable[..., RunRecord]:
    """An LLM run whose identities hold: E_tok = P / X, X = b / ITL, E_resp = E_tok x L.

    Give ``energy_per_token_joules``, ``max_num_seqs`` and optionally ``avg_power_watts``,
    ``avg_output_len``, ``fill`` (running batch / cap); anything else passes through.
    """

    def build(
        run_id: str, energy_per_token_joules: float, max_num_seqs: int, **kw: Any
    ) -> RunRecord:
        power = kw.pop("avg_power_watts", 500.0)
        out_len = kw.pop("avg_output_len", 500.0)
        fill = kw.pop("fill", 1.0)
        running = max_num_seqs * fill
        throughput = power / energy_per_token_joules
        fields: dict[str, Any] = {
            "run_id": run_id,
            "max_num_seqs": max_num_seqs,
            "energy_per_token_joules": energy_per_token_joules,
            "energy_per_request_joules": energy_per_token_joules * out_len,
            "avg_power_watts": power,
            "output_throughput_tokens_per_sec": throughput,
            "avg_batch_size": running,
            "median_itl_ms": running / throughput * 1000,
            "avg_output_len": out_len,
        }
        fields.update(kw)
        return make_record(**fields)

    return build


@pytest.fixture
def diffusion_run(make_record: Callable[..., RunRecord]) -> Callable[..., RunRecord]:
    """A diffusion run with E_gen = P x T / n."""

    def build(run_id: str, energy_joules: float, batch_size: int, **kw: Any) -> RunRecord:
        power = kw.pop("avg_power_watts", 600.0)
        task = kw.pop("task", "text-to-image")
        latency = energy_joules * batch_size / power
        unit = "video" if task == "text-to-video" else "image"
        fields: dict[str, Any] = {
            "run_id": run_id,
            "kind": "diffusion",
            "task": task,
            "batch_size": batch_size,
            "avg_power_watts": power,
            "batch_latency_s": latency,
            f"energy_per_{unit}_joules": energy_joules,
            f"throughput_{unit}s_per_sec": batch_size / latency,
            "inference_steps": 20,
            "height": 1024,
            "width": 1024,
        }
        fields.update(kw)
        return make_record(**fields)

    return build
