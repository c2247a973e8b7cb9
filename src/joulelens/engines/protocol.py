"""What the ``run`` command sees of an in-process engine, and what runners share.

An LLM engine (transformers) takes :class:`~joulelens.workloads.config.LoadRequest` objects,
the same type the HTTP load generator sends, and returns one
:class:`~joulelens.core.events.RequestTrace` per request, stamped on
:func:`joulelens.core.clock.now_s`. All requests count as sent at the start (the paper's
saturation mode), so queueing behind the batch limit shows up in TTFT as it does on a server.
A diffusion engine returns one :class:`~joulelens.core.events.BatchTrace` per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from joulelens.core.events import RequestTrace
    from joulelens.engines.vision import VisionPrompt
    from joulelens.workloads.config import LoadRequest


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """A progress snapshot; observers only, never part of the measurement."""

    requests_done: int
    requests_total: int
    output_tokens: int  # tokens streamed so far (continuous batching: of finished requests)
    elapsed_s: float


ProgressCallback = Callable[[ProgressUpdate], None]


class LLMEngine(Protocol):
    name: str

    def load(self) -> None: ...

    def run(
        self,
        requests: Sequence[LoadRequest],
        max_batch: int,
        on_progress: ProgressCallback | None = None,
    ) -> list[RequestTrace]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class PreparedRequest:
    """A request turned into what a runner feeds the model."""

    request_id: str
    input_ids: list[int]  # text prompts; empty for vision prompts (the processor tokenises)
    max_new_tokens: int  # the request's output cap
    target_tokens: int | None = None  # forced output length (architecture-only models)
    temperature: float = 0.8
    top_p: float = 0.95
    vision: VisionPrompt | None = None
    prompt_text: str | None = None  # templated text of a vision prompt
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def forced(self) -> bool:
        return self.target_tokens is not None

    @property
    def token_limit(self) -> int:
        return self.target_tokens if self.target_tokens is not None else self.max_new_tokens


def finish_reason(output_tokens: int, request: PreparedRequest, hit_eos: bool) -> str:
    """``stop``: ended on its own (or at its drawn length); ``length``: hit the cap."""
    if hit_eos:
        return "stop"
    return "length" if output_tokens >= request.max_new_tokens else "stop"
