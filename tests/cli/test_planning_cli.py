"""The planning commands through Typer, on the public snapshot and on joulelens's own runs."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
import typer
from typer.testing import CliRunner

from analysis.planning_helpers import llm_sweep
from joulelens.cli import advise, planning, predict
from joulelens.errors import AnalysisError, InputError
from joulelens.records import RunRecord
from joulelens.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    for module in (planning, predict, advise):
        module.register(app)
    return app


@pytest.fixture
def own_store(tmp_store: Store, make_record: Callable[..., RunRecord]) -> list[str]:
    """Runs as joulelens itself records them (source joulelens), in a fresh store."""
    tmp_store.put_many(
        llm_sweep(make_record, [8, 32, 128, 512]) + llm_sweep(make_record, [8, 64], gpu="B200")
    )
    return ["--store", str(tmp_store.root)]


def _json(app: typer.Typer, args: list[str]) -> object:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_frontier_formats(app: typer.Typer, public_store: Store) -> None:
    store = ["--store", str(public_store.root)]
    args = ["frontier", "--task", "gpqa", "--model", "Qwen/Qwen3-14B", *store]
    data = _json(app, args)
    assert isinstance(data, dict) and data["points"]
    assert any(p["on_frontier"] for p in data["points"])
    table = runner.invoke(app, [*args, "--gpu", "H100"])
    assert table.exit_code == 0 and "on the frontier" in table.output
    assert "B200" not in table.output
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, [*args, "--format", "csv"]).output)))
    assert len(rows) == len(data["points"]) and "on_frontier" in rows[0]


def test_plan_on_the_public_snapshot(app: typer.Typer, public_store: Store) -> None:
    store = ["--store", str(public_store.root)]
    data = _json(app, ["plan", "--task", "lm-arena-chat", "--deadline-ms", "40", *store])
    assert isinstance(data, dict)
    assert data["overall"]["best"]["latency_ms"] <= 40 and data["overall"]["runner_up"]
    table = runner.invoke(
        app, ["plan", "--task", "gpqa", "--deadline-ms", "50", "--tighter-ms", "20", *store]
    )
    assert table.exit_code == 0, table.output
    assert "best" in table.output and "tighter deadline" in table.output


def test_plan_nothing_feasible(app: typer.Typer, public_store: Store) -> None:
    result = runner.invoke(
        app, ["plan", "--task", "gpqa", "--deadline-ms", "0.5", "--store", str(public_store.root)]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, AnalysisError)
    assert "nothing meets 0.5 ms" in str(result.exception)


def test_datacenter_states_assumptions(app: typer.Typer, public_store: Store) -> None:
    args = [
        "datacenter",
        "--task", "lm-arena-chat",
        "--power-mw", "5",
        "--deadline-ms", "50",
        "--pue", "1.3",
        "--host-watts-per-gpu", "150",
        "--gpus", "H100,B200",
        "--store", str(public_store.root),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for needle in ("assumptions:", "PUE 1.3", "150 W per GPU", "not TDP"):
        assert needle in result.output
    data = _json(app, args)
    assert isinstance(data, dict) and {d["config"]["gpu"] for d in data["per_gpu"]} == {
        "H100",
        "B200",
    }


def test_predict_and_validate(app: typer.Typer, public_store: Store) -> None:
    store = ["--store", str(public_store.root)]
    args = [
        "predict",
        "--model",
        "Qwen/Qwen3-14B",
        "--task",
        "gpqa",
        "--gpu",
        "B200",
        "--num-gpus",
        "1",
    ]
    data = _json(app, [*args, "--batch", "100", *store])
    assert isinstance(data, list) and data[0]["source"] == "interpolated"
    assert (
        data[0]["energy_low_joules"]
        < data[0]["energy_per_unit_joules"]
        < data[0]["energy_high_joules"]
    )
    out = runner.invoke(app, [*args, "--batch", "4096", *store])
    assert isinstance(out.exception, AnalysisError) and "extrapolate" in str(out.exception)
    assert isinstance(runner.invoke(app, [*args, *store]).exception, InputError)
    report = _json(app, ["predict", "--validate", "--task", "gpqa", *store])
    assert isinstance(report, dict) and report["scores"]["pchip"]["n"] > 50
    table = runner.invoke(app, ["predict", "--validate", "--task", "text-to-video", *store])
    assert table.exit_code == 0 and "logistic" in table.output


def test_advise_a_run_and_the_savings_report(app: typer.Typer, public_store: Store) -> None:
    store = ["--store", str(public_store.root)]
    run = next(
        r
        for r in public_store.all()
        if r.model_id == "Qwen/Qwen3-235B-A22B-Instruct-2507"
        and r.task == "lm-arena-chat"
        and r.gpu_model == "B200"
        and r.num_gpus == 4
        and r.batch == 64
    )
    data = _json(app, ["advise", run.run_id[:12], "--deadline-ms", "60", *store])
    assert isinstance(data, dict) and data["best"]["saving_fraction"] > 0
    table = runner.invoke(app, ["advise", run.run_id, "--deadline-ms", "60", *store])
    assert table.exit_code == 0, table.output
    assert "why:" in table.output and "not advised" in table.output
    rows = _json(app, ["advise", "--task", "gpqa", *store])
    assert isinstance(rows, list) and {r["task"] for r in rows} == {"gpqa"}
    assert runner.invoke(app, ["advise", "--task", "gpqa", *store]).exit_code == 0


def test_commands_work_on_joulelens_runs(app: typer.Typer, own_store: list[str]) -> None:
    frontier = _json(app, ["frontier", "--task", "lm-arena-chat", *own_store])
    assert isinstance(frontier, dict) and len(frontier["points"]) == 6
    plan = _json(
        app,
        [
            "plan",
            "--task",
            "lm-arena-chat",
            "--deadline-ms",
            "20",
            "--with-predictions",
            *own_store,
        ],
    )
    assert isinstance(plan, dict) and plan["with_predictions"] is True
    dc = _json(
        app,
        ["datacenter", "--task", "lm-arena-chat", "--power-mw", "1", "--deadline-ms", "40",
         "--pue", "1.2", "--host-watts-per-gpu", "100", *own_store],
    )  # fmt: skip
    assert isinstance(dc, dict) and dc["best"]["replicas"] > 0
    pred = _json(
        app, ["predict", "--task", "lm-arena-chat", "--gpu", "H100", "--batch", "64", *own_store]
    )
    assert isinstance(pred, list) and pred[0]["source"] == "interpolated"
    advice = _json(
        app, ["advise", "test-model-H100-1-lm-arena-chat-8", "--deadline-ms", "20", *own_store]
    )
    assert isinstance(advice, dict) and advice["best"]["change"] == "batch cap"


def test_advise_words_savings_and_says_when_a_run_is_already_best(
    app: typer.Typer, own_store: list[str], tmp_store: Store
) -> None:
    runs = {(r.gpu_model, r.max_num_seqs): r for r in tmp_store.all()}
    best, small = runs[("H100", 512)], runs[("H100", 8)]
    deadline = str(best.median_itl_ms)
    out = runner.invoke(app, ["advise", best.run_id, "--deadline-ms", deadline, *own_store])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "already the best choice within the deadline" in text
    data = _json(app, ["advise", best.run_id, "--deadline-ms", deadline, *own_store])
    assert isinstance(data, dict) and data["already_best"] is True and data["best"] is None
    out = runner.invoke(app, ["advise", small.run_id, "--deadline-ms", deadline, *own_store])
    text = " ".join(out.output.split())
    assert "already the best" not in text
    assert "% less energy per token" in text and "saving +" not in text
