"""Builders for synthetic request traces and energy readings (times in seconds)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from joulelens.core.events import RequestTrace
from joulelens.core.series import energy_series
from joulelens.measure.adapters import readings_from_meters
from joulelens.measure.energy import EnergyReadings, EnergySource
from joulelens.measure.series import SampledSeries
from joulelens.measure.spec import RunSpec
from joulelens.meters import TimelineSampler
from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.records.schema import EnergyBoundary, EnergyMethod, Provenance, SourceKind

BASE_S = 1000.0


def trace(
    request_id: str,
    sent_s: float,
    chunks: Sequence[tuple[float, int]],
    finished_s: float | None = None,
    *,
    input_tokens: int | None = 100,
    finish_reason: str | None = "stop",
    error: str | None = None,
    output_tokens: int | None = None,
) -> RequestTrace:
    """A trace with the given ``(time, tokens)`` chunks; finished at the last chunk by default."""
    t = RequestTrace(request_id, sent_s=sent_s, input_tokens=input_tokens)
    for t_s, k in chunks:
        t.add_chunk(t_s, k)
    if error is None:
        t.finished_s = finished_s if finished_s is not None else (chunks[-1][0] if chunks else None)
        t.finish_reason = finish_reason
    else:
        t.error = error
        t.finished_s = finished_s
    if output_tokens is not None:
        t.output_tokens = output_tokens
    return t


def slot_schedule(
    num_requests: int,
    slots: int,
    tokens: int,
    *,
    base_s: float = 0.0,
    token_gap_s: float = 1.0,
    slot_offset_s: float = 0.5,
) -> list[RequestTrace]:
    """A saturated server with ``slots`` batch slots: all requests sent at ``base_s``;
    request i runs in slot i % slots, its first token one gap after admission and one
    token per gap after that; the next request of the slot is admitted at its finish."""
    traces = []
    slot_free = [base_s + s * slot_offset_s for s in range(slots)]
    for i in range(num_requests):
        slot = i % slots
        admitted = slot_free[slot]
        times = [admitted + (j + 1) * token_gap_s for j in range(tokens)]
        traces.append(trace(f"r{i}", base_s, [(t, 1) for t in times]))
        slot_free[slot] = times[-1]
    return traces


def constant_power_readings(
    watts: float,
    start_s: float,
    end_s: float,
    *,
    period_s: float = 0.1,
    name: str = "gpu:0",
    boundary: EnergyBoundary = EnergyBoundary.GPU,
    method: EnergyMethod = EnergyMethod.COUNTER,
) -> EnergyReadings:
    times = np.arange(start_s, end_s + period_s / 2, period_s)
    series = {
        energy_series(name): SampledSeries.of(times, watts * (times - start_s)),
        f"power_watts:{name}": SampledSeries.of(times, np.full(times.size, watts)),
    }
    source = EnergySource(name, boundary, method, update_period_s=period_s)
    return EnergyReadings((source,), series)


def llm_spec(max_num_seqs: int, **kwargs: object) -> RunSpec:
    return RunSpec(
        run_id=str(kwargs.pop("run_id", "jl-test")),
        model_id="test/model",
        task="lm-arena-chat",
        provenance=Provenance(source=SourceKind.JOULELENS),
        max_num_seqs=max_num_seqs,
        **kwargs,  # type: ignore[arg-type]
    )


def sampled_readings(power: PowerTrace, until_rel_s: float, **gpu: object) -> EnergyReadings:
    """Run the real sampler at 10 Hz on a fake clock from BASE_S - 1 to BASE_S + until."""
    clock = FakeClock(BASE_S - 1.0)
    meters = fake_gpu_meters([FakeGpu("GPU-aaaa", power, **gpu)], clock)  # type: ignore[arg-type]
    sampler = TimelineSampler(meters, clock=clock, state_period_s=None)
    for _ in range(int((until_rel_s + 1.0) / 0.1) + 2):
        sampler.sample_once()
        clock.advance(0.1)
    return readings_from_meters(meters, sampler.timeline, notes=meters.notes)
