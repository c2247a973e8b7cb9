"""The seven ML.ENERGY tasks, each a small definition: API, request builder, caps, sampling.

A task turns :class:`PromptItem` rows into :class:`~joulelens.workloads.config.LoadRequest`
objects, the one request type that both the HTTP load generator and the in-process engines
consume; diffusion tasks turn them into plain prompt strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from joulelens.errors import InputError
from joulelens.records import RunKind
from joulelens.tasks import output_lengths, public_rows
from joulelens.tasks.prompts import (
    PromptItem,
    PublicDataset,
    RowAdapter,
    builtin_prompts,
    load_prompt_file,
    load_public_dataset,
    repeat_to,
)
from joulelens.workloads.config import ApiKind, LoadRequest

if TYPE_CHECKING:
    from joulelens.store import Store

DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
BUILTIN_SOURCE = "builtin"
PUBLIC_SOURCE = "public"


class RequestPlan(Sequence[LoadRequest]):
    """``size`` requests cycling through one request per distinct prompt (``templates``):
    each is made when read, so memory grows with the prompts, not with ``size``."""

    def __init__(self, name: str, templates: tuple[LoadRequest, ...], count: int):
        self.name, self.templates, self.size = name, templates, count

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> LoadRequest: ...

    @overload
    def __getitem__(self, index: slice) -> list[LoadRequest]: ...

    def __getitem__(self, index: int | slice) -> LoadRequest | list[LoadRequest]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(index)
        template = self.templates[index % len(self.templates)]
        return dataclasses.replace(template, request_id=f"{self.name}-{index:05d}")


@dataclass(frozen=True, slots=True)
class FimFormat:
    """A model family's fill-in-the-middle markers (prefix-suffix-middle order)."""

    name: str
    prefix_token: str
    suffix_token: str
    middle_token: str

    def render(self, prefix: str, suffix: str) -> str:
        return f"{self.prefix_token}{prefix}{self.suffix_token}{suffix}{self.middle_token}"

    @property
    def tokens(self) -> tuple[str, str, str]:
        return (self.prefix_token, self.suffix_token, self.middle_token)


