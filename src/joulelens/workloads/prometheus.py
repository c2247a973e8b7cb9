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
    """Reduce one exposition text; raises ``ValueError`` on text that is not Prometheus."""
    values = ScrapeValues()
    for family in text_string_to_metric_families(text):
        kind = family.type
        if kind == "counter":
            name = counter_name(family.name)
            total = 0.0
            seen = False
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                total += sample.value
                seen = True
            if seen:
                values.counters[name] = total
        elif kind == "histogram":
            counts = _histogram(family.samples)
            if counts is not None:
                values.histograms[family.name] = counts
        elif kind in ("gauge", "unknown", "untyped"):
            total = 0.0
            label_sets = 0
            for sample in family.samples:
                total += sample.value
                label_sets += 1
            if label_sets:
                values.gauges[family.name] = (total, label_sets)
    return values


def _histogram(samples: list) -> HistogramCounts | None:
    by_bound: dict[float, float] = {}
    total_sum = 0.0
    total_count = 0.0
    for sample in samples:
        name = sample.name
        if name.endswith("_bucket"):
            bound = float(sample.labels["le"])
            by_bound[bound] = by_bound.get(bound, 0.0) + sample.value
        elif name.endswith("_sum"):
            total_sum += sample.value
        elif name.endswith("_count"):
            total_count += sample.value
    if not by_bound:
        return None
    bounds = tuple(sorted(by_bound))
    return HistogramCounts(bounds, tuple(by_bound[b] for b in bounds), total_sum, total_count)


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
