"""Arrival schedules: when each request is due, as offsets in seconds from the run start."""

from __future__ import annotations

import random

from joulelens.workloads.config import ArrivalConfig


def arrival_offsets_s(config: ArrivalConfig, count: int) -> list[float]:
    """Send offsets for ``count`` requests, non-decreasing, the first at 0.

    Saturation gives all zeros. Otherwise gaps are gamma(shape=1/cv², scale=cv²/rate), which
    has mean ``1/rate`` and coefficient of variation ``cv`` (shape 1 is the exponential, i.e.
    a Poisson process). A private ``random.Random(seed)`` keeps schedules reproducible and
    independent of any other use of ``random``.
    """
    if count <= 0:
        return []
    if config.rate_per_s is None:
        return [0.0] * count
    rng = random.Random(config.seed)
    shape = 1.0 / (config.cv * config.cv)
    scale = 1.0 / (config.rate_per_s * shape)
    offsets = [0.0] * count
    t = 0.0
    for i in range(1, count):
        t += rng.gammavariate(shape, scale)
        offsets[i] = t
    return offsets
