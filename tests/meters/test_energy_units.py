"""Unit conversions and counter wrap-around: the mappings where a slip is silent."""

from __future__ import annotations

import pytest

from joulelens.errors import MeterError
from joulelens.meters.units import counter_delta, mj_to_j, mw_to_w, uj_to_j


@pytest.mark.parametrize(
    ("convert", "raw", "expected"),
    [
        (mj_to_j, 1_000, 1.0),
        (mj_to_j, 123_456_789, 123_456.789),
        (mj_to_j, 0, 0.0),
        (uj_to_j, 1_000_000, 1.0),
        (uj_to_j, 262_143_328_850, 262_143.32885),
        (uj_to_j, 1, 1e-6),
        (mw_to_w, 700_000, 700.0),
        (mw_to_w, 61_234, 61.234),
    ],
)
def test_unit_conversions(convert, raw, expected):
    assert convert(raw) == pytest.approx(expected, rel=1e-12, abs=1e-15)


MAX_32 = 2**32 - 1  # a 32-bit RAPL range; the counter counts 0..MAX_32 inclusive


@pytest.mark.parametrize(
    ("previous", "current", "max_value", "expected"),
    [
        pytest.param(100, 350, MAX_32, 250, id="no-wrap"),
        pytest.param(100, 100, MAX_32, 0, id="no-change"),
        pytest.param(MAX_32 - 9, 20, MAX_32, 30, id="one-wrap"),
        pytest.param(MAX_32, 0, MAX_32, 1, id="wrap-exactly-at-max"),
        pytest.param(5, 4, MAX_32, MAX_32, id="wrap-almost-full-range"),
        pytest.param(999, 0, 999, 1, id="small-range"),
        pytest.param(262_143_328_000, 500, 262_143_328_850, 1351, id="server-range"),
    ],
)
def test_counter_delta(previous, current, max_value, expected):
    assert counter_delta(previous, current, max_value) == expected


@pytest.mark.parametrize("wraps", [2, 3])
def test_several_wraps_read_as_one(wraps):
    """Documented limit: wraps are seen only as a decrease, so only one can be corrected."""
    max_value = 999
    # 900 -> 1200 is one wrap; each further 1000 is one more.
    previous, advanced = 900, 300 + (wraps - 1) * (max_value + 1)
    current = (previous + advanced) % (max_value + 1)
    assert counter_delta(previous, current, max_value) == advanced - (wraps - 1) * 1000


def test_wrap_plus_advance_past_previous_is_invisible():
    """A full wrap that ends above the previous reading looks like no wrap at all."""
    assert counter_delta(100, 200, 999) == 100  # true advance may be 1100


@pytest.mark.parametrize(
    ("previous", "current", "max_value"),
    [(0, 1000, 999), (-1, 5, 999), (5, 5, 0)],
)
def test_counter_delta_rejects_impossible_readings(previous, current, max_value):
    with pytest.raises(MeterError):
        counter_delta(previous, current, max_value)
