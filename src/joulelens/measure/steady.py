"""The steady-state window of a saturated LLM run, and a check that it really is steady.

The paper's window: with all N requests sent at t=0 and a server batch cap B
(``max_num_seqs``), the server is ramping up until B requests are running; it starts when
the B-th request (in order of arrival) receives its first token. It ends when N-B-1
requests have finished: from then on the queue runs dry and the batch shrinks. Every
request that left the server counts as finished, failed or not (it freed its slot).

The reference harness (ML.ENERGY benchmark) does the same: its ``RequestTracker`` starts
the energy window at the B-th first token and ends it when N-B-1 requests have finished
(a comment in its benchmark loop still speaks of the (N-B)-th first token; the code counts
finished requests).

On top of the count rule, :func:`stationarity` compares the first and last thirds of the
window (mean power and token rate): a window that drifts more than
:data:`MAX_STATIONARY_DRIFT` is not a steady state whatever the counts say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from joulelens.core.events import BatchTrace, RequestTrace
from joulelens.measure.tokens import last_activity_s

# Power and token rate may differ by this fraction of their window mean between the first
# and the last third. Continuous batching's admission jitter and NVML's 100 ms counter move
# third-window means by a few percent; a ramp, throttling or a draining queue by tens.
MAX_STATIONARY_DRIFT = 0.15


@dataclass(frozen=True, slots=True)
class SteadyWindow:
    """[start_s, end_s] on the shared clock, or ``None`` bounds with the reason why."""

    start_s: float | None
    end_s: float | None
    reason: str | None = None  # why there is no window
    rule: str = "paper: B-th first token .. (N-B-1)-th finish"

    @property
    def found(self) -> bool:
        return self.start_s is not None and self.end_s is not None

    @property
    def duration_s(self) -> float | None:
        if self.start_s is None or self.end_s is None:
            return None
        return self.end_s - self.start_s


def steady_window(
    traces: Sequence[RequestTrace], max_num_seqs: int, num_requests: int | None = None
) -> SteadyWindow:
    """The paper's window for ``traces`` (N = ``num_requests``, default ``len(traces)``)."""
    b = max_num_seqs
    n = len(traces) if num_requests is None else num_requests

    def none(reason: str) -> SteadyWindow:
        return SteadyWindow(None, None, reason)

    if b < 1:
        return none(f"max_num_seqs must be at least 1, got {b}")
    if n <= b + 1:
        return none(
            f"{n} requests for max_num_seqs {b}: a steady state needs N > B + 1 "
            "(the queue must outlast the ramp-up); send more requests"
        )
    first_tokens = sorted(t.first_token_s for t in traces if t.first_token_s is not None)
    if len(first_tokens) < b:
        return none(
            f"only {len(first_tokens)} of {n} requests received a first token; "
            f"the window starts at the {b}-th"
        )
    finishes = sorted(end for t in traces if (end := last_activity_s(t)) is not None)
    need = n - b - 1
    if len(finishes) < need:
        return none(
            f"only {len(finishes)} of {n} requests finished; the window ends at the {need}-th"
        )
    start_s, end_s = first_tokens[b - 1], finishes[need - 1]
    if end_s <= start_s:
        return none(
            f"the {need}-th request finished ({end_s:.3f} s) before the {b}-th first token "
            f"({start_s:.3f} s): too few requests for max_num_seqs {b}; send more"
        )
    return SteadyWindow(start_s, end_s)


def diffusion_batches(batches: Sequence[BatchTrace]) -> tuple[list[BatchTrace], list[str]]:
    """The batches that count (not warm-up, no error, positive duration) and why others don't."""
    kept: list[BatchTrace] = []
    notes: list[str] = []
    for batch in batches:
        if batch.warmup:
            continue
        if batch.error is not None:
            notes.append(f"batch {batch.index} failed: {batch.error}")
        elif batch.end_s <= batch.start_s:
            notes.append(f"batch {batch.index} has no duration ({batch.start_s}..{batch.end_s})")
        else:
            kept.append(batch)
    return kept, notes


@dataclass(frozen=True, slots=True)
class Drift:
    """Relative change from the first to the last third of a window (signed)."""

    quantity: str
    first: float
    last: float
    mean: float

    @property
    def relative(self) -> float:
        return (self.last - self.first) / self.mean if self.mean else 0.0

    def describe(self) -> str:
        return (
            f"{self.quantity} drifted {self.relative:+.0%} across the steady state "
            f"(first third {self.first:.4g}, last third {self.last:.4g})"
        )


def stationarity(
    start_s: float,
    end_s: float,
    rates: dict[str, Callable[[float, float], float | None]],
) -> list[Drift]:
    """Drift of each rate (e.g. mean power, tokens/s over a sub-window) across the window.

    Rates that cannot be computed over a third are left out.
    """
    third = (end_s - start_s) / 3.0
    drifts = []
    for quantity, rate in rates.items():
        first = rate(start_s, start_s + third)
        last = rate(end_s - third, end_s)
        mean = rate(start_s, end_s)
        if first is None or last is None or mean is None:
            continue
        drifts.append(Drift(quantity, first, last, mean))
    return drifts


def drift_warnings(drifts: Sequence[Drift], limit: float = MAX_STATIONARY_DRIFT) -> list[str]:
    return [
        f"not stationary: {d.describe()}, over the {limit:.0%} limit "
        "[not an ML.ENERGY harness check]"
        for d in drifts
        if abs(d.relative) > limit
    ]
