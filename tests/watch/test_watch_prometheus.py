"""End to end: ``joulelens watch`` beside a server, scraped by a real Prometheus server.

Energy per token read back through Prometheus's HTTP API must match what the exporter saw:
for a scrape whose 10 s gauge was computed from ticks (a, b), the counters Prometheus
stored at those two ticks give the same energy and token differences. A server that
vanishes must leave its series stale (absent), not 0, while the exporter keeps serving.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner
from watch_helpers import ExporterProcess, LoadLoop, Served, wait_for

from joulelens.cli.app import app
from joulelens.store import Store

WINDOW_S = 10.0
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-joulelens.json"
TOLERANCE = 0.02  # the acceptance bound; the match is exact up to float formatting


def _dashboard_queries_answer(prom, boundary: str) -> None:  # type: ignore[no-untyped-def]
    """Every query of the Grafana dashboard is valid PromQL and finds data."""
    dashboard = json.loads(DASHBOARD.read_text())
    values = {
        "$window": "10s",
        "$endpoint": ".*",
        "$boundary": boundary,
        "$__rate_interval": "20s",
        "$__range": "1m",
    }
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in values.items():
                expr = expr.replace(name, value)
            if "idle_power" in expr or "static_energy" in expr:
                continue  # no idle baseline in this run: absent by design
            assert prom.query(expr), f"{panel['title']}: {expr} found nothing"


def _by_time(series: dict) -> dict[float, float]:
    return {float(t): float(v) for t, v in series["values"]}


@pytest.mark.slow
@pytest.mark.timeout(450)  # real vLLM starts in 30-300 s on a loaded 2-core machine
def test_energy_per_token_through_prometheus(served: Served, prometheus, tmp_path: Path) -> None:
    store = tmp_path / "store"
    exporter = ExporterProcess(
        [
            "--endpoint",
            served.url,
            "--port",
            "0",
            "--windows",
            "10s,1m,5m",
            "--record-every",
            "10s",
            "--store",
            str(store),
        ]
    )
    load = None
    try:
        prom = prometheus([f"127.0.0.1:{exporter.port}"])
        load = LoadLoop(served)
        label = served.url.removeprefix("http://")
        per_token = f'joulelens_energy_per_output_token_joules{{endpoint="{label}",window="10s"}}'
        # 20 scrapes, read back over 60 s: with real vLLM on these 2 cores Prometheus's
        # scrapes jitter, and 12 over 40 s once left 4 with a scrape at their window's start.
        wait_for(
            lambda: prom.query(f"count_over_time({per_token}[1m]) >= 20"),
            150,
            "20 scrapes of the 10 s energy-per-token gauge",
            period_s=1.0,
        )
        load.stop()
        now = time.time()
        gauges = prom.query(f"{per_token}[60s]", now)
        assert gauges, "no energy-per-token series in Prometheus"
        series = gauges[0]
        boundary, method = series["metric"]["boundary"], series["metric"]["method"]
        energy = f'joulelens_energy_joules_total{{endpoint="{label}",boundary="{boundary}"}}'
        tokens = f'joulelens_output_tokens_total{{endpoint="{label}"}}'
        (e_series,) = prom.query(f"{energy}[60s]", now)
        (n_series,) = prom.query(f"{tokens}[60s]", now)
        (t_series,) = prom.query("joulelens_sample_timestamp_seconds[60s]", now)
        assert e_series["metric"]["method"] == method
        gauge, joules, count, tick = (_by_time(s) for s in (series, e_series, n_series, t_series))
        # Prometheus scrapes every series of a target at one timestamp: join on it.
        scrapes = sorted(set(joules) & set(count) & set(tick))
        matched = 0
        for b in sorted(set(gauge) & set(scrapes)):
            starts = [a for a in scrapes if abs(tick[a] - (tick[b] - WINDOW_S)) < 0.5]
            if not starts or count[b] == count[starts[0]]:
                continue
            a = starts[0]
            seen = (joules[b] - joules[a]) / (count[b] - count[a])
            assert gauge[b] == pytest.approx(seen, rel=TOLERANCE), (a, b)
            matched += 1
        assert matched >= 5, f"only {matched} scrapes matched their window's start"
        _dashboard_queries_answer(prom, boundary)

        served.stop()  # the server vanishes: its series go stale, the exporter carries on
        wait_for(
            lambda: prom.query(f'joulelens_endpoint_up{{endpoint="{label}"}} == 0'),
            20,
            "the endpoint to be reported down",
        )
        time.sleep(2.0)
        assert prom.query(per_token) == []
        assert prom.query(tokens) == []
        assert prom.query("joulelens_device_energy_joules_total")  # meters still served
        assert prom.query('up{job="joulelens"} == 1')
    finally:
        if load is not None:
            load.stop()
        code = exporter.stop()
    assert code == 0, exporter.output
    assert "its series are absent until it answers again" in exporter.output
    assert "Traceback" not in exporter.output

    runs = [r for r in Store(store).all() if r.arrival == "observed"]
    assert runs, exporter.output
    run = max(runs, key=lambda r: r.output_throughput_tokens_per_sec or 0)
    assert run.stable is None and run.run_id.startswith("obs-")
    assert run.energy_per_token_joules is not None and run.energy_per_token_joules > 0
    assert run.avg_batch_size is not None and run.avg_batch_size > 0
    assert run.median_itl_ms is not None and run.median_itl_ms > 0
    result = CliRunner().invoke(app, ["why", run.run_id, "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert run.run_id in result.output
