"""Stability of measured and imported runs, with reasons, and the cascade over a sweep.

The paper's rule makes a run unstable when its steady state is under 20 s, its energy per
token is not positive, or its average running batch is under 85% of ``max_num_seqs``.
The reference harness (``scripts/validate_results.py`` of the ML.ENERGY benchmark) has
more checks, some as errors (the run is invalid) and some as warnings. joulelens applies
them all, to runs it measures and to raw runs it imports alike, and every reason and
warning says how the harness treats it (:data:`HARNESS_ERROR`, :data:`HARNESS_WARNING`):

==========================================  ==========================  ================
check                                       harness                     joulelens
==========================================  ==========================  ================
steady state >= 20 s (paper)                error below 30 s            reason
energy, energy/token, throughput > 0        error                       reason
energy per token <= 100 J                   error                       reason
every request sent, completed, succeeded    error                       reason
crash strings in the server log             error                       reason
running-batch gauge present                 error                       reason (imports)
temperature 20-95 C (< 5% outside)          error                       reason
average batch >= 85% of B (paper)           warning below 80%           reason
< 30% of outputs at the token cap           warning                     reason
GPU power within its limit                  warning                     reason
Prometheus scrapes cover >= 75%             warning                     warning
largest B of a sweep reaches 80% KV cache   warning                     warning
==========================================  ==========================  ================

An unstable run is kept and flagged (``stable=False`` with ``unstable_reasons``), never
dropped.

Cascade: when a run is unstable by itself, every run of the same (model, task, GPU model,
GPU count) with a larger ``max_num_seqs`` is unstable too: a larger cap cannot have been
reached either. Cascade reasons start with :data:`CASCADE_PREFIX` (the same convention the
leaderboard importer uses) so they can be recomputed when the sweep grows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from joulelens.core.events import RequestTrace
from joulelens.measure.series import SampledSeries
from joulelens.records.schema import RunKind, RunRecord, RunStatus

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
COVERAGE_PREFIX = "sweep coverage:"
# The harness's sanity ceiling: more than 100 J per token is a measurement error there.
MAX_ENERGY_PER_TOKEN_J = 100.0
HARNESS_STEADY_STATE_S = 30.0
HARNESS_BATCH_FRACTION = 0.80
MIN_SCRAPE_COVERAGE = 0.75
MIN_LARGEST_BATCH_KV_USAGE = 0.80
HARNESS_ERROR = "[ML.ENERGY harness: error]"
HARNESS_WARNING = "[ML.ENERGY harness: warning]"
NOT_A_HARNESS_CHECK = "[not an ML.ENERGY harness check]"
# Lines of a server log that the harness takes for a crash (lower-cased substrings).
CRASH_MARKERS = (
    ("runtimeerror", "RuntimeError"),
    ("enginedeaderror", "EngineDeadError"),
    ("cuda error", "CUDA error"),
    ("cuda runtime error", "CUDA error"),
)


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
        what = f"no steady state: {why_none}" if why_none else "no steady state"
        return [f"{what} {HARNESS_ERROR}"]
    if not duration_s >= min_duration_s:
        return [
            f"short steady state: {duration_s:.1f} s < {min_duration_s:g} s "
            f"[ML.ENERGY harness: error below {HARNESS_STEADY_STATE_S:g} s]"
        ]
    return []


def steady_state_warnings(duration_s: float | None) -> list[str]:
    """Long enough for the paper, too short for the harness (which asks for 30 s)."""
    if duration_s is not None and MIN_STEADY_STATE_S <= duration_s < HARNESS_STEADY_STATE_S:
        return [
            f"steady state {duration_s:.1f} s is under the harness's {HARNESS_STEADY_STATE_S:g} s "
            f"(the paper's {MIN_STEADY_STATE_S:g} s rule passes) {HARNESS_ERROR}"
        ]
    return []


def energy_per_unit_reasons(energy_per_unit_j: float | None, unit: str) -> list[str]:
    if energy_per_unit_j is None or not energy_per_unit_j > 0:
        return [f"energy per {unit} is not positive: {energy_per_unit_j} J {HARNESS_ERROR}"]
    return []


def energy_per_token_ceiling(energy_per_token_j: float | None) -> list[str]:
    """The harness's sanity ceiling. A reason for imported harness runs; for runs measured
    here a warning, since a CPU or a small GPU may honestly spend more per token."""
    if energy_per_token_j is not None and energy_per_token_j > MAX_ENERGY_PER_TOKEN_J:
        return [
            f"energy per token {energy_per_token_j:.4g} J is over {MAX_ENERGY_PER_TOKEN_J:g} J, "
            f"which the harness takes for a measurement error {HARNESS_ERROR}"
        ]
    return []


def window_reasons(
    energy_j: float | None, throughput_per_s: float | None, unit: str = "tokens"
) -> list[str]:
    """The harness's other metric checks: steady-state energy and throughput positive."""
    reasons = []
    if energy_j is not None and not energy_j > 0:
        reasons.append(f"steady-state energy is not positive: {energy_j} J {HARNESS_ERROR}")
    if throughput_per_s is not None and not throughput_per_s > 0:
        reasons.append(f"throughput is not positive: {throughput_per_s} {unit}/s {HARNESS_ERROR}")
    return reasons


