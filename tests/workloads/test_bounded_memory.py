"""Absurd batch caps or request counts cost no memory before anything is sent.

Failure 8 of issue 12: ``--max-num-seqs 100000000`` against an unreachable endpoint grew
about 1 GB every 4 s (4e8 requests were built, with their schedule and trace slots).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from joulelens.errors import EngineError, InputError
from joulelens.records import RunStatus
from joulelens.runner import RunConfig, run_one
from joulelens.runner.requests import llm_requests
from joulelens.store import Store
from joulelens.workloads import ArrivalConfig, LoadConfig
from joulelens.workloads.arrival import arrival_offsets
from joulelens.workloads.loadgen import LoadRun

MB = 1024 * 1024


def _peak_bytes(work: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = work()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def _config(**over: Any) -> RunConfig:
    fields: dict[str, Any] = {
        "engine": "endpoint",
        "endpoint": "http://127.0.0.1:9",
        "model": "m",
        "task": "lm-arena-chat",
        "num_gpus": 0,
        "gpus": False,
        "idle_baseline_s": 0.0,
    }
    fields.update(over)
    return RunConfig.model_validate(fields)


def test_a_hundred_million_requests_are_made_only_when_read() -> None:
    config = _config(max_num_seqs=1_000_000, num_requests=100_000_000)

    def plan() -> Any:
        requests = llm_requests(config)
        offsets = arrival_offsets(ArrivalConfig(rate_per_s=5.0), len(requests))
        LoadRun(requests, LoadConfig("http://127.0.0.1:9"))
        return requests, [next(offsets) for _ in range(3)]

    peak, (requests, first_offsets) = _peak_bytes(plan)
    assert peak < 20 * MB
    assert len(requests) == 100_000_000 and first_offsets[0] == 0.0
    last = requests[-1]
    assert last.request_id == "lm-arena-chat-99999999" and last.messages
    assert requests[0].messages == requests[len(requests.templates)].messages  # prompts cycle


def test_absurd_batch_cap_is_refused_by_name() -> None:
    with pytest.raises(Exception, match="max_num_seqs"):
        _config(max_num_seqs=100_000_000)


def test_unreachable_endpoint_fails_before_anything_is_built(tmp_store: Store) -> None:
    config = _config(max_num_seqs=1_000_000)  # N = 4,000,000 requests by default
    started = time.monotonic()

    def attempt() -> None:
        with pytest.raises(EngineError):
            run_one(config, tmp_store)

    peak, _ = _peak_bytes(attempt)
    assert time.monotonic() - started < 30
    assert peak < 50 * MB
    failed = tmp_store.get(config.run_id())
    assert failed.status is RunStatus.FAILED and "cannot reach" in (failed.failure_reason or "")


def test_more_connections_than_open_files_fail_before_sending(sse_server: Any) -> None:
    import resource

    from joulelens.workloads import run_load_sync

    requests = llm_requests(_config(endpoint=sse_server.url, max_num_seqs=1_000_000))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard > len(requests):
        pytest.skip(f"the open-files hard limit ({hard}) allows {len(requests)} connections")
    with pytest.raises(InputError, match="open files"):
        run_load_sync(requests, LoadConfig(sse_server.url))
    assert sse_server.stats.requests == 0
