"""Per-token times and per-request latencies from request traces.

A chunk carrying k tokens that arrives at t_i after the previous chunk at t_(i-1) stands
for k tokens evenly spread over that gap: token j (1..k) at t_(i-1) + j (t_i - t_(i-1)) / k,
and k inter-token gaps of (t_i - t_(i-1)) / k. The first chunk of a request has no
previous chunk; all its tokens are placed at its arrival (the first token is the output of
prefill; further tokens in that chunk carry no timing of their own and add no gap).

When a request's authoritative ``output_tokens`` (final usage) differs from the tokens its
chunks carried (servers that stream several tokens per delta without per-chunk usage),
each of its streamed tokens is weighted by ``output_tokens / chunk tokens`` so token counts
add up to what the server reports; gaps still come from the chunk counts.

A chunk is what arrived at one moment: several one-token events that reached the client in
one network read are one chunk of several tokens (see ``RequestTrace.add_chunk``), so a
client that reads less often than tokens arrive (a loaded machine, a coarse clock) spreads
them over the gap instead of reporting zero gaps. :func:`timing_resolution` says how much
of a run's timing was spread that way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from joulelens.core.events import RequestTrace
from joulelens.measure.series import FloatArray

IntArray = NDArray[np.int32]


@dataclass(frozen=True, slots=True, eq=False)
class TokenTimes:
    """Every streamed output token: its time, its request (index into the traces) and
    whether it is a request's first token; ``request_scale`` is each request's token weight
    (1.0 unless usage disagreed with the chunks)."""

    times_s: FloatArray
    request_index: IntArray
    is_first: NDArray[np.bool_]
    request_scale: FloatArray
    mismatched_requests: int  # requests whose usage count differs from their chunks

    @classmethod
    def from_traces(cls, traces: Sequence[RequestTrace]) -> TokenTimes:
        chunk_t, chunk_k, chunk_req = [], [], []
        scale = np.ones(len(traces))
        mismatched = 0
        for i, trace in enumerate(traces):
            n = len(trace.chunk_times_s)
            if n == 0:
                continue
            times = np.frombuffer(trace.chunk_times_s, dtype=np.float64)
            tokens = np.frombuffer(trace.chunk_tokens, dtype=f"u{trace.chunk_tokens.itemsize}")
            chunk_t.append(times)
            chunk_k.append(tokens)
            chunk_req.append(np.full(n, i, dtype=np.int32))
            streamed = int(tokens.sum())
            if streamed and trace.output_tokens != streamed:
                mismatched += 1
                scale[i] = trace.output_tokens / streamed
        if not chunk_t:
            empty = np.empty(0)
            return cls(empty, np.empty(0, dtype=np.int32), np.empty(0, dtype=bool), scale, 0)
        t = np.concatenate(chunk_t)
        k = np.concatenate(chunk_k).astype(np.int64)
        req = np.concatenate(chunk_req)
        first_chunk = np.ones(t.size, dtype=bool)
        first_chunk[1:] = req[1:] != req[:-1]
        if bool(np.all(k == 1)):  # one token per chunk (vLLM with per-chunk usage): no spreading
            return cls(t, req, first_chunk, scale, mismatched)
        prev = np.empty_like(t)
        prev[1:] = t[:-1]
        prev[first_chunk] = t[first_chunk]  # a first chunk is a point, not a spread
        # Expand chunks into tokens: token j (1..k) of a chunk sits at prev + j * gap / k.
        chunk_of_token = np.repeat(np.arange(t.size), k)
        starts = np.cumsum(k) - k
        j = np.arange(chunk_of_token.size) - starts[chunk_of_token] + 1
        token_t = prev[chunk_of_token] + j * ((t - prev) / k)[chunk_of_token]
        del j
        is_first = np.zeros(token_t.size, dtype=bool)
        is_first[starts[first_chunk]] = True  # the first token of each request's first chunk
        return cls(token_t, req[chunk_of_token], is_first, scale, mismatched)

    @property
    def weights(self) -> FloatArray:
        """Per-token weight (see ``request_scale``)."""
        return self.request_scale[self.request_index]

    def __len__(self) -> int:
        return int(self.times_s.size)

    def mask_in(self, start_s: float, end_s: float) -> NDArray[np.bool_]:
        """Tokens streamed in (start_s, end_s]."""
        return (self.times_s > start_s) & (self.times_s <= end_s)

    def count_in(self, start_s: float, end_s: float) -> float:
        """Tokens streamed in (start_s, end_s], usage-weighted."""
        inside = self.mask_in(start_s, end_s)
        if not self.mismatched_requests:
            return float(np.count_nonzero(inside))
        return float(self.request_scale[self.request_index[inside]].sum())


def inter_token_gaps_s(traces: Sequence[RequestTrace]) -> FloatArray:
    """All inter-token latencies (s) of ``traces``: a k-token chunk gives k equal gaps."""
    gaps = []
    for trace in traces:
        if len(trace.chunk_times_s) < 2:
            continue
        times = np.frombuffer(trace.chunk_times_s, dtype=np.float64)
        tokens = np.asarray(trace.chunk_tokens, dtype=np.int64)[1:]
        gaps.append(np.repeat(np.diff(times) / tokens, tokens))
    return np.concatenate(gaps) if gaps else np.empty(0)


def ttft_s(trace: RequestTrace) -> float | None:
    return None if trace.first_token_s is None else trace.first_token_s - trace.sent_s


def e2e_s(trace: RequestTrace) -> float | None:
    return None if trace.finished_s is None else trace.finished_s - trace.sent_s


def tpot_s(trace: RequestTrace) -> float | None:
    """Time per output token after the first chunk: (last chunk - first chunk) / the tokens
    that came after the first chunk (usage-weighted).

    With one token per chunk this is vLLM's (E2E - TTFT) / (output tokens - 1). Tokens that
    arrived together with the first one carry no timing, so they are not counted: a request
    whose whole output came in one read has no TPOT (None), never 0.
    """
    times, tokens = trace.chunk_times_s, trace.chunk_tokens
    if trace.first_token_s is None or len(times) < 2 or trace.output_tokens < 2:
        return None
    streamed = sum(tokens)
    after = (streamed - tokens[0]) * trace.output_tokens / streamed
    return (times[-1] - times[0]) / after


@dataclass(frozen=True, slots=True)
class TimingResolution:
    """How finely the client saw token arrivals, over completed requests.

    ``spread_gaps`` of ``gaps`` inter-token gaps were spread evenly over a multi-token
    chunk (arrived with other tokens) rather than observed one by one; ``untimed_requests``
    of ``requests`` had their whole output in one chunk (no ITL, no TPOT).
    """

    gaps: int
    spread_gaps: int
    requests: int
    untimed_requests: int

    @property
    def spread_fraction(self) -> float:
        return self.spread_gaps / self.gaps if self.gaps else 0.0


def timing_resolution(traces: Sequence[RequestTrace]) -> TimingResolution:
    gaps = spread = untimed = requests = 0
    for trace in traces:
        tokens = trace.chunk_tokens
        if not tokens or trace.output_tokens < 2:
            continue
        requests += 1
        if len(tokens) == 1:
            untimed += 1
            continue
        later = sum(tokens) - tokens[0]
        gaps += later
        spread += later - (len(tokens) - 1)  # a k-token chunk: 1 observed gap, k - 1 spread
    return TimingResolution(gaps, spread, requests, untimed)


def last_activity_s(trace: RequestTrace) -> float | None:
    """When a request stopped occupying the server: its finish, else its last chunk."""
    if trace.finished_s is not None:
        return trace.finished_s
    return trace.chunk_times_s[-1] if trace.chunk_times_s else None
