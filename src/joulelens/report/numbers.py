"""Rounding shared by every part of the report payload (numbers, findings, measured runs)."""

from __future__ import annotations

import math


def sig(value: float | None, digits: int = 5) -> float | None:
    """Round to significant digits for a compact payload; None and non-finite stay null."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")
