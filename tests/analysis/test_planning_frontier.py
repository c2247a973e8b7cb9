"""Time-energy Pareto frontier: hand-built sets (ties, duplicates, single points) and runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from planning_helpers import llm_run

from joulelens.analysis.planning import pareto_frontier, pareto_mask
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord
from joulelens.store import RunFilter, Store


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], []),
        ([(5.0, 1.0)], [True]),
        ([(1, 5), (2, 3), (3, 4), (4, 1)], [True, True, False, True]),
        # Same latency: only the cheaper one survives.
        ([(1, 5), (1, 3)], [False, True]),
        # Same energy: only the faster one survives.
        ([(1, 3), (2, 3)], [True, False]),
        # Exact duplicates do not dominate each other.
        ([(1, 3), (1, 3)], [True, True]),
        # ... but both fall to a third point that beats them.
        ([(0, 1), (1, 3), (1, 3)], [True, False, False]),
        # A point that is best on one axis only is on the frontier.
        ([(10, 0.1), (1, 9)], [True, True]),
        # Input order does not matter.
        ([(4, 1), (3, 4), (2, 3), (1, 5)], [True, False, True, True]),
    ],
)
def test_pareto_mask_hand_built(points: list[tuple[float, float]], expected: list[bool]) -> None:
    assert pareto_mask(points) == expected


def _brute_force(points: list[tuple[float, float]]) -> list[bool]:
    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] <= b[0] and a[1] <= b[1] and a != b

    return [not any(dominates(q, p) for q in points) for p in points]


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25))
def test_pareto_mask_matches_the_definition(points: list[tuple[int, int]]) -> None:
    pts = [(float(x), float(y)) for x, y in points]
    assert pareto_mask(pts) == _brute_force(pts)


def test_frontier_of_runs_names_a_dominating_run(make_record: Callable[..., RunRecord]) -> None:
    fast = llm_run(make_record, 8, run_id="fast", itl_ms=10.0, power_watts=400.0)
    cheap = llm_run(make_record, 256, run_id="cheap", itl_ms=30.0, power_watts=600.0)
    # Slower than "cheap" and costs more per token: dominated.
    bad = llm_run(make_record, 64, run_id="bad", itl_ms=40.0, power_watts=700.0, gpu="B200")
    points = pareto_frontier([bad, cheap, fast])
    assert [p.candidate.run_id for p in points] == ["fast", "cheap", "bad"]  # by latency
    assert [p.on_frontier for p in points] == [True, True, False]
    assert points[2].dominated_by == "cheap"
    assert points[0].to_dict()["on_frontier"] is True


def test_single_run_is_its_own_frontier(make_record: Callable[..., RunRecord]) -> None:
    (point,) = pareto_frontier([llm_run(make_record, 64)])
    assert point.on_frontier and point.dominated_by is None


def test_frontier_refuses_mixed_tasks_and_empty_input(
    make_record: Callable[..., RunRecord],
) -> None:
    with pytest.raises(AnalysisError, match="one task at a time"):
        pareto_frontier([llm_run(make_record, 8), llm_run(make_record, 8, task="gpqa")])
    unusable = llm_run(make_record, 8, stable=False, unstable_reasons=["batch under 85%"])
    with pytest.raises(AnalysisError, match="no usable run"):
        pareto_frontier([unusable])


def test_frontier_on_the_public_snapshot(public_store: Store) -> None:
    runs = public_store.query(RunFilter(task="gpqa", model="Qwen/Qwen3-14B"))
    runs = [r for r in runs if r.model_id == "Qwen/Qwen3-14B"]
    points = pareto_frontier(runs)
    assert len(points) == len(runs)
    front = [p.candidate for p in points if p.on_frontier]
    # Along the frontier, latency rises and energy falls strictly.
    assert all(a.latency_ms < b.latency_ms for a, b in itertools.pairwise(front))
    assert all(
        a.energy_per_unit_joules > b.energy_per_unit_joules for a, b in itertools.pairwise(front)
    )
    # The cheapest run overall is always on the frontier.
    cheapest = min(points, key=lambda p: p.candidate.energy_per_unit_joules)
    assert cheapest.on_frontier