def running_gauge_reasons(present: bool) -> list[str]:
    if present:
        return []
    return [
        "no running-batch gauge (vllm:num_requests_running) in the steady state: batch "
        f"utilization cannot be checked {HARNESS_ERROR}"
    ]


def crash_reasons(log_text: str, name: str = "server.log") -> list[str]:
    """Crash markers in a server log, as the harness looks for them (first one quoted)."""
    hits: list[tuple[int, str]] = []
    for number, line in enumerate(log_text.splitlines(), start=1):
        lower = line.lower()
        if "platform is not available" in lower or (
            "no module named" in lower and "import error" in lower
        ):
            continue
        label = next((label for marker, label in CRASH_MARKERS if marker in lower), None)
        if label is None and "assertion" in lower and "failed" in lower:
            label = "assertion failed"
        if label is not None:
            hits.append((number, label))
    if not hits:
        return []
    number, label = hits[0]
    more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
    return [f"{name} shows a crash: {label} at line {number}{more} {HARNESS_ERROR}"]


def scrape_coverage_warnings(
    scrapes: int, duration_s: float | None, interval_s: float, what: str
) -> list[str]:
    """Fewer Prometheus scrapes than 75% of the expected ``duration / interval``."""
    if duration_s is None or not duration_s > 0 or not interval_s > 0:
        return []
    expected = int(duration_s / interval_s)
    if expected <= 0 or scrapes / expected >= MIN_SCRAPE_COVERAGE:
        return []
    return [
        f"Prometheus scrapes cover {scrapes / expected:.0%} of the {what} ({scrapes} of "
        f"{expected} expected, limit {MIN_SCRAPE_COVERAGE:.0%}) {HARNESS_WARNING}"
    ]


