"""Cancellation: in-flight requests end as "cancelled" and finished ones survive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from workload_helpers import chat, config

from joulelens.workloads import CANCELLED, LoadProgress, LoadRun
from sse_server import SSEServer

TESTS = Path(__file__).resolve().parents[1]


def test_cancelling_the_run_marks_in_flight_requests(sse_server: SSEServer) -> None:
    fast = [chat(None, chunks=2) for _ in range(3)]
    stuck = [chat(None, chunks=5, stall_at=1, stall_s=60) for _ in range(4)]
    progress = LoadProgress()
    load = LoadRun(fast + stuck, config(sse_server), progress=progress)

    async def main() -> None:
        task = asyncio.create_task(load.run())
        while progress.done < 3 or progress.output_tokens() < 6 + 4:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    traces = load.traces
    assert len(traces) == 7
    assert all(t.ok for t in traces[:3])
    for trace in traces[3:]:
        assert trace.error == CANCELLED
        assert trace.finished_s is None
        assert trace.output_tokens == 1  # the chunk before the stall is kept
    assert progress.done == 7 and progress.failed == 4


def test_cancelling_before_sending_leaves_unsent_requests_out(sse_server: SSEServer) -> None:
    from joulelens.workloads import ArrivalConfig

    requests = [chat(None, chunks=1) for _ in range(50)]
    load = LoadRun(requests, config(sse_server, arrival=ArrivalConfig(rate_per_s=20.0)))

    async def main() -> None:
        task = asyncio.create_task(load.run())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert 2 <= len(load.traces) < 50
    assert all(t.ok or t.error == CANCELLED for t in load.traces)


SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from joulelens.workloads import LoadConfig, LoadInterrupted, LoadRequest, run_load_sync

    def req(**test):
        return LoadRequest.chat("hi", extra_body={"sse_test": test})

    requests = [req(chunks=2) for _ in range(2)]
    requests += [req(chunks=3, stall_at=1, stall_s=60) for _ in range(3)]
    print("ready", flush=True)
    try:
        run_load_sync(requests, LoadConfig(sys.argv[2]))
        print(json.dumps({"outcome": "returned"}))
    except LoadInterrupted as exc:
        print(json.dumps({
            "outcome": "interrupted",
            "message": str(exc),
            "errors": [t.error for t in exc.traces],
            "tokens": [t.output_tokens for t in exc.traces],
        }))
    """
)


def test_ctrl_c_raises_load_interrupted_with_partial_traces(sse_server: SSEServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(TESTS), sse_server.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    deadline = 200
    while sse_server.stats.in_flight < 3 and deadline:
        deadline -= 1
        signal_wait()
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"] == "interrupted"
    assert result["message"] == "load interrupted: 2 of 5 requests finished"
    assert result["errors"] == [None, None, CANCELLED, CANCELLED, CANCELLED]
    assert result["tokens"] == [2, 2, 1, 1, 1]


def signal_wait() -> None:
    import time

    time.sleep(0.05)
