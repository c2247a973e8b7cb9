"""What engines emit: one trace per request, stamped on :func:`joulelens.core.clock.now_s`.

Engines (servers, in-process) and the load generator fill these in; the compile step
(:mod:`joulelens.measure`) reads them. They sit in the bottom layer so that an engine or the
load generator imports no measurement code.
Chunk timestamps are kept in compact arrays so 10,000 requests x 1,000 tokens stay small.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestTrace:
    """Timing of one request as seen by the client (or the in-process engine).

    ``chunk_times_s[i]`` is when chunk *i* arrived and ``chunk_tokens[i]`` how many output
    tokens it carried (a usage-only chunk carries 0 and is not recorded). Times are seconds
    on the shared monotonic clock. Tokens stamped with the same time are one chunk: several
    streamed events that reached the client in one read arrived together, and their
    inter-token gaps are unknown, not zero (see :mod:`joulelens.measure.tokens`).
    """

    request_id: str
    sent_s: float
    first_token_s: float | None = None
    finished_s: float | None = None
    chunk_times_s: array = field(default_factory=lambda: array("d"))
    chunk_tokens: array = field(default_factory=lambda: array("I"))
    input_tokens: int | None = None
    output_tokens: int = 0
    max_output_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None

    def add_chunk(self, t_s: float, tokens: int) -> None:
        if tokens <= 0:
            return
        if self.chunk_times_s and self.chunk_times_s[-1] == t_s:
            self.chunk_tokens[-1] += tokens  # the same read as the previous chunk
        else:
            if self.first_token_s is None:
                self.first_token_s = t_s
            self.chunk_times_s.append(t_s)
            self.chunk_tokens.append(tokens)
        self.output_tokens += tokens

    @property
    def ok(self) -> bool:
        return self.error is None and self.finished_s is not None

    @property
    def truncated(self) -> bool:
        """The output hit the cap (finish reason ``length``) rather than stopping on its own."""
        return self.finish_reason == "length"


@dataclass(slots=True)
class BatchTrace:
    """One diffusion batch (iteration) between device syncs."""

    index: int
    batch_size: int
    start_s: float
    end_s: float
    warmup: bool = False
    error: str | None = None
