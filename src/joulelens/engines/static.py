"""Static batches through ``model.generate``: used for vision prompts and as the fallback.

Requests run in waves of ``max_batch`` (left-padded); the next wave starts when the whole wave
is done, so the running batch shrinks as a wave's shorter responses finish. Each decode step
is stamped by a stopping criterion, which ``generate`` calls once per step right after the new
tokens are sampled; reading those tokens to the host is the device sync that makes the stamp
mark real completion. The same criterion ends forced-length rows at their drawn length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from joulelens.core.clock import now_s
from joulelens.core.events import RequestTrace
from joulelens.engines.protocol import (
    PreparedRequest,
    ProgressCallback,
    ProgressUpdate,
    finish_reason,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

PROGRESS_EVERY_S = 0.25


class _StepRecorder:
    """A ``StoppingCriteria``: stamps each row's new token and says which rows are done."""

    def __init__(
        self,
        traces: list[RequestTrace],
        requests: Sequence[PreparedRequest],
        eos_token_ids: set[int],
        progress: _Progress,
    ) -> None:
        self.traces = traces
        self.requests = requests
        self.eos = eos_token_ids
        self.done = [False] * len(traces)
        self.progress = progress

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        last = input_ids[:, -1].tolist()  # host copy: waits for the step to finish
        t = now_s()
        for row, token in enumerate(last):
            if self.done[row]:
                continue
            trace, request = self.traces[row], self.requests[row]
            trace.add_chunk(t, 1)
            hit_eos = not request.forced and token in self.eos
            if hit_eos or trace.output_tokens >= request.token_limit:
                self.done[row] = True
                trace.finished_s = t
                trace.finish_reason = finish_reason(trace.output_tokens, request, hit_eos)
            self.progress.add_tokens(1, finished=self.done[row])
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


class _Progress:
    def __init__(self, total: int, start_s: float, callback: ProgressCallback | None) -> None:
        self.total, self.start_s, self.callback = total, start_s, callback
        self.done = 0
        self.tokens = 0
        self.last_s = start_s

    def add_tokens(self, tokens: int, finished: bool) -> None:
        self.tokens += tokens
        self.done += int(finished)
        now = now_s()
        if self.callback is not None and (finished or now - self.last_s >= PROGRESS_EVERY_S):
            self.last_s = now
            self.callback(ProgressUpdate(self.done, self.total, self.tokens, now - self.start_s))


def run_static(
    model: PreTrainedModel,
    prepared: Sequence[PreparedRequest],
    max_batch: int,
    *,
    tokenizer: Any,
    processor: Any | None,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
    device: torch.device,
    on_progress: ProgressCallback | None = None,
) -> list[RequestTrace]:
    start_s = now_s()
    progress = _Progress(len(prepared), start_s, on_progress)
    traces: list[RequestTrace] = []
    for offset in range(0, len(prepared), max_batch):
        wave = list(prepared[offset : offset + max_batch])
        inputs = _batch_inputs(wave, tokenizer, processor, device)
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        wave_traces = [
            RequestTrace(
                p.request_id,
                sent_s=start_s,
                input_tokens=int(n),
                max_output_tokens=p.max_new_tokens,
            )
            for p, n in zip(wave, prompt_lengths, strict=True)
        ]
        _generate(model, wave, inputs, wave_traces, eos_token_ids, pad_token_id, progress)
        traces += wave_traces
    return traces


def _batch_inputs(
    wave: list[PreparedRequest], tokenizer: Any, processor: Any | None, device: torch.device
) -> Any:
    tokenizer.padding_side = "left"  # decoder-only generation continues from the right edge
    if wave[0].vision is not None:
        if processor is None:
            raise AssertionError("vision prompts reach the static runner only with a processor")
        images = [img for p in wave for img in (p.vision.images if p.vision else [])]
        videos = [v for p in wave for v in (p.vision.videos if p.vision else [])]
        inputs = processor(
            text=[p.prompt_text or "" for p in wave],
            images=images or None,
            videos=videos or None,
            padding=True,
            return_tensors="pt",
        )
    else:
        inputs = tokenizer.pad(
            {"input_ids": [p.input_ids for p in wave]}, padding=True, return_tensors="pt"
        )
    return inputs.to(device)


def _generate(
    model: PreTrainedModel,
    wave: list[PreparedRequest],
    inputs: Any,
    traces: list[RequestTrace],
    eos_token_ids: Sequence[int],
    pad_token_id: int,
    progress: _Progress,
) -> None:
    import torch
    from transformers import GenerationConfig, StoppingCriteriaList

    first = wave[0]
    greedy = first.temperature <= 0
    forced = all(p.forced for p in wave)
    generation = GenerationConfig(
        do_sample=not greedy,
        temperature=None if greedy else first.temperature,
        top_p=None if greedy else first.top_p,
        max_new_tokens=max(p.token_limit for p in wave),
        eos_token_id=None if forced else list(eos_token_ids),
        pad_token_id=pad_token_id,
    )
    recorder: Any = _StepRecorder(
        traces, wave, set(eos_token_ids), progress
    )  # duck-typed criterion
    generator: Any = model  # torch's Module.__getattr__ hides generate() from type checkers
    with torch.inference_mode():
        generator.generate(
            **inputs,
            generation_config=generation,
            stopping_criteria=StoppingCriteriaList([recorder]),
        )
    end = now_s()
    for trace in traces:  # rows cut by max_new_tokens before the recorder saw them finish
        if trace.finished_s is None:
            trace.finished_s = end
            trace.finish_reason = "length"
