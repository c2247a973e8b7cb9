"""Arrival schedules (statistics, seeding) and how the load generator follows them."""

from __future__ import annotations

import itertools
import statistics

import pytest
from workload_helpers import chat, config

from joulelens.errors import InputError
from joulelens.workloads import ArrivalConfig, LoadProgress, arrival_offsets_s, run_load_sync
from sse_server import SSEServer


def gaps(offsets: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(offsets)]


def test_saturation_sends_everything_at_zero() -> None:
    assert arrival_offsets_s(ArrivalConfig(), 5) == [0.0] * 5
    assert arrival_offsets_s(ArrivalConfig(), 0) == []


def test_poisson_mean_rate_and_cv() -> None:
    offsets = arrival_offsets_s(ArrivalConfig(rate_per_s=40.0, seed=1), 20_001)
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    intervals = gaps(offsets)
    # Mean of 20,000 exponential gaps: standard error 0.7%, so 3% is > 4 sigma.
    assert statistics.fmean(intervals) == pytest.approx(1 / 40.0, rel=0.03)
    cv = statistics.pstdev(intervals) / statistics.fmean(intervals)
    assert cv == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("cv", [0.5, 2.0, 3.0])
def test_gamma_burstiness_sets_the_cv(cv: float) -> None:
    intervals = gaps(arrival_offsets_s(ArrivalConfig(rate_per_s=10.0, cv=cv, seed=7), 40_001))
    mean = statistics.fmean(intervals)
    assert mean == pytest.approx(0.1, rel=0.05 * cv)
    assert statistics.pstdev(intervals) / mean == pytest.approx(cv, rel=0.1)


def test_schedules_are_reproducible_per_seed() -> None:
    a = arrival_offsets_s(ArrivalConfig(rate_per_s=5.0, cv=2.0, seed=3), 100)
    b = arrival_offsets_s(ArrivalConfig(rate_per_s=5.0, cv=2.0, seed=3), 100)
    c = arrival_offsets_s(ArrivalConfig(rate_per_s=5.0, cv=2.0, seed=4), 100)
    assert a == b
    assert a != c


@pytest.mark.parametrize("fields", [{"rate_per_s": 0.0}, {"rate_per_s": -1.0}, {"cv": 0.0}])
def test_invalid_arrival_settings_are_input_errors(fields: dict[str, float]) -> None:
    with pytest.raises(InputError):
        ArrivalConfig(**fields)


def test_rate_mode_sends_on_schedule(sse_server: SSEServer) -> None:
    arrival = ArrivalConfig(rate_per_s=50.0, seed=11)
    requests = [chat(None, chunks=2) for _ in range(40)]
    traces = run_load_sync(requests, config(sse_server, arrival=arrival))
    assert all(t.ok for t in traces)
    sent = [t.sent_s - traces[0].sent_s for t in traces]
    planned = arrival_offsets_s(arrival, 40)
    errors = sorted(abs(s - p) for s, p in zip(sent, planned, strict=True))
    # Sleeps wake a loop iteration late; bounds are loose because CI machines are shared.
    assert errors[len(errors) // 2] < 0.01
    assert errors[-1] < 0.25
    assert sent == sorted(sent)
    received = sse_server.stats.received_s
    assert received[-1] - received[0] == pytest.approx(planned[-1], abs=0.25)


def test_saturation_sends_all_requests_at_once(sse_server: SSEServer) -> None:
    traces = run_load_sync(
        [chat(None, chunks=3, itl_s=0.01) for _ in range(200)], config(sse_server)
    )
    assert all(t.ok for t in traces)
    sent = [t.sent_s for t in traces]
    assert max(sent) - min(sent) < 1.5  # about 50 ms here; loose for shared CI machines
    assert sse_server.stats.max_in_flight > 100


@pytest.mark.parametrize("cap", [1, 4, 16])
def test_concurrency_cap_is_respected(sse_server: SSEServer, cap: int) -> None:
    requests = [chat(None, chunks=4, itl_s=0.005) for _ in range(40)]
    traces = run_load_sync(requests, config(sse_server, max_concurrency=cap))
    assert all(t.ok for t in traces)
    assert sse_server.stats.max_in_flight == cap
    # Measured on the client side too: the most traces overlapping in time.
    events = sorted([(t.sent_s, 1) for t in traces] + [(t.finished_s or 0.0, -1) for t in traces])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak <= cap


def test_progress_and_done_callback(sse_server: SSEServer) -> None:
    progress = LoadProgress()
    seen: list[str] = []
    requests = [chat(None, chunks=5) for _ in range(9)] + [chat(status=500)]
    traces = run_load_sync(
        requests,
        config(sse_server, max_concurrency=3),
        progress=progress,
        on_request_done=lambda trace: seen.append(trace.request_id),
    )
    assert len(traces) == 10
    assert sorted(seen, key=int) == [str(i) for i in range(10)]
    assert (progress.total, progress.sent, progress.done, progress.failed) == (10, 10, 10, 1)
    assert progress.output_tokens() == 45
    assert progress.in_flight == 0
