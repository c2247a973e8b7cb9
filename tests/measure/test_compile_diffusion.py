"""Diffusion runs: one window per batch, warm-up excluded."""

from __future__ import annotations

import pytest
from measure_helpers import constant_power_readings

from joulelens.core.events import BatchTrace
from joulelens.core.idle import IdlePower
from joulelens.core.windows import WindowEnergy
from joulelens.errors import InputError
from joulelens.measure import RunSpec, compile_diffusion_run
from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.records.schema import (
    EnergyBoundary,
    EnergyComponent,
    EnergyMethod,
    Provenance,
    RunKind,
    SourceKind,
)


def spec(task: str = "text-to-image", **kw: object) -> RunSpec:
    return RunSpec(
        run_id="jl-diff",
        model_id="test/diffusion",
        task=task,
        provenance=Provenance(source=SourceKind.JOULELENS),
        kind=RunKind.DIFFUSION,
        **kw,  # type: ignore[arg-type]
    )


def batches() -> list[BatchTrace]:
    return [
        BatchTrace(0, 4, 0.0, 3.0, warmup=True),  # slow first batch: compile, caches
        BatchTrace(1, 4, 3.0, 5.0),
        BatchTrace(2, 4, 5.5, 7.5),
        BatchTrace(3, 4, 8.0, 10.0),
    ]


def test_energy_per_image_from_measured_batches() -> None:
    readings = constant_power_readings(400.0, -1.0, 11.0)
    idle = IdlePower({EnergyBoundary.GPU: 100.0})
    record = compile_diffusion_run(batches(), readings, spec=spec(), idle=idle).record
    # Three measured batches of 2 s at 400 W: 800 J each, 4 images each -> 200 J/image.
    assert record.energy_per_image_joules == pytest.approx(200.0)
    assert record.batch_latency_s == pytest.approx(2.0)
    assert record.throughput_images_per_sec == pytest.approx(12 / 6.0)
    assert record.avg_power_watts == pytest.approx(400.0)
    assert record.static_energy_fraction == pytest.approx(0.25)
    assert record.batch_size == 4
    assert record.stable is True, record.unstable_reasons
    assert record.latency_ms == pytest.approx(2000.0)
    assert record.energy_unit == "image"
    config_batches = record.config["batches"]
    assert [b["energy_joules"] for b in config_batches] == pytest.approx([None, 800, 800, 800])
    assert config_batches[1]["start_s"] == 3.0  # origin: the first batch's start


def test_video_fields() -> None:
    readings = constant_power_readings(400.0, -1.0, 11.0)
    record = compile_diffusion_run(batches(), readings, spec=spec("text-to-video")).record
    assert record.energy_per_video_joules == pytest.approx(200.0)
    assert record.throughput_videos_per_sec == pytest.approx(2.0)
    assert "energy_per_image_joules" not in record.missing


def test_exact_windows_from_the_meters_win_over_the_series() -> None:
    clock = FakeClock(3.0)
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(500.0))], clock)
    meters.begin_window("b1")
    clock.advance(2.0)
    exact = meters.end_window("b1")  # the meters' window is the compile step's type
    readings = constant_power_readings(400.0, -1.0, 11.0)
    record = compile_diffusion_run(
        batches(), readings, spec=spec(), batch_windows={1: exact}
    ).record
    # Batch 1: 1000 J from its own window; batches 2 and 3: 800 J each from the series.
    assert record.energy_per_image_joules == pytest.approx(2600.0 / 12)


def test_failed_batch_and_no_readings() -> None:
    runs = [*batches(), BatchTrace(4, 4, 10.0, 11.0, error="CUDA out of memory")]
    readings = constant_power_readings(400.0, -1.0, 12.0)
    record = compile_diffusion_run(runs, readings, spec=spec()).record
    assert record.stable is False
    assert record.unstable_reasons == ["batch 4 failed: CUDA out of memory"]
    with pytest.raises(InputError, match="no measured window"):
        compile_diffusion_run(batches(), None, spec=spec())


def test_only_warmup_batches() -> None:
    readings = constant_power_readings(400.0, -1.0, 11.0)
    record = compile_diffusion_run(batches()[:1], readings, spec=spec()).record
    assert record.stable is False
    assert record.missing["energy_per_image_joules"] == "no batch was measured"
    assert record.missing["batch_latency_s"] == "no batch was measured"
    assert "no batch was measured (all warm-up, failed or missing)" in record.unstable_reasons


def test_a_null_batch_window_nulls_the_energy() -> None:
    null = WindowEnergy(
        3.0,
        5.0,
        (
            EnergyComponent(
                name="gpu:0",
                joules=None,
                boundary=EnergyBoundary.GPU,
                method=EnergyMethod.COUNTER,
                missing_reason="counter went backwards",
            ),
        ),
        (),
    )
    readings = constant_power_readings(400.0, -1.0, 11.0)
    record = compile_diffusion_run(batches(), readings, spec=spec(), batch_windows={1: null}).record
    assert record.energy_per_image_joules is None
    assert "counter went backwards" in record.missing["energy_per_image_joules"]
    assert record.batch_latency_s == pytest.approx(2.0)


def test_wrong_kind_is_refused() -> None:
    with pytest.raises(InputError, match="diffusion spec"):
        compile_diffusion_run(
            batches(), None, spec=spec().__class__(**{**spec().__dict__, "kind": RunKind.LLM})
        )
