"""What the harness adds to a record (engine notes, server-log findings, kept files, the CPU
estimate's figures) goes into the one compile call: the record is never patched afterwards."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from measure_helpers import BASE_S, constant_power_readings, llm_spec, slot_schedule

from joulelens.measure import SampledSeries, compile_llm_run
from joulelens.measure.cpu_share import MACHINE_PREFIX, CpuEstimate
from joulelens.measure.spec import RunAdditions
from joulelens.records.schema import EnergyBoundary, EnergyMethod

MACHINE, PROCESSES = "cpu_busy_seconds:machine", "cpu_busy_seconds:processes"


def _compile(additions: RunAdditions | None = None):  # type: ignore[no-untyped-def]
    traces = slot_schedule(8, 2, 10, base_s=BASE_S)
    readings = constant_power_readings(
        10.0,
        BASE_S - 1,
        BASE_S + 45,
        name="cpu-estimate:process@10W-per-cpu",
        boundary=EnergyBoundary.CPU,
        method=EnergyMethod.ESTIMATED,
    )
    times = np.arange(BASE_S - 1, BASE_S + 45.05, 0.1)
    busy = {  # cumulative busy CPU-seconds: 2 cores of the machine, half a core ours
        MACHINE: SampledSeries.of(times, 2.0 * (times - times[0])),
        PROCESSES: SampledSeries.of(times, 0.5 * (times - times[0])),
    }
    readings = dataclasses.replace(readings, series={**readings.series, **busy})
    return compile_llm_run(traces, readings, spec=llm_spec(2), additions=additions)


def test_additions_are_part_of_the_compiled_record() -> None:
    plain = _compile().record
    added = _compile(
        RunAdditions(
            warnings=["the engine says hello", plain.warnings[0] if plain.warnings else "x"],
            unstable_reasons=["server.log shows a crash: CUDA error at line 3"],
            artifacts=["server.log"],
            config={"engine": {"name": "e"}},
        )
    ).record
    assert plain.stable and not added.stable
    assert added.unstable_reasons == [*plain.unstable_reasons, added.unstable_reasons[-1]]
    assert added.warnings[: len(plain.warnings)] == plain.warnings
    assert "the engine says hello" in added.warnings
    assert len(added.warnings) == len(set(added.warnings))  # a repeated note appears once
    assert added.artifacts == sorted([*plain.artifacts, "server.log"])
    assert list(added.config) == [*plain.config, "engine"]
    assert added.config["engine"] == {"name": "e"}
    assert added.energy_per_token_joules == plain.energy_per_token_joules


def test_the_cpu_estimate_figures_sit_beside_the_headline() -> None:
    estimate = CpuEstimate(
        scope="process",
        covers="this process",
        watts_per_cpu=10.0,
        pids=(1,),
        machine_busy_series=MACHINE,
        process_busy_series=PROCESSES,
    )
    plain = _compile().record
    record = _compile(RunAdditions(cpu_estimate=estimate)).record
    steady = record.config["steady_state"]
    duration_s = steady["end_s"] - steady["start_s"]
    info = record.config["cpu_estimate"]
    assert info["scope"] == "process" and info["pids"] == [1] and info["covers"] == "this process"
    assert info["machine_busy_cpu_s"] == pytest.approx(2.0 * duration_s)
    assert info["processes_busy_cpu_s"] == pytest.approx(0.5 * duration_s)
    *headline, machine = record.energy_components
    assert headline == plain.energy_components  # beside the headline, never in the totals
    assert machine.name == f"{MACHINE_PREFIX}cpu-estimate:system@10W-per-cpu"
    assert machine.joules == pytest.approx(10.0 * 2.0 * duration_s)
    assert machine.method is EnergyMethod.ESTIMATED
    assert record.steady_state_energy_joules == plain.steady_state_energy_joules
