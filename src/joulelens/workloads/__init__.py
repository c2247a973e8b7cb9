"""Serving workloads: a streaming load generator for OpenAI-compatible servers and a
background scraper of their Prometheus metrics.

    requests = [LoadRequest.chat("Hello", max_tokens=256) for _ in range(1000)]
    config = LoadConfig("http://127.0.0.1:8000", model="m",
                        extra_body={"temperature": 0.8, "top_p": 0.95})
    with MetricsScraper("http://127.0.0.1:8000") as scraper:
        traces = run_load_sync(requests, config)
    batch = scraper.gauge_mean("running", t0_s, t1_s)
    itl = scraper.histogram_window("itl", t0_s, t1_s)
"""

from joulelens.workloads.arrival import arrival_offsets_s
from joulelens.workloads.config import (
    ApiKind,
    ArrivalConfig,
    Endpoint,
    LoadConfig,
    LoadRequest,
    UsageMode,
)
from joulelens.workloads.loadgen import (
    CANCELLED,
    ClientCpu,
    LoadInterrupted,
    LoadProgress,
    LoadRun,
    run_load,
    run_load_sync,
)
from joulelens.workloads.prometheus import HistogramCounts, ScrapeValues, WindowedHistogram
from joulelens.workloads.scraper import METRIC_ALIASES, GaugeSeries, MetricsScraper

__all__ = [
    "CANCELLED",
    "METRIC_ALIASES",
    "ApiKind",
    "ArrivalConfig",
    "ClientCpu",
    "Endpoint",
    "GaugeSeries",
    "HistogramCounts",
    "LoadConfig",
    "LoadInterrupted",
    "LoadProgress",
    "LoadRequest",
    "LoadRun",
    "MetricsScraper",
    "ScrapeValues",
    "UsageMode",
    "WindowedHistogram",
    "arrival_offsets_s",
    "run_load",
    "run_load_sync",
]
