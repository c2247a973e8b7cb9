"""Streaming protocol edge cases, each against the real test SSE server."""

from __future__ import annotations

import time

import pytest
from workload_helpers import chat, config

from joulelens.core.clock import now_s
from joulelens.workloads import LoadRequest, LoadRun, UsageMode, run_load_sync
from sse_server import SSEServer


def run_one(server: SSEServer, request: LoadRequest, **fields: object):
    traces = run_load_sync([request], config(server, **fields))
    assert len(traces) == 1
    return traces[0]


def test_single_token_chunks_with_continuous_usage(sse_server: SSEServer) -> None:
    before = now_s()
    trace = run_one(sse_server, chat(max_tokens=12))
    after = now_s()
    assert trace.ok, trace.error
    # The server writes events in bursts: events of one read are one chunk (their tokens add).
    assert sum(trace.chunk_tokens) == 12
    assert trace.output_tokens == 12
    assert trace.input_tokens == 7
    assert trace.finish_reason == "length"
    assert trace.max_output_tokens == 12
    assert before <= trace.sent_s <= trace.first_token_s <= trace.finished_s <= after
    times = list(trace.chunk_times_s)
    assert times == sorted(times)
    assert times[0] == trace.first_token_s and times[-1] <= trace.finished_s


def test_multi_token_chunks_are_one_entry_each(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(max_tokens=None, chunks=5, tokens_per_chunk=3))
    assert trace.ok
    assert sum(trace.chunk_tokens) == 15 and all(k % 3 == 0 for k in trace.chunk_tokens)
    assert trace.output_tokens == 15
    assert trace.finish_reason == "stop"


def test_final_usage_only_counts_deltas_and_takes_total_from_usage(sse_server: SSEServer) -> None:
    load = LoadRun(
        [chat(None, chunks=4, tokens_per_chunk=3)], config(sse_server, usage=UsageMode.FINAL)
    )
    trace = run_loop(load)[0]
    assert trace.ok
    assert sum(trace.chunk_tokens) == 4  # one per non-empty delta
    assert trace.output_tokens == 12  # the final usage chunk is authoritative
    assert trace.input_tokens == 7
    assert load.continuous_usage is False


def test_no_usage_at_all_counts_one_token_per_non_empty_delta(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=6, usage="none", empty_every=2))
    assert trace.ok
    assert sum(trace.chunk_tokens) == 6
    assert trace.output_tokens == 6
    assert trace.input_tokens is None


def test_empty_deltas_are_not_chunks(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=6, empty_every=1))
    assert trace.ok
    assert sum(trace.chunk_tokens) == 6  # empty deltas count no token
    assert trace.output_tokens == 6


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_count_as_output(sse_server: SSEServer, field: str) -> None:
    for usage in ("auto", "none"):
        trace = run_one(
            sse_server, chat(None, chunks=10, reasoning=4, reasoning_field=field, usage=usage)
        )
        assert trace.ok
        assert trace.output_tokens == 10
        assert sum(trace.chunk_tokens) == 10


def test_completions_api(sse_server: SSEServer) -> None:
    request = LoadRequest.completion("def f(", max_tokens=9)
    trace = run_one(sse_server, request)
    assert trace.ok
    assert trace.output_tokens == 9
    assert trace.finish_reason == "length"
    body = sse_server.stats.bodies[-1]
    assert body["prompt"] == "def f(" and "messages" not in body


def test_http_error_status_records_status_and_body(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(status=500))
    assert not trace.ok
    assert trace.error is not None
    assert trace.error.startswith("HTTP 500")
    assert "injected failure" in trace.error
    assert trace.output_tokens == 0


def test_malformed_chunk_is_an_error(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=6, malformed_at=3))
    assert not trace.ok
    assert trace.error is not None and trace.error.startswith("malformed chunk")
    assert trace.output_tokens == 3  # what arrived before the bad chunk stays recorded


def test_error_event_mid_stream(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=6, error_at=2))
    assert trace.error == "server error in stream: engine died"


def test_connection_dropped_mid_stream(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=6, drop_at=4))
    assert trace.error is not None and trace.error.startswith("connection dropped")
    assert trace.output_tokens == 4
    assert trace.finished_s is None


def test_stall_hits_the_idle_timeout(sse_server: SSEServer) -> None:
    started = time.monotonic()
    trace = run_one(sse_server, chat(None, chunks=6, stall_at=2, stall_s=30), idle_timeout_s=0.3)
    assert time.monotonic() - started < 5
    assert trace.error == "timeout: no data for 0.3 s"
    assert trace.output_tokens == 2


def test_request_timeout_bounds_a_slow_stream(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=50, itl_s=0.05), request_timeout_s=0.4)
    assert trace.error == "timeout: request exceeded 0.4 s"
    assert 0 < trace.output_tokens < 50


