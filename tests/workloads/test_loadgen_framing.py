"""HTTP framing the raw client must survive: reads split anywhere, Content-Length and
read-until-close bodies, informational responses. A scripted server on port 0 writes exact
bytes with pauses so that each piece arrives in its own read (the ``scripted`` fixture)."""

from __future__ import annotations

import json

import pytest

from joulelens.workloads import LoadConfig, LoadRequest, run_load_sync


def sse(*events: dict | str) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return "".join(lines).encode()


def content(text: str, completion: int | None = None, finish: str | None = None) -> dict:
    event: dict = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    if completion is not None:
        event["usage"] = {"prompt_tokens": 3, "completion_tokens": completion}
    return event


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(body), body)


def one(url: str):
    traces = run_load_sync([LoadRequest.chat("hi")], LoadConfig(url, idle_timeout_s=5))
    return traces[0]


HEAD_CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def test_reads_split_inside_size_lines_and_crlf(scripted) -> None:
    first = chunked(sse(content("a", 1)))
    stream = (
        first
        + chunked(sse(content("b c", 3)))
        + chunked(sse(content("", 3, "stop"), "[DONE]"))
        + b"0\r\n\r\n"
    )
    # Cut the response at awkward places: inside the head, a size line, a CRLF, a JSON line.
    wire = HEAD_CHUNKED + stream
    head = len(HEAD_CHUNKED)
    cuts = [10, head + 1, head + 5, head + 40, head + len(first) - 1, head + len(first) + 1]
    cuts += [len(wire) - 3, len(wire) - 1]
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    trace = one(scripted(pieces))
    assert trace.ok, trace.error
    assert list(trace.chunk_tokens) == [1, 2]
    assert trace.output_tokens == 3 and trace.finish_reason == "stop"
    assert trace.chunk_times_s[1] > trace.chunk_times_s[0]  # split reads, distinct stamps


def test_events_in_one_read_are_one_chunk_of_several_tokens(scripted) -> None:
    # Several events in one read arrived at one moment: one 3-token chunk, not three chunks
    # 0 s apart (which made real vLLM's median ITL read 0.0 ms on a loaded client).
    body = sse(content("a"), content("b"), content("c", finish="stop"), "[DONE]")
    trace = one(scripted([HEAD_CHUNKED + chunked(body) + b"0\r\n\r\n"]))
    assert trace.ok
    assert list(trace.chunk_tokens) == [3] and len(trace.chunk_times_s) == 1
    assert trace.output_tokens == 3


def test_events_across_reads_spread_over_the_gap(scripted) -> None:
    first = chunked(sse(content("a", 1)))
    burst = chunked(sse(content("b", 2), content("c", 3), content("d", 4, "stop"), "[DONE]"))
    trace = one(scripted([HEAD_CHUNKED + first, burst + b"0\r\n\r\n"]))
    assert trace.ok
    assert list(trace.chunk_tokens) == [1, 3]
    from joulelens.measure.tokens import inter_token_gaps_s, tpot_s

    gaps = inter_token_gaps_s([trace])
    gap_s = trace.chunk_times_s[1] - trace.chunk_times_s[0]
    assert gaps.tolist() == pytest.approx([gap_s / 3] * 3) and gap_s > 0
    assert tpot_s(trace) == pytest.approx(gap_s / 3)


def test_content_length_body(scripted) -> None:
    body = sse(content("x"), content("y"), "[DONE]")
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n"
    trace = one(scripted([head % len(body), body[:30], body[30:]]))
    assert trace.ok
    assert trace.output_tokens == 2


def test_body_until_close_and_crlf_lines(scripted) -> None:
    body = sse(content("x"), content("y")).replace(b"\n", b"\r\n")
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    trace = one(scripted([head, body], close=True))
    assert trace.ok, trace.error
    assert trace.output_tokens == 2
    assert trace.finished_s is not None


def test_informational_response_is_skipped(scripted) -> None:
    body = sse(content("x"), "[DONE]")
    wire = b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD_CHUNKED + chunked(body) + b"0\r\n\r\n"
    trace = one(scripted([wire]))
    assert trace.ok
    assert trace.output_tokens == 1


def test_comments_and_event_fields_are_ignored(scripted) -> None:
    body = b": keep-alive\n\nevent: message\nid: 1\n" + sse(content("x"), "[DONE]")
    trace = one(scripted([HEAD_CHUNKED + chunked(body) + b"0\r\n\r\n"]))
    assert trace.ok
    assert trace.output_tokens == 1


def test_truncated_chunked_body_is_a_dropped_connection(scripted) -> None:
    trace = one(scripted([HEAD_CHUNKED + chunked(sse(content("x")))], close=True))
    assert trace.error is not None and trace.error.startswith("connection dropped")
    assert trace.output_tokens == 1
