"""``plan``: minimum energy under a deadline, its edges, runner-up and tighter deadlines."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from planning_helpers import diffusion_run, llm_run

from joulelens.analysis.planning import BudgetPer, LatencyMetric, plan
from joulelens.errors import AnalysisError, InputError
from joulelens.records import RunRecord
from joulelens.store import RunFilter, Store


@pytest.fixture
def runs(make_record: Callable[..., RunRecord]) -> list[RunRecord]:
    """Model A: faster and pricier at small batch; model B: one slow, cheap config."""
    return [
        llm_run(make_record, 8, run_id="a8", model_id="org/a", itl_ms=10.0, power_watts=400.0),
        llm_run(make_record, 64, run_id="a64", model_id="org/a", itl_ms=20.0, power_watts=500.0),
        llm_run(make_record, 256, run_id="a256", model_id="org/a", itl_ms=40.0, power_watts=600.0),
        llm_run(make_record, 512, run_id="b512", model_id="org/b", itl_ms=50.0, power_watts=600.0),
    ]


def energy(runs: list[RunRecord], run_id: str) -> float:
    value = next(r for r in runs if r.run_id == run_id).energy_per_token_joules
    assert value is not None
    return value


def test_deadline_equal_to_a_latency_is_met(runs: list[RunRecord]) -> None:
    result = plan(runs, "lm-arena-chat", 40.0)
    assert result.overall.best is not None and result.overall.best.run_id == "a256"
    # Just under it, the next config down takes over.
    result = plan(runs, "lm-arena-chat", 39.999)
    assert result.overall.best is not None and result.overall.best.run_id == "a64"


def test_runner_up_is_another_model_across_models(runs: list[RunRecord]) -> None:
    result = plan(runs, "lm-arena-chat", 100.0)
    best, runner = result.overall.best, result.overall.runner_up
    assert best is not None and runner is not None
    assert best.run_id == "b512"  # the cheapest of all
    assert runner.run_id == "a256"  # the best of the *other* model
    per_model = {c.scope: c for c in result.per_model}
    assert per_model["a"].best is not None and per_model["a"].best.run_id == "a256"
    assert per_model["a"].runner_up is not None and per_model["a"].runner_up.run_id == "a64"


def test_tighter_deadline_says_what_is_lost(runs: list[RunRecord]) -> None:
    result = plan(runs, "lm-arena-chat", 45.0, model="org/a", tighter_ms=15.0)
    just_below, at_15 = result.overall.tighter
    assert just_below.deadline_ms == pytest.approx(40.0)
    assert just_below.replacement is not None and just_below.replacement.run_id == "a64"
    expected = energy(runs, "a64") / energy(runs, "a256") - 1
    assert just_below.energy_increase_fraction == pytest.approx(expected)
    assert f"uses {expected:.1%} more energy per token" in just_below.note
    assert at_15.replacement is not None and at_15.replacement.run_id == "a8"


def test_tightest_choice_has_nothing_below(runs: list[RunRecord]) -> None:
    result = plan(runs, "lm-arena-chat", 10.0)
    assert result.overall.best is not None and result.overall.best.run_id == "a8"
    (tighter,) = result.overall.tighter
    assert tighter.replacement is None and "nothing meets" in tighter.note


def test_nothing_feasible_is_a_clear_error(runs: list[RunRecord]) -> None:
    with pytest.raises(
        AnalysisError, match=r"nothing meets 9.5 ms.*a, 1x H100, max_num_seqs 8.*10 ms"
    ):
        plan(runs, "lm-arena-chat", 9.5)


def test_per_model_infeasibility_is_reported_not_raised(runs: list[RunRecord]) -> None:
    result = plan(runs, "lm-arena-chat", 30.0)
    per_model = {c.scope: c for c in result.per_model}
    assert per_model["b"].best is None
    assert per_model["b"].reason is not None and "50 ms" in per_model["b"].reason


def test_energy_budget_per_unit_and_per_response(runs: list[RunRecord]) -> None:
    a64 = energy(runs, "a64")
    result = plan(runs, "lm-arena-chat", 45.0, model="org/a", energy_budget_joules=a64 * 1.01)
    assert result.overall.best is not None and result.overall.best.run_id == "a256"
    # Every run has 500 output tokens: a per-response budget is 500x the per-token one.
    result = plan(
        runs,
        "lm-arena-chat",
        25.0,
        energy_budget_joules=a64 * 500 * 1.001,
        budget_per=BudgetPer.RESPONSE,
    )
    assert result.overall.best is not None and result.overall.best.run_id == "a64"
    with pytest.raises(AnalysisError, match="none fits the energy budget"):
        plan(runs, "lm-arena-chat", 25.0, energy_budget_joules=a64 * 0.5)


def test_bad_inputs(runs: list[RunRecord]) -> None:
    with pytest.raises(InputError):
        plan(runs, "lm-arena-chat", 0.0)
    with pytest.raises(AnalysisError, match="no run of task"):
        plan(runs, "gpqa", 50.0)


def test_p99_itl_deadline(runs: list[RunRecord]) -> None:
    # p99 ITL is 1.6x the median in these runs: 40 ms median needs a 64 ms p99 deadline.
    result = plan(runs, "lm-arena-chat", 63.0, model="org/a", metric=LatencyMetric.P99_ITL)
    assert result.overall.best is not None and result.overall.best.run_id == "a64"
    assert result.latency == "p99 ITL"


def test_ttft_deadline_on_public_data_says_why(public_store: Store) -> None:
    runs = public_store.query(RunFilter(task="gpqa"))
    with pytest.raises(AnalysisError, match=r"TTFT.*not published"):
        plan(runs, "gpqa", 1000.0, metric=LatencyMetric.P90_TTFT)


def test_itl_deadline_on_diffusion_is_refused(make_record: Callable[..., RunRecord]) -> None:
    runs = [diffusion_run(make_record, b) for b in (1, 2, 4)]
    with pytest.raises(AnalysisError, match="does not apply to diffusion"):
        plan(runs, "text-to-image", 1000.0, metric=LatencyMetric.P90_ITL)
    result = plan(runs, "text-to-image", 2600.0)  # batch latency 1 + 0.8 b seconds
    assert result.latency == "batch latency"
    assert result.overall.best is not None and result.overall.best.batch == 2


def test_predictions_are_marked_and_can_win(make_record: Callable[..., RunRecord]) -> None:
    runs = [llm_run(make_record, b) for b in (8, 64, 512)]
    # The deadline falls between batch 64 (13.2 ms) and 512 (35.6 ms).
    measured = plan(runs, "lm-arena-chat", 25.0)
    predicted = plan(runs, "lm-arena-chat", 25.0, with_predictions=True)
    assert measured.overall.best is not None and measured.overall.best.batch == 64
    best = predicted.overall.best
    assert best is not None and best.source == "predicted" and 64 < best.batch < 512
    assert best.run_id is None and best.band_fraction is not None
    assert best.latency_ms <= 25.0
    assert best.energy_per_unit_joules < measured.overall.best.energy_per_unit_joules


def test_public_snapshot_plan(public_store: Store) -> None:
    runs = public_store.query(RunFilter(task="lm-arena-chat"))
    result = plan(runs, "lm-arena-chat", 50.0)
    best = result.overall.best
    assert best is not None and best.latency_ms <= 50.0
    feasible = [
        r.energy_per_token_joules
        for r in runs
        if r.median_itl_ms is not None and r.median_itl_ms <= 50.0 and r.energy_per_token_joules
    ]
    assert best.energy_per_unit_joules == min(feasible)
    assert result.to_dict()["overall"]["best"]["run_id"] == best.run_id
