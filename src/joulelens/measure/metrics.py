"""Metrics of a run from its traces, its steady-state window and the window's energy.

Every metric is either a number or null with a reason (:class:`Metrics`). Definitions
(the paper's, see ``docs/measurement.md``):

* energy per output token = E_ss / output tokens streamed inside the window
* average power = E_ss / T_ss; steady throughput = tokens in the window / T_ss
* energy per response = energy per token x mean output length (completed requests)
* tokens per joule = 1 / energy per token (not stored: it is a reciprocal)
* TTFT, ITL, TPOT, E2E over completed requests: mean, median, p90, p95, p99 in ms
  (numpy's linear percentiles, as the reference harness)
* average running batch: the server's gauge over the window when scraped, else the
  client-side count of requests between first token and finish, time-averaged
* static (idle) energy share = idle power x T_ss / E_ss
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from joulelens.core.events import RequestTrace
from joulelens.measure.series import FloatArray
from joulelens.measure.tokens import (
    TimingResolution,
    e2e_s,
    inter_token_gaps_s,
    last_activity_s,
    tpot_s,
    ttft_s,
)
from joulelens.records.schema import Histogram

PERCENTILES: tuple[tuple[str, float], ...] = (("p90", 90.0), ("p95", 95.0), ("p99", 99.0))
# Above this share of inter-token gaps spread over multi-token reads, ITL percentiles are
# mostly interpolated and the record says so.
MAX_SPREAD_GAP_FRACTION = 0.25
# The clock must resolve a tenth of the median ITL for the ITL to mean anything.
CLOCK_TICKS_PER_ITL = 10
# ML.ENERGY publishes output lengths as a 50-bin histogram from the shortest to the longest.
OUTPUT_LENGTH_BINS = 50


@dataclass
class Metrics:
    """Record field values being collected, each a number or null with a reason."""

    values: dict[str, object] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: float | None, reason: str | None = None) -> None:
        """Store ``value``; a ``None`` (or NaN) must come with the reason it is unknown."""
        if value is not None and not np.isfinite(value):
            reason = reason or f"{name} is not a finite number ({value})"
            value = None
        if value is None:
            self.values[name] = None
            self.missing[name] = reason or "not measured"
        else:
            self.values[name] = float(value)
            self.missing.pop(name, None)

    def get(self, name: str) -> float | None:
        value = self.values.get(name)
        return value if isinstance(value, float) else None

    def null_all(self, names: Iterable[str], reason: str) -> None:
        for name in names:
            self.put(name, None, reason)


def summarize_ms(
    metrics: Metrics, prefix: str, values_s: Sequence[float] | FloatArray, reason: str
) -> None:
    """``mean_/median_/p90_/p95_/p99_<prefix>_ms`` from values in seconds."""
    names = [f"mean_{prefix}_ms", f"median_{prefix}_ms"]
    names += [f"{p}_{prefix}_ms" for p, _ in PERCENTILES]
    values = np.asarray(values_s, dtype=np.float64)
    if values.size == 0:
        metrics.null_all(names, reason)
        return
    ms = values * 1000.0
    metrics.put(names[0], float(ms.mean()))
    metrics.put(names[1], float(np.median(ms)))
    for (_, q), name in zip(PERCENTILES, names[2:], strict=True):
        metrics.put(name, float(np.percentile(ms, q)))


def latency_metrics(metrics: Metrics, traces: Sequence[RequestTrace]) -> None:
    """TTFT, ITL, TPOT and end-to-end latency over the completed requests."""
    done = [t for t in traces if t.ok]
    none_done = "no request completed"
    ttfts = [v for t in done if (v := ttft_s(t)) is not None]
    summarize_ms(metrics, "ttft", ttfts, none_done if not done else "no request streamed a token")
    gaps = inter_token_gaps_s(done)
    summarize_ms(
        metrics,
        "itl",
        gaps,
        none_done if not done else "no completed request streamed more than one chunk",
    )
    tpots = [v for t in done if (v := tpot_s(t)) is not None]
    summarize_ms(
        metrics,
        "tpot",
        tpots,
        none_done if not done else "no completed request produced more than one token",
    )
    e2es = [v for t in done if (v := e2e_s(t)) is not None]
    summarize_ms(metrics, "e2e_latency", e2es, none_done)


def timing_warnings(
    resolution: TimingResolution, median_itl_ms: float | None, clock_resolution_s: float
) -> list[str]:
    """Warnings when the client's timing is too coarse for the ITL and TPOT it reports."""
    out = []
    if resolution.spread_fraction > MAX_SPREAD_GAP_FRACTION:
        out.append(
            f"timing too coarse for ITL: {resolution.spread_fraction:.0%} of inter-token gaps "
            "were not seen one by one (several tokens arrived in one network read: the client "
            "read less often than the server sent, e.g. it was starved of CPU); they are "
            "spread evenly over their read's gap, so ITL percentiles are interpolated"
        )
    if resolution.untimed_requests:
        out.append(
            f"{resolution.untimed_requests} of {resolution.requests} completed requests arrived "
            "whole in one network read: they have no ITL or TPOT (left out, not counted as 0)"
        )
    if median_itl_ms is not None and clock_resolution_s * CLOCK_TICKS_PER_ITL > median_itl_ms / 1e3:
        out.append(
            f"the client clock resolves {clock_resolution_s * 1e3:.3g} ms, too coarse for a "
            f"median ITL of {median_itl_ms:.3g} ms"
        )
    return out


def client_running_batch(traces: Sequence[RequestTrace], start_s: float, end_s: float) -> float:
    """Mean number of requests between first token and finish over [start_s, end_s].

    A client-side stand-in for the server's running count: it misses the prefill before a
    request's first token, so it reads slightly low when prefills are long.
    """
    if end_s <= start_s:
        raise ValueError("the window must have a positive duration")
    busy_s = 0.0
    for trace in traces:
        begin, end = trace.first_token_s, last_activity_s(trace)
        if begin is None or end is None:
            continue
        busy_s += max(0.0, min(end, end_s) - max(begin, start_s))
    return busy_s / (end_s - start_s)


def output_length_histogram(lengths: Sequence[int]) -> Histogram | None:
    """50 equal bins from the shortest to the longest output (one bin if all are equal)."""
    if not lengths:
        return None
    values = np.asarray(lengths, dtype=np.float64)
    bins = OUTPUT_LENGTH_BINS if values.min() < values.max() else 1
    counts, edges = np.histogram(values, bins=bins)
    return Histogram(bins=[float(e) for e in edges], counts=[int(c) for c in counts])


def static_fraction(
    idle_power_w: float | None, duration_s: float | None, energy_j: float | None
) -> float | None:
    """Share of a window's energy the devices would have drawn idling (may exceed 1 when
    the idle baseline was taken hotter than the run; validation warns then)."""
    if idle_power_w is None or duration_s is None or not energy_j:
        return None
    return idle_power_w * duration_s / energy_j
