"""One Prometheus scrape reduced to what the scraper keeps, and histogram window maths.

Parsing uses :func:`prometheus_client.parser.text_string_to_metric_families`. Every metric
is aggregated over its label sets (vLLM labels each series with ``engine`` and
``model_name``; data-parallel servers expose one set per engine): gauges keep the sum and
the number of label sets (so a fraction such as KV-cache usage can be averaged), counters
and histogram buckets are summed. ``prometheus_client`` names a counter family without its
``_total`` suffix and adds ``_created`` samples holding creation timestamps; both are
handled here, so ``vllm:num_preemptions`` and ``vllm:num_preemptions_total`` name the same
counter and ``_created`` is never read as a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True, slots=True)
class HistogramCounts:
    """Cumulative bucket counts at one scrape: ``cumulative[i]`` observations <= ``bounds[i]``.

    The last bound is ``inf``; counts are cumulative since the server started.
    """

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    sum: float
    count: float


@dataclass(slots=True)
class ScrapeValues:
    gauges: dict[str, tuple[float, int]] = field(default_factory=dict)  # name -> (sum, label sets)
    counters: dict[str, float] = field(default_factory=dict)  # name without _total -> sum
    histograms: dict[str, HistogramCounts] = field(default_factory=dict)


def counter_name(name: str) -> str:
    return name.removesuffix("_total")


def parse_scrape(text: str) -> ScrapeValues:
    """Reduce one exposition text; raises ``ValueError`` on text that is not Prometheus.

    Samples are classified one by one against the typed families, because the text parser
    closes a family at the first sample whose suffix it does not expect (an interleaved
    ``_created`` line) and hands the rest of that family back as untyped orphans.
    ``_created`` series (``prometheus_client`` writes them as separate gauge families) are
    creation timestamps and are skipped.
    """
    families = list(text_string_to_metric_families(text))
    counters = {f.name for f in families if f.type == "counter"}
    histograms = {f.name for f in families if f.type == "histogram"}
    values = ScrapeValues()
    gauges: dict[str, list[float]] = {}
    counter_totals: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    sums: dict[str, float] = {}
    totals: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            name = sample.name
            base, _, suffix = name.rpartition("_")
            if suffix == "created" and (base in counters or base in histograms):
                continue
            if base in histograms and suffix in ("bucket", "sum", "count"):
                if suffix == "bucket":
                    bound = float(sample.labels["le"])
                    per_bound = buckets.setdefault(base, {})
                    per_bound[bound] = per_bound.get(bound, 0.0) + sample.value
                elif suffix == "sum":
                    sums[base] = sums.get(base, 0.0) + sample.value
                else:
                    totals[base] = totals.get(base, 0.0) + sample.value
            elif suffix == "total" and base in counters:
                counter_totals[base] = counter_totals.get(base, 0.0) + sample.value
            elif family.type in ("gauge", "unknown", "untyped") and name == family.name:
                gauges.setdefault(name, []).append(sample.value)
    values.gauges = {name: (sum(v), len(v)) for name, v in gauges.items()}
    values.counters = counter_totals
    for name, per_bound in buckets.items():
        bounds = tuple(sorted(per_bound))
        cumulative = tuple(per_bound[b] for b in bounds)
        values.histograms[name] = HistogramCounts(
            bounds, cumulative, sums.get(name, 0.0), totals.get(name, cumulative[-1])
        )
    return values


@dataclass(frozen=True, slots=True)
class WindowedHistogram:
    """Observations a histogram gained between two scrapes (``start_s`` to ``end_s``).

    Differences of cumulative counts, so only what happened inside the window counts, not
    everything since the server started. Quantiles interpolate linearly inside a bucket
    (as PromQL's ``histogram_quantile``): exact only up to the bucket resolution.
    """

    name: str
    start_s: float
    end_s: float
    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    sum: float
    count: float

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1); ``None`` when the window saw no observations.

        A quantile in the ``+Inf`` bucket is reported as the largest finite bound, a lower
        bound of the truth, as Prometheus does.
        """
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        total = self.cumulative[-1] if self.cumulative else 0.0
        if total <= 0:
            return None
        rank = q * total
        below = 0.0
        for i, (bound, cumulative) in enumerate(zip(self.bounds, self.cumulative, strict=True)):
            if cumulative >= rank and cumulative > below:
                if math.isinf(bound):
                    finite = [b for b in self.bounds if not math.isinf(b)]
                    return finite[-1] if finite else None
                lower = self.bounds[i - 1] if i > 0 else min(0.0, bound)
                return lower + (bound - lower) * (rank - below) / (cumulative - below)
            below = cumulative
        return None

    @property
    def p50(self) -> float | None:
        return self.quantile(0.5)

    @property
    def p90(self) -> float | None:
        return self.quantile(0.9)

    @property
    def p99(self) -> float | None:
        return self.quantile(0.99)


def window_histogram(
    name: str, start: HistogramCounts, end: HistogramCounts, start_s: float, end_s: float
) -> WindowedHistogram:
    """``end - start`` per bucket; ``ValueError`` if buckets changed or counts went down
    (the server restarted in between)."""
    if start.bounds != end.bounds:
        raise ValueError(f"{name}: bucket bounds changed between scrapes")
    cumulative = tuple(b - a for a, b in zip(start.cumulative, end.cumulative, strict=True))
    if any(c < 0 for c in cumulative) or end.count < start.count:
        raise ValueError(f"{name}: counts decreased between scrapes (server restarted?)")
    return WindowedHistogram(
        name, start_s, end_s, end.bounds, cumulative, end.sum - start.sum, end.count - start.count
    )
