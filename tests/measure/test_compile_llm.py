"""Acceptance: a run record from a synthetic event stream and a fake GPU matches the hand
computation of energy per token, power, throughput and latency percentiles.

The energy goes through the real meters (NVML meter over the fake NVML backend, the real
timeline sampler ticking on a fake clock) and the real adapter; only the GPU is fake.
"""

from __future__ import annotations

import pytest
from measure_helpers import (
    BASE_S,
    constant_power_readings,
    llm_spec,
    sampled_readings,
    slot_schedule,
)

from joulelens.core.events import RequestTrace
from joulelens.core.idle import IdlePower
from joulelens.measure import (
    MeasureOptions,
    SampledSeries,
    ServerMetrics,
    compile_llm_run,
)
from joulelens.meters.fake import PowerTrace
from joulelens.records.schema import EnergyBoundary, EnergyMethod, RunRecord

WATTS = 300.0


def schedule() -> list[RequestTrace]:
    # B=2 slots, N=8 requests sent at BASE_S, 10 tokens each one second apart.
    # Slot A runs r0, r2, r4, r6: first tokens at +1, +11, +21, +31, finishes +10, +20, ...
    # Slot B (+0.5 s) runs r1, r3, r5, r7: first tokens +1.5, +11.5, ..., finishes +10.5, ...
    traces = slot_schedule(8, 2, 10, base_s=BASE_S)
    # r0's last three tokens arrive as one chunk at +10 (after +7): spread evenly they sit
    # at +8, +9, +10, exactly where single chunks would be, so nothing below changes.
    r0 = traces[0]
    r0.chunk_times_s = r0.chunk_times_s[:7]
    r0.chunk_tokens = r0.chunk_tokens[:7]
    r0.output_tokens = 7
    r0.add_chunk(BASE_S + 10.0, 3)
    return traces


@pytest.fixture(scope="module")
def compiled() -> tuple[RunRecord, list, list]:
    readings = sampled_readings(PowerTrace.constant(WATTS), until_rel_s=42.0)
    server = ServerMetrics(
        running=SampledSeries.of([BASE_S + t for t in (0, 10, 20, 30)], [2, 2, 2, 2]),
        kv_cache_usage=SampledSeries.of(
            [BASE_S + t for t in (0, 10, 20, 30)], [0.2, 0.4, 0.6, 0.8]
        ),
    )
    idle = IdlePower({EnergyBoundary.GPU: 100.0}, duration_s=5.0)
    run = compile_llm_run(schedule(), readings, spec=llm_spec(2), server_metrics=server, idle=idle)
    return run


def test_steady_state_energy_power_throughput(compiled: tuple) -> None:
    record = compiled[0]
    # Window: 2nd first token (+1.5) to the (8-2-1) = 5th finish (+30): 28.5 s.
    assert record.steady_state_duration_s == pytest.approx(28.5)
    # Tokens streamed in (+1.5, +30]: r0 +2..+10 (9), r1 +2.5..+10.5 (9), r2 +11..+20 (10),
    # r3 +11.5..+20.5 (10), r4 +21..+30 (10), r5 +21.5..+29.5 (9) = 57.
    assert record.output_throughput_tokens_per_sec == pytest.approx(57 / 28.5)
    # 300 W for 28.5 s = 8550 J; / 57 tokens = 150 J per token.
    assert record.steady_state_energy_joules == pytest.approx(8550.0, rel=1e-6)
    assert record.avg_power_watts == pytest.approx(300.0, rel=1e-6)
    assert record.energy_per_token_joules == pytest.approx(150.0, rel=1e-6)
    # Every completed request has 10 output tokens: 150 J x 10 = 1500 J per response.
    assert record.avg_output_len == 10.0
    assert record.energy_per_request_joules == pytest.approx(1500.0, rel=1e-6)
    assert record.energy_boundary is EnergyBoundary.GPU
    assert record.energy_method is EnergyMethod.COUNTER
    assert {c.name for c in record.energy_components} == {"gpu:0", "total:gpu"}


