"""The diagnosis commands through Typer (registered on a fresh app, as cli/app.py does)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from joulelens.analysis.study import FINDING_IDS
from joulelens.cli import diagnosis
from joulelens.errors import RunNotFoundError
from joulelens.records import RunRecord
from joulelens.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    diagnosis.register(app)
    return app


def _largest(store: Store, model: str, task: str) -> RunRecord:
    runs = [
        r
        for r in store.all()
        if r.model_id == model and r.task == task and r.gpu_model == "B200" and r.num_gpus == 1
    ]
    return max(runs, key=lambda r: r.batch or 0)


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        ("text", "edges:"),
        ("mermaid", "flowchart LR"),
        ("dot", "digraph"),
        ("markdown", "```mermaid"),
    ],
)
def test_graph_formats(app: typer.Typer, fmt: str, marker: str) -> None:
    result = runner.invoke(app, ["graph", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert marker in result.output


def test_graph_json(app: typer.Typer) -> None:
    data = json.loads(runner.invoke(app, ["graph", "--format", "json"]).output)
    assert {"nodes", "edges"} == set(data)


def test_why_and_diagnose_on_the_public_store(app: typer.Typer, public_store: Store) -> None:
    store = ["--store", str(public_store.root)]
    video = _largest(public_store, "Qwen/Qwen3-VL-8B-Instruct", "video-chat")
    result = runner.invoke(app, ["why", video.run_id[:10], "--format", "json", *store])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["batch_stop"] == "non_gpu_bottleneck"
    text = runner.invoke(app, ["why", video.run_id, *store]).output
    assert "non-GPU bottleneck" in text and "<- this run" in text

    a = _largest(public_store, "Qwen/Qwen3-32B", "lm-arena-chat")
    b = _largest(public_store, "Qwen/Qwen3-32B", "gpqa")
    result = runner.invoke(app, ["diagnose", a.run_id, b.run_id, "--format", "json", *store])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["main_causes"] == ["output_length", "running_batch"]
    assert abs(data["residual"]) < 0.01
    text = runner.invoke(app, ["diagnose", a.run_id, b.run_id, *store]).output
    assert "longer outputs" in text and "product" in text


def test_study_formats_and_explain(app: typer.Typer, public_store: Store) -> None:
    store = ["--store", str(public_store.root)]
    result = runner.invoke(app, ["study", "--format", "json", *store])
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.output)) == list(FINDING_IDS)
    text = runner.invoke(app, ["study", *store]).output
    assert text.count("\n") == len(FINDING_IDS)
    md = runner.invoke(app, ["study", "--format", "markdown", "--finding", "precision", *store])
    assert md.output.startswith("# Study") and "FP8" in md.output
    explained = runner.invoke(app, ["study", "--explain", "task_energy", *store]).output
    assert "runs: mle-" in explained
    explained_json = json.loads(
        runner.invoke(app, ["study", "--explain", "gpu_count", "--format", "json", *store]).output
    )
    assert explained_json["sources"]


def test_unknown_run_is_a_store_error(app: typer.Typer, tmp_store: Store) -> None:
    result = runner.invoke(app, ["why", "nope"])
    assert isinstance(result.exception, RunNotFoundError)
