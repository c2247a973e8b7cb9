"""The ML.ENERGY stability rule for imported LLM/MLLM runs, including its cascade.

The rule and the cascade are the measurement's own (:mod:`joulelens.measure.validate`), so
imported and measured runs are judged identically; this module only adds what importing
needs: judging new runs together with those already in the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from joulelens.measure.validate import (
    CASCADE_PREFIX,
    MIN_BATCH_FRACTION,
    MIN_STEADY_STATE_S,
    apply_cascade,
    batch_reasons,
    energy_per_unit_reasons,
    steady_state_reasons,
)
from joulelens.records import RunRecord

__all__ = [
    "CASCADE_PREFIX",
    "MIN_BATCH_FRACTION",
    "MIN_STEADY_STATE_S",
    "apply_cascade",
    "own_unstable_reasons",
    "restabilize",
]


def own_unstable_reasons(
    steady_state_duration_s: float | None,
    energy_per_token_joules: float | None,
    avg_batch_size: float | None,
    max_num_seqs: int,
) -> list[str]:
    """Reasons that make one run unstable by itself (empty when it passes)."""
    return [
        *steady_state_reasons(steady_state_duration_s),
        *energy_per_unit_reasons(energy_per_token_joules, "token"),
        *batch_reasons(avg_batch_size, max_num_seqs),
    ]


def restabilize(new: Sequence[RunRecord], existing: Sequence[RunRecord]) -> list[RunRecord]:
    """Judge ``new`` runs together with ``existing`` ones (e.g. earlier imports in the store).

    Returns the new runs, cascade applied, plus those existing runs whose stability changes
    now that they are judged alongside the new ones (they need writing back).
    """
    new_ids = {r.run_id for r in new}
    others = [r for r in existing if r.run_id not in new_ids]
    judged = apply_cascade([*new, *others])
    changed = [
        after
        for before, after in zip(others, judged[len(new) :], strict=True)
        if after is not before
    ]
    return judged[: len(new)] + changed
