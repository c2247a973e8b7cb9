"""A simulated week on a fake clock: bounded memory, exact totals through restarts, outages
and a GPU counter reset.

Only the boundaries are simulated: GPUs at NVML (:mod:`joulelens.meters.fake`) and the
server's page at the transport (a real prometheus_client registry with vLLM's names); the
watcher, its parsing, counters, history and exposition are the real ones.
"""

from __future__ import annotations

import gc
import logging

import pytest
from watch_helpers import SimulatedVllm, parse_exposition, samples_named

from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.watch import EndpointSpec, WatchConfig, Watcher, families
from joulelens.watch.exporter import build_registry

PERIOD_S = 5.0
DAY_TICKS = round(86400 / PERIOD_S)
OUTAGE = (2 * 720, 3 * 720)  # ticks of the day the server is gone (02:00 to 03:00)
GPU_WATTS = 250.0
TOKENS_PER_S = 100.0


def _expose(watcher: Watcher) -> dict:
    from prometheus_client import generate_latest

    return parse_exposition(generate_latest(build_registry(watcher)).decode())


@pytest.mark.timeout(300)
def test_a_week_of_samples(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="joulelens.watch")
    clock = FakeClock(1000.0)
    gpu = FakeGpu("GPU-0000", PowerTrace.constant(GPU_WATTS))
    server = SimulatedVllm(clock, tokens_per_s=TOKENS_PER_S)
    config = WatchConfig(
        (EndpointSpec.parse("http://sim:8000"),),
        windows_s=(30.0, 60.0, 300.0),
        sample_period_s=PERIOD_S,
    )
    with fake_gpu_meters([gpu], clock) as meters:
        watcher = Watcher(
            config,
            meters,
            transports={"sim:8000": server},
            clock=clock,
            wall_clock=lambda: 1.7e9 + clock(),
        )
        first_s = clock()
        objects_after_day_1 = 0
        for day in range(7):
            for k in range(DAY_TICKS):
                if k == OUTAGE[0]:
                    server.down = True
                elif k == OUTAGE[1]:
                    server.down = False
                    server.restart()  # a fresh process: counters from 0
                if day == 3 and k == 100:
                    gpu.energy_origin_mj -= 5_000_000  # a driver reload: counter steps back
                watcher.tick()
                if k % 720 == 0:
                    families(watcher.snapshot())  # a Prometheus scrape every hour
                if day == 0 and k == OUTAGE[0] + 10:
                    gone = _expose(watcher)
                    assert samples_named(gone, "joulelens_endpoint_up") == [0.0]
                    assert samples_named(gone, "joulelens_output_tokens_total") == []
                    assert samples_named(gone, "joulelens_energy_per_output_token_joules") == []
                clock.advance(PERIOD_S)
            assert len(watcher.history) <= 300 / PERIOD_S + 3
            if day == 0:
                gc.collect()
                objects_after_day_1 = len(gc.get_objects())
        gc.collect()
        objects_after_week = len(gc.get_objects())
        last_s = clock() - PERIOD_S
        seen = _expose(watcher)
        watcher.close()

    # Memory: a week holds what a day holds (the history is bounded by the longest window).
    assert objects_after_week - objects_after_day_1 < 0.01 * objects_after_day_1
    # Tokens: every token the server produced, across seven restarts and outages.
    (tokens,) = samples_named(seen, "joulelens_output_tokens_total")
    assert tokens == pytest.approx(server.generated, rel=1e-9)
    # Energy: all of it, less the one interval the counter reset hid.
    (joules,) = samples_named(seen, "joulelens_device_energy_joules_total", device="gpu:0")
    assert joules == pytest.approx(GPU_WATTS * (last_s - first_s - PERIOD_S), rel=1e-9)
    per_token = samples_named(
        seen, "joulelens_energy_per_output_token_joules", window="1m", boundary="gpu"
    )
    assert per_token == [pytest.approx(GPU_WATTS / TOKENS_PER_S, rel=1e-6)]
    text = caplog.text
    assert text.count("its series are absent") == 7
    assert "went backwards" in text
