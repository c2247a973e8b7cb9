"""Tiny random diffusion pipelines built from configs kept as data (``pipeline_configs/*.json``).

``arch:tiny-sd`` (text-to-image, Stable Diffusion shape) and ``arch:tiny-wan`` (text-to-video,
Wan 2.1 shape) run a full denoising loop plus VAE decode in about a second on a CPU, so the
diffusion path is exercised end to end offline. Their tokenizer is the byte-level one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from joulelens.engines.arch import ARCH_PREFIX
from joulelens.errors import InputError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    name: str
    description: str
    task: str  # "text-to-image" or "text-to-video"
    pipeline: str  # diffusers pipeline class name
    components: dict[str, dict[str, Any]]
    defaults: dict[str, int] = field(default_factory=dict)  # steps, height, width, num_frames
    tokenizer_max_length: int = 77
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return f"{ARCH_PREFIX}{self.name}"


@cache
def _specs() -> dict[str, PipelineSpec]:
    folder = resources.files("joulelens.engines.arch").joinpath("pipeline_configs")
    specs = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            spec = PipelineSpec(**json.loads(entry.read_text()))
            specs[spec.name] = spec
    return specs


def pipeline_names() -> tuple[str, ...]:
    return tuple(sorted(_specs()))


def get_pipeline_spec(name: str) -> PipelineSpec:
    key = name.removeprefix(ARCH_PREFIX)
    try:
        return _specs()[key]
    except KeyError:
        raise InputError(
            f"unknown diffusion architecture {key!r}; known: {', '.join(pipeline_names())}",
            field="model",
        ) from None


def build_pipeline(spec: PipelineSpec, device: torch.device, dtype: torch.dtype, seed: int) -> Any:
    """The pipeline with seeded random weights on ``device``."""
    import diffusers
    import torch
    import transformers

    from joulelens.engines.arch.tokenizers import byte_tokenizer

    torch.manual_seed(seed)
    parts: dict[str, Any] = {}
    for name, component in spec.components.items():
        library = diffusers if component["library"] == "diffusers" else transformers
        cls = getattr(library, component["class"])
        if name == "scheduler":
            parts[name] = cls(**component["config"])
        elif "config_class" in component:
            config = getattr(transformers, component["config_class"])(**component["config"])
            parts[name] = cls(config)
        else:
            parts[name] = cls(**component["config"])
    parts["tokenizer"] = byte_tokenizer(model_max_length=spec.tokenizer_max_length)
    pipeline = getattr(diffusers, spec.pipeline)(**parts, **spec.pipeline_kwargs)
    if dtype != torch.float32:  # built in float32; cast only when asked for another precision
        pipeline = pipeline.to(dtype=dtype)
    return pipeline.to(device)
