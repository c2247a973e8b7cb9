"""``--record-every``: windows become observed runs that ``why`` and ``report`` read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from watch_helpers import SimulatedVllm

from joulelens.cli.app import app
from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.records import EnergyBoundary, EnergyMethod
from joulelens.store import Store
from joulelens.watch import EndpointSpec, StoreRecorder, WatchConfig, Watcher

LABEL = "127.0.0.1:9"  # nothing listens: the model name falls back to the endpoint


def _watch(store: Store, ticks: int, restart_at: int | None = None) -> StoreRecorder:
    clock = FakeClock(1000.0)
    server = SimulatedVllm(clock, tokens_per_s=100.0)
    config = WatchConfig(
        (EndpointSpec.parse(f"http://{LABEL}", max_num_seqs=32),),
        windows_s=(10.0,),
        sample_period_s=1.0,
        record_every_s=60.0,
        idle_watts={"gpu:0": 50.0},
    )
    gpu = FakeGpu("GPU-0000", PowerTrace.constant(250.0))
    recorder = StoreRecorder(store, gpu_models={"gpu:0": gpu.name})
    with fake_gpu_meters([gpu], clock) as meters:
        watcher = Watcher(
            config,
            meters,
            transports={LABEL: server},
            clock=clock,
            wall_clock=lambda: 1.7e9 + clock(),
            on_record=recorder,
        )
        for k in range(ticks):
            if k == restart_at:
                server.restart()
            watcher.tick()
            clock.advance(1.0)
        watcher.close()
    recorder.close()
    return recorder


def test_each_window_is_an_observed_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    recorder = _watch(store, 125)
    assert recorder.written == 2 and recorder.failed == 0
    runs = sorted(store.all(), key=lambda r: r.started_at or 0)
    assert len(runs) == 2
    run = runs[0]
    assert run.run_id.startswith("obs-") and run.arrival == "observed"
    assert run.stable is None  # no steady-state rule: not judged
    assert run.config["observed"]["endpoint"] == LABEL
    assert "no steady-state rule" in run.warnings[0]
    assert run.model_id == LABEL and run.gpu_model == "H100" and run.num_gpus == 1
    assert run.max_num_seqs == 32
    assert run.energy_boundary is EnergyBoundary.GPU
    assert run.energy_method is EnergyMethod.COUNTER
    assert run.steady_state_duration_s == pytest.approx(60.0)
    assert run.avg_power_watts == pytest.approx(250.0)
    assert run.output_throughput_tokens_per_sec == pytest.approx(100.0)
    assert run.energy_per_token_joules == pytest.approx(2.5)
    assert run.idle_power_watts == pytest.approx(50.0)
    assert run.static_energy_fraction == pytest.approx(0.2)
    assert run.avg_batch_size == pytest.approx(16.0)
    assert run.median_itl_ms is None
    assert "histogram" in run.missing["median_itl_ms"]
    assert run.artifacts == ["timeline.parquet"]

    for command in (["why", run.run_id], ["runs"], ["report", "-o", str(tmp_path / "r.html")]):
        result = CliRunner().invoke(app, [*command, "--store", str(store.root)])
        assert result.exit_code == 0, result.output


def test_a_window_never_spans_a_server_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    _watch(store, 185, restart_at=90)
    runs = sorted(store.all(), key=lambda r: r.started_at or 0)
    # [0, 60] as usual; the window due at 120 s starts at the restart (90 s), not at 60 s.
    offsets = [
        (round((r.started_at - runs[0].started_at).total_seconds()), r.steady_state_duration_s)
        for r in runs
        if r.started_at is not None and runs[0].started_at is not None
    ]
    assert offsets == [(0, 60.0), (90, 30.0), (120, 60.0)]
    assert all(r.energy_per_token_joules == pytest.approx(2.5) for r in runs)
