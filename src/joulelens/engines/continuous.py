"""Continuous batching through transformers' ``ContinuousBatchingManager`` (text prompts).

Up to ``max_batch`` requests decode together; a finished request's slot is refilled by the
next waiting one at the following step, as vLLM's ``max_num_seqs`` does. The manager stamps
every generated token (``record_timestamps``) on ``time.perf_counter``; stamps are moved onto
:func:`~joulelens.core.clock.now_s` with one offset measured at the start.
"""

from __future__ import annotations

import importlib.util
import math
import time
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
from joulelens.errors import EngineError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

PAGE_SIZE_TOKENS = 256
RESULT_POLL_S = 0.5
CPU_CACHE_RAM_FRACTION = 0.25  # at most this share of free RAM goes to the KV cache on a CPU


def cache_blocks_for(
    prepared: Sequence[PreparedRequest], max_batch: int, bytes_per_token: int, free_bytes: int
) -> int:
    """KV-cache pages for ``max_batch`` of the longest requests, within a RAM budget."""
    longest = max(len(p.input_ids) + p.token_limit for p in prepared)
    per_request = math.ceil(longest / PAGE_SIZE_TOKENS) + 1
    wanted = per_request * min(max_batch, len(prepared))
    affordable = int(
        CPU_CACHE_RAM_FRACTION * free_bytes / max(1, bytes_per_token * PAGE_SIZE_TOKENS)
    )
    return max(per_request, min(wanted, affordable))


def kv_bytes_per_token(model: PreTrainedModel) -> int:
    config = model.config.get_text_config()
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * model.dtype.itemsize


def run_continuous(
    model: PreTrainedModel,
    prepared: Sequence[PreparedRequest],
    max_batch: int,
    *,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
    device: torch.device,
    on_progress: ProgressCallback | None = None,
) -> list[RequestTrace]:
    from transformers import GenerationConfig

    first = prepared[0]
    greedy = first.temperature <= 0
    generation = GenerationConfig(
        do_sample=not greedy,
        temperature=None if greedy else first.temperature,
        top_p=None if greedy else first.top_p,
        max_new_tokens=max(p.token_limit for p in prepared),
        eos_token_id=list(eos_token_ids) or -1,
        pad_token_id=pad_token_id,
    )
    cb_config = _cb_config(model, prepared, max_batch, device)
    cb_model: Any = model  # torch's Module.__getattr__ hides the mixin's methods from mypy
    manager = cb_model.init_continuous_batching(
        generation_config=generation, continuous_batching_config=cb_config
    )
    manager.start()
    try:
        return _drive(manager, prepared, on_progress)
    finally:
        manager.stop(block=True, timeout=30)
        manager.destroy()


def _cb_config(
    model: PreTrainedModel,
    prepared: Sequence[PreparedRequest],
    max_batch: int,
    device: torch.device,
) -> Any:
    import dataclasses

    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    # transformers 5.x renamed block_size to page_size and added auto_switch_to_flash
    # (5.17 has neither): pass only what this version takes.
    known = {f.name for f in dataclasses.fields(ContinuousBatchingConfig)}
    fields: dict[str, Any] = {
        "max_requests_per_batch": max_batch,
        "page_size" if "page_size" in known else "block_size": PAGE_SIZE_TOKENS,
    }
    if "auto_switch_to_flash" in known:
        # Flash attention only when the package is really there: the "kernels" fallback
        # would try to download kernels from the Hub.
        fields["auto_switch_to_flash"] = importlib.util.find_spec("flash_attn") is not None
    if device.type != "cuda":
        import psutil

        # The manager sizes its cache from free *device* memory; on a CPU that would be most
        # of the RAM, so size it from what the requests can use.
        fields["num_blocks"] = cache_blocks_for(
            prepared, max_batch, kv_bytes_per_token(model), psutil.virtual_memory().available
        )
        longest_prompt = max(len(p.input_ids) for p in prepared)
        fields["max_batch_tokens"] = max(max_batch, min(4096, max(512, longest_prompt)))
    elif max_batch > 2048:
        fields["max_batch_tokens"] = max_batch + 2048  # a decode step must fit every sequence
    return ContinuousBatchingConfig(**fields)


def _drive(
    manager: Any, prepared: Sequence[PreparedRequest], on_progress: ProgressCallback | None
) -> list[RequestTrace]:
    by_id = {p.request_id: p for p in prepared}
    traces: dict[str, RequestTrace] = {}
    start_s = now_s()
    offset_s = now_s() - time.perf_counter()  # both clocks are monotonic; one offset maps them
    for p in prepared:
        traces[p.request_id] = RequestTrace(
            p.request_id,
            sent_s=start_s,
            input_tokens=len(p.input_ids),
            max_output_tokens=p.max_new_tokens,
        )
        # EOS -1 never matches, so forced-length requests run to their drawn length.
        added = manager.add_request(
            p.input_ids,
            request_id=p.request_id,
            max_new_tokens=p.token_limit,
            record_timestamps=True,
            eos_token_id=-1 if p.forced else None,
        )
        if added is None:
            raise EngineError("the continuous-batching manager refused a request")
    done = 0
    tokens_done = 0
    while done < len(prepared):
        result = manager.get_result(timeout=RESULT_POLL_S)
        if result is None:
            error = manager.background_thread_status.fatal_error
            if error is not None or not manager.is_running():
                raise EngineError(
                    f"continuous batching stopped: {error or 'generation thread exited'}"
                )
            continue
        if not result.is_finished() or result.request_id not in traces:
            continue
        trace = traces[result.request_id]
        if trace.finished_s is not None:
            continue
        _fill(trace, result, by_id[result.request_id], offset_s)
        done += 1
        tokens_done += trace.output_tokens
        if on_progress is not None:
            on_progress(ProgressUpdate(done, len(prepared), tokens_done, now_s() - start_s))
    return [traces[p.request_id] for p in prepared]


def _fill(trace: RequestTrace, result: Any, request: PreparedRequest, offset_s: float) -> None:
    tokens = list(result.generated_tokens)
    stamps = list(result.timestamps or [])[: len(tokens)]
    for stamp in stamps:
        trace.add_chunk(stamp + offset_s, 1)
    end = (
        result.lifespan[1]
        if result.lifespan[1] > 0
        else (stamps[-1] if stamps else time.perf_counter())
    )
    trace.finished_s = end + offset_s
    if result.error:
        trace.error = str(result.error)
        return
    hit_eos = not request.forced and bool(tokens) and len(tokens) < request.token_limit
    trace.finish_reason = finish_reason(trace.output_tokens, request, hit_eos)
