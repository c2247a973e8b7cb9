"""Sources that cannot be read give null metrics with reasons, never 0."""

from __future__ import annotations

import pytest
from measure_helpers import (
    BASE_S,
    constant_power_readings,
    llm_spec,
    sampled_readings,
    slot_schedule,
)

from joulelens.core.idle import IdlePower
from joulelens.measure import EnergyReadings, EnergySource, compile_llm_run
from joulelens.measure.compile import ENERGY_FIELDS
from joulelens.meters.fake import PowerTrace
from joulelens.records.schema import EnergyBoundary, EnergyMethod


def traces() -> list:
    return slot_schedule(8, 2, 10, base_s=BASE_S)


def test_gpu_without_counter_or_power_sensor() -> None:
    readings = sampled_readings(
        PowerTrace.constant(300.0), 42.0, energy_counter=False, power_sensor=False
    )
    run = compile_llm_run(traces(), readings, spec=llm_spec(2))
    record = run.record
    for name in ENERGY_FIELDS:
        assert getattr(record, name) is None
        assert "offers neither an energy counter nor power" in record.missing[name]
    # Timing does not need energy.
    assert record.output_throughput_tokens_per_sec == pytest.approx(2.0)
    assert record.stable is False
    assert "energy per token is not positive: None J [ML.ENERGY harness: error]" in (
        record.unstable_reasons
    )
    gpu = record.energy_components[0]
    assert gpu.joules is None and "neither" in str(gpu.missing_reason)
    assert all(r.attributed_energy_joules is None for r in run.requests)
    assert any(w.startswith("per-request energy not attributed") for w in record.warnings)


def test_no_energy_source_at_all() -> None:
    record = compile_llm_run(traces(), EnergyReadings(()), spec=llm_spec(2)).record
    assert record.missing["energy_per_token_joules"] == "no energy source was measured"
    assert record.energy_boundary is EnergyBoundary.GPU
    assert record.energy_components == []


def test_readings_that_stop_early() -> None:
    readings = constant_power_readings(300.0, BASE_S - 1, BASE_S + 20.0)  # window ends at +30
    run = compile_llm_run(traces(), readings, spec=llm_spec(2))
    reason = run.record.missing["avg_power_watts"]
    assert "gpu energy unavailable" in reason and "not the window" in reason
    # Attribution covers what the readings cover, and says so.
    assert any("per-request energy covers" in w for w in run.record.warnings)
    assert sum(r.attributed_energy_joules for r in run.requests) == pytest.approx(300.0 * 20.0)


def test_cpu_estimate_is_the_headline_when_no_gpu_is_readable() -> None:
    gpu = EnergySource("gpu", EnergyBoundary.GPU, EnergyMethod.COUNTER, missing_reason="no NVML")
    cpu = constant_power_readings(
        40.0,
        BASE_S - 1,
        BASE_S + 42,
        name="cpu-estimate:system@10W-per-cpu",
        boundary=EnergyBoundary.CPU,
        method=EnergyMethod.ESTIMATED,
    )
    readings = EnergyReadings((gpu, *cpu.sources), cpu.series)
    idle = IdlePower(
        {EnergyBoundary.GPU: None, EnergyBoundary.CPU: 10.0}, missing={"gpu": "no NVML"}
    )
    record = compile_llm_run(traces(), readings, spec=llm_spec(2), idle=idle).record
    assert record.energy_boundary is EnergyBoundary.CPU
    assert record.energy_method is EnergyMethod.ESTIMATED
    assert record.avg_power_watts == pytest.approx(40.0)
    assert record.static_energy_fraction == pytest.approx(0.25)
    # Asking for the GPU boundary explicitly gives nulls with the GPU's reason.
    from joulelens.measure import MeasureOptions

    gpu_only = compile_llm_run(
        traces(),
        readings,
        spec=llm_spec(2),
        idle=idle,
        options=MeasureOptions(boundary=EnergyBoundary.GPU),
    ).record
    assert gpu_only.energy_per_token_joules is None
    assert "no NVML" in gpu_only.missing["energy_per_token_joules"]
    assert gpu_only.missing["idle_power_watts"] == "idle baseline: no NVML"


def test_no_steady_state_nulls_window_metrics_with_the_reason() -> None:
    few = slot_schedule(3, 2, 10, base_s=BASE_S)
    readings = constant_power_readings(300.0, BASE_S - 1, BASE_S + 42)
    record = compile_llm_run(few, readings, spec=llm_spec(2)).record
    assert record.steady_state_duration_s is None
    assert record.missing["energy_per_token_joules"].startswith("no steady state: 3 requests")
    assert record.unstable_reasons[0].startswith("no steady state: 3 requests")
    assert record.median_itl_ms == pytest.approx(1000.0)  # latency does not need the window


def test_a_zero_joule_window_is_null_with_the_reason_not_zero() -> None:
    """A CPU estimate read 0 J over an endpoint run's steady state (a client below the
    counter's resolution): J/token 0.0 and no static share in one run, values in the next."""
    cpu = constant_power_readings(
        0.0,
        BASE_S - 1,
        BASE_S + 42,
        name="cpu-estimate:process@10W-per-cpu",
        boundary=EnergyBoundary.CPU,
        method=EnergyMethod.ESTIMATED,
    )
    idle = IdlePower({EnergyBoundary.CPU: 10.0})
    record = compile_llm_run(traces(), cpu, spec=llm_spec(2), idle=idle).record
    assert record.output_throughput_tokens_per_sec == pytest.approx(2.0)
    for name in ENERGY_FIELDS:
        assert getattr(record, name) is None, name
        assert "below their resolution" in record.missing[name], record.missing[name]
    assert record.static_energy_fraction is None
    assert "static_energy_fraction" in record.missing