def batch_reasons(avg_batch_size: float | None, max_num_seqs: int) -> list[str]:
    if avg_batch_size is None or max_num_seqs <= 0:
        return []
    fraction = avg_batch_size / max_num_seqs
    if fraction < MIN_BATCH_FRACTION:
        return [
            f"low batch utilization: average running batch {avg_batch_size:.1f} is "
            f"{fraction:.0%} of max_num_seqs {max_num_seqs} (< {MIN_BATCH_FRACTION:.0%}, the "
            f"paper's rule) [ML.ENERGY harness: warning below {HARNESS_BATCH_FRACTION:.0%}]"
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
        reasons.append(f"only {len(traces)} of {num_requests} requests were sent {HARNESS_ERROR}")
    if failed:
        sample = "; ".join(sorted({str(t.error) for t in failed})[:3])
        reasons.append(f"{len(failed)} of {len(traces)} requests failed ({sample}) {HARNESS_ERROR}")
    if unfinished:
        reasons.append(
            f"{len(unfinished)} of {len(traces)} requests never finished {HARNESS_ERROR}"
        )
    done = [t for t in traces if t.ok]
    if check_truncation:
        reasons += truncation_reasons(sum(t.truncated for t in done), len(done))
    return reasons


def completion_reasons(
    completed: int, num_requests: int | None, failed: int, errors: Sequence[str]
) -> list[str]:
    """The harness's completion and request-success checks on counts (imported runs)."""
    reasons = []
    if num_requests is not None and completed < num_requests:
        reasons.append(f"only {completed} of {num_requests} requests completed {HARNESS_ERROR}")
    if failed:
        sample = "; ".join(sorted({e for e in errors if e})[:3]) or "no error message"
        total = num_requests if num_requests is not None else completed + failed
        reasons.append(f"{failed} of {total} requests failed ({sample}) {HARNESS_ERROR}")
    return reasons


def truncation_reasons(truncated: int, done: int) -> list[str]:
    if done and truncated / done >= MAX_TRUNCATED_FRACTION:
        return [
            f"{truncated} of {done} outputs ({truncated / done:.0%}) hit the output token cap "
            f"(limit < {MAX_TRUNCATED_FRACTION:.0%}) {HARNESS_WARNING}"
        ]
    return []


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
                f"(range {temps.min():.0f}-{temps.max():.0f} C) {HARNESS_ERROR}"
            )
    return reasons, warnings


def _power_reasons(
    device: DeviceSeries, start_s: float, end_s: float, warnings: list[str]
) -> list[str]:
    reasons = []
    samples = device.power_w.inside(start_s, end_s) if device.power_w is not None else None
    if samples is not None and samples.size and float(samples.min()) <= 0:
        reasons.append(
            f"{device.name}: power reading of {samples.min():.1f} W (broken sensor?) "
            f"{HARNESS_WARNING}"
        )
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
                f"({MAX_INSTANT_POWER_OVER_LIMIT:g}x its {limit:.0f} W limit) {HARNESS_WARNING}"
            )
    mean = device.mean_power_w
    if mean is not None and mean > MAX_MEAN_POWER_OVER_LIMIT * limit:
        reasons.append(
            f"{device.name}: mean power {mean:.0f} W exceeds its {limit:.0f} W limit "
            f"by more than {MAX_MEAN_POWER_OVER_LIMIT - 1:.0%} {HARNESS_WARNING}"
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
    largest = _largest_batches(records)
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
        warnings = [w for w in record.warnings if not w.startswith(COVERAGE_PREFIX)]
        if largest.get(cascade_key(record)) is record:
            warnings += _coverage_warnings(record)
        stable = not reasons
        if (
            reasons == record.unstable_reasons
            and stable == record.stable
            and warnings == record.warnings
        ):
            out.append(record)
        else:
            update = {"stable": stable, "unstable_reasons": reasons, "warnings": warnings}
            out.append(record.model_copy(update=update))
    return out


def _largest_batches(records: Sequence[RunRecord]) -> dict[tuple[str, str, str, int], RunRecord]:
    """Per group of two or more completed runs (a sweep), the run with the largest B."""
    groups: dict[tuple[str, str, str, int], list[RunRecord]] = {}
    for record in records:
        if _in_cascade(record) and record.status is RunStatus.COMPLETED:
            groups.setdefault(cascade_key(record), []).append(record)
    return {
        key: max(runs, key=lambda r: r.max_num_seqs or 0)
        for key, runs in groups.items()
        if len(runs) > 1
    }


def _coverage_warnings(record: RunRecord) -> list[str]:
    """The harness's sweep check: the largest B should fill the KV cache (else go larger)."""
    kv = record.avg_kv_cache_usage
    if kv is None or kv >= MIN_LARGEST_BATCH_KV_USAGE:
        return []
    return [
        f"{COVERAGE_PREFIX} the largest max_num_seqs of this sweep ({record.max_num_seqs}) "
        f"fills only {kv:.0%} of the KV cache (< {MIN_LARGEST_BATCH_KV_USAGE:.0%}): larger "
        f"batches may still be reachable {HARNESS_WARNING}"
    ]


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
