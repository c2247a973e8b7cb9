"""Imported raw runs meet every check of the ML.ENERGY harness's validate_results.py, each
reason saying how the harness treats it (issue 12, failure 11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmark_fixtures import SS_END, SS_START, T0, prometheus_doc, write_llm_run

from joulelens.ingest.mlenergy_benchmark import read_benchmark_results
from joulelens.measure.validate import HARNESS_ERROR, HARNESS_WARNING, energy_per_token_ceiling
from joulelens.records import RunRecord

TAGS = ("[ML.ENERGY harness: error", "[ML.ENERGY harness: warning")


def _run(tmp_path: Path, edit: Any = None, **kw: Any) -> RunRecord:
    path = write_llm_run(tmp_path, **kw)
    if edit is not None:
        doc = json.loads(path.read_text())
        edit(doc, path.parent)
        path.write_text(json.dumps(doc))
    (record,) = read_benchmark_results(tmp_path).records
    return record


def _reasons_with(record: RunRecord, text: str) -> list[str]:
    return [r for r in record.unstable_reasons if text in r]


def test_a_run_with_failed_requests_is_unstable(tmp_path: Path) -> None:
    """8 of 96 requests answered HTTP 500 used to import as stable."""

    def edit(doc: dict, _: Path) -> None:
        template = doc["results"][0]
        doc["results"] = [dict(template) for _ in range(96)]
        for r in doc["results"][:8]:
            r.update(success=False, error="HTTP 500: Internal Server Error", output_len=0)
        doc.update(num_prompts=96, completed=88, total_output_tokens=8800)

    record = _run(tmp_path, edit)
    (reason,) = _reasons_with(record, "requests failed")
    assert reason.startswith("8 of 96 requests failed (HTTP 500") and reason.endswith(HARNESS_ERROR)
    assert _reasons_with(record, "only 88 of 96 requests completed")
    assert record.stable is False


@pytest.mark.parametrize(
    ("results", "needle"),
    [
        ({"steady_state_energy_per_token": 150.0}, "over 100 J"),
        ({"steady_state_energy": -5.0}, "steady-state energy is not positive"),
    ],
)
def test_metric_checks(tmp_path: Path, results: dict, needle: str) -> None:
    record = _run(tmp_path, **results)
    (reason,) = _reasons_with(record, needle)
    assert reason.endswith(HARNESS_ERROR)


def test_the_ceiling_is_a_warning_for_runs_measured_here() -> None:
    (warning,) = energy_per_token_ceiling(120.0)
    assert "over 100 J" in warning and warning.endswith(HARNESS_ERROR)
    assert energy_per_token_ceiling(99.0) == energy_per_token_ceiling(None) == []


def test_zero_throughput_is_a_harness_error(tmp_path: Path) -> None:
    def edit(doc: dict, _: Path) -> None:
        doc["output_throughput"] = 0.0

    record = _run(tmp_path, edit, steady_state_energy=0.0, steady_state_energy_per_token=0.0)
    assert _reasons_with(record, "throughput is not positive")


def test_crash_strings_in_the_server_log(tmp_path: Path) -> None:
    def edit(doc: dict, run_dir: Path) -> None:
        (run_dir / "server.log").write_text(
            "INFO platform is not available: RuntimeError skipped\n"
            "INFO serving\n"
            "ERROR vllm.v1.engine.exceptions.EngineDeadError: EngineCore died\n"
            "ERROR CUDA error: an illegal memory access\n"
        )
        (run_dir / "driver.log").write_text("INFO all good\n")

    record = _run(tmp_path, edit)
    (reason,) = _reasons_with(record, "server.log shows a crash")
    assert "EngineDeadError at line 3 and 1 more" in reason and reason.endswith(HARNESS_ERROR)
    assert not any("no server.log" in w for w in record.warnings)


def test_missing_logs_are_warnings_with_the_harness_severity(tmp_path: Path) -> None:
    record = _run(tmp_path)
    missing = [w for w in record.warnings if w.startswith("no server.log")]
    assert missing and "[ML.ENERGY harness: error (missing file)]" in missing[0]


def test_power_and_temperature_from_the_results_timeline(tmp_path: Path) -> None:
    def edit(doc: dict, _: Path) -> None:
        times = [T0 + i for i in range(20)]
        doc["timeline"]["power"] = {"device_instant": {"0": [[t, 400.0] for t in times]}}
        doc["timeline"]["power"]["device_instant"]["0"][5][1] = 1500.0  # > 1.7 x 700 W
        temps = [[t, 60.0] for t in times]
        temps[3][1] = 99.0  # 1 of 20 = 5% outside 20-95 C
        doc["timeline"]["temperature"] = {"0": temps}

    record = _run(tmp_path, edit)
    (power,) = _reasons_with(record, "power readings above")
    assert "1190 W" in power and power.endswith(HARNESS_WARNING)
    (temperature,) = _reasons_with(record, "temperature readings outside")
    assert temperature.endswith(HARNESS_ERROR)


def test_truncation_and_short_harness_steady_state(tmp_path: Path) -> None:
    record = _run(tmp_path, steady_state_duration=25.0, steady_state_energy=5000.0)
    assert any(
        "under the harness's 30 s" in w and w.endswith(HARNESS_ERROR) for w in record.warnings
    )
    assert record.steady_state_duration_s == 25.0

    def edit(doc: dict, _: Path) -> None:
        for r in doc["results"]:
            r["output_len"] = 400  # every output at max_output_tokens

    capped = _run(tmp_path / "capped", edit)
    (reason,) = _reasons_with(capped, "hit the output token cap")
    assert reason.endswith(HARNESS_WARNING)


def test_sparse_prometheus_scrapes_are_a_warning(tmp_path: Path) -> None:
    record = _run(tmp_path)  # 4 scrapes over a 50 s benchmark, 2 in a 30 s steady state
    coverage = [w for w in record.warnings if w.startswith("Prometheus scrapes cover")]
    assert len(coverage) == 2 and all(w.endswith(HARNESS_WARNING) for w in coverage)
    dense = prometheus_doc()
    dense["timeline"] = [
        {"timestamp": T0 + i, "metrics": dense["timeline"][1]["metrics"]} for i in range(50)
    ]
    assert SS_START < T0 + 20 < SS_END
    record = _run(tmp_path / "dense", prometheus=dense)
    assert not [w for w in record.warnings if w.startswith("Prometheus scrapes cover")]


def test_the_largest_batch_of_a_sweep_should_fill_the_kv_cache(tmp_path: Path) -> None:
    for batch in (8, 16):
        write_llm_run(
            tmp_path, max_num_seqs=batch, prometheus=prometheus_doc(avg_running=batch * 0.95)
        )
    by_batch = {r.max_num_seqs: r for r in read_benchmark_results(tmp_path).records}
    (warning,) = [w for w in by_batch[16].warnings if w.startswith("sweep coverage:")]
    assert "fills only 40%" in warning and warning.endswith(HARNESS_WARNING)
    assert not [w for w in by_batch[8].warnings if w.startswith("sweep coverage:")]
    write_llm_run(
        tmp_path, max_num_seqs=32, prometheus=prometheus_doc(avg_running=31.0, avg_kv=0.9)
    )
    by_batch = {r.max_num_seqs: r for r in read_benchmark_results(tmp_path).records}
    assert not [w for r in by_batch.values() for w in r.warnings if w.startswith("sweep coverage:")]


def test_every_reason_states_the_harness_severity(tmp_path: Path) -> None:
    def edit(doc: dict, _: Path) -> None:
        doc["results"][0].update(success=False, error="boom")
        doc["completed"] = 3

    record = _run(
        tmp_path,
        edit,
        steady_state_duration=5.0,
        steady_state_energy=-1.0,
        prometheus=prometheus_doc(avg_running=2.0),
    )
    assert len(record.unstable_reasons) >= 4
    assert all(any(tag in r for tag in TAGS) for r in record.unstable_reasons)
