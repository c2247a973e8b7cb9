"""The public API: importable without the heavy extras, and the same answers as the CLI."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.benchmark_fixtures import write_configs, write_llm_run
from ingest.leaderboard_fixtures import write_snapshot
from joulelens import api
from joulelens.cli.app import app
from runner.conftest import endpoint_config
from sse_server import ServerOptions, SSEServer

HEAVY = ("torch", "transformers", "diffusers", "vllm", "ray")


def test_the_api_imports_without_the_heavy_extras() -> None:
    code = (
        "import sys\n"
        "import joulelens.api as api\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
        "print(sorted(n for n in api.__all__ if not hasattr(api, n)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert out == ["[]", "[]"]


def test_the_api_imports_when_the_heavy_extras_are_absent() -> None:
    """``sys.modules[name] = None`` makes ``import name`` fail, as an absent package would."""
    hide = "".join(f"sys.modules[{m!r}] = None\n" for m in HEAVY)
    code = "import sys\n" + hide + "import joulelens.api\nprint('ok')\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_every_public_function_says_what_it_does() -> None:
    functions = [getattr(api, n) for n in api.__all__ if inspect.isfunction(getattr(api, n))]
    assert len(functions) == 10
    assert [f.__name__ for f in functions if not (f.__doc__ or "").strip()] == []


def _cli_json(store: api.Store, *args: str) -> object:
    result = CliRunner().invoke(app, [*args, "--format", "json", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_api_end_to_end_on_a_store_built_here(tmp_path: Path) -> None:
    store = api.open_store(tmp_path / "store")
    board = api.import_leaderboard(write_snapshot(tmp_path / "lb"), store)
    assert len(board.records) == 7 and board.counts.new == 7
    assert api.import_leaderboard(tmp_path / "lb", store).counts.unchanged == 7

    raw = tmp_path / "raw"
    write_configs(raw)
    write_llm_run(raw)
    bench = api.import_benchmark(raw, store)
    assert len(bench.records) == 1 and bench.counts.new == 1 and bench.skipped == []
    assert bench.configs_dir is not None

    server = SSEServer(ServerOptions(max_running=4)).start()
    try:
        small = api.run(endpoint_config(server.url, 2), store)
        large = api.run(endpoint_config(server.url, 4), store)
    finally:
        server.stop()
    assert store.get(small.run_id) == small and store.get(large.run_id) == large
    assert len(store.all()) == 10

    d = api.diagnose(small.run_id[:12], large, store, per_token=True)
    assert (d.a_id, d.b_id, d.unit) == (small.run_id, large.run_id, "J/token")
    assert large.energy_per_token_joules is not None and small.energy_per_token_joules
    ratio = large.energy_per_token_joules / small.energy_per_token_joules
    assert d.observed_ratio == pytest.approx(ratio)
    assert math.prod(f.ratio for f in d.factors) == pytest.approx(d.observed_ratio)
    summary = api.diagnosis_summary(d)
    assert summary.startswith("B uses ") and summary in api.diagnosis_text(d)
    cli = _cli_json(store, "diagnose", small.run_id, large.run_id, "--per-token")
    assert cli == json.loads(json.dumps(api.diagnosis_dict(d)))

    result = api.plan(store, "gpqa", 25.0)
    best = result.overall.best
    assert best is not None and best.latency_ms is not None and best.latency_ms <= 25.0
    gpqa = [r for r in board.records if r.task == "gpqa"]
    assert best.energy_per_unit_joules == min(r.energy_per_token_joules or math.inf for r in gpqa)
    assert _cli_json(store, "plan", "--task", "gpqa", "--deadline-ms", "25") == json.loads(
        json.dumps(result.to_dict())
    )
    with pytest.raises(api.AnalysisError):
        api.plan(store, "gpqa", 5.0)  # every gpqa run's median ITL is 20 ms

    findings = api.study(store, only=["batch_size_effect"])
    assert list(findings) == ["batch_size_effect"]
    with pytest.raises(api.InputError, match="unknown finding"):
        api.study(store, only=["no_such_finding"])
