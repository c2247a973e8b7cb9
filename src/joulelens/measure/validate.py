"""Stability of measured runs, with reasons, and the cascade over batch sizes in a sweep.

The paper's rule makes a run unstable when its steady state is under 20 s, its energy per
token is not positive, or its average running batch is under 85% of ``max_num_seqs``.
The reference harness also checks that every request completed without error, that fewer
than 30% of outputs hit the token cap, that GPU power stayed in the device's range and
that temperatures stayed within 20-95 C; those become reasons here too. An unstable run
is kept and flagged (``stable=False`` with ``unstable_reasons``), never dropped.

Cascade: when a run is unstable by itself, every run of the same (model, task, GPU model,
GPU count) with a larger ``max_num_seqs`` is unstable too: a larger cap cannot have been
reached either. Cascade reasons start with :data:`CASCADE_PREFIX` (the same convention the
leaderboard importer uses) so they can be recomputed when the sweep grows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from joulelens.measure.events import RequestTrace
from joulelens.measure.series import SampledSeries
from joulelens.records.schema import RunKind, RunRecord

MIN_STEADY_STATE_S = 20.0
MIN_BATCH_FRACTION = 0.85
MAX_TRUNCATED_FRACTION = 0.30
# Temperature: below 20 C suggests a sensor error, above 95 C throttling. As the harness,
# a run fails when at least 5% of the samples in its window are outside.
MIN_TEMPERATURE_C = 20.0
MAX_TEMPERATURE_C = 95.0
MAX_OUT_OF_RANGE_TEMPERATURE_FRACTION = 0.05
# Power: an instantaneous GPU sample may spike to 1.7x the power limit (the harness's
# allowance), the window mean may not exceed the limit by more than 10%; a sample at or
# below 0 W is a broken sensor.
MAX_INSTANT_POWER_OVER_LIMIT = 1.7
MAX_MEAN_POWER_OVER_LIMIT = 1.1
CASCADE_PREFIX = "cascade:"


@dataclass(frozen=True, slots=True)
class DeviceSeries:
    """What the range checks read about one device over the window."""

    name: str
    power_w: SampledSeries | None = None
    temperature_c: SampledSeries | None = None
    power_limit_w: float | None = None
    mean_power_w: float | None = None  # window energy / window duration


def steady_state_reasons(
    duration_s: float | None,
    min_duration_s: float = MIN_STEADY_STATE_S,
    why_none: str | None = None,
) -> list[str]:
    if duration_s is None:
        return [f"no steady state: {why_none}" if why_none else "no steady state"]
    if not duration_s >= min_duration_s:
        return [f"short steady state: {duration_s:.1f} s < {min_duration_s:g} s"]
    return []


def energy_per_unit_reasons(energy_per_unit_j: float | None, unit: str) -> list[str]:
    if energy_per_unit_j is None or not energy_per_unit_j > 0:
        return [f"energy per {unit} is not positive: {energy_per_unit_j} J"]
    return []


def batch_reasons(avg_batch_size: float | None, max_num_seqs: int) -> list[str]:
    if avg_batch_size is None or max_num_seqs <= 0:
        return []
    fraction = avg_batch_size / max_num_seqs
    if fraction < MIN_BATCH_FRACTION:
        return [
            f"low batch utilization: average running batch {avg_batch_size:.1f} is "
            f"{fraction:.0%} of max_num_seqs {max_num_seqs} (< {MIN_BATCH_FRACTION:.0%})"
        ]
    return []


def request_reasons(
    traces: Sequence[RequestTrace], num_requests: int, *, check_truncation: bool = True
) -> list[str]:
    """Completion, errors and truncation at the output cap (unless outputs are fixed-length)."""
    reasons = []
    failed = [t for t in traces if t.error is not None]
    unfinished = [t for t in traces if t.error is None and t.finished_s is None]
    if len(traces) < num_requests:
        reasons.append(f"only {len(traces)} of {num_requests} requests were sent")
    if failed:
        sample = "; ".join(sorted({str(t.error) for t in failed})[:3])
        reasons.append(f"{len(failed)} of {len(traces)} requests failed ({sample})")
    if unfinished:
        reasons.append(f"{len(unfinished)} of {len(traces)} requests never finished")
    done = [t for t in traces if t.ok]
    if done and check_truncation:
        truncated = sum(t.truncated for t in done)
        if truncated / len(done) >= MAX_TRUNCATED_FRACTION:
            reasons.append(
                f"{truncated} of {len(done)} outputs ({truncated / len(done):.0%}) hit the "
                f"output token cap (limit < {MAX_TRUNCATED_FRACTION:.0%})"
            )
    return reasons


def device_range_checks(
    devices: Sequence[DeviceSeries], start_s: float, end_s: float
) -> tuple[list[str], list[str]]:
    """(unstable reasons, warnings) from power and temperature over [start_s, end_s]."""
    reasons: list[str] = []
    warnings: list[str] = []
    for device in devices:
        reasons += _power_reasons(device, start_s, end_s, warnings)
        if device.temperature_c is None or len(device.temperature_c.inside(start_s, end_s)) == 0:
            warnings.append(f"{device.name}: temperature not checked (no readings in the window)")
            continue
        temps = device.temperature_c.inside(start_s, end_s)
        outside = int(np.count_nonzero((temps < MIN_TEMPERATURE_C) | (temps > MAX_TEMPERATURE_C)))
        if outside / temps.size >= MAX_OUT_OF_RANGE_TEMPERATURE_FRACTION:
            reasons.append(
                f"{device.name}: {outside} of {temps.size} temperature readings outside "
                f"{MIN_TEMPERATURE_C:g}-{MAX_TEMPERATURE_C:g} C "
                f"(range {temps.min():.0f}-{temps.max():.0f} C)"
            )
    return reasons, warnings


def _power_reasons(
    device: DeviceSeries, start_s: float, end_s: float, warnings: list[str]
) -> list[str]:
    reasons = []
    samples = device.power_w.inside(start_s, end_s) if device.power_w is not None else None
    if samples is not None and samples.size and float(samples.min()) <= 0:
        reasons.append(f"{device.name}: power reading of {samples.min():.1f} W (broken sensor?)")
    limit = device.power_limit_w
    if limit is None or limit <= 0:
        warnings.append(f"{device.name}: power range not checked (no power limit reading)")
        return reasons
    if samples is not None and samples.size:
        ceiling = MAX_INSTANT_POWER_OVER_LIMIT * limit
        over = int(np.count_nonzero(samples > ceiling))
        if over:
            reasons.append(
                f"{device.name}: {over} power readings above {ceiling:.0f} W "
                f"({MAX_INSTANT_POWER_OVER_LIMIT:g}x its {limit:.0f} W limit)"
            )
    mean = device.mean_power_w
    if mean is not None and mean > MAX_MEAN_POWER_OVER_LIMIT * limit:
        reasons.append(
            f"{device.name}: mean power {mean:.0f} W exceeds its {limit:.0f} W limit "
            f"by more than {MAX_MEAN_POWER_OVER_LIMIT - 1:.0%}"
        )
    return reasons


def cascade_key(record: RunRecord) -> tuple[str, str, str, int]:
    return (record.model_id, record.task, (record.gpu_model or "").upper(), record.num_gpus)


def own_reasons(record: RunRecord) -> list[str]:
    return [r for r in record.unstable_reasons if not r.startswith(CASCADE_PREFIX)]


def apply_cascade(records: Sequence[RunRecord]) -> list[RunRecord]:
    """``records`` (any mix of groups) with the cascade applied; inputs are not modified.

    For each (model, task, GPU model, GPU count) group of LLM/MLLM runs, the smallest
    ``max_num_seqs`` that is unstable by itself makes every larger one unstable. Earlier
    cascade reasons are recomputed, so applying it to a grown sweep gives the right answer.
    Runs whose stability is unknown (``stable is None``) are judged by their own reasons.
    """
    smallest_unstable: dict[tuple[str, str, str, int], int] = {}
    for record in records:
        if _in_cascade(record) and own_reasons(record):
            key = cascade_key(record)
            assert record.max_num_seqs is not None
            smallest_unstable[key] = min(
                smallest_unstable.get(key, record.max_num_seqs), record.max_num_seqs
            )
    out = []
    for record in records:
        if not _in_cascade(record):
            out.append(record)
            continue
        assert record.max_num_seqs is not None
        reasons = own_reasons(record)
        limit = smallest_unstable.get(cascade_key(record))
        if limit is not None and record.max_num_seqs > limit and not reasons:
            reasons.append(
                f"{CASCADE_PREFIX} a smaller batch (max_num_seqs {limit}) of the same model, "
                "task, GPU model and GPU count is unstable"
            )
        stable = not reasons
        if reasons == record.unstable_reasons and stable == record.stable:
            out.append(record)
        else:
            out.append(record.model_copy(update={"stable": stable, "unstable_reasons": reasons}))
    return out


def _in_cascade(record: RunRecord) -> bool:
    return record.kind is not RunKind.DIFFUSION and record.max_num_seqs is not None


def stable_largest_batch(records: Sequence[RunRecord]) -> Mapping[tuple[str, str, str, int], int]:
    """Per group, the largest ``max_num_seqs`` still stable after the cascade."""
    best: dict[tuple[str, str, str, int], int] = {}
    for record in apply_cascade(records):
        if _in_cascade(record) and record.stable and record.max_num_seqs is not None:
            key = cascade_key(record)
            best[key] = max(best.get(key, 0), record.max_num_seqs)
    return best
