"""Server-side metrics as the compile step sees them (scraped Prometheus gauges).

``running`` is the number of requests the server was running, summed over engines (the
real batch size); ``kv_cache_usage`` the fraction 0..1 of KV-cache blocks in use, averaged
over engines. Gauges are read as step functions: a scrape's value holds until the next.
:func:`joulelens.measure.adapters.server_metrics_from_scraper` builds this from the
workloads' :class:`MetricsScraper`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from joulelens.measure.series import SampledSeries

RUNNING = "running"
KV_CACHE_USAGE = "kv_cache_usage"


@dataclass(frozen=True)
class ServerMetrics:
    running: SampledSeries | None = None
    kv_cache_usage: SampledSeries | None = None
    missing: Mapping[str, str] = field(default_factory=dict)  # RUNNING / KV_CACHE_USAGE -> why

    def missing_reason(self, name: str) -> str:
        return self.missing.get(name) or f"server metrics carry no {name} series"
