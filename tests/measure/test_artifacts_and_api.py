"""Artifacts on disk and in the store, the spec's guard rails, the adapters, the imports."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from measure_helpers import constant_power_readings, llm_spec, slot_schedule

from joulelens.errors import InputError
from joulelens.measure import (
    REQUESTS_FILE,
    TIMELINE_FILE,
    compile_llm_run,
    server_metrics_from_scraper,
    write_run_artifacts,
)
from joulelens.measure.artifacts import _REQUEST_SCHEMA
from joulelens.meters import measure_idle_power
from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.records.schema import EnergyBoundary, RequestRow
from joulelens.store import Store
from joulelens.workloads import MetricsScraper, ScrapeValues


def compiled():  # type: ignore[no-untyped-def]
    traces = slot_schedule(8, 2, 10)
    return compile_llm_run(
        traces, constant_power_readings(300.0, -1.0, 42.0), spec=llm_spec(2, run_id="jl-art")
    )


def test_request_schema_matches_the_row_model() -> None:
    assert _REQUEST_SCHEMA.names == list(RequestRow.model_fields)


def test_artifacts_round_trip_through_the_store(tmp_store: Store) -> None:
    run = compiled()
    tmp_store.put(run.record, write_artifacts=run.write_artifacts)
    stored = tmp_store.get("jl-art")
    assert stored.energy_per_token_joules == pytest.approx(150.0)
    assert stored.artifacts == [REQUESTS_FILE, TIMELINE_FILE]
    requests = pq.read_table(tmp_store.artifact_path("jl-art", REQUESTS_FILE)).to_pylist()
    assert [r["request_id"] for r in requests] == [f"r{i}" for i in range(8)]
    assert sum(r["attributed_energy_joules"] for r in requests) == pytest.approx(300.0 * 40.5)
    timeline = pq.read_table(tmp_store.artifact_path("jl-art", TIMELINE_FILE))
    assert timeline.num_rows == len(run.timeline)
    assert set(timeline.column("series").to_pylist()) == {
        "energy_joules:gpu:0",
        "power_watts:gpu:0",
    }


def test_empty_tables_write_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert write_run_artifacts(tmp_path, [], []) == []
    assert list(tmp_path.iterdir()) == []


def test_spec_refuses_unknown_and_computed_fields() -> None:
    with pytest.raises(InputError, match="not run record fields: colour"):
        llm_spec(2, fields={"colour": "red"})
    with pytest.raises(InputError, match="energy_per_token_joules"):
        llm_spec(2, fields={"energy_per_token_joules": 1.0})
    spec = llm_spec(2, fields={"gpu_model": "H100", "num_gpus": 2, "config": {"seed": 1}})
    record = compile_llm_run(
        slot_schedule(8, 2, 10), constant_power_readings(300.0, -1.0, 42.0), spec=spec
    ).record
    assert (record.gpu_model, record.num_gpus) == ("H100", 2)
    assert record.config["seed"] == 1 and "measurement" in record.config


def test_llm_compile_refuses_bad_input() -> None:
    readings = constant_power_readings(300.0, -1.0, 42.0)
    with pytest.raises(InputError, match="max_num_seqs"):
        compile_llm_run(slot_schedule(8, 2, 10), readings, spec=llm_spec(0))
    with pytest.raises(InputError, match="no request traces"):
        compile_llm_run([], readings, spec=llm_spec(2))


def test_server_metrics_from_a_scraper_fed_by_hand() -> None:
    scraper = MetricsScraper("http://127.0.0.1:1")
    for t_s, running in ((0.0, 1.0), (1.0, 2.0)):
        scraper.ingest(t_s, ScrapeValues(gauges={"vllm:num_requests_running": (running, 1)}))
    metrics = server_metrics_from_scraper(scraper)
    assert metrics.running is not None
    assert metrics.running.values.tolist() == [1.0, 2.0]
    assert metrics.kv_cache_usage is None
    assert "does not expose vllm:kv_cache_usage_perc" in metrics.missing_reason("kv_cache_usage")


def test_server_metrics_from_a_scraper_that_never_ran() -> None:
    metrics = server_metrics_from_scraper(MetricsScraper("http://127.0.0.1:1"))
    assert metrics.running is None
    assert metrics.missing_reason("running") == "server metrics unavailable: not started"


def test_idle_power_from_the_meters_is_what_the_compile_step_reads() -> None:
    clock = FakeClock()
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(80.0))], clock)
    idle = measure_idle_power(meters, 5.0, sleep=clock.sleep)
    assert idle.watts(EnergyBoundary.GPU) == pytest.approx(80.0)
    assert idle.duration_s == pytest.approx(5.0)
    assert idle.missing_reason(EnergyBoundary.CPU) == "idle baseline has no cpu reading"
    off = measure_idle_power(meters, 5.0, enabled=False)
    assert off.missing_reason(EnergyBoundary.GPU) == (
        "idle baseline: idle baseline disabled by the caller"
    )


@pytest.mark.parametrize(
    "first",
    ["joulelens.meters", "joulelens.measure", "joulelens.workloads", "joulelens.core.events"],
)
def test_imports_in_any_order(first: str) -> None:
    code = f"import {first}; import joulelens.measure as m; [getattr(m, n) for n in m.__all__]"
    subprocess.run([sys.executable, "-c", code], check=True)
