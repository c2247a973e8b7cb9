"""Unit conversions at the hardware boundary and cumulative-counter arithmetic.

Hardware reports integers in milli- or micro-units; everything above the meters speaks J, W
and s. Keeping the conversions in one place makes a factor-1000 slip testable.
"""

from __future__ import annotations

from joulelens.errors import MeterError


def mj_to_j(millijoules: float) -> float:
    """NVML's energy counter (mJ) to joules."""
    return millijoules / 1e3


def uj_to_j(microjoules: float) -> float:
    """RAPL's ``energy_uj`` (µJ) to joules."""
    return microjoules / 1e6


def mw_to_w(milliwatts: float) -> float:
    """NVML power and power limits (mW) to watts."""
    return milliwatts / 1e3


def counter_delta(previous: int, current: int, max_value: int) -> int:
    """How far a wrapping counter advanced from ``previous`` to ``current``.

    The counter runs 0..``max_value`` inclusive (RAPL's ``max_energy_range_uj``) and then
    restarts at 0, so it counts modulo ``max_value + 1``. A wrap is recognised only by the
    reading going down, so at most **one** wrap between two readings can be corrected: a
    counter that wrapped twice reads the same as one that wrapped once. Callers keep readings
    closer together than the counter's shortest wrap time (see ``RaplZoneMeter``).
    """
    if max_value <= 0:
        raise MeterError(f"counter range must be positive, got max {max_value}")
    for value in (previous, current):
        if not 0 <= value <= max_value:
            raise MeterError(f"counter reading {value} outside its range 0..{max_value}")
    if current >= previous:
        return current - previous
    return current + (max_value + 1) - previous
