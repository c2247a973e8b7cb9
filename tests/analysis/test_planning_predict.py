"""Sweep curves and predictions: exact at measured batches, monotone, never extrapolated."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from planning_helpers import diffusion_run, llm_itl_ms, llm_power_watts, llm_run, llm_sweep

from joulelens.analysis.planning import SweepCurve, predict
from joulelens.analysis.planning.interpolate import Logistic, Pchip
from joulelens.analysis.planning.predict import DEFAULT_BAND_FRACTION, band_fraction, batch_grid
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord
from joulelens.store import RunFilter, Store

BATCHES = [8, 16, 32, 64, 128, 256, 512]


@given(
    st.lists(st.floats(0.1, 10.0), min_size=2, max_size=8),
    st.lists(st.floats(-5.0, 5.0), min_size=8, max_size=8),
)
def test_pchip_is_exact_at_knots_and_monotone_on_monotone_data(
    steps: list[float], raw: list[float]
) -> None:
    x = np.cumsum(steps)
    y = np.sort(np.asarray(raw[: len(x)]))  # non-decreasing data
    f = Pchip.fit(x, y)
    for xi, yi in zip(x, y, strict=True):
        assert f(float(xi)) == pytest.approx(float(yi), abs=1e-12)
    dense = [f(float(t)) for t in np.linspace(x[0], x[-1], 200)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(dense))
    assert min(dense) >= y[0] - 1e-9 and max(dense) <= y[-1] + 1e-9  # no overshoot


def test_pchip_refuses_extrapolation_and_bad_input() -> None:
    f = Pchip.fit([0.0, 1.0], [1.0, 3.0])
    assert f(0.5) == pytest.approx(2.0)  # two points: a straight line
    with pytest.raises(ValueError, match="outside"):
        f(1.5)
    with pytest.raises(ValueError):
        Pchip.fit([0.0], [1.0])
    with pytest.raises(ValueError):
        Pchip.fit([0.0, 0.0, 1.0], [1.0, 2.0, 3.0])


def test_logistic_fit_recovers_a_logistic() -> None:
    x = np.arange(3.0, 12.0)
    y = 100.0 + 400.0 / (1.0 + np.exp(-0.9 * (x - 7.0)))
    fit = Logistic.fit(x, y)
    # A grid over (x0, k), as the toolkit does: within 2% of the amplitude, not exact.
    assert max(abs(fit(float(t)) - v) for t, v in zip(x, y, strict=True)) < 8.0
    flat = Logistic.fit([1.0, 2.0], [3.0, 3.0])
    assert flat(10.0) == pytest.approx(3.0)


def test_curve_is_exact_at_measured_batches(make_record: Callable[..., RunRecord]) -> None:
    runs = llm_sweep(make_record, BATCHES)
    curve = SweepCurve.fit(runs)
    for r in runs:
        assert r.batch is not None
        assert curve.value("energy_per_unit_joules", r.batch) == pytest.approx(
            r.energy_per_token_joules, rel=1e-12
        )
        assert curve.value("median_itl_ms", r.batch) == pytest.approx(r.median_itl_ms, rel=1e-12)
        (p,) = predict(runs, r.batch)
        assert p.source == "measured" and p.band_fraction == 0.0
        assert p.run_ids == [r.run_id]


def test_predictions_are_monotone_between_measured_batches(
    make_record: Callable[..., RunRecord],
) -> None:
    curve = SweepCurve.fit(llm_sweep(make_record, BATCHES))
    grid = range(8, 513)
    energy = [curve.value("energy_per_unit_joules", b) for b in grid]
    itl = [curve.value("median_itl_ms", b) for b in grid]
    power = [curve.value("power_watts", b) for b in grid]
    assert all(e is not None for e in energy + itl + power)
    assert all(b <= a for a, b in itertools.pairwise(energy))
    assert all(b >= a for a, b in itertools.pairwise(itl))
    assert all(b >= a for a, b in itertools.pairwise(power))


def test_prediction_is_close_to_the_generating_model(make_record: Callable[..., RunRecord]) -> None:
    runs = llm_sweep(make_record, BATCHES)
    (p,) = predict(runs, 96)
    truth_power, truth_itl = llm_power_watts(96), llm_itl_ms(96)
    truth_energy = truth_power * truth_itl / 1000.0 / 96
    assert p.source == "interpolated" and (p.lower_batch, p.upper_batch) == (64, 128)
    assert p.energy_per_unit_joules == pytest.approx(truth_energy, rel=0.01)
    assert p.latencies_ms["median_itl_ms"] == pytest.approx(truth_itl, rel=0.01)
    assert p.energy_low_joules < p.energy_per_unit_joules < p.energy_high_joules
    assert p.energy_per_response_joules == pytest.approx(p.energy_per_unit_joules * 500.0)


def test_no_extrapolation(make_record: Callable[..., RunRecord]) -> None:
    runs = llm_sweep(make_record, [8, 64])
    with pytest.raises(AnalysisError, match="does not extrapolate"):
        predict(runs, 1024)
    with pytest.raises(AnalysisError, match="two measured batch sizes"):
        predict(llm_sweep(make_record, [8]), 8)


def test_repeats_are_combined_by_geometric_mean(make_record: Callable[..., RunRecord]) -> None:
    runs = llm_sweep(make_record, [8, 128])
    low = llm_run(make_record, 64, run_id="r1", power_watts=400.0, itl_ms=20.0)
    high = llm_run(make_record, 64, run_id="r2", power_watts=900.0, itl_ms=20.0)
    curve = SweepCurve.fit([*runs, low, high])
    assert curve.batches == [8, 64, 128]
    assert curve.run_ids[64] == ["r1", "r2"]
    assert curve.value("power_watts", 64) == pytest.approx(math.sqrt(400.0 * 900.0))


def test_setups_do_not_mix(make_record: Callable[..., RunRecord]) -> None:
    h100 = llm_sweep(make_record, [8, 64, 512])
    b200 = llm_sweep(make_record, [8, 64, 512], gpu="B200")
    with pytest.raises(AnalysisError, match="one setup"):
        SweepCurve.fit(h100 + b200)
    preds = predict(h100 + b200, 100)
    assert sorted(p.gpu for p in preds) == ["B200", "H100"]
    (only,) = predict(h100 + b200, 100, gpu="b200")
    assert only.gpu == "B200"


def test_band_comes_from_the_setups_own_leave_one_out(
    make_record: Callable[..., RunRecord],
) -> None:
    assert band_fraction(SweepCurve.fit(llm_sweep(make_record, [8, 512]))) == DEFAULT_BAND_FRACTION
    noisy = llm_sweep(make_record, [8, 16, 64, 128])
    noisy.append(llm_run(make_record, 32, power_watts=2 * llm_power_watts(32)))
    assert band_fraction(SweepCurve.fit(noisy)) > band_fraction(
        SweepCurve.fit(llm_sweep(make_record, [8, 16, 32, 64, 128]))
    )


def test_batch_grid_rounds_to_operator_friendly_caps(make_record: Callable[..., RunRecord]) -> None:
    grid = batch_grid(SweepCurve.fit(llm_sweep(make_record, [8, 64, 512])))
    assert grid and all(8 < b < 512 and b not in (64,) for b in grid)
    assert all(b % 8 == 0 for b in grid if b >= 64)


def test_diffusion_prediction(make_record: Callable[..., RunRecord]) -> None:
    runs = [diffusion_run(make_record, b) for b in (1, 2, 4, 8, 16)]
    (p,) = predict(runs, 6)
    assert p.energy_unit == "image"
    assert p.latencies_ms["batch_latency_ms"] == pytest.approx((1 + 0.8 * 6) * 1000, rel=0.02)
    assert p.energy_per_response_joules == p.energy_per_unit_joules


def test_public_snapshot_prediction(public_store: Store) -> None:
    runs = public_store.query(RunFilter(task="gpqa", model="Qwen/Qwen3-14B"))
    (p,) = predict(runs, 100, gpu="B200", num_gpus=1)
    lo = next(r for r in runs if r.gpu_model == "B200" and r.batch == 64)
    hi = next(r for r in runs if r.gpu_model == "B200" and r.batch == 128)
    assert lo.energy_per_token_joules and hi.energy_per_token_joules
    assert hi.energy_per_token_joules < p.energy_per_unit_joules < lo.energy_per_token_joules
    assert sorted(p.run_ids) == sorted([lo.run_id, hi.run_id])