def test_connection_refused_is_recorded(sse_server: SSEServer) -> None:
    port = sse_server.port
    sse_server.stop()
    traces = run_load_sync([chat()], config_for_port(port))
    assert traces[0].error is not None and traces[0].error.startswith("connection failed")


def config_for_port(port: int):
    from joulelens.workloads import LoadConfig

    return LoadConfig(f"http://127.0.0.1:{port}/v1", connect_timeout_s=2)


def test_missing_done_still_completes(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=3, no_done=True))
    assert trace.ok
    assert trace.output_tokens == 3


def test_unstreamed_json_answer(sse_server: SSEServer) -> None:
    trace = run_one(sse_server, chat(None, chunks=5, json=True))
    assert trace.ok
    assert list(trace.chunk_tokens) == [5]
    assert trace.input_tokens == 7


def test_body_merges_shared_and_per_request_fields(sse_server: SSEServer) -> None:
    request = LoadRequest.chat(
        "hi", max_tokens=4, extra_body={"temperature": 0.1, "chat_template_kwargs": {"x": 1}}
    )
    extra = {"temperature": 0.8, "top_p": 0.95, "stream": False, "reasoning_effort": "low"}
    trace = run_one(sse_server, request, extra_body=extra)
    assert trace.ok
    body = sse_server.stats.bodies[-1]
    assert body["model"] == "test-model"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 4
    assert body["temperature"] == 0.1  # the request's own field wins
    assert body["top_p"] == 0.95 and body["reasoning_effort"] == "low"
    assert body["chat_template_kwargs"] == {"x": 1}
    assert body["stream"] is True  # never overridable
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}


def test_server_rejecting_continuous_usage_falls_back_once(make_sse_server) -> None:
    server = make_sse_server(reject_continuous_usage=True)
    requests = [chat(None, chunks=4, tokens_per_chunk=2) for _ in range(6)]
    load = LoadRun(requests, config(server, max_concurrency=1))
    traces = run_loop(load)
    assert all(t.ok for t in traces)
    assert [t.output_tokens for t in traces] == [8] * 6
    assert load.usage_mode is UsageMode.FINAL
    options = [body.get("stream_options") for body in server.stats.bodies]
    # The first request is retried once without continuous stats; the rest go straight there.
    assert options[0] == {"include_usage": True, "continuous_usage_stats": True}
    assert options[1:] == [{"include_usage": True}] * 6


def test_server_rejecting_stream_options_falls_back_to_none(make_sse_server) -> None:
    server = make_sse_server(reject_stream_options=True)
    load = LoadRun([chat(None, chunks=3) for _ in range(3)], config(server, max_concurrency=1))
    traces = run_loop(load)
    assert all(t.ok and t.output_tokens == 3 for t in traces)
    assert load.usage_mode is UsageMode.NONE
    assert "stream_options" not in server.stats.bodies[-1]


def test_genuine_bad_request_does_not_downgrade_usage(sse_server: SSEServer) -> None:
    load = LoadRun([chat(status=400), chat(None, chunks=3)], config(sse_server, max_concurrency=1))
    traces = run_loop(load)
    assert traces[0].error is not None and traces[0].error.startswith("HTTP 400")
    assert traces[1].ok
    assert load.usage_mode is UsageMode.CONTINUOUS
    assert sum(traces[1].chunk_tokens) == 3


def test_keep_alive_connections_are_reused(sse_server: SSEServer) -> None:
    traces = run_load_sync(
        [chat(None, chunks=2) for _ in range(5)], config(sse_server, max_concurrency=1)
    )
    assert all(t.ok for t in traces)
    assert sse_server.stats.connections == 1


def test_stale_keep_alive_connection_is_retried(make_sse_server) -> None:
    server = make_sse_server(drop_after_requests=1)
    traces = run_load_sync(
        [chat(None, chunks=2) for _ in range(4)], config(server, max_concurrency=1)
    )
    assert [t.ok for t in traces] == [True] * 4
    # Each reuse was cut off unanswered, so every request ended on a fresh connection.
    assert server.stats.connections == 4
    assert server.stats.requests == 4


def run_loop(load: LoadRun):
    import asyncio

    return asyncio.run(load.run())


def test_the_client_knows_how_long_it_waited_for_a_cpu(sse_server: SSEServer) -> None:
    load = LoadRun([chat(None, chunks=20, itl_s=0.01)] * 4, config(sse_server))
    started = time.monotonic()
    run_loop(load)
    elapsed = time.monotonic() - started
    assert load.cpu is not None  # Linux: /proc/thread-self/schedstat
    assert 0 < load.cpu.wall_s <= elapsed
    assert 0 < load.cpu.run_s <= load.cpu.wall_s
    assert 0 <= load.cpu.wait_s <= load.cpu.wall_s
    assert 0 <= load.cpu.wait_fraction <= 1
