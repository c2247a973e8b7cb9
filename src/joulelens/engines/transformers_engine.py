"""The in-process text-generation engine (Hugging Face transformers, CPU or CUDA).

Usage (what ``joulelens run --engine transformers`` does)::

    engine = TransformersEngine("smollm2-135m")          # or arch:llama-3.1-8b, a dir, an id
    engine.load()
    traces = engine.run(task.build_requests(items, 64), max_batch=16)
    engine.describe()                                    # engine, version, device, dtype ...
    engine.close()

Batching: ``continuous`` (transformers' continuous-batching manager: a finished request's
slot is refilled at the next step, like vLLM's ``max_num_seqs``), or ``static`` (waves of
``max_batch`` through ``generate``; used for vision prompts). ``auto`` picks continuous for text
and falls back to static, with a warning, if the manager cannot start.

Architecture-only models draw each request's output length from ``output_lengths`` (a task's
published distribution) and ignore EOS; their records must say the weights were random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from joulelens.engines import loading, runtime
from joulelens.engines.models import parse_model
from joulelens.engines.protocol import PreparedRequest, ProgressCallback
from joulelens.engines.vision import has_media_parts, vision_prompt
from joulelens.errors import EngineError, InputError
from joulelens.tasks.definitions import DEFAULT_TEMPERATURE, DEFAULT_TOP_P

if TYPE_CHECKING:
    import torch

    from joulelens.core.events import RequestTrace
    from joulelens.tasks.output_lengths import OutputLengthDistribution
    from joulelens.workloads.config import LoadRequest

Batching = Literal["auto", "continuous", "static"]
DEFAULT_MAX_TOKENS = 4096
_USED_FIELDS = {"temperature", "top_p", "chat_template_kwargs", "max_tokens", "seed"}


class TransformersEngine:
    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batching: Batching = "auto",
        seed: int = 0,
        output_lengths: OutputLengthDistribution | None = None,
        video_frames: int = 32,
        cpu_threads: int | None = None,
    ) -> None:
        if batching not in ("auto", "continuous", "static"):
            raise InputError("must be auto, continuous or static", field="batching")
        self.ref = parse_model(model)
        if self.ref.random_weights and output_lengths is None:
            raise InputError(
                f"{model} has random weights: give it an output-length distribution "
                "(a task's, e.g. get_task('lm-arena-chat').output_lengths())",
                field="output_lengths",
            )
        self._device_name, self._dtype_name = device, dtype
        self.batching: Batching = batching
        self.seed = seed
        self.output_lengths = output_lengths
        self.video_frames = video_frames
        self.cpu_threads = cpu_threads
        self.warnings: list[str] = []
        self._loaded: loading.LoadedModel | None = None
        self._device: torch.device | None = None
        self._last_batching: str | None = None
        self._rng = np.random.default_rng(seed)

    # -- lifecycle --------------------------------------------------------------------------
    def load(self) -> None:
        if self._loaded is not None:
            return
        self._device = runtime.pick_device(self._device_name)
        dtype = runtime.pick_dtype(self._dtype_name, self._device)
        runtime.set_seed(self.seed)
        runtime.quiet_library_logs()
        if self.cpu_threads is not None:
            runtime.set_cpu_threads(self.cpu_threads)
        self._loaded = loading.load(self.ref, self._device, dtype, self.seed)

    def close(self) -> None:
        self._loaded = None
        runtime.release_device_memory(self._device)

    def gpu_uuids(self) -> list[tuple[int, str]]:
        """``(cuda index, UUID)`` of the GPUs holding the model (empty on the CPU)."""
        model = self.loaded.model
        return runtime.cuda_uuids(runtime.placed_devices([*model.parameters(), *model.buffers()]))

    def __enter__(self) -> TransformersEngine:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def loaded(self) -> loading.LoadedModel:
        if self._loaded is None:
            raise EngineError("engine not loaded: call load() first")
        return self._loaded

    # -- running ----------------------------------------------------------------------------
    def run(
        self,
        requests: Sequence[LoadRequest],
        max_batch: int,
        on_progress: ProgressCallback | None = None,
    ) -> list[RequestTrace]:
        """Generate for every request, at most ``max_batch`` at a time; one trace each."""
        if max_batch < 1:
            raise InputError("must be at least 1", field="max_batch")
        if not requests:
            return []
        loaded = self.loaded
        prepared = [self._prepare(r, i) for i, r in enumerate(requests)]
        vision = any(p.vision is not None for p in prepared)
        if vision and not all(p.vision is not None for p in prepared):
            raise InputError("mix of text and vision requests in one run", field="requests")
        eos = _eos_ids(loaded)
        pad = loaded.tokenizer.pad_token_id
        pad_id = int(pad if pad is not None else (eos[0] if eos else 0))
        device = self._device
        assert device is not None
        if self.batching == "continuous" and vision:
            raise EngineError("continuous batching takes text prompts only; use batching='static'")
        if self.batching != "static" and not vision:
            from joulelens.engines.continuous import run_continuous

            try:
                traces = run_continuous(
                    loaded.model,
                    prepared,
                    max_batch,
                    eos_token_ids=eos,
                    pad_token_id=pad_id,
                    device=device,
                    on_progress=on_progress,
                )
                self._last_batching = "continuous"
                return traces
            except (RuntimeError, ValueError, NotImplementedError, TypeError) as exc:
                # torch.cuda.OutOfMemoryError is a RuntimeError: running out of memory is a
                # failed run at this batch size, not a reason to switch batching modes.
                if runtime.is_out_of_memory(exc):
                    raise _out_of_memory(exc, max_batch, device, "continuous") from exc
                if self.batching == "continuous":
                    raise EngineError(f"continuous batching failed: {exc}") from exc
                self.warnings.append(
                    f"continuous batching unavailable ({exc}); used static batches"
                )
        from joulelens.engines.static import run_static

        try:
            traces = run_static(
                loaded.model,
                prepared,
                max_batch,
                tokenizer=loaded.tokenizer,
                processor=loaded.processor,
                eos_token_ids=eos,
                pad_token_id=pad_id,
                device=device,
                on_progress=on_progress,
            )
        except RuntimeError as exc:
            if runtime.is_out_of_memory(exc):
                raise _out_of_memory(exc, max_batch, device, "static") from exc
            raise
        self._last_batching = "static"
        return traces

    def _prepare(self, request: LoadRequest, index: int) -> PreparedRequest:
        loaded = self.loaded
        extra = dict(request.extra_body)
        ignored = sorted(set(extra) - _USED_FIELDS)
        if ignored:
            note = f"request fields ignored in-process: {', '.join(ignored)}"
            if note not in self.warnings:
                self.warnings.append(note)
        max_new = int(request.max_tokens or extra.get("max_tokens") or DEFAULT_MAX_TOKENS)
        prepared = PreparedRequest(
            request_id=request.request_id or f"req-{index:05d}",
            input_ids=[],
            max_new_tokens=max_new,
            temperature=float(extra.get("temperature", DEFAULT_TEMPERATURE)),
            top_p=float(extra.get("top_p", DEFAULT_TOP_P)),
        )
        template_kwargs = dict(extra.get("chat_template_kwargs") or {})
        if request.api == "completions":
            prompt = request.prompt
            prepared.input_ids = (
                loaded.tokenizer(prompt).input_ids
                if isinstance(prompt, str)
                else [int(t) for t in prompt or ()]
            )
        elif has_media_parts(request.messages or ()):
            self._prepare_vision(prepared, request.messages or (), template_kwargs)
        else:
            text = _chat_text(loaded.tokenizer, _flatten(request.messages or ()), template_kwargs)
            prepared.input_ids = loaded.tokenizer(text, add_special_tokens=False).input_ids
        if self.output_lengths is not None and loaded.ref.random_weights:
            drawn = self.output_lengths.sample(1, self._rng, cap_tokens=max_new)
            prepared.target_tokens = int(drawn[0])
        return prepared

    def _prepare_vision(
        self,
        prepared: PreparedRequest,
        messages: Sequence[Mapping[str, Any]],
        template_kwargs: dict[str, Any],
    ) -> None:
        processor = self.loaded.processor
        if processor is None:
            raise EngineError(
                f"{self.ref.model_id} is a text-only model and this task sends images or video: "
                "it needs a multimodal model, e.g. --model arch:tiny-qwen2-vl, or a Hugging Face "
                "vision-language model such as Qwen/Qwen2.5-VL-3B-Instruct (its processor needs "
                "torchvision: pip install torchvision)"
            )
        videos_as_images = not getattr(
            processor, "supports_video", hasattr(processor, "video_processor")
        )
        prompt = vision_prompt(messages, self.video_frames, videos_as_images)
        prepared.vision = prompt
        prepared.prompt_text = _chat_text(processor, prompt.messages, template_kwargs)

    # -- description --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Engine identity and settings for the run record (``config`` and provenance)."""
        import torch
        import transformers

        loaded = self._loaded
        return {
            "engine": self.name,
            "engine_version": transformers.__version__,
            "torch_version": torch.__version__,
            "model": self.ref.spec,
            "model_id": self.ref.model_id,
            "model_source": self.ref.kind,
            "device": runtime.device_label(self._device) if self._device is not None else None,
            "dtype": str(loaded.model.dtype).removeprefix("torch.") if loaded else None,
            "batching": self._last_batching or self.batching,
            "random_weights": self.ref.random_weights,
            "tokenizer": loaded.tokenizer_label if loaded else None,
            "output_lengths": self.output_lengths.source
            if self.output_lengths and self.ref.random_weights
            else None,
            "seed": self.seed,
            "cpu_threads": torch.get_num_threads(),
            "video_frames": self.video_frames,
            "warnings": list(self.warnings),
        }

    def record_fields(self) -> dict[str, Any]:
        """Model fields of the run record (model_id, nickname, parameters, precision)."""
        return self.loaded.record_fields()


def _out_of_memory(
    exc: BaseException, max_batch: int, device: torch.device, batching: str
) -> EngineError:
    return EngineError(
        f"out of memory on {device} at max_num_seqs={max_batch} ({batching} batching): "
        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. This batch size does "
        "not fit: lower --max-num-seqs, use a smaller model or dtype, or a GPU with more memory"
    )


def _flatten(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Text-only content parts joined into plain strings (text models take strings)."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
        out.append({"role": message["role"], "content": content or ""})
    return out


def _chat_text(
    templater: Any, messages: list[dict[str, Any]], template_kwargs: dict[str, Any]
) -> str:
    try:
        text = templater.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **template_kwargs
        )
    except ValueError as exc:  # no chat template: plain role-prefixed text
        if "chat_template" not in str(exc) and "chat template" not in str(exc):
            raise EngineError(f"chat template failed: {exc}") from exc
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
    return str(text)


def _eos_ids(loaded: loading.LoadedModel) -> list[int]:
    ids: set[int] = set()
    for source in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list):
            ids.update(int(i) for i in source)
    return sorted(ids)