FIM_FORMATS: tuple[FimFormat, ...] = (
    FimFormat(
        "qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
    ),  # Qwen-Coder, CodeGemma
    FimFormat("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    FimFormat("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    FimFormat("codellama", "<PRE>", "<SUF>", "<MID>"),
)
DEFAULT_FIM = FIM_FORMATS[0]  # the paper's code-completion models are Qwen3-Coder


def fim_format_for_vocab(vocab: Collection[str]) -> FimFormat | None:
    """The FIM format whose three markers are all single tokens of this vocabulary."""
    for fmt in FIM_FORMATS:
        if all(token in vocab for token in fmt.tokens):
            return fmt
    return None


@dataclass(frozen=True, slots=True)
class Task:
    """One ML.ENERGY task (its id is the name)."""

    name: str
    title: str
    kind: RunKind
    energy_unit: str  # "token", "image" or "video": what energy is reported per
    api: ApiKind | None  # None for diffusion
    output_cap_tokens: int | None  # max_tokens per request; None for diffusion
    dataset: PublicDataset
    adapter: RowAdapter
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    video_frames: int | None = None  # frames sampled from each video (video chat)

    @property
    def is_diffusion(self) -> bool:
        return self.kind is RunKind.DIFFUSION

    def sampling_body(self) -> dict[str, Any]:
        """Sampling defaults and task extras, as OpenAI-compatible request fields."""
        return {"temperature": self.temperature, "top_p": self.top_p, **self.extra_body}

    def load_prompts(
        self,
        source: str | Path | None = None,
        *,
        limit: int = 1000,
        seed: int = 0,
        media_dir: Path | None = None,
    ) -> list[PromptItem]:
        """``None``/``"builtin"``: the built-in set; ``"public"``: the public dataset through
        ``datasets``; anything else: a local JSONL/Parquet file."""
        if source is None or source == BUILTIN_SOURCE:
            return builtin_prompts(self.name)
        if source == PUBLIC_SOURCE:
            return load_public_dataset(
                self.dataset, self.adapter, limit, seed=seed, media_dir=media_dir
            )
        return load_prompt_file(Path(source), self.adapter)

    def build_requests(
        self,
        items: Sequence[PromptItem],
        num_requests: int,
        *,
        max_tokens: int | None = None,
        fim_format: FimFormat | None = None,
        seed: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> RequestPlan:
        """``num_requests`` requests cycling through ``items`` (shuffled first with a seed).

        ``max_tokens`` lowers the task's output cap (never raises it); ``fim_format`` is the
        model's FIM markers for code completion (default: Qwen's); ``extra_body`` fields win
        over the task's sampling defaults. The result is a sequence that makes each request
        when it is read, so its memory does not grow with ``num_requests``.
        """
        if self.is_diffusion or self.api is None:
            raise InputError(
                f"{self.name} is a diffusion task: use diffusion_prompts", field="task"
            )
        if num_requests < 1:
            raise InputError("must be at least 1", field="num_requests")
        cap = self.output_cap_tokens
        if max_tokens is not None:
            if max_tokens < 1:
                raise InputError("must be at least 1", field="max_tokens")
            cap = max_tokens if cap is None else min(cap, max_tokens)
        body = {**self.sampling_body(), **(extra_body or {})}
        order = repeat_to(items, min(num_requests, len(items)), seed)
        if self.api == "completions" and any(item.prefix is None for item in order):
            raise InputError("code completion needs prompts with a prefix", field="prefix")
        templates = tuple(self.make_request(item, "", cap, fim_format, body) for item in order)
        return RequestPlan(self.name, templates, num_requests)

    def make_request(
        self,
        item: PromptItem,
        request_id: str,
        max_tokens: int | None,
        fim_format: FimFormat | None,
        body: Mapping[str, Any],
    ) -> LoadRequest:
        if self.api == "completions":
            fmt = fim_format or DEFAULT_FIM
            prompt = fmt.render(item.prefix or "", item.suffix or "")
            return LoadRequest.completion(
                prompt, max_tokens=max_tokens, extra_body=body, request_id=request_id
            )
        return LoadRequest(
            "chat",
            messages=self._messages(item),
            max_tokens=max_tokens,
            extra_body=body,
            request_id=request_id,
        )

    def _messages(self, item: PromptItem) -> tuple[Mapping[str, Any], ...]:
        messages: list[Mapping[str, Any]] = []
        if item.system:
            messages.append({"role": "system", "content": item.system})
        messages += item.history
        if self.kind is RunKind.MLLM:
            if not item.images and item.video is None:
                raise InputError(f"{self.name} prompts need an image or a video", field="images")
            parts: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": image.data_url()}}
                for image in item.images
            ]
            if item.video is not None:
                parts.append({"type": "video_url", "video_url": {"url": item.video.data_url()}})
            parts.append({"type": "text", "text": item.text})
            messages.append({"role": "user", "content": parts})
        else:
            messages.append({"role": "user", "content": item.text})
        return tuple(messages)

    def diffusion_prompts(
        self, items: Sequence[PromptItem], num_prompts: int, seed: int | None = None
    ) -> list[str]:
        if not self.is_diffusion:
            raise InputError(
                f"{self.name} is not a diffusion task: use build_requests", field="task"
            )
        return [item.text for item in repeat_to(items, num_prompts, seed)]

    def output_lengths(
        self, store: Store | None = None, model_id: str | None = None
    ) -> output_lengths.OutputLengthDistribution:
        """The distribution ``arch:`` models draw lengths from (store first, then packaged)."""
        if self.is_diffusion:
            raise InputError(f"{self.name} has no output lengths", field="task")
        return output_lengths.for_task(self.name, store, model_id)


TASKS: tuple[Task, ...] = (
    Task(
        name="lm-arena-chat",
        title="Text conversation",
        kind=RunKind.LLM,
        energy_unit="token",
        api="chat",
        output_cap_tokens=4096,
        dataset=PublicDataset("lmarena-ai/arena-human-preference-100k", "train"),
        adapter=public_rows.lmarena_row,
    ),
    Task(
        name="gpqa",
        title="Problem solving (reasoning)",
        kind=RunKind.LLM,
        energy_unit="token",
        api="chat",
        output_cap_tokens=32768,
        dataset=PublicDataset("Idavidrein/gpqa", "train", config="gpqa_diamond"),
        adapter=public_rows.gpqa_row,
        extra_body={"chat_template_kwargs": {"enable_thinking": True}},
    ),
    Task(
        name="sourcegraph-fim",
        title="Code completion (fill in the middle)",
        kind=RunKind.LLM,
        energy_unit="token",
        api="completions",
        output_cap_tokens=2048,
        dataset=PublicDataset("sourcegraph/context-aware-fim-code-completions", "train"),
        adapter=public_rows.fim_row,
    ),
    Task(
        name="image-chat",
        title="Image chat",
        kind=RunKind.MLLM,
        energy_unit="token",
        api="chat",
        output_cap_tokens=4096,
        dataset=PublicDataset("lmarena-ai/VisionArena-Chat", "train"),
        adapter=public_rows.vision_arena_row,
    ),
    Task(
        name="video-chat",
        title="Video chat",
        kind=RunKind.MLLM,
        energy_unit="token",
        api="chat",
        output_cap_tokens=4096,
        dataset=PublicDataset("lmms-lab/LLaVA-Video-178K", "caption", needs_media_dir=True),
        adapter=public_rows.llava_video_row,
        video_frames=32,
    ),
    Task(
        name="text-to-image",
        title="Text to image",
        kind=RunKind.DIFFUSION,
        energy_unit="image",
        api=None,
        output_cap_tokens=None,
        dataset=PublicDataset("data-is-better-together/open-image-preferences-v1", "cleaned"),
        adapter=public_rows.caption_row,
    ),
    Task(
        name="text-to-video",
        title="Text to video",
        kind=RunKind.DIFFUSION,
        energy_unit="video",
        api=None,
        output_cap_tokens=None,
        dataset=PublicDataset("RaphaelLiu/EvalCrafter_T2V_Dataset", "train"),
        adapter=public_rows.caption_row,
    ),
)
_BY_NAME = {task.name: task for task in TASKS}


def get_task(name: str) -> Task:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError(
            f"unknown task {name!r}; known: {', '.join(_BY_NAME)}", field="task"
        ) from None


def task_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)
