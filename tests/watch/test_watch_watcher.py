"""The watcher against live test servers: restarts, vanished servers, GPUs per endpoint.

Ticks are taken by hand on the real clock (no background thread), so every assertion sees
exactly the samples it expects. GPUs are faked at the NVML boundary only.
"""

from __future__ import annotations

import logging
import time

import pytest
from prometheus_client import generate_latest
from watch_helpers import parse_exposition, samples_named

from joulelens.core.clock import now_s
from joulelens.errors import InputError
from joulelens.meters.fake import FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.watch import EndpointSpec, WatchConfig, Watcher, build_registry
from joulelens.workloads import LoadConfig, LoadRequest, run_load_sync
from sse_server import ServerOptions, SSEServer


def _load(server: SSEServer, requests: int, chunks: int) -> None:
    body = {"sse_test": {"chunks": chunks}}
    traces = run_load_sync(
        [LoadRequest.chat("hi", max_tokens=chunks, extra_body=body)] * requests,
        LoadConfig(server.url, model=None),
    )
    assert all(t.ok for t in traces)


def _exposition(watcher: Watcher) -> dict:
    return parse_exposition(generate_latest(build_registry(watcher)).decode())


def _gpus(*watts: float):  # type: ignore[no-untyped-def]
    gpus = [FakeGpu(f"GPU-{k:04d}", PowerTrace.constant(w)) for k, w in enumerate(watts)]
    return fake_gpu_meters(gpus, now_s)


def test_a_vanished_server_leaves_no_series_and_a_restart_counts_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="joulelens.watch")
    server = SSEServer(ServerOptions()).start()
    port = server.port
    label = f"127.0.0.1:{port}"
    config = WatchConfig((EndpointSpec.parse(server.url),), windows_s=(1.0,), sample_period_s=0.25)
    with _gpus(200.0) as meters, Watcher(config, meters) as watcher:
        try:
            watcher.tick()
            _load(server, 4, 10)
            watcher.tick()
            seen = _exposition(watcher)
            assert samples_named(seen, "joulelens_output_tokens_total", endpoint=label) == [40.0]
            assert samples_named(seen, "joulelens_endpoint_up", endpoint=label) == [1.0]
        finally:
            server.stop()

        watcher.tick()  # the server is gone: down, its series absent, the rest still served
        gone = _exposition(watcher)
        assert samples_named(gone, "joulelens_endpoint_up", endpoint=label) == [0.0]
        for name in ("joulelens_output_tokens_total", "joulelens_energy_joules_total"):
            assert samples_named(gone, name, endpoint=label) == []
        assert samples_named(gone, "joulelens_device_energy_joules_total", device="gpu:0")
        assert "its series are absent until it answers again" in caplog.text

        again = SSEServer(ServerOptions(), port=port).start()  # restarted: counters from 0
        try:
            watcher.tick()
            _load(again, 3, 10)
            watcher.tick()
        finally:
            again.stop()
        back = _exposition(watcher)
        assert samples_named(back, "joulelens_endpoint_up", endpoint=label) == [1.0]
        assert samples_named(back, "joulelens_output_tokens_total", endpoint=label) == [70.0]
        assert "answers again" in caplog.text
        assert "restarted" in caplog.text


def test_each_endpoint_owns_its_gpus_and_all_sums_them() -> None:
    a = SSEServer(ServerOptions()).start()
    b = SSEServer(ServerOptions()).start()
    label_a, label_b = a.url.removeprefix("http://"), b.url.removeprefix("http://")
    try:
        config = WatchConfig(
            (EndpointSpec.parse(a.url, gpus=(0,)), EndpointSpec.parse(b.url, gpus=(1,))),
            windows_s=(1.0,),
            sample_period_s=0.25,
        )
        with _gpus(300.0, 100.0) as meters, Watcher(config, meters) as watcher:
            watcher.tick()
            start = time.monotonic()
            _load(a, 8, 30)
            _load(b, 2, 20)
            time.sleep(max(0.0, 1.1 - (time.monotonic() - start)))
            watcher.tick()
            snap = watcher.snapshot()
    finally:
        a.stop()
        b.stop()
    figures = {w.endpoint: w for w in snap.windows}
    assert set(figures) == {label_a, label_b, "all"}
    assert figures[label_a].tokens == 240 and figures[label_b].tokens == 40
    assert figures["all"].tokens == 280
    for label, watts in ((label_a, 300.0), (label_b, 100.0), ("all", 400.0)):
        (total,) = figures[label].energy
        assert total.boundary.value == "gpu" and total.method.value == "counter"
        # The fake counter refreshes every 100 ms: at most one refresh off at each end.
        assert figures[label].power_w(total) == pytest.approx(watts, rel=0.25)
    (gpu_a,) = figures[label_a].energy
    assert figures[label_a].joules_per_token(gpu_a) == pytest.approx(gpu_a.joules / 240)


def test_gpus_must_exist_and_belong_to_one_endpoint() -> None:
    with _gpus(100.0) as meters:
        config = WatchConfig((EndpointSpec.parse("http://127.0.0.1:9", gpus=(1,)),))
        with pytest.raises(InputError, match="GPU 1 is not readable"):
            Watcher(config, meters)
    with pytest.raises(InputError, match="assigned to two endpoints"):
        WatchConfig(
            (
                EndpointSpec.parse("http://127.0.0.1:9", gpus=(0,)),
                EndpointSpec.parse("http://127.0.0.1:10", gpus=(0,)),
            )
        )


def test_a_server_without_metrics_is_down_with_its_reason() -> None:
    server = SSEServer(ServerOptions(metrics=False)).start()
    try:
        config = WatchConfig(
            (EndpointSpec.parse(server.url),), windows_s=(1.0,), sample_period_s=0.5
        )
        with _gpus(100.0) as meters, Watcher(config, meters) as watcher:
            watcher.tick()
            (status,) = watcher.snapshot().endpoints
    finally:
        server.stop()
    assert not status.up
    assert status.error is not None and "HTTP 404" in status.error


def test_a_session_measures_idle_power_and_serves_it() -> None:
    from watch_helpers import get_text

    from joulelens.watch.session import MeterChoice, WatchSession

    server = SSEServer(ServerOptions()).start()
    label = server.url.removeprefix("http://")
    config = WatchConfig((EndpointSpec.parse(server.url),), windows_s=(1.0,), sample_period_s=0.25)
    try:
        with _gpus(80.0) as meters:
            session = WatchSession(
                config, "127.0.0.1", 0, choice=MeterChoice(idle_baseline_s=0.5), meters=meters
            )
            with session:
                served = parse_exposition(get_text(session.url))
            assert session.server is not None
            port = session.server.port
    finally:
        server.stop()
    (idle,) = samples_named(served, "joulelens_idle_power_watts", endpoint=label, boundary="gpu")
    assert idle == pytest.approx(80.0, rel=0.25)
    with pytest.raises(OSError):  # closed with the session
        get_text(f"http://127.0.0.1:{port}/metrics", 1.0)
