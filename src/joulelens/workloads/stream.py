"""Turns the body of one streamed OpenAI-style response into a :class:`RequestTrace`.

This is the hot path: one call per network read. Each read is stamped once by the caller
(every event in the read arrived at that moment), lines are split on ``\\n``, and only
``data:`` lines are JSON-decoded. Token accounting per event:

* ``usage.completion_tokens`` on content chunks (continuous usage stats): the chunk carries
  the difference from the previous chunk, so multi-token chunks are exact;
* otherwise one token per chunk with non-empty ``content``, ``reasoning_content``,
  ``reasoning``, ``tool_calls`` (chat) or ``text`` (completions);
* a final usage (usage-only chunk, or the first usage riding on the chunk that carries the
  finish reason) is authoritative for :attr:`RequestTrace.output_tokens`.
"""

from __future__ import annotations

import json
from typing import Any

from joulelens.core.events import RequestTrace

_loads = json.loads
EXCERPT_CHARS = 200


def excerpt(data: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class StreamParser:
    """Feeds decoded body bytes into ``trace``; errors keep the first reason and stop parsing.

    The stream is read to its end even after an error so a pooled connection stays usable
    and the server sees the same client behaviour as for a good request.
    """

    __slots__ = (
        "_continuous",
        "_partial",
        "_usage_tokens",
        "done_s",
        "error",
        "events",
        "final_output_tokens",
        "trace",
    )

    def __init__(self, trace: RequestTrace) -> None:
        self.trace = trace
        self._partial = b""
        self._usage_tokens = 0
        self._continuous = False
        self.done_s: float | None = None  # when ``data: [DONE]`` arrived
        self.final_output_tokens: int | None = None
        self.error: str | None = None
        self.events = 0

    def feed(self, data: bytes, t_s: float) -> None:
        if self._partial:
            data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            # "data:" lines only; blank lines, ":" comments, "event:"/"id:" carry no tokens.
            if line[:5] == b"data:" and self.error is None:
                self._event(line[5:], t_s)

    def finish(self, t_s: float) -> None:
        """End of body: flush a last unterminated line and settle the token totals."""
        if self._partial:
            rest, self._partial = self._partial, b""
            if rest[:5] == b"data:" and self.error is None:
                self._event(rest[5:], t_s)
        if self.final_output_tokens is not None:
            self.trace.output_tokens = self.final_output_tokens

    def _event(self, payload: bytes, t_s: float) -> None:
        self.events += 1
        try:
            obj = _loads(payload)
        except ValueError:
            if payload.strip() == b"[DONE]":
                self.done_s = t_s
            else:
                self.error = f"malformed chunk: {excerpt(payload)}"
            return
        if type(obj) is not dict:
            self.error = f"malformed chunk: {excerpt(payload)}"
            return
        trace = self.trace
        tokens = 0
        finished = False
        choices = obj.get("choices")
        if choices:
            choice = choices[0]
            reason = choice.get("finish_reason")
            if reason is not None:
                trace.finish_reason = reason
                finished = True
            delta = choice.get("delta")
            if delta is not None:
                if (
                    delta.get("content")
                    or delta.get("reasoning_content")
                    or delta.get("reasoning")
                    or delta.get("tool_calls")
                ):
                    tokens = 1
            elif choice.get("text"):
                tokens = 1
        elif "error" in obj or obj.get("object") == "error":
            self.error = f"server error in stream: {_error_message(obj)}"
            return
        usage = obj.get("usage")
        if usage:
            prompt_tokens = usage.get("prompt_tokens")
            if prompt_tokens is not None:
                trace.input_tokens = prompt_tokens
            completion = usage.get("completion_tokens")
            if completion is not None:
                if choices and (self._continuous or not finished):
                    self._continuous = True
                    tokens = completion - self._usage_tokens
                    self._usage_tokens = completion
                elif not choices and self._continuous:
                    tokens = completion - self._usage_tokens
                    self._usage_tokens = completion
                    self.final_output_tokens = completion
                else:
                    # First usage seen at the end: a total, not a per-chunk count.
                    self.final_output_tokens = completion
        if tokens > 0:
            trace.add_chunk(t_s, tokens)

    @property
    def continuous_usage(self) -> bool:
        """Whether the server sent usage on content chunks (exact tokens per chunk)."""
        return self._continuous


def parse_unstreamed(trace: RequestTrace, body: bytes, t_s: float) -> str | None:
    """A server that ignored ``stream: true`` answered with one JSON object; returns an error."""
    try:
        obj = _loads(body)
    except ValueError:
        return f"malformed response: {excerpt(body)}"
    if type(obj) is not dict:
        return f"malformed response: {excerpt(body)}"
    choices = obj.get("choices") or []
    if not choices:
        return f"response without choices: {excerpt(body)}"
    choice = choices[0]
    trace.finish_reason = choice.get("finish_reason")
    message = choice.get("message") or {}
    has_text = bool(
        choice.get("text") or message.get("content") or message.get("reasoning_content")
    )
    usage = obj.get("usage") or {}
    if usage.get("prompt_tokens") is not None:
        trace.input_tokens = usage["prompt_tokens"]
    completion = usage.get("completion_tokens")
    trace.add_chunk(t_s, completion if completion is not None else int(has_text))
    return None


def _error_message(obj: dict[str, Any]) -> str:
    error = obj.get("error")
    if isinstance(error, dict):
        return excerpt(str(error.get("message") or error))
    if error is not None:
        return excerpt(str(error))
    return excerpt(str(obj.get("message") or obj))
