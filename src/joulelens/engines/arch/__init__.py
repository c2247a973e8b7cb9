"""Architecture-only models: the shapes of common models, kept as data, built with random weights.

``arch:<name>`` measures what an architecture costs on the local hardware without downloading
weights. Each ``configs/<name>.json`` holds a Hugging Face config (``model_type`` + fields)
and what the records need (published parameter counts, the model the shape is taken from).
Weights are random (seeded); output lengths come from a task's published distribution
instead of EOS, so the run still does the right amount of decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from joulelens.errors import EngineError, InputError

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

ARCH_PREFIX = "arch:"


@dataclass(frozen=True, slots=True)
class ArchSpec:
    name: str
    description: str
    architecture: str  # "Dense Transformer" or "MoE", as ML.ENERGY labels them
    model_class: str  # "causal-lm" or "image-text-to-text"
    total_params_billions: float
    activated_params_billions: float
    tokenizer: str  # "stand-in" (SmolLM2 BPE, else bytes) or "bytes"
    config: dict[str, Any]
    reference_model_id: str | None = None
    reference_model_ids_by_task: dict[str, str] = field(default_factory=dict)
    image_processor: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return f"{ARCH_PREFIX}{self.name}"

    @property
    def is_multimodal(self) -> bool:
        return self.model_class == "image-text-to-text"

    def reference_for(self, task: str) -> str | None:
        """The published model whose output lengths this shape borrows for ``task``."""
        return self.reference_model_ids_by_task.get(task, self.reference_model_id)

    def hf_config(self) -> PretrainedConfig:
        from transformers import AutoConfig

        fields = dict(self.config)
        model_type = fields.pop("model_type")
        return AutoConfig.for_model(model_type, **fields)


@cache
def _specs() -> dict[str, ArchSpec]:
    specs: dict[str, ArchSpec] = {}
    folder = resources.files("joulelens.engines.arch").joinpath("configs")
    for entry in folder.iterdir():
        if not entry.name.endswith(".json"):
            continue
        raw = json.loads(entry.read_text())
        raw.pop("$comment", None)
        spec = ArchSpec(**raw)
        specs[spec.name] = spec
    return specs


def arch_names() -> tuple[str, ...]:
    return tuple(sorted(_specs()))


def get_arch(name: str) -> ArchSpec:
    key = name.removeprefix(ARCH_PREFIX)
    try:
        return _specs()[key]
    except KeyError:
        raise InputError(
            f"unknown architecture {key!r}; known: {', '.join(arch_names())}", field="model"
        ) from None


def build_model(
    spec: ArchSpec, device: torch.device, dtype: torch.dtype, seed: int
) -> PreTrainedModel:
    """The model with seeded random weights, created directly on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    _check_fits(spec, device, dtype)
    config = spec.hf_config()
    factory = AutoModelForImageTextToText if spec.is_multimodal else AutoModelForCausalLM
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
        with device:
            model = factory.from_config(config, dtype=dtype)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def _check_fits(spec: ArchSpec, device: torch.device, dtype: torch.dtype) -> None:
    """Refuse early, with the numbers, rather than die of an out-of-memory mid-build."""
    import torch

    need_bytes = spec.total_params_billions * 1e9 * torch.finfo(dtype).bits / 8
    if device.type == "cuda":
        free_bytes, _ = torch.cuda.mem_get_info(device)
        where = f"GPU {device}"
    else:
        import psutil

        free_bytes = psutil.virtual_memory().available
        where = "this machine's free RAM"
    if need_bytes > 0.9 * free_bytes:
        raise EngineError(
            f"arch:{spec.name} needs about {need_bytes / 2**30:.1f} GiB of weights in {dtype}, "
            f"more than {where} has ({free_bytes / 2**30:.1f} GiB free); "
            "use a smaller shape (e.g. arch:tiny-llama) or a GPU with more memory"
        )


def reference_model_for(model: str, task: str) -> str | None:
    """The published model an ``arch:`` shape borrows output lengths from for ``task``
    (pass it to ``Task.output_lengths(store, model_id)``); ``None`` for other models."""
    if not model.startswith(ARCH_PREFIX):
        return None
    return get_arch(model).reference_for(task)
