"""Every CLI table at 80 columns: run ids and key numbers whole, nothing past the edge,
and what did not fit named (``--wide`` shows it)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from analysis.planning_helpers import diffusion_run, llm_run
from joulelens.cli import common
from joulelens.cli.app import run_cli
from joulelens.cli.common import fmt_num
from joulelens.records import RunRecord
from joulelens.store import Store

LONG_MODEL = "example-org/Very-Long-Model-Name-70B-Instruct-Preview"
MODELS = ("Qwen/Qwen3-8B", LONG_MODEL)


def _id(*parts: object) -> str:
    """An id shaped like joulelens's own: prefix and 12 hex digits."""
    return "jl-" + hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


@pytest.fixture
def records(tmp_store: Store, make_record: Callable[..., RunRecord]) -> list[RunRecord]:
    runs = []
    for task in ("lm-arena-chat", "sourcegraph-fim"):
        for model in MODELS:
            for gpu, num in (("H100", 1), ("B200", 8)):
                for batch in (8, 64, 512, 2048):
                    runs.append(
                        llm_run(
                            make_record,
                            batch,
                            run_id=_id(task, model, gpu, num, batch),
                            task=task,
                            model_id=model,
                            nickname=model.split("/")[-1].replace("-", " "),
                            gpu=gpu,
                            num_gpus=num,
                        )
                    )
    for batch in (1, 4, 16):
        runs.append(
            diffusion_run(
                make_record,
                batch,
                run_id=_id("video", batch),
                task="text-to-video",
                model_id="example/VideoGen-14B",
                num_gpus=8,
                avg_power_watts=6_000.0,
                energy_per_video_joules=1_234_567.0 / batch,
            )
        )
    tmp_store.put_many(runs)
    return runs


@pytest.fixture
def at_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 80)


def _table(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert run_cli(list(args)) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    too_wide = [line for line in out.splitlines() if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)
    assert "…" not in out  # nothing cut
    return out


def _whole(out: str, values: list[str]) -> None:
    words = set(out.split())
    missing = [v for v in values if v not in words]
    assert not missing, f"not whole in the table: {missing}\n{out}"


@pytest.mark.usefixtures("at_80")
def test_runs_at_80_columns_keep_ids_and_energy_whole(
    records: list[RunRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _table(capsys, "runs")
    _whole(out, [r.run_id for r in records])
    _whole(out, [fmt_num(r.energy_per_unit_joules) for r in records])
    _whole(out, ["sourcegraph-fim", "text-to-video", "8x", "B200"])
    assert "not shown:" in out and "--wide" in out
    wide = _table_unbounded(capsys, "runs", "--wide")
    assert "power W" in wide and "precision" in wide


def _table_unbounded(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert run_cli(list(args)) == 0
    return capsys.readouterr().out


@pytest.mark.usefixtures("at_80")
def test_a_filter_moves_the_shared_values_into_the_caption(
    records: list[RunRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _table(capsys, "runs", "--task", "sourcegraph-fim", "--gpu", "H100")
    shown = [r for r in records if r.task == "sourcegraph-fim" and r.gpu_model == "H100"]
    _whole(out, [r.run_id for r in shown])
    assert "task: sourcegraph-fim" in out and "J/token" in out
    assert "latency" in out and "tokens/s" in out  # the room saved shows more columns


@pytest.mark.usefixtures("at_80", "records")
def test_summary_at_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    out = _table(capsys, "summary")
    _whole(out, ["lm-arena-chat", "sourcegraph-fim", "text-to-video"])
    _whole(out, [fmt_num(1_234_567.0 / 16), fmt_num(1_234_567.0 / 4)])  # min, median J/video


@pytest.mark.usefixtures("at_80")
@pytest.mark.parametrize(
    "args",
    [
        ["frontier", "--task", "lm-arena-chat"],
        ["plan", "--task", "lm-arena-chat", "--deadline-ms", "40"],
        ["predict", "--task", "lm-arena-chat", "--batch", "128"],
        ["predict", "--validate"],
        ["advise"],
        [
            "datacenter",
            "--task",
            "lm-arena-chat",
            "--power-mw",
            "10",
            "--pue",
            "1.2",
            "--host-watts-per-gpu",
            "200",
            "--deadline-ms",
            "40",
        ],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_planning_tables_at_80_columns(
    args: list[str], records: list[RunRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _table(capsys, *args)
    if args[0] in ("frontier", "plan"):
        ids = {r.run_id for r in records}
        shown = [w for w in out.split() if w.startswith("jl-")]
        assert shown and set(shown) <= ids  # every id printed is a whole, real one


@pytest.mark.usefixtures("at_80")
def test_advise_a_run_at_80_columns(
    records: list[RunRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    run = next(r for r in records if r.model_id == LONG_MODEL and r.max_num_seqs == 8)
    out = _table(capsys, "advise", run.run_id, "--deadline-ms", "40")
    _whole(out, [run.run_id, fmt_num(run.energy_per_unit_joules)])


def test_a_real_80_column_terminal(records: list[RunRecord], tmp_store: Store) -> None:
    """The same through the installed entry point, with the width from $COLUMNS."""
    proc = subprocess.run(
        [sys.executable, "-c", "from joulelens.cli.app import main; main()", "runs"],
        env={**os.environ, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    _whole(proc.stdout, [r.run_id for r in records])
