"""Reading sampled series over windows."""

from __future__ import annotations

import pytest

from joulelens.measure.series import SampledSeries


def test_step_mean_holds_each_sample_until_the_next() -> None:
    s = SampledSeries.of([0.0, 10.0, 20.0], [1.0, 3.0, 5.0])
    assert s.step_mean(5.0, 15.0) == pytest.approx((1 * 5 + 3 * 5) / 10)
    assert s.step_mean(0.0, 30.0) == pytest.approx((10 + 30 + 50) / 30)
    # Before the first sample nothing is known: that stretch is left out.
    assert s.step_mean(-10.0, 10.0) == pytest.approx(1.0)
    assert s.step_mean(-10.0, -5.0) is None
    assert s.step_mean(5.0, 5.0) is None


def test_step_max_ignores_a_sample_at_the_very_end() -> None:
    s = SampledSeries.of([0.0, 10.0, 20.0], [1.0, 3.0, 5.0])
    assert s.step_max(5.0, 20.0) == 3.0
    assert s.step_max(5.0, 20.5) == 5.0
    assert s.step_max(0.0, 0.0) == 1.0
    assert SampledSeries.of([], []).step_max(0, 1) is None


def test_interpolation_and_coverage() -> None:
    s = SampledSeries.of([0.0, 1.0, 2.0], [0.0, 10.0, 30.0])
    assert s.at(1.5) == pytest.approx(20.0)
    assert s.covers(0.0, 2.0) and not s.covers(-0.1, 1.0)
    assert s.inside(0.5, 2.0).tolist() == [10.0, 30.0]
    assert s.span_text() == "0.000..2.000 s"


def test_bad_series_are_refused() -> None:
    with pytest.raises(ValueError, match="must match"):
        SampledSeries.of([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="must not decrease"):
        SampledSeries.of([1.0, 0.0], [1.0, 1.0])


def test_inside_step_mean_starts_at_the_first_sample_inside() -> None:
    s = SampledSeries.of([0.0, 10.0, 20.0], [1.0, 3.0, 5.0])
    # The 0 s sample is not held into [5, 25]: 3 from +10, 5 from +20.
    assert s.inside_step_mean(5.0, 25.0) == pytest.approx((3 * 10 + 5 * 5) / 15)
    assert s.inside_step_max(5.0, 19.0) == 3.0
    assert s.inside_step_mean(11.0, 19.0) is None
    assert s.inside_step_max(11.0, 19.0) is None
