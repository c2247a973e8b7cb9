"""The run-record schema: nulls carry reasons, histograms are consistent, JSON round-trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from joulelens.records import (
    EnergyBoundary,
    EnergyComponent,
    EnergyMethod,
    Histogram,
    Provenance,
    RequestRow,
    RunKind,
    RunRecord,
    RunStatus,
    SourceKind,
    TimelineSample,
    generation_unit,
    required_metric_fields,
    stable_run_id,
)


def _base(**fields) -> dict:
    return {
        "run_id": "r",
        "kind": RunKind.LLM,
        "task": "gpqa",
        "model_id": "m",
        "energy_boundary": EnergyBoundary.GPU,
        "energy_method": EnergyMethod.COUNTER,
        "provenance": Provenance(source=SourceKind.JOULELENS),
        **fields,
    }


def _all_missing(kind: RunKind, task: str, but: tuple[str, ...] = ()) -> dict[str, str]:
    return {f: "not measured" for f in required_metric_fields(kind, task) if f not in but}


def test_null_metric_without_reason_is_rejected():
    missing = _all_missing(RunKind.LLM, "gpqa", but=("energy_per_token_joules",))
    with pytest.raises(ValidationError, match="energy_per_token_joules"):
        RunRecord(**_base(missing=missing))
    ok = RunRecord(**_base(missing=missing, energy_per_token_joules=0.3))
    assert ok.energy_per_token_joules == 0.3
    explained = RunRecord(**_base(missing=_all_missing(RunKind.LLM, "gpqa")))
    assert explained.energy_per_token_joules is None


def test_diffusion_requires_the_fields_of_its_unit():
    image = required_metric_fields(RunKind.DIFFUSION, "text-to-image")
    video = required_metric_fields(RunKind.DIFFUSION, "text-to-video")
    assert "energy_per_image_joules" in image and "energy_per_video_joules" not in image
    assert "energy_per_video_joules" in video and "throughput_videos_per_sec" in video
    assert "energy_per_token_joules" not in video
    assert generation_unit("text-to-video") == "video"
    missing = _all_missing(RunKind.DIFFUSION, "text-to-image", but=("energy_per_image_joules",))
    with pytest.raises(ValidationError, match="energy_per_image_joules"):
        RunRecord(**_base(kind=RunKind.DIFFUSION, task="text-to-image", missing=missing))


def test_failed_runs_need_a_reason_but_no_metrics():
    with pytest.raises(ValidationError, match="failure_reason"):
        RunRecord(**_base(status=RunStatus.FAILED))
    failed = RunRecord(**_base(status=RunStatus.FAILED, failure_reason="server crashed"))
    assert failed.energy_per_token_joules is None


def test_unstable_runs_need_reasons():
    missing = _all_missing(RunKind.LLM, "gpqa")
    with pytest.raises(ValidationError, match="unstable_reasons"):
        RunRecord(**_base(missing=missing, stable=False))
    r = RunRecord(**_base(missing=missing, stable=False, unstable_reasons=["short steady state"]))
    assert r.stable is False


def test_unknown_fields_and_bad_enums_are_rejected():
    missing = _all_missing(RunKind.LLM, "gpqa")
    with pytest.raises(ValidationError, match="energy_per_token_kj"):
        RunRecord(**_base(missing=missing, energy_per_token_kj=1.0))
    with pytest.raises(ValidationError, match="energy_boundary"):
        RunRecord(**_base(missing=missing, energy_boundary="moon"))


def test_enum_values_are_the_documented_strings():
    assert [m.value for m in EnergyMethod] == ["counter", "integrated", "attributed", "estimated"]
    assert [b.value for b in EnergyBoundary] == [
        "gpu",
        "cpu",
        "dram",
        "cpu+dram",
        "gpu+cpu",
        "gpu+cpu+dram",
        "node",
    ]
    assert [k.value for k in RunKind] == ["llm", "mllm", "diffusion"]
    assert {s.value for s in SourceKind} == {
        "mlenergy-leaderboard",
        "mlenergy-benchmark",
        "joulelens",
    }


def test_histogram_validation():
    h = Histogram(bins=[0, 10, 20], counts=[3, 4])
    assert h.total == 7
    with pytest.raises(ValidationError, match=r"len\(bins\) == len\(counts\) \+ 1"):
        Histogram(bins=[0, 10], counts=[3, 4])
    with pytest.raises(ValidationError):
        Histogram(bins=[0, 10], counts=[1.5])


def test_energy_component_null_needs_reason():
    with pytest.raises(ValidationError, match="without a reason"):
        EnergyComponent(
            name="dram:0", joules=None, boundary=EnergyBoundary.DRAM, method=EnergyMethod.COUNTER
        )
    c = EnergyComponent(
        name="dram:0",
        joules=None,
        boundary=EnergyBoundary.DRAM,
        method=EnergyMethod.COUNTER,
        missing_reason="RAPL has no DRAM domain on this CPU",
    )
    assert c.missing_reason


def test_full_record_round_trips_through_json():
    r = RunRecord(
        **_base(
            kind=RunKind.DIFFUSION,
            task="text-to-video",
            batch_size=2,
            energy_per_video_joules=6e4,
            throughput_videos_per_sec=0.02,
            avg_power_watts=800.0,
            batch_latency_s=100.0,
            energy_boundary=EnergyBoundary.GPU_CPU_DRAM,
            energy_method=EnergyMethod.INTEGRATED,
            energy_components=[
                EnergyComponent(
                    name="gpu:0", joules=5e4, boundary=EnergyBoundary.GPU, method="counter"
                ),
                EnergyComponent(
                    name="cpu-estimate",
                    joules=1e4,
                    boundary=EnergyBoundary.CPU,
                    method=EnergyMethod.ESTIMATED,
                ),
            ],
            output_length_distribution=Histogram(bins=[0, 1], counts=[2]),
            started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            config={"steps": 50, "nested": {"a": [1, 2]}},
            missing={"idle_power_watts": "no idle window", "static_energy_fraction": "no idle"},
            provenance=Provenance(source="mlenergy-benchmark", source_path="/x/results.json"),
        )
    )
    back = RunRecord.model_validate_json(r.model_dump_json())
    assert back == r
    assert back.energy_components[1].method is EnergyMethod.ESTIMATED
    assert back.energy_per_unit_joules == 6e4 and back.energy_unit == "video"
    assert back.latency_ms == pytest.approx(100_000.0)
    assert back.batch == 2 and back.throughput_units_per_sec == 0.02


@settings(max_examples=50, deadline=None)
@given(
    ept=st.floats(min_value=1e-6, max_value=1e3, allow_nan=False),
    batch=st.integers(min_value=1, max_value=4096),
    itl=st.one_of(st.none(), st.floats(min_value=0, max_value=1e5, allow_nan=False)),
)
def test_llm_round_trip_property(ept: float, batch: int, itl: float | None):
    missing = _all_missing(RunKind.LLM, "gpqa", but=("energy_per_token_joules", "median_itl_ms"))
    if itl is None:
        missing["median_itl_ms"] = "no streaming"
    r = RunRecord(
        **_base(energy_per_token_joules=ept, max_num_seqs=batch, median_itl_ms=itl, missing=missing)
    )
    back = RunRecord.model_validate_json(r.model_dump_json())
    assert back == r
    assert (back.batch, back.energy_per_unit_joules, back.latency_ms) == (batch, ept, itl)


def test_stable_run_id_is_deterministic_and_order_free():
    a = stable_run_id("mle", {"task": "gpqa", "model": "m", "key": [1, 2]})
    b = stable_run_id("mle", {"key": [1, 2], "model": "m", "task": "gpqa"})
    assert a == b and a.startswith("mle-") and len(a) == len("mle-") + 12
    assert stable_run_id("mle", {"task": "gpqa", "model": "m", "key": [1, 3]}) != a


def test_request_row_and_timeline_sample_are_typed():
    row = RequestRow(
        request_id="q1",
        sent_s=0.0,
        ttft_ms=12.0,
        e2e_latency_ms=900.0,
        input_tokens=10,
        output_tokens=100,
        finish_reason="stop",
        error=None,
        in_steady_state=True,
    )
    assert RequestRow.model_validate_json(row.model_dump_json()) == row
    with pytest.raises(ValidationError):
        TimelineSample(t_s=0.0, series="power_watts:gpu:0", value="hot")
