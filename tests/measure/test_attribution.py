"""Per-request energy attribution: hand-computed splits and conservation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from measure_helpers import trace

from joulelens.core.events import RequestTrace
from joulelens.measure.attribution import Attribution, attribute_energy
from joulelens.measure.tokens import TokenTimes


def attribute(
    traces: list[RequestTrace], edges: list[float], cumulative: list[float], **kw: float
) -> Attribution:
    result = attribute_energy(
        traces, TokenTimes.from_traces(traces), np.array(edges), np.array(cumulative), **kw
    )
    assert isinstance(result, Attribution), result
    return result


def test_interval_energy_split_by_tokens_in_it() -> None:
    # Intervals (0,1] 10 J, (1,2] 20 J, (2,3] 30 J.
    # a: first token at 1.0 (prefill, 10 input tokens), decode tokens at 2.0 and 3.0.
    # b: first token at 2.0 (prefill, 30 input tokens), decode token at 3.0.
    a = trace("a", 0.0, [(1.0, 1), (2.0, 1), (3.0, 1)], input_tokens=10)
    b = trace("b", 0.0, [(2.0, 1), (3.0, 1)], input_tokens=30)
    result = attribute([a, b], [0, 1, 2, 3], [0, 10, 30, 60])
    # (0,1]: only a's prefill (weight 10) -> a prefill 10 J.
    # (1,2]: a decode 1, b prefill 30 -> 20 J x 1/31 to a, 20 x 30/31 to b's prefill.
    # (2,3]: a decode 1, b decode 1 -> 15 J each.
    assert result.prefill_j.tolist() == pytest.approx([10.0, 20 * 30 / 31])
    assert result.decode_j.tolist() == pytest.approx([20 / 31 + 15.0, 15.0])
    assert result.total_j.sum() == pytest.approx(60.0)
    assert result.energy_j == 60.0 and result.intervals == 3


def test_prefill_weight_changes_the_split_not_the_total() -> None:
    a = trace("a", 0.0, [(1.0, 1), (2.0, 1), (3.0, 1)], input_tokens=10)
    b = trace("b", 0.0, [(2.0, 1), (3.0, 1)], input_tokens=30)
    result = attribute([a, b], [0, 1, 2, 3], [0, 10, 30, 60], prefill_weight=0.0)
    # Prefill weightless: (0,1] has no weight and passes its 10 J on to (1,2], where only
    # a's decode token has weight: a gets 30 J there.
    assert result.prefill_j.tolist() == [0.0, 0.0]
    assert result.decode_j.tolist() == pytest.approx([45.0, 15.0])


def test_unknown_input_length_counts_as_one_token() -> None:
    a = trace("a", 0.0, [(1.0, 1), (2.0, 1)], input_tokens=None)
    b = trace("b", 0.0, [(0.5, 1), (2.0, 1)], input_tokens=3)
    result = attribute([a, b], [0, 2], [0, 10])
    # One interval: weights a prefill 1, a decode 1, b prefill 3, b decode 1 -> 6.
    assert result.prefill_j.tolist() == pytest.approx([10 / 6, 30 / 6])
    assert result.decode_j.tolist() == pytest.approx([10 / 6, 10 / 6])


def test_trailing_idle_interval_goes_to_the_last_with_tokens() -> None:
    a = trace("a", 0.0, [(0.5, 1), (1.0, 1)], input_tokens=1)
    result = attribute([a], [0, 1, 2, 3], [0, 5, 10, 15])
    assert result.total_j.tolist() == pytest.approx([15.0])


def test_nothing_to_attribute() -> None:
    a = trace("a", 0.0, [(5.0, 1)])
    assert "no output token" in str(
        attribute_energy(
            [a], TokenTimes.from_traces([a]), np.array([0.0, 1.0]), np.array([0.0, 1.0])
        )
    )
    assert "both ends" in str(
        attribute_energy([a], TokenTimes.from_traces([a]), np.array([0.0]), np.array([0.0]))
    )
    with pytest.raises(ValueError, match="increase"):
        attribute_energy([a], TokenTimes.from_traces([a]), np.array([1.0, 0.0]), np.zeros(2))


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[RequestTrace], list[float], list[float]]:
    n = draw(st.integers(1, 8))
    traces = []
    for i in range(n):
        times = sorted(draw(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12)))
        ks = draw(st.lists(st.integers(1, 4), min_size=len(times), max_size=len(times)))
        inputs = draw(st.one_of(st.none(), st.integers(1, 500)))
        traces.append(trace(f"r{i}", 0.0, list(zip(times, ks, strict=True)), input_tokens=inputs))
    inner = sorted(set(draw(st.lists(st.floats(0.01, 9.99), max_size=30))))
    edges = [0.0, *inner, 10.0]
    powers = draw(
        st.lists(st.floats(0.0, 1000.0), min_size=len(edges) - 1, max_size=len(edges) - 1)
    )
    cumulative = np.concatenate(([0.0], np.cumsum(np.diff(edges) * np.array(powers))))
    return traces, edges, cumulative.tolist()


@settings(max_examples=200, deadline=None)
@given(runs(), st.floats(0.0, 5.0))
def test_attributed_energy_is_conserved(
    run: tuple[list[RequestTrace], list[float], list[float]], prefill_weight: float
) -> None:
    traces, edges, cumulative = run
    result = attribute_energy(
        traces,
        TokenTimes.from_traces(traces),
        np.array(edges),
        np.array(cumulative),
        prefill_weight=prefill_weight,
    )
    if isinstance(result, str):  # every token at exactly t=0, outside (0, 10]
        assert all(t.chunk_times_s[-1] == 0.0 for t in traces)
        return
    assert result.energy_j == pytest.approx(cumulative[-1])
    assert result.total_j.sum() == pytest.approx(cumulative[-1] - cumulative[0], rel=1e-9, abs=1e-9)
    assert np.all(result.prefill_j >= 0) and np.all(result.decode_j >= 0)
    assert len(result.total_j) == len(traces)
