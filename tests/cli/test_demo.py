"""The main job: `joulelens demo` measures SmolLM2-135M offline and writes the report, and its
energy per token falls with the batch even while another process keeps a core busy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from joulelens.records import EnergyMethod, RunStatus
from joulelens.store import STORE_ENV, Store


@pytest.mark.slow
def test_demo_beside_a_busy_core_measures_three_batch_sizes_and_writes_the_report(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    report = tmp_path / "demo.html"
    env = {
        **os.environ,
        STORE_ENV: str(tmp_path / "store"),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "120",
    }
    env.pop("OMP_WAIT_POLICY", None)  # the demo's own choice is under test
    cli = [sys.executable, "-c", "from joulelens.cli.app import main; main()"]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # one core, CPU-bound
    try:
        result = subprocess.run(
            [*cli, "demo", "--output", str(report), "--device", "cpu"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        busy.kill()
        busy.wait()
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert f"report: {report.resolve()}" in out.replace("\n", "")
    assert "Why energy per token changed from batch 1 to 16" in out
    runs = sorted(Store(tmp_path / "store").all(), key=lambda r: r.max_num_seqs or 0)
    assert [r.max_num_seqs for r in runs] == [1, 4, 16]
    assert all(r.status is RunStatus.COMPLETED for r in runs)
    assert all(r.energy_method is EnergyMethod.ESTIMATED for r in runs)
    assert all(r.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct" for r in runs)
    # The workload's own energy: the busy loop beside it is not charged to it.
    energy = [r.energy_per_token_joules for r in runs]
    assert energy[0] is not None and energy[1] is not None and energy[2] is not None
    assert energy[0] > energy[1] > energy[2], energy
    assert all(r.config["cpu_estimate"]["scope"] == "process" for r in runs)
    machine = [
        c.joules for r in runs for c in r.energy_components if c.name.startswith("machine-wide:")
    ]
    assert len(machine) == 3 and all(
        m is not None and m > (r.steady_state_energy_joules or 0)
        for m, r in zip(machine, runs, strict=True)
    )
    # One line says what was measured and how; warnings and only readable meters are shown.
    flat = " ".join(out.split())
    assert "energy: estimated, no power sensor read; CPU time of" in flat
    assert "it cannot see idle and static CPU power" in flat
    assert "'machine-wide'" in flat
    meters = next(line for line in out.splitlines() if line.startswith("meters:"))
    assert "cpu-estimate:process" in meters and "cpu-package" not in meters
    assert all(f"! B={r.batch}: {w}" in out for r in runs for w in r.warnings[:1])
    html = report.read_text()
    assert report.stat().st_size > 100_000 and all(r.run_id in html for r in runs)
