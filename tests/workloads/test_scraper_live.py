"""The background scraper against the live test server (a child process scrapes it)."""

from __future__ import annotations

import time

from workload_helpers import chat, config

from joulelens.core.clock import now_s
from joulelens.workloads import MetricsScraper, run_load_sync


def test_scraper_follows_a_run(make_sse_server) -> None:
    server = make_sse_server(engines=2, max_running=6, kv_capacity=3)
    requests = [chat(None, chunks=30, itl_s=0.02, preempt=True) for _ in range(24)]
    with MetricsScraper(server.url, interval_s=0.1) as scraper:
        assert scraper.available and scraper.unavailable_reason is None
        t0_s = now_s()
        traces = run_load_sync(requests, config(server))
        t1_s = now_s()
    # Windows here end at the scraper's last scrape (taken at stop), after every request;
    # the scrape nearest t1_s may precede the last completions by up to one interval.
    t_end_s = scraper.scrape_times_s[-1]
    assert all(t.ok for t in traces)
    running = scraper.running_batch_series()
    assert running is not None and running.name == "vllm:num_requests_running"
    assert len(running) >= 10
    assert max(running.values) == 6  # summed over both engines, capped by max_running
    mean_running = scraper.gauge_mean("running", t0_s, t1_s)
    assert mean_running is not None and 3 < mean_running <= 6
    waiting = scraper.gauge_mean("waiting", t0_s, t1_s)
    assert waiting is not None and waiting > 0
    kv = scraper.kv_cache_series()
    assert kv is not None and max(kv.values) == 1.0  # 3 per engine fill kv_capacity=3
    assert scraper.counter_delta("preemptions", t0_s, t_end_s) == 24
    itl = scraper.histogram_window("itl", t0_s, t_end_s)
    assert itl is not None and itl.count == 24
    assert 0.01 <= itl.p50 <= 0.025  # type: ignore[operator]
    e2e = scraper.histogram_window("e2e", t0_s, t_end_s)
    assert e2e is not None and e2e.count == 24
    assert scraper.errors == []


def test_old_metric_names(make_sse_server) -> None:
    server = make_sse_server(metric_names="old")
    with MetricsScraper(server.url, interval_s=0.1) as scraper:
        run_load_sync([chat(None, chunks=5, itl_s=0.01) for _ in range(3)], config(server))
        time.sleep(0.15)
    kv = scraper.kv_cache_series()
    assert kv is not None and kv.name == "vllm:gpu_cache_usage_perc"
    t = scraper.scrape_times_s
    itl = scraper.histogram_window("itl", t[0], t[-1])
    assert itl is not None and itl.name == "vllm:time_per_output_token_seconds"
    assert itl.count == 3


def test_server_without_metrics_is_unavailable_not_an_error(make_sse_server) -> None:
    server = make_sse_server(metrics=False)
    scraper = MetricsScraper(server.url).start()
    assert not scraper.available
    assert scraper.unavailable_reason == f"{server.url}/metrics answered HTTP 404"
    assert scraper.gauge_mean("running", 0.0, 1e9) is None
    assert scraper.running_batch_series() is None
    assert scraper.missing_reason("running").startswith("server metrics unavailable")
    scraper.stop()


def test_unreachable_server_is_unavailable(sse_server) -> None:
    url = sse_server.url
    sse_server.stop()
    with MetricsScraper(url) as scraper:
        assert not scraper.available
        assert "unreachable" in (scraper.unavailable_reason or "")
