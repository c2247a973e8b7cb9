"""`joulelens import`, `runs`, `store` end to end: the CLI, then the store it leaves behind."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ingest.benchmark_fixtures import (
    llm_results,
    prometheus_doc,
    write_diffusion_run,
    write_llm_run,
)
from ingest.leaderboard_fixtures import write_snapshot
from joulelens.cli import common
from joulelens.cli.app import app
from joulelens.store import Store

runner = CliRunner()
PUBLISHED_COUNTS = {
    "text-to-image": 638,
    "text-to-video": 382,
    "lm-arena-chat": 328,
    "gpqa": 187,
    "image-chat": 173,
    "video-chat": 100,
    "sourcegraph-fim": 50,
}


def cli(*args: str, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def runs_json(*args: str) -> list[dict]:
    return json.loads(cli("runs", "--format", "json", *args).stdout)


def test_public_snapshot_import_twice_gives_1858(tmp_store: Store, public_snapshot: Path):
    out = cli("import", "mlenergy", public_snapshot).stdout
    assert "1858 new" in out
    runs = runs_json()
    assert len(runs) == 1858
    assert Counter(r["task"] for r in runs) == PUBLISHED_COUNTS
    assert all(r["run_id"].startswith("mle-") for r in runs)
    out = cli("import", "mlenergy", public_snapshot).stdout
    assert "0 new, 0 updated, 1858 unchanged" in out
    again = runs_json()
    assert len(again) == 1858
    assert sorted(r["run_id"] for r in again) == sorted(r["run_id"] for r in runs)


@pytest.fixture
def small_store(tmp_store: Store, tmp_path: Path) -> Store:
    cli("import", "mlenergy", write_snapshot(tmp_path / "lb"))
    return tmp_store


def test_runs_filters(small_store: Store):
    def count(*args: str) -> int:
        return len(runs_json(*args))

    assert count() == 7
    assert count("--task", "gpqa") == 3
    assert count("--model", "paint") == 2
    assert count("--gpu", "b200") == 2
    assert count("--num-gpus", "2") == 0
    assert count("--batch-min", "8", "--batch-max", "16") == 4  # gpqa 8, 8, 16 and image 8
    assert count("--precision", "bfloat16", "--stable") == 7
    assert count("--task", "text-to-video", "--batch-max", "1") == 1


def test_runs_formats(small_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(common.console, "width", 250)  # not a terminal: rich would use 80
    table = cli("runs", "--task", "text-to-image").stdout
    assert table.count("Paint 2B") == 2 and "J/image" in table and "B200" in table
    assert " 500" in table
    rows = list(csv.DictReader(io.StringIO(cli("runs", "--format", "csv").stdout)))
    assert len(rows) == 7 and {r["source"] for r in rows} == {"mlenergy-leaderboard"}
    video = next(r for r in rows if r["task"] == "text-to-video")
    assert float(video["energy_per_unit_joules"]) == 64000.0 and video["energy_unit"] == "video"
    out = tmp_path / "runs.parquet"
    cli("runs", "--format", "parquet", "--output", out, "--task", "gpqa")
    table = pq.read_table(out)
    assert table.num_rows == 3
    assert sorted(table.column("max_num_seqs").to_pylist()) == [8, 8, 16]
    assert table.column("energy_per_token_joules").to_pylist() == [0.5, 0.5, 0.5]
    json_out = tmp_path / "runs.json"
    cli("runs", "--format", "json", "--output", json_out)
    assert len(json.loads(json_out.read_text())) == 7
    no_file = cli("runs", "--format", "parquet", ok=False)
    assert no_file.exit_code != 0 and "--output" in str(no_file.exception)


def test_store_rebuild_restores_catalog(small_store: Store):
    (small_store.root / "catalog.duckdb").unlink()
    assert "rebuilt from 7 run files" in cli("store", "rebuild").stdout
    assert len(runs_json()) == 7
    assert "runs: 7" in cli("store", "info").stdout


# -- raw ML.ENERGY Benchmark results -----------------------------------------------------------
def test_raw_import_and_reimport(tmp_store: Store, tmp_path: Path):
    write_llm_run(tmp_path / "bench", max_num_seqs=8)
    write_diffusion_run(tmp_path / "bench")
    out = cli("import", "mlenergy-raw", tmp_path / "bench").stdout
    assert "imported 2 runs" in out and "2 new" in out
    out = cli("import", "mlenergy-raw", tmp_path / "bench").stdout
    assert "0 new, 0 updated, 2 unchanged" in out
    runs = runs_json()
    assert len(runs) == 2 and {r["provenance"]["source"] for r in runs} == {"mlenergy-benchmark"}
    llm = next(r for r in runs if r["kind"] == "llm")
    assert llm["avg_power_watts"] == pytest.approx(200.0)
    # `import mlenergy` recognises a raw tree too.
    assert "2 unchanged" in cli("import", "mlenergy", tmp_path / "bench").stdout


def test_raw_import_cascade_across_imports(tmp_store: Store, tmp_path: Path):
    write_llm_run(tmp_path / "a", max_num_seqs=32, prometheus=prometheus_doc(avg_running=31.0))
    write_llm_run(tmp_path / "b", max_num_seqs=16, prometheus=prometheus_doc(avg_running=8.0))
    cli("import", "mlenergy-raw", tmp_path / "a")
    assert [r["stable"] for r in runs_json()] == [True]
    out = cli("import", "mlenergy-raw", tmp_path / "b").stdout
    assert "1 unstable" in out and "1 earlier runs re-judged" in out
    runs = {r["max_num_seqs"]: r for r in runs_json()}
    assert runs[16]["stable"] is False and runs[32]["stable"] is False
    assert runs[32]["unstable_reasons"][0].startswith("cascade:")
    assert len(runs_json("--stable")) == 0


def test_raw_import_malformed_writes_nothing(tmp_store: Store, tmp_path: Path):
    write_llm_run(tmp_path / "bench", max_num_seqs=8)
    bad = write_llm_run(tmp_path / "bench", max_num_seqs=16)
    doc = llm_results(max_num_seqs=16)
    doc["results"][0]["success"] = "sometimes"
    bad.write_text(json.dumps(doc))
    # The real entry point: one clean line naming file and field, exit code 2.
    proc = subprocess.run(
        [_joulelens(), "import", "mlenergy-raw", str(tmp_path / "bench")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "500"},  # rich wraps stderr at 80 columns otherwise
    )
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "results[0].success" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert Store(tmp_store.root).all() == []
    out = cli("import", "mlenergy-raw", tmp_path / "bench", "--skip-invalid")
    assert "1 malformed skipped" in out.stdout and str(bad) in out.stderr
    assert [r["max_num_seqs"] for r in runs_json()] == [8]


def _joulelens() -> str:
    return str(Path(sys.executable).with_name("joulelens"))
