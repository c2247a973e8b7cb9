"""Analysis, planning and the report work on runs joulelens measured itself."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from joulelens.cli.app import app
from joulelens.runner.sweep import SweepGrid, run_sweep
from joulelens.store import Store

BASE = {
    "engine": "endpoint",
    "max_tokens": 80,
    "num_requests": 16,
    "num_gpus": 0,
    "gpus": False,
    "idle_baseline_s": 0.2,
    "min_steady_state_s": 0.05,
    "extra_body": {"sse_test": {"itl_s": 0.01, "chunks": 60}},
}


def test_planning_commands_on_a_measured_sweep(
    tmp_store: Store, sse_url: str, tmp_path: Path
) -> None:
    grid = SweepGrid(
        models=["test-model"],
        tasks=["lm-arena-chat"],
        batch_sizes=[1, 2, 4],
        base={**BASE, "endpoint": sse_url},
    )
    outcome = run_sweep(grid, tmp_store)
    assert [r.stable for r in outcome.completed] == [True, True, True], [
        r.unstable_reasons for r in outcome.completed
    ]
    runner = CliRunner()
    env = {"COLUMNS": "200"}

    frontier = runner.invoke(
        app,
        ["frontier", "--task", "lm-arena-chat", "--model", "test-model", "--format", "json"],
        env=env,
    )
    assert frontier.exit_code == 0, frontier.output
    points = json.loads(frontier.output)
    assert len(json.dumps(points)) > 0 and "test-model" in frontier.output

    slowest = max(r.median_itl_ms or 0 for r in outcome.completed)
    plan = runner.invoke(
        app,
        ["plan", "--task", "lm-arena-chat", "--deadline-ms", str(slowest * 2), "--format", "json"],
        env=env,
    )
    assert plan.exit_code == 0, plan.output
    assert any(r.run_id in plan.output for r in outcome.completed)

    predict = runner.invoke(
        app,
        [
            "predict",
            "--model",
            "test-model",
            "--task",
            "lm-arena-chat",
            "--gpu",
            "cpu",
            "--num-gpus",
            "0",
            "--batch",
            "3",
        ],
        env=env,
    )
    assert predict.exit_code == 0, predict.output

    advise = runner.invoke(app, ["advise", outcome.completed[0].run_id], env=env)
    assert advise.exit_code == 0, advise.output

    why = runner.invoke(app, ["why", outcome.completed[-1].run_id], env=env)
    assert why.exit_code == 0 and "static" in why.output

    report = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "-o", str(report)], env=env)
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert all(r.run_id in html for r in outcome.completed)
