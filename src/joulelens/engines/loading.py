"""Load a parsed model reference into a model, tokenizer and (for VLMs) a processor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joulelens.engines import arch as arch_models
from joulelens.engines.models import ModelRef, converted_gguf_dir, smollm2_dir
from joulelens.errors import EngineError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(slots=True)
class LoadedModel:
    ref: ModelRef
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    processor: Any | None  # set for vision-language models
    tokenizer_label: str | None  # arch models: which stand-in tokenizer
    arch: arch_models.ArchSpec | None
    source_dir: str | None  # where the weights were read from (None for arch)

    @property
    def is_multimodal(self) -> bool:
        return self.processor is not None

    def record_fields(self) -> dict[str, Any]:
        """Model fields of a run record (``RunRecord`` names)."""
        params = sum(p.numel() for p in self.model.parameters()) / 1e9
        fields: dict[str, Any] = {
            "model_id": self.ref.model_id,
            "weight_precision": str(self.model.dtype).removeprefix("torch."),
            "total_params_billions": round(params, 4),
        }
        if self.arch is not None:
            fields.update(
                nickname=f"{self.arch.name} (architecture only, random weights)",
                architecture=self.arch.architecture,
                total_params_billions=self.arch.total_params_billions,
                activated_params_billions=self.arch.activated_params_billions,
            )
        return fields


def load(ref: ModelRef, device: torch.device, dtype: torch.dtype, seed: int) -> LoadedModel:
    if ref.kind == "arch":
        return _load_arch(ref, device, dtype, seed)
    if ref.kind == "alias":
        location = str(smollm2_dir())
    elif ref.kind == "gguf":
        location = str(converted_gguf_dir(Path(ref.location)))
    else:
        location = ref.location
    return _load_pretrained(ref, location, device, dtype)


def _load_arch(ref: ModelRef, device: torch.device, dtype: torch.dtype, seed: int) -> LoadedModel:
    from joulelens.engines.arch.tokenizers import byte_tokenizer, stand_in_tokenizer

    spec = arch_models.get_arch(ref.location)
    if spec.tokenizer == "bytes":
        tokenizer, label = byte_tokenizer(), "byte-level"
    else:
        tokenizer, label = stand_in_tokenizer()
    vocab_size = spec.hf_config().get_text_config().vocab_size
    if len(tokenizer) > vocab_size:
        raise EngineError(
            f"arch:{spec.name}: tokenizer has {len(tokenizer)} tokens, vocabulary {vocab_size}"
        )
    if tokenizer.pad_token_id is None:  # static batches pad (transformers 5.17 insists)
        tokenizer.pad_token = tokenizer.eos_token
    model = arch_models.build_model(spec, device, dtype, seed)
    processor = None
    if spec.is_multimodal:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )

        from joulelens.engines.vision import PatchMergeProcessor

        processor = PatchMergeProcessor(tokenizer, Qwen2VLImageProcessorPil(**spec.image_processor))
    return LoadedModel(ref, model, tokenizer, processor, label, spec, None)


def _is_vision_language(config: Any) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES and hasattr(
        config, "vision_config"
    )


def _load_pretrained(
    ref: ModelRef, location: str, device: torch.device, dtype: torch.dtype
) -> LoadedModel:
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
    )

    try:
        config = AutoConfig.from_pretrained(location)
        processor = None
        if _is_vision_language(config):
            try:
                processor = AutoProcessor.from_pretrained(location)
            except ImportError as exc:
                raise EngineError(
                    f"{ref.model_id} is a vision-language model whose processor needs a package "
                    f"that is not installed ({exc}); install torchvision matching your torch "
                    "(see pytorch.org), or use --model arch:tiny-qwen2-vl"
                ) from exc
            tokenizer = processor.tokenizer
            model = AutoModelForImageTextToText.from_pretrained(
                location, dtype=dtype, device_map=device
            )
        else:
            tokenizer = AutoTokenizer.from_pretrained(location)
            model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, device_map=device)
    except (OSError, ValueError) as exc:  # missing files, offline hub, unknown architecture
        raise EngineError(f"cannot load model {ref.spec!r}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(ref, model.eval(), tokenizer, processor, None, None, location)
