"""Arrival schedules: when each request is due, as offsets in seconds from the run start."""

from __future__ import annotations

import random
from collections.abc import Iterator

from joulelens.workloads.config import ArrivalConfig


def arrival_offsets(config: ArrivalConfig, count: int) -> Iterator[float]:
    """The offsets of :func:`arrival_offsets_s` one at a time (memory independent of count)."""
    if count <= 0:
        return
    yield 0.0
    if config.rate_per_s is None:
        for _ in range(1, count):
            yield 0.0
        return
    rng = random.Random(config.seed)
    shape = 1.0 / (config.cv * config.cv)
    scale = 1.0 / (config.rate_per_s * shape)
    t = 0.0
    for _ in range(1, count):
        t += rng.gammavariate(shape, scale)
        yield t


def arrival_offsets_s(config: ArrivalConfig, count: int) -> list[float]:
    """Send offsets for ``count`` requests, non-decreasing, the first at 0.

    Saturation gives all zeros. Otherwise gaps are gamma(shape=1/cv², scale=cv²/rate), which
    has mean ``1/rate`` and coefficient of variation ``cv`` (shape 1 is the exponential, i.e.
    a Poisson process). A private ``random.Random(seed)`` keeps schedules reproducible and
    independent of any other use of ``random``.
    """
    return list(arrival_offsets(config, count))
