"""Token times, chunk spreading and per-request latencies."""

from __future__ import annotations

import numpy as np
import pytest
from measure_helpers import trace

from joulelens.core.clock import RESOLUTION_S
from joulelens.core.events import RequestTrace
from joulelens.measure.metrics import Metrics, latency_metrics, timing_warnings
from joulelens.measure.tokens import (
    TokenTimes,
    inter_token_gaps_s,
    timing_resolution,
    tpot_s,
    ttft_s,
)


def test_chunks_spread_evenly_since_the_previous_chunk() -> None:
    # First chunk of 2 tokens at 1.0 (both there), then 1 token at 2.0, then 4 at 4.0:
    # the 4 tokens sit at 2.5, 3.0, 3.5, 4.0.
    t = trace("a", 0.0, [(1.0, 2), (2.0, 1), (4.0, 4)])
    tokens = TokenTimes.from_traces([t])
    assert tokens.times_s.tolist() == [1.0, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert tokens.is_first.tolist() == [True] + [False] * 6
    assert tokens.count_in(1.0, 3.0) == 3  # (1, 3]: 2.0, 2.5, 3.0
    assert tokens.count_in(0.0, 1.0) == 2


def test_gaps_per_token() -> None:
    t = trace("a", 0.0, [(1.0, 2), (2.0, 1), (4.0, 4)])
    # The first chunk adds no gap; 1 gap of 1 s; 4 gaps of 0.5 s.
    assert inter_token_gaps_s([t]).tolist() == [1.0, 0.5, 0.5, 0.5, 0.5]
    # TPOT = (4.0 - 1.0) / 5 tokens after the first chunk = 0.6 (the mean gap); TTFT = 1.0.
    assert tpot_s(t) == pytest.approx(0.6)
    assert ttft_s(t) == 1.0


def test_requests_are_kept_apart() -> None:
    a = trace("a", 0.0, [(1.0, 1), (3.0, 1)])
    b = trace("b", 0.0, [(2.0, 1), (2.5, 1)])
    tokens = TokenTimes.from_traces([a, b])
    assert tokens.request_index.tolist() == [0, 0, 1, 1]
    assert tokens.times_s.tolist() == [1.0, 3.0, 2.0, 2.5]
    assert sorted(inter_token_gaps_s([a, b]).tolist()) == [0.5, 2.0]


def test_usage_count_weights_streamed_tokens() -> None:
    # Three deltas counted one token each, but the final usage says 6 tokens.
    t = trace("a", 0.0, [(1.0, 1), (2.0, 1), (3.0, 1)], output_tokens=6)
    tokens = TokenTimes.from_traces([t])
    assert tokens.mismatched_requests == 1
    assert tokens.weights.tolist() == [2.0, 2.0, 2.0]
    assert tokens.count_in(0.0, 3.0) == 6.0
    # Each chunk token stands for 2: 4 tokens after the first chunk over 2 s.
    assert tpot_s(t) == pytest.approx(2.0 / 4)


def test_empty_and_tokenless_traces() -> None:
    assert len(TokenTimes.from_traces([])) == 0
    failed = trace("x", 0.0, [], error="HTTP 500")
    tokens = TokenTimes.from_traces([failed])
    assert len(tokens) == 0 and tokens.count_in(0, 10) == 0
    assert inter_token_gaps_s([failed]).size == 0
    assert tpot_s(failed) is None and ttft_s(failed) is None
    single = trace("s", 0.0, [(1.0, 1)])
    assert tpot_s(single) is None
    assert np.array_equal(inter_token_gaps_s([single]), np.empty(0))


def _streamed(reads: list[list[float]], sent_s: float = 0.0) -> RequestTrace:
    """A request whose one-token events (their send times) reached the client in ``reads``:
    every event of a read is stamped with the read's time, as the client sees it."""
    trace = RequestTrace("r", sent_s=sent_s)
    for events in reads:
        for _ in events:
            trace.add_chunk(max(events), 1)
    trace.finished_s = trace.chunk_times_s[-1]
    trace.finish_reason = "length"
    return trace


def test_events_read_together_are_one_chunk_not_zero_gaps() -> None:
    # Reported on real vLLM (saturation, 2 cores): median ITL 0.0 ms while tokens came every
    # ~2.4 ms. The server sent one token per event 2 ms apart; the client, starved of CPU,
    # read 5 at once every 10 ms. Gaps are spread over each read's interval, never 0.
    reads = [[0.0]] + [[0.002 * (5 * r + i) for i in range(1, 6)] for r in range(20)]
    trace = _streamed(reads)
    assert len(trace.chunk_times_s) == 21 and trace.output_tokens == 101
    gaps = inter_token_gaps_s([trace])
    assert gaps.size == 100 and np.all(gaps > 0)
    assert np.median(gaps) == pytest.approx(0.002)
    assert tpot_s(trace) == pytest.approx(0.002)
    metrics = Metrics()
    latency_metrics(metrics, [trace])
    assert metrics.get("median_itl_ms") == pytest.approx(2.0)
    assert metrics.get("median_tpot_ms") == pytest.approx(2.0)


def test_the_same_stream_read_one_event_at_a_time_agrees() -> None:
    every = _streamed([[0.002 * i] for i in range(101)])
    grouped = _streamed([[0.0]] + [[0.002 * (5 * r + i) for i in range(1, 6)] for r in range(20)])
    assert np.median(inter_token_gaps_s([every])) == pytest.approx(
        np.median(inter_token_gaps_s([grouped]))
    )
    assert tpot_s(every) == pytest.approx(tpot_s(grouped))


def test_tokens_read_with_the_first_carry_no_timing() -> None:
    # 60 tokens arrive with the first, 40 more 0.08 s later: 2 ms per token after the first
    # chunk, not 0.08 / 99.
    trace = _streamed([[0.01 * i / 60 for i in range(61)], [0.09 + 0.002 * i for i in range(40)]])
    assert trace.chunk_tokens.tolist() == [61, 40]
    assert tpot_s(trace) == pytest.approx((trace.chunk_times_s[1] - trace.chunk_times_s[0]) / 40)


def test_a_stream_read_whole_has_no_itl_or_tpot_rather_than_zero() -> None:
    whole = _streamed([[0.001 * i for i in range(128)]])
    assert whole.chunk_tokens.tolist() == [128]
    assert tpot_s(whole) is None
    assert inter_token_gaps_s([whole]).size == 0
    metrics = Metrics()
    latency_metrics(metrics, [whole])
    assert metrics.get("median_itl_ms") is None and "median_itl_ms" in metrics.missing
    assert metrics.get("median_tpot_ms") is None


def test_coarse_timing_is_warned_about() -> None:
    fine = _streamed([[0.002 * i] for i in range(50)])
    grouped = _streamed([[0.0]] + [[0.002 * (5 * r + i) for i in range(1, 6)] for r in range(10)])
    whole = _streamed([[0.001 * i for i in range(64)]])
    assert timing_warnings(timing_resolution([fine]), 2.0, RESOLUTION_S) == []
    resolution = timing_resolution([fine, grouped, whole])
    assert resolution.requests == 3 and resolution.untimed_requests == 1
    assert resolution.gaps == 49 + 50 and resolution.spread_gaps == 40
    assert resolution.spread_fraction == pytest.approx(40 / 99)
    warnings = timing_warnings(resolution, 2.0, RESOLUTION_S)
    assert any("40% of inter-token gaps" in w for w in warnings)
    assert any("1 of 3 completed requests arrived whole" in w for w in warnings)
    # A clock that ticks every 15.6 ms cannot time 2 ms gaps.
    assert any("clock resolves 15.6 ms" in w for w in timing_warnings(resolution, 2.0, 0.0156))
