"""Leave-one-out: a held-out run never reaches its own prediction; the public numbers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from planning_helpers import llm_run, llm_sweep

from joulelens.analysis.planning import SweepCurve, leave_one_out
from joulelens.analysis.planning.validate import METHODS, held_out_points
from joulelens.records import RunRecord

BATCHES = [8, 16, 32, 64, 128, 256]


def _predictions(runs: list[RunRecord], batch: int) -> dict[str, float | None]:
    report = leave_one_out(runs)
    (point,) = [p for p in report.points if p.batch == batch]
    return point.predicted_joules


def test_held_out_run_never_influences_its_own_prediction(
    make_record: Callable[..., RunRecord],
) -> None:
    base = llm_sweep(make_record, [b for b in BATCHES if b != 64])
    truth = llm_run(make_record, 64)
    wild = llm_run(make_record, 64, power_watts=5000.0, itl_ms=1.0)  # 50x the energy
    honest = _predictions([*base, truth], 64)
    assert honest == _predictions([*base, wild], 64)
    assert all(v is not None for v in honest.values())
    # ... while the error it is scored with does change: it was really held out.
    errors = {
        label: {p.batch: p.error_pct("pchip") for p in leave_one_out([*base, r]).points}
        for label, r in (("truth", truth), ("wild", wild))
    }
    assert errors["truth"][64] != errors["wild"][64]


def test_repeats_of_the_held_out_batch_are_held_out_together(
    make_record: Callable[..., RunRecord],
) -> None:
    runs = llm_sweep(make_record, BATCHES)
    runs.append(llm_run(make_record, 64, run_id="repeat", power_watts=650.0))
    report = leave_one_out(runs)
    held = [p for p in report.points if p.batch == 64]
    assert {p.run_id for p in held} == {runs[3].run_id, "repeat"}
    assert held[0].predicted_joules == held[1].predicted_joules
    curve = SweepCurve.fit(runs)
    assert 64 not in curve.without(64).batches
    assert all(64 not in per_batch for per_batch in held_out_points(curve, 64).values())


def test_only_interior_points_are_scored(make_record: Callable[..., RunRecord]) -> None:
    report = leave_one_out(
        llm_sweep(make_record, BATCHES) + llm_sweep(make_record, [8, 64], gpu="B200")
    )
    assert sorted(p.batch for p in report.points) == BATCHES[1:-1]
    assert report.setups == 2 and report.setups_with_interior == 1


def test_smooth_synthetic_sweep_is_predicted_well(make_record: Callable[..., RunRecord]) -> None:
    report = leave_one_out(llm_sweep(make_record, BATCHES))
    assert report.scores["pchip"].median_pct is not None
    assert report.scores["pchip"].median_pct < 2.0
    assert set(report.scores) == set(METHODS)


def test_public_snapshot_meets_targets_and_beats_logistic(public_records: list[RunRecord]) -> None:
    report = leave_one_out(public_records)
    ours, logistic = report.scores["pchip"], report.scores["logistic"]
    assert ours.n > 1000
    assert ours.median_pct is not None and ours.median_pct < 5.0
    assert ours.p90_pct is not None and ours.p90_pct < 15.0
    assert report.meets_targets and report.beats_logistic
    assert logistic.p90_pct is not None and logistic.p90_pct > ours.p90_pct
    llm = ours.by_kind["llm"]
    assert llm["median_pct"] is not None and llm["median_pct"] < 5.0
    assert llm["p90_pct"] is not None and llm["p90_pct"] < 15.0
    data = report.to_dict()
    assert data["meets_targets"] is True and "points" not in data
    assert len(report.to_dict(with_points=True)["points"]) == len(report.points)
    assert pytest.approx(ours.median_pct) == data["scores"]["pchip"]["median_pct"]
