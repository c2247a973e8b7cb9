"""Parsing vLLM's exposition text and windowing cumulative histograms."""

from __future__ import annotations

import math

import pytest

from joulelens.workloads import HistogramCounts, MetricsScraper, ScrapeValues
from joulelens.workloads.prometheus import parse_scrape, window_histogram

INF = math.inf

# Shaped like vLLM's /metrics with two data-parallel engines and prometheus_client's
# counter naming (family "vllm:num_preemptions", samples "_total" and "_created").
VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 30.0
vllm:num_requests_running{engine="1",model_name="m"} 34.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 5.0
vllm:num_requests_waiting{engine="1",model_name="m"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.7
# HELP vllm:num_preemptions_total Cumulative number of preemptions from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} 3.0
vllm:num_preemptions_created{engine="0",model_name="m"} 1.7e+09
vllm:num_preemptions_total{engine="1",model_name="m"} 4.0
vllm:num_preemptions_created{engine="1",model_name="m"} 1.7e+09
# HELP vllm:inter_token_latency_seconds Histogram of inter-token latency in seconds.
# TYPE vllm:inter_token_latency_seconds histogram
vllm:inter_token_latency_seconds_sum{engine="0",model_name="m"} 2.0
vllm:inter_token_latency_seconds_bucket{engine="0",le="0.01",model_name="m"} 10.0
vllm:inter_token_latency_seconds_bucket{engine="0",le="0.025",model_name="m"} 60.0
vllm:inter_token_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 100.0
vllm:inter_token_latency_seconds_count{engine="0",model_name="m"} 100.0
vllm:inter_token_latency_seconds_created{engine="0",model_name="m"} 1.7e+09
vllm:inter_token_latency_seconds_sum{engine="1",model_name="m"} 1.0
vllm:inter_token_latency_seconds_bucket{engine="1",le="0.01",model_name="m"} 0.0
vllm:inter_token_latency_seconds_bucket{engine="1",le="0.025",model_name="m"} 40.0
vllm:inter_token_latency_seconds_bucket{engine="1",le="+Inf",model_name="m"} 50.0
vllm:inter_token_latency_seconds_count{engine="1",model_name="m"} 50.0
"""


def test_parse_sums_engines_and_normalises_counters() -> None:
    values = parse_scrape(VLLM_TEXT)
    assert values.gauges["vllm:num_requests_running"] == (64.0, 2)
    assert values.gauges["vllm:num_requests_waiting"] == (5.0, 2)
    # Family name without _total, and the _created timestamps are not added in.
    assert values.counters == {"vllm:num_preemptions": 7.0}
    itl = values.histograms["vllm:inter_token_latency_seconds"]
    assert itl.bounds == (0.01, 0.025, INF)
    assert itl.cumulative == (10.0, 100.0, 150.0)
    assert (itl.sum, itl.count) == (3.0, 150.0)


def test_parse_rejects_non_prometheus_text() -> None:
    with pytest.raises(ValueError):
        parse_scrape("<html>not metrics</html>\n")


def counts(*cumulative: float, total_sum: float = 0.0) -> HistogramCounts:
    return HistogramCounts((0.1, 0.2, 0.5, INF), tuple(cumulative), total_sum, cumulative[-1])


def test_window_subtracts_cumulative_buckets() -> None:
    start = counts(100, 150, 190, 200, total_sum=30.0)  # everything before the window
    end = counts(100, 250, 390, 400, total_sum=90.0)
    window = window_histogram("itl", start, end, 10.0, 20.0)
    assert window.cumulative == (0, 100, 200, 200)
    assert window.count == 200 and window.sum == 60.0
    assert window.mean == pytest.approx(0.3)
    # Half the window's observations are in (0.1, 0.2], half in (0.2, 0.5]: linear inside.
    assert window.p50 == pytest.approx(0.2)
    assert window.quantile(0.25) == pytest.approx(0.15)
    assert window.p90 == pytest.approx(0.2 + 0.3 * 0.8)
    assert window.quantile(0.0) == pytest.approx(0.1)  # bottom of the first non-empty bucket
    # Since server start the median would be in the first bucket: windowing matters.
    since_start = window_histogram("itl", counts(0, 0, 0, 0), end, 0.0, 20.0)
    assert since_start.p50 == pytest.approx(0.1 + 0.1 * 100 / 150)


def test_first_bucket_interpolates_from_zero_and_inf_bucket_reports_last_bound() -> None:
    window = window_histogram("x", counts(0, 0, 0, 0), counts(10, 10, 10, 20), 0.0, 1.0)
    assert window.quantile(0.25) == pytest.approx(0.05)
    assert window.p99 == 0.5  # in +Inf: the largest finite bound, a lower bound of the truth


def test_empty_window_and_resets() -> None:
    same = counts(5, 6, 7, 8)
    assert window_histogram("x", same, same, 0.0, 1.0).p50 is None
    assert window_histogram("x", same, same, 0.0, 1.0).mean is None
    with pytest.raises(ValueError, match="restarted"):
        window_histogram("x", counts(5, 6, 7, 8), counts(1, 1, 1, 1), 0.0, 1.0)
    other = HistogramCounts((1.0, INF), (1, 2), 0.0, 2)
    with pytest.raises(ValueError, match="bounds"):
        window_histogram("x", other, counts(5, 6, 7, 8), 0.0, 1.0)
    with pytest.raises(ValueError):
        window_histogram("x", same, same, 0.0, 1.0).quantile(1.5)


def fed_scraper(scrapes: list[tuple[float, ScrapeValues]]) -> MetricsScraper:
    scraper = MetricsScraper("http://127.0.0.1:9")
    for t_s, values in scrapes:
        scraper.ingest(t_s, values)
    return scraper


def itl_scrape(*cumulative: float, running: float = 0.0) -> ScrapeValues:
    return ScrapeValues(
        gauges={"vllm:num_requests_running": (running, 1)},
        histograms={"vllm:inter_token_latency_seconds": counts(*cumulative)},
    )


def test_histogram_window_uses_the_scrapes_nearest_the_window_ends() -> None:
    scraper = fed_scraper(
        [
            (0.0, itl_scrape(0, 0, 0, 0)),
            (1.0, itl_scrape(50, 50, 50, 50)),  # warm-up: fast tokens
            (2.0, itl_scrape(50, 150, 150, 150)),
            (3.0, itl_scrape(50, 250, 250, 250)),
            (4.0, itl_scrape(50, 250, 250, 400)),  # cool-down: stragglers
        ]
    )
    window = scraper.histogram_window("itl", 1.2, 2.9)  # nearest scrapes: 1.0 and 3.0
    assert window is not None
    assert (window.start_s, window.end_s) == (1.0, 3.0)
    assert window.name == "vllm:inter_token_latency_seconds"
    assert window.count == 200
    assert 0.1 < window.p50 <= 0.2  # type: ignore[operator]
    assert scraper.histogram_window("itl", 1.9, 2.1) is None  # one scrape at both ends
    assert "shorter than the scrape interval" in scraper.missing_reason("itl", 1.9, 2.1)
    assert scraper.histogram_window("ttft", 0.0, 4.0) is None
    assert "does not expose" in scraper.missing_reason("ttft")


def test_gauge_mean_is_time_weighted() -> None:
    scraper = fed_scraper(
        [
            (0.0, itl_scrape(0, 0, 0, 0, running=10)),
            (1.0, itl_scrape(0, 0, 0, 0, running=20)),
            (3.0, itl_scrape(0, 0, 0, 0, running=40)),  # a late scrape: 20 held for 2 s
            (4.0, itl_scrape(0, 0, 0, 0, running=0)),
        ]
    )
    assert scraper.gauge_mean("running", 1.0, 4.0) == pytest.approx((20 * 2 + 40 * 1) / 3)
    # From t0 = 0.5 the value scraped at 0.0 (10) holds until the scrape at 1.0.
    assert scraper.gauge_mean("running", 0.5, 3.5) == pytest.approx((5 + 40 + 20) / 3)
    assert scraper.gauge_mean("running", 1.2, 1.8) is None  # no scrape inside
    assert "no scrape" in scraper.missing_reason("running", 1.2, 1.8)
    assert scraper.gauge_mean("waiting", 0.0, 4.0) is None


def kv_scrape(names: dict[str, tuple[float, int]]) -> ScrapeValues:
    return ScrapeValues(gauges=names)


@pytest.mark.parametrize(
    ("gauges", "expected_name"),
    [
        ({"vllm:kv_cache_usage_perc": (1.2, 2)}, "vllm:kv_cache_usage_perc"),
        ({"vllm:gpu_cache_usage_perc": (1.2, 2)}, "vllm:gpu_cache_usage_perc"),
        (
            {"vllm:gpu_cache_usage_perc": (0.0, 2), "vllm:kv_cache_usage_perc": (1.2, 2)},
            "vllm:kv_cache_usage_perc",
        ),
    ],
)
def test_kv_cache_name_fallback_and_engine_average(
    gauges: dict[str, tuple[float, int]], expected_name: str
) -> None:
    scraper = fed_scraper([(0.0, kv_scrape(gauges)), (1.0, kv_scrape(gauges))])
    series = scraper.kv_cache_series()
    assert series is not None
    assert series.name == expected_name
    assert list(series.values) == [pytest.approx(0.6)] * 2  # averaged over 2 engines


def test_running_is_summed_over_engines_and_counters_accept_either_name() -> None:
    values = parse_scrape(VLLM_TEXT)
    scraper = fed_scraper([(0.0, values), (1.0, values)])
    running = scraper.running_batch_series()
    assert running is not None and list(running.values) == [64.0, 64.0]
    assert scraper.gauge_mean("vllm:num_requests_running", 0.0, 1.0) == 64.0
    for name in ("preemptions", "vllm:num_preemptions", "vllm:num_preemptions_total"):
        assert scraper.counter_delta(name, 0.0, 1.0) == 0.0


def test_ingest_refuses_time_travel() -> None:
    scraper = fed_scraper([(5.0, ScrapeValues())])
    with pytest.raises(ValueError):
        scraper.ingest(4.0, ScrapeValues())


def test_series_absent_at_the_window_start_count_from_zero() -> None:
    # prometheus_client shows a labelled histogram or counter only once it is used.
    before = ScrapeValues(gauges={"vllm:num_requests_running": (0.0, 1)})
    after = ScrapeValues(
        counters={"vllm:num_preemptions": 3.0},
        histograms={"vllm:time_to_first_token_seconds": counts(2, 4, 4, 4)},
    )
    scraper = fed_scraper([(0.0, before), (1.0, after)])
    window = scraper.histogram_window("ttft", 0.0, 1.0)
    assert window is not None and window.count == 4
    assert scraper.counter_delta("preemptions", 0.0, 1.0) == 3.0
