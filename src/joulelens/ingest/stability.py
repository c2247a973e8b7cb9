"""The ML.ENERGY stability rule for LLM/MLLM runs, including its cascade over batch sizes.

A run is unstable when its steady state is shorter than 20 s, its energy per token is not
positive, or its average running batch is under 85% of ``max_num_seqs`` (memory or a CPU
bottleneck kept the server from reaching the batch it was given). Then every run of the
same (model, task, GPU model, GPU count) with ``max_num_seqs`` at or above the smallest
unstable one is unstable too: larger batches cannot have reached their batch either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from joulelens.records import RunKind, RunRecord

MIN_STEADY_STATE_S = 20.0
MIN_BATCH_UTILIZATION = 0.85
CASCADE_PREFIX = "cascade:"


def own_unstable_reasons(
    steady_state_duration_s: float | None,
    energy_per_token_joules: float | None,
    avg_batch_size: float | None,
    max_num_seqs: int,
) -> list[str]:
    """Reasons that make one run unstable by itself (empty when it passes)."""
    reasons: list[str] = []
    if steady_state_duration_s is None or not steady_state_duration_s >= MIN_STEADY_STATE_S:
        reasons.append(
            f"short steady state: {steady_state_duration_s} s < {MIN_STEADY_STATE_S:g} s"
        )
    if energy_per_token_joules is None or not energy_per_token_joules > 0:
        reasons.append(f"energy per token is not positive: {energy_per_token_joules} J")
    if avg_batch_size is not None and max_num_seqs > 0:
        utilization = avg_batch_size / max_num_seqs
        if utilization < MIN_BATCH_UTILIZATION:
            reasons.append(
                f"low batch utilization: average running batch {avg_batch_size:.1f} is "
                f"{utilization:.0%} of max_num_seqs {max_num_seqs} "
                f"(< {MIN_BATCH_UTILIZATION:.0%})"
            )
    return reasons


def cascade_group(record: RunRecord) -> tuple[str, str, str, int]:
    return (record.model_id, record.task, (record.gpu_model or "").upper(), record.num_gpus)


def _own_reasons(record: RunRecord) -> list[str]:
    return [r for r in record.unstable_reasons if not r.startswith(CASCADE_PREFIX)]


def apply_cascade(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Records with the cascade applied; inputs are not modified.

    Only LLM/MLLM records take part. Cascade reasons from an earlier application are
    dropped first, so applying it again to a grown set of runs gives the right answer.
    """
    threshold: dict[tuple[str, str, str, int], int] = {}
    for r in _llm_runs(records):
        if _own_reasons(r) and r.max_num_seqs is not None:
            key = cascade_group(r)
            threshold[key] = min(threshold.get(key, r.max_num_seqs), r.max_num_seqs)
    out: list[RunRecord] = []
    for r in records:
        if r.kind is RunKind.DIFFUSION or r.max_num_seqs is None:
            out.append(r)
            continue
        own = _own_reasons(r)
        limit = threshold.get(cascade_group(r))
        reasons = list(own)
        if limit is not None and r.max_num_seqs >= limit and not own:
            reasons.append(
                f"{CASCADE_PREFIX} a smaller batch (max_num_seqs {limit}) of the same model, "
                "task, GPU model and GPU count is unstable"
            )
        stable = not reasons
        if reasons == r.unstable_reasons and stable == r.stable:
            out.append(r)
        else:
            out.append(r.model_copy(update={"stable": stable, "unstable_reasons": reasons}))
    return out


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


def _llm_runs(records: Iterable[RunRecord]) -> Iterable[RunRecord]:
    return (r for r in records if r.kind is not RunKind.DIFFUSION)