def test_latency_percentiles(compiled: tuple) -> None:
    record = compiled[0]
    # TTFT (sent at +0): 1, 1.5, 11, 11.5, 21, 21.5, 31, 31.5 s. Mean = median = 16.25 s;
    # numpy linear percentiles: p90 at rank 0.9 x 7 = 6.3 -> 31 + 0.3 x 0.5 = 31.15 s,
    # p95 at 6.65 -> 31.325 s, p99 at 6.93 -> 31.465 s.
    assert record.mean_ttft_ms == pytest.approx(16250.0)
    assert record.median_ttft_ms == pytest.approx(16250.0)
    assert record.p90_ttft_ms == pytest.approx(31150.0)
    assert record.p95_ttft_ms == pytest.approx(31325.0)
    assert record.p99_ttft_ms == pytest.approx(31465.0)
    # E2E: 10, 10.5, 20, 20.5, 30, 30.5, 40, 40.5 s -> mean = median = 25.25 s,
    # p90 = 40 + 0.3 x 0.5 = 40.15 s.
    assert record.mean_e2e_latency_ms == pytest.approx(25250.0)
    assert record.median_e2e_latency_ms == pytest.approx(25250.0)
    assert record.p90_e2e_latency_ms == pytest.approx(40150.0)
    # Every token one second after the previous (the 3-token chunk spread over 3 s too).
    for name in ("mean", "median", "p90", "p95", "p99"):
        assert getattr(record, f"{name}_itl_ms") == pytest.approx(1000.0)
        assert getattr(record, f"{name}_tpot_ms") == pytest.approx(1000.0)
    assert record.latency_ms == pytest.approx(1000.0)


def test_server_metrics_idle_share_and_stability(compiled: tuple) -> None:
    record = compiled[0]
    assert record.avg_batch_size == pytest.approx(2.0)
    # KV usage scraped at +0, +10, +20, +30 with 0.2, 0.4, 0.6, 0.8, each held until the
    # next. The +0 sample precedes the window [+1.5, +30] (ramp-up) and is not held into
    # it: (0.4 x 10 + 0.6 x 10) / 20; the +30 sample holds for no time, so the max is 0.6.
    assert record.avg_kv_cache_usage == pytest.approx(0.5)
    assert record.max_kv_cache_usage == pytest.approx(0.6)
    # Idle 100 W x 28.5 s / 8550 J = 1/3.
    assert record.idle_power_watts == 100.0
    assert record.static_energy_fraction == pytest.approx(1 / 3, rel=1e-6)
    assert record.stable is True, record.unstable_reasons
    assert record.num_completed_requests == 8
    assert record.num_failed_requests == 0
    assert record.output_length_distribution is not None
    assert record.output_length_distribution.counts == [8]
    assert record.missing == {}
    assert record.config["steady_state"]["start_s"] == pytest.approx(1.5)
    assert record.config["steady_state"]["end_s"] == pytest.approx(30.0)
    assert record.config["measurement"]["prefill_weight"] == 1.0


def test_request_rows_and_attribution(compiled: tuple) -> None:
    record, rows, timeline = compiled
    assert [r.request_id for r in rows] == [f"r{i}" for i in range(8)]
    assert [r.in_steady_state for r in rows] == [True] * 6 + [False] * 2
    assert rows[3].ttft_ms == pytest.approx(11500.0)
    assert rows[3].e2e_latency_ms == pytest.approx(20500.0)
    # The whole run (+0 to +40.5) at 300 W is 12150 J, all of it attributed.
    total = sum(r.attributed_energy_joules for r in rows)
    assert total == pytest.approx(12150.0, rel=1e-6)
    for row in rows:
        assert row.attributed_energy_joules == pytest.approx(
            row.attributed_prefill_energy_joules + row.attributed_decode_energy_joules
        )
    # Nothing is streamed before r0's first token at +1: the first second's 300 J all
    # goes to r0's prefill. r1's first token at +1.5 gets (+1.0, +1.5]: 150 J.
    assert rows[0].attributed_prefill_energy_joules == pytest.approx(300.0, rel=1e-6)
    assert rows[1].attributed_prefill_energy_joules == pytest.approx(150.0, rel=1e-6)
    assert record.artifacts == ["requests.parquet", "timeline.parquet"]
    series = {s.series for s in timeline}
    assert {"energy_joules:gpu:0", "power_watts:gpu:0", "running_batch:server"} <= series
    assert min(s.t_s for s in timeline) == pytest.approx(-1.0)


