"""The steady-state window on hand-computed event sequences, and its edge cases."""

from __future__ import annotations

import pytest
from measure_helpers import slot_schedule, trace

from joulelens.core.events import BatchTrace
from joulelens.measure.steady import (
    Drift,
    diffusion_batches,
    drift_warnings,
    stationarity,
    steady_window,
)


def test_window_from_bth_first_token_to_n_minus_b_minus_1_th_finish() -> None:
    # B=2 slots, N=8, 10 tokens one second apart. Slot A: first tokens 1, 11, 21, 31,
    # finishes 10, 20, 30, 40. Slot B (+0.5 s): first tokens 1.5, 11.5, ..., finishes
    # 10.5, 20.5, ... Start = 2nd first token = 1.5; end = (8-2-1) = 5th finish
    # (10, 10.5, 20, 20.5, 30) = 30.
    window = steady_window(slot_schedule(8, 2, 10), max_num_seqs=2)
    assert (window.start_s, window.end_s) == (1.5, 30.0)
    assert window.duration_s == 28.5
    assert window.found and window.reason is None


def test_order_of_traces_does_not_matter() -> None:
    traces = slot_schedule(8, 2, 10)
    assert steady_window(traces[::-1], 2) == steady_window(traces, 2)


def test_num_requests_overrides_the_trace_count() -> None:
    # N=10 requests sent, only 8 traced (two lost client-side): end = (10-2-1) = 7th finish.
    window = steady_window(slot_schedule(8, 2, 10), max_num_seqs=2, num_requests=10)
    assert window.end_s == 40.0


@pytest.mark.parametrize(("n", "b"), [(2, 2), (3, 2), (1, 4), (4, 4)])
def test_too_few_requests_for_the_batch(n: int, b: int) -> None:
    window = steady_window(slot_schedule(n, b, 5), max_num_seqs=b)
    assert not window.found
    assert window.duration_s is None
    assert "N > B + 1" in str(window.reason)


def test_ramp_down_before_ramp_up_is_explained() -> None:
    # B=3, N=5: 3rd first token at 1.0 (slot offsets 0, 0.5 ... here three slots, offset
    # 5 s each) comes after the 1st finish.
    traces = slot_schedule(5, 3, 2, slot_offset_s=5.0)
    # first tokens: 1, 6, 11, (slot 0 again) 3, (slot 1) 8 -> sorted 1,3,6,8,11: 3rd = 6
    # finishes: 2, 7, 12, 4, 9 -> sorted 2,4,7,9,12: (5-3-1) = 1st = 2 < 6
    window = steady_window(traces, 3)
    assert not window.found
    assert "before the 3-th first token" in str(window.reason)


def test_requests_without_first_token_cannot_start_the_window() -> None:
    traces = [trace(f"e{i}", 0.0, [], error="HTTP 500: boom") for i in range(6)]
    traces += slot_schedule(2, 2, 3)
    window = steady_window(traces, 3)
    assert not window.found
    assert "only 2 of 8 requests received a first token" in str(window.reason)


def test_failed_requests_count_as_finished() -> None:
    traces = slot_schedule(6, 2, 10)
    # r4 (slot A, first token 21) dies after two tokens at 22 without a finish time.
    broken = trace("r4", 0.0, [(21.0, 1), (22.0, 1)], error="connection dropped mid-stream")
    traces[4] = broken
    # finishes: 10, 10.5, 20, 20.5, 22 (r4's last chunk), 30.5 -> (6-2-1)=3rd = 20
    window = steady_window(traces, 2)
    assert window.end_s == 20.0
    traces[3] = trace("r3", 0.0, [], error="HTTP 500")  # no chunk, no finish: not counted
    # finishes: 10, 10.5, 20, 22, 30.5 (5 of 6) -> 3rd is still 20
    assert steady_window(traces, 2).end_s == 20.0


def test_unfinished_run_has_no_end() -> None:
    traces = slot_schedule(6, 2, 10)
    for t in traces[1:]:
        t.finished_s = None
        t.chunk_times_s = type(t.chunk_times_s)("d")  # nothing arrived
        t.first_token_s = None
    traces[1].first_token_s = 2.0
    window = steady_window(traces, 2)
    assert "only 1 of 6 requests finished" in str(window.reason)


def test_bad_batch_cap() -> None:
    assert "at least 1" in str(steady_window(slot_schedule(4, 1, 2), 0).reason)


def test_diffusion_batches_drop_warmup_and_failures() -> None:
    batches = [
        BatchTrace(0, 4, 0.0, 1.0, warmup=True),
        BatchTrace(1, 4, 1.0, 2.0),
        BatchTrace(2, 4, 2.0, 3.0, error="CUDA OOM"),
        BatchTrace(3, 4, 3.0, 3.0),
        BatchTrace(4, 4, 3.0, 4.0),
    ]
    kept, notes = diffusion_batches(batches)
    assert [b.index for b in kept] == [1, 4]
    assert notes == ["batch 2 failed: CUDA OOM", "batch 3 has no duration (3.0..3.0)"]


def test_stationarity_compares_first_and_last_thirds() -> None:
    # A rate ramping linearly from 100 to 130 over [0, 30]: thirds average 105 and 125,
    # the whole window 115 -> drift (125-105)/115 = +17.4%.
    def ramp(a: float, b: float) -> float:
        return 100.0 + (a + b) / 2

    drifts = stationarity(0.0, 30.0, {"power (W)": ramp, "flat": lambda a, b: 7.0})
    by_name = {d.quantity: d for d in drifts}
    assert by_name["power (W)"].relative == pytest.approx(20 / 115)
    assert by_name["flat"].relative == 0.0
    warnings = drift_warnings(drifts, 0.15)
    assert len(warnings) == 1 and "power (W) drifted +17%" in warnings[0]
    assert drift_warnings(drifts, 0.2) == []


def test_stationarity_skips_rates_it_cannot_compute() -> None:
    assert stationarity(0.0, 3.0, {"none": lambda a, b: None}) == []
    assert Drift("x", 1.0, 2.0, 0.0).relative == 0.0
