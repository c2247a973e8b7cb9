"""What the exporter serves: Prometheus names and units, and absent rather than 0."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from watch_helpers import SimulatedVllm, parse_exposition, samples_named

from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.watch import EndpointSpec, WatchConfig, Watcher, build_registry

LABEL = "127.0.0.1:9"
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-joulelens.json"
SERVED = {
    "joulelens_device_energy_joules": "counter",
    "joulelens_device_power_watts": "gauge",
    "joulelens_energy_joules": "counter",
    "joulelens_output_tokens": "counter",
    "joulelens_power_watts": "gauge",
    "joulelens_energy_per_output_token_joules": "gauge",
    "joulelens_output_tokens_per_joule": "gauge",
    "joulelens_output_tokens_per_second": "gauge",
    "joulelens_running_requests": "gauge",
    "joulelens_waiting_requests": "gauge",
    "joulelens_kv_cache_usage_ratio": "gauge",
    "joulelens_static_energy_ratio": "gauge",
    "joulelens_idle_power_watts": "gauge",
    "joulelens_batch_limit": "gauge",
    "joulelens_endpoint_up": "gauge",
    "joulelens_sample_timestamp_seconds": "gauge",
}


def _run(server: SimulatedVllm, clock: FakeClock, watcher: Watcher, ticks: int) -> str:
    for _ in range(ticks):
        watcher.tick()
        clock.advance(1.0)
    return generate_latest(build_registry(watcher)).decode()


def test_names_units_and_absence() -> None:
    clock = FakeClock()
    server = SimulatedVllm(clock, tokens_per_s=200.0)
    config = WatchConfig(
        (EndpointSpec.parse(f"http://{LABEL}", max_num_seqs=16),),
        windows_s=(10.0, 60.0),
        sample_period_s=1.0,
        idle_watts={"gpu:0": 60.0},
    )
    gpus = [FakeGpu("GPU-0000", PowerTrace.constant(300.0))]
    with (
        fake_gpu_meters(gpus, clock) as meters,
        Watcher(config, meters, transports={LABEL: server}, clock=clock) as watcher,
    ):
        text = _run(server, clock, watcher, 15)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name, kind in SERVED.items():
            assert families[name].type == kind, name
        for family in families.values():
            assert family.name.startswith(("joulelens_", "process_")), family.name
            if family.type == "counter":
                assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        seen = parse_exposition(text)
        ten = {"endpoint": LABEL, "window": "10s"}
        assert samples_named(seen, "joulelens_energy_per_output_token_joules", **ten) == [1.5]
        assert samples_named(seen, "joulelens_output_tokens_per_joule", **ten) == [200 / 300]
        assert samples_named(seen, "joulelens_static_energy_ratio", **ten) == [0.2]
        assert samples_named(seen, "joulelens_batch_limit", limit="none", **ten) == [1.0]
        assert samples_named(seen, "joulelens_power_watts", window="1m") == []  # not 15 s old

        server.tokens_per_s = 0.0  # traffic stops: energy per token is undefined, not 0
        idle = parse_exposition(_run(server, clock, watcher, 12))
        assert samples_named(idle, "joulelens_energy_per_output_token_joules", **ten) == []
        assert samples_named(idle, "joulelens_output_tokens_per_joule", **ten) == [0.0]
        assert samples_named(idle, "joulelens_power_watts", **ten) == [300.0]


def test_the_dashboard_uses_only_served_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    served = {n + ("_total" if kind == "counter" else "") for n, kind in SERVED.items()}
    used = {name for expr in exprs for name in re.findall(r"joulelens_[a-z_]+", expr)}
    assert used and used <= served, used - served