def test_same_answer_from_hand_made_readings() -> None:
    readings = constant_power_readings(WATTS, BASE_S - 1.0, BASE_S + 42.0)
    record = compile_llm_run(schedule(), readings, spec=llm_spec(2)).record
    assert record.energy_per_token_joules == pytest.approx(150.0)
    # Without server metrics: client-side batch, requests between first token and finish:
    # r0 8.5 s, r1 9, r2 9, r3 9, r4 9, r5 8.5 inside [+1.5, +30] -> 53 / 28.5.
    assert record.avg_batch_size == pytest.approx(53 / 28.5)
    assert record.missing["avg_kv_cache_usage"] == "no server metrics were scraped"
    assert record.missing["idle_power_watts"] == "no idle baseline was measured"
    assert record.stable is True


def test_varying_power_is_read_over_the_window_only() -> None:
    # 100 W until +1.5, 500 W during the window, 100 W after +30 (1 ms edges).
    power = PowerTrace(
        (
            (BASE_S + 1.4, 100.0),
            (BASE_S + 1.5, 500.0),
            (BASE_S + 30.0, 500.0),
            (BASE_S + 30.1, 100.0),
        )
    )
    readings = sampled_readings(power, until_rel_s=42.0)
    record = compile_llm_run(schedule(), readings, spec=llm_spec(2)).record
    assert record.avg_power_watts == pytest.approx(500.0, rel=1e-6)
    assert record.energy_per_token_joules == pytest.approx(500.0 * 28.5 / 57, rel=1e-6)


def test_short_run_is_kept_but_flagged() -> None:
    traces = slot_schedule(6, 2, 10, base_s=BASE_S)  # window +1.5 .. +20: 18.5 s
    readings = sampled_readings(PowerTrace.constant(WATTS), until_rel_s=32.0)
    record = compile_llm_run(traces, readings, spec=llm_spec(2)).record
    assert record.stable is False
    assert record.unstable_reasons == [
        "short steady state: 18.5 s < 20 s [ML.ENERGY harness: error below 30 s]"
    ]
    relaxed = compile_llm_run(
        traces, readings, spec=llm_spec(2), options=MeasureOptions(min_steady_state_s=10.0)
    ).record
    assert relaxed.stable is True


def test_token_rate_drift_is_reported() -> None:
    # Slot B stops after its first request: the rate halves in the last part of the window.
    traces = slot_schedule(8, 2, 10, base_s=BASE_S)
    readings = sampled_readings(PowerTrace.constant(WATTS), until_rel_s=42.0)
    slow = [t for t in traces if t.request_id not in ("r5",)]
    record = compile_llm_run(slow, readings, spec=llm_spec(2, num_requests=8)).record
    assert any("token rate" in w and "not stationary" in w for w in record.warnings)
    assert "drift:token rate (tokens/s)" in record.config["steady_state"]
    strict = compile_llm_run(
        slow,
        readings,
        spec=llm_spec(2, num_requests=8),
        options=MeasureOptions(require_stationary=True),
    ).record
    assert any("not stationary" in r for r in strict.unstable_reasons)


def test_chunk_spreading_counts_tokens_by_their_spread_times() -> None:
    traces = schedule()
    # Merge r2's tokens +12..+20 into one 9-token chunk at +20 (after the first at +11):
    # spread over (+11, +20] they land on +12, ..., +20, same as before.
    r2 = traces[2]
    first_t = r2.chunk_times_s[0]
    r2.chunk_times_s = type(r2.chunk_times_s)("d", [first_t])
    r2.chunk_tokens = type(r2.chunk_tokens)("I", [1])
    r2.output_tokens = 1
    r2.add_chunk(BASE_S + 20.0, 9)
    record = compile_llm_run(
        traces, constant_power_readings(WATTS, BASE_S - 1, BASE_S + 42), spec=llm_spec(2)
    ).record
    assert record.output_throughput_tokens_per_sec == pytest.approx(2.0)
    assert record.median_itl_ms == pytest.approx(1000.0)


def test_a_gauge_sample_from_the_ramp_up_does_not_count() -> None:
    # Seen in CI: a 1 s scrape taken before the B-th first token (nothing running yet) was
    # held into a short window and read B=4 as 2.3. A sample before the window start is a
    # ramp-up sample by the window's definition; the harness averages the samples inside.
    readings = constant_power_readings(WATTS, BASE_S - 1.0, BASE_S + 42.0)
    ramp_then_full = [BASE_S + t for t in (0, 10, 20, 30)]
    server = ServerMetrics(running=SampledSeries.of(ramp_then_full, [0, 2, 2, 2]))
    record = compile_llm_run(schedule(), readings, spec=llm_spec(2), server_metrics=server).record
    assert record.avg_batch_size == pytest.approx(2.0)
    assert record.stable is True, record.unstable_reasons
