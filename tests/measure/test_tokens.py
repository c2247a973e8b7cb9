"""Token times, chunk spreading and per-request latencies."""

from __future__ import annotations

import numpy as np
import pytest
from measure_helpers import trace

from joulelens.measure.tokens import TokenTimes, inter_token_gaps_s, tpot_s, ttft_s


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
    # TPOT = (4.0 - 1.0) / (7 - 1) = 0.5; TTFT = 1.0.
    assert tpot_s(t) == 0.5
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
    assert tpot_s(t) == pytest.approx(2.0 / 5)


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
