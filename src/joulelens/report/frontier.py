"""Pareto flags for the report's time-energy views.

The planning library (``joulelens.analysis.planning``) owns the frontier; this module only
adapts its answer to the report's columns: for each run, whether it is on the frontier of its
own setup (model, task, GPU, GPU count) and on the frontier of its model across setups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence

from joulelens.analysis.planning.frontier import pareto_mask
from joulelens.records import RunRecord


def frontier_flags(
    records: Sequence[RunRecord], key: Callable[[RunRecord], Hashable]
) -> list[bool | None]:
    """Per record: on the time-energy frontier of its group? ``None`` where a coordinate is null."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if r.latency_ms is not None and r.energy_per_unit_joules is not None:
            groups[key(r)].append(i)
    out: list[bool | None] = [None] * len(records)
    for members in groups.values():
        pts: list[tuple[float, float]] = []
        for i in members:
            lat, energy = records[i].latency_ms, records[i].energy_per_unit_joules
            assert lat is not None and energy is not None  # filtered above
            pts.append((lat, energy))
        for i, flag in zip(members, pareto_mask(pts), strict=True):
            out[i] = flag
    return out


def setup_key(r: RunRecord) -> tuple[str, str, str | None, int]:
    return (r.task, r.model_id, r.gpu_model, r.num_gpus)


def model_key(r: RunRecord) -> tuple[str, str]:
    return (r.task, r.model_id)
