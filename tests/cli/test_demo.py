"""The main job: `joulelens demo` measures SmolLM2-135M offline and writes the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from joulelens.records import EnergyMethod, RunStatus
from joulelens.store import STORE_ENV, Store


@pytest.mark.slow
def test_demo_measures_three_batch_sizes_and_writes_the_report(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    report = tmp_path / "demo.html"
    env = {
        **os.environ,
        STORE_ENV: str(tmp_path / "store"),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "120",
    }
    cli = [sys.executable, "-c", "from joulelens.cli.app import main; main()"]
    result = subprocess.run(
        [*cli, "demo", "--output", str(report), "--device", "cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"report: {report.resolve()}" in result.stdout.replace("\n", "")
    assert "Why energy per token changed from batch 1 to 16" in result.stdout
    runs = sorted(Store(tmp_path / "store").all(), key=lambda r: r.max_num_seqs or 0)
    assert [r.max_num_seqs for r in runs] == [1, 4, 16]
    assert all(r.status is RunStatus.COMPLETED for r in runs)
    assert all(r.energy_method is EnergyMethod.ESTIMATED for r in runs)
    assert all(r.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct" for r in runs)
    html = report.read_text()
    assert report.stat().st_size > 100_000 and all(r.run_id in html for r in runs)
