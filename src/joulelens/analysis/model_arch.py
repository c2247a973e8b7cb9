"""Model architecture facts (``data/model_arch.json``) and what follows from them.

Used where a run did not record what the diagnosis needs: KV-cache bytes per token and
weight bytes (for a memory estimate when KV-cache usage is absent), the text counterpart
of a multimodal model, and latent tokens per generation for diffusion compute volume.
Every figure here is an estimate with a stated basis; callers say so when they use one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joulelens.records import RunRecord

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class ModelArch:
    model_id: str
    family: str
    architecture: str  # "dense", "moe", "hybrid-mamba", "diffusion"
    total_params_billions: float
    active_params_billions: float
    weight_precision: str
    confidence: str  # "config" or "approximate"
    notes: str = ""
    text_counterpart: str | None = None  # a multimodal model's text-only sibling
    num_layers: int | None = None
    full_attention_layers: int | None = None
    sliding_window_layers: int = 0
    sliding_window_tokens: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    kv_tensors_per_layer: int = 2  # K and V; 1 for MLA's single compressed latent
    hidden_size: int | None = None
    weights_gb: float | None = None  # checkpoint size where the precision mix makes it uneven
    state_bytes_per_sequence: int = 0  # fixed per-sequence state (Mamba layers)
    image_tokens_estimate: int | None = None
    video_tokens_estimate: int | None = None
    pixels_per_token: int | None = None  # diffusion: pixels per latent token (VAE x patch)
    latent_frame_stride: int | None = None  # diffusion video: frames per latent frame
    cfg_passes: int | None = None  # diffusion: transformer passes per step (2 with CFG)

    @property
    def is_llm(self) -> bool:
        return self.architecture != "diffusion"

    def weight_bytes(self, precision: str | None = None) -> float:
        """Bytes of weights for the whole model (all GPUs together)."""
        if self.weights_gb is not None and (
            precision is None or precision == self.weight_precision
        ):
            return self.weights_gb * 1e9
        per_param = weight_bytes_per_param(precision or self.weight_precision)
        return self.total_params_billions * 1e9 * per_param

    def kv_bytes_per_layer_token(self) -> float | None:
        """K and V for one token in one attention layer (MLA: one latent, no separate V)."""
        if self.num_kv_heads is None or self.head_dim is None:
            return None
        return (
            self.kv_tensors_per_layer
            * self.num_kv_heads
            * self.head_dim
            * _data()["kv_cache_bytes_per_element"]
        )

    def kv_bytes_for_sequence(self, tokens: float) -> float | None:
        """KV cache (plus fixed state) one sequence of ``tokens`` holds, all layers, bytes.

        Sliding-window layers hold at most their window.
        """
        per = self.kv_bytes_per_layer_token()
        if per is None or self.full_attention_layers is None:
            return None
        windowed = 0.0
        if self.sliding_window_layers and self.sliding_window_tokens:
            windowed = self.sliding_window_layers * min(tokens, self.sliding_window_tokens)
        return (
            per * (self.full_attention_layers * tokens + windowed) + self.state_bytes_per_sequence
        )

    def kv_bytes_per_token(self) -> float | None:
        """KV bytes per additional token of a long sequence (full-attention layers only)."""
        per = self.kv_bytes_per_layer_token()
        if per is None or self.full_attention_layers is None:
            return None
        return per * self.full_attention_layers

    def latent_tokens(self, height: int, width: int, frames: int | None) -> float | None:
        """Diffusion: transformer tokens per generation (image or video)."""
        if self.pixels_per_token is None:
            return None
        spatial = height * width / self.pixels_per_token
        if not frames or frames <= 1:
            return spatial
        stride = self.latent_frame_stride or 1
        return spatial * (1 + (frames - 1) / stride)


@dataclass(frozen=True, slots=True)
class WorkloadProfile:
    task: str
    avg_input_tokens: float
    basis: str
    media: str | None = None  # "image" or "video": per-request media tokens from the model


@cache
def _data() -> dict[str, Any]:
    text = resources.files("joulelens.analysis").joinpath("data/model_arch.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _archs() -> dict[str, ModelArch]:
    fields = set(ModelArch.__dataclass_fields__)
    out = {}
    for model_id, raw in _data()["models"].items():
        kwargs = {k: v for k, v in raw.items() if k in fields}
        out[model_id] = ModelArch(model_id=model_id, **kwargs)
    return out


def all_model_archs() -> dict[str, ModelArch]:
    return dict(_archs())


def model_arch(model_id: str) -> ModelArch | None:
    """Facts for a model id (exact, then case-insensitive on the repo name); None if unknown."""
    archs = _archs()
    if model_id in archs:
        return archs[model_id]
    tail = model_id.rsplit("/", 1)[-1].lower()
    for known_id, arch in archs.items():
        if known_id.rsplit("/", 1)[-1].lower() == tail:
            return arch
    return None


def weight_bytes_per_param(precision: str | None) -> float:
    table: dict[str, float] = _data()["weight_bytes_per_param"]
    key = (precision or "bfloat16").lower()
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "float8": "fp8"}
    key = aliases.get(key, key)
    return table.get(key, table["bfloat16"])


def workload_profile(task: str) -> WorkloadProfile | None:
    raw = _data()["workloads"].get(task)
    if raw is None:
        return None
    return WorkloadProfile(
        task=task,
        avg_input_tokens=float(raw["avg_input_tokens"]),
        basis=raw["basis"],
        media=raw.get("media"),
    )


def media_tokens(arch: ModelArch | None, media: str) -> tuple[float, str]:
    """Estimated tokens one image or video adds to a request, and where the figure is from."""
    if arch is not None:
        value = arch.image_tokens_estimate if media == "image" else arch.video_tokens_estimate
        if value is not None:
            return float(value), f"{arch.model_id} entry ({arch.notes or 'estimate'})"
    default = float(_data()["default_media_tokens"][media])
    return default, f"default {media} estimate (no model-specific figure)"


def base_model_id(model_id: str) -> str:
    """The BF16 sibling of a quantized checkpoint: "...-FP8" -> "..."."""
    for suffix in ("-FP8", "-fp8", "-FP8-Dynamic", "-BF16"):
        if model_id.endswith(suffix):
            return model_id[: -len(suffix)]
    return model_id


def diffusion_volume(record: RunRecord) -> tuple[float, dict[str, float]] | None:
    """Compute volume per generation and its parts: denoising steps x latent tokens x
    guidance passes x active parameters (billions). A linear proxy for FLOPs: attention's
    quadratic term in latent tokens is left out. Without model data, pixels x frames stand in
    for latent tokens and one guidance pass is assumed."""
    arch = model_arch(record.model_id)
    params = record.activated_params_billions or (arch.active_params_billions if arch else None)
    if (
        record.inference_steps is None
        or record.height is None
        or record.width is None
        or not params
    ):
        return None
    tokens = arch.latent_tokens(record.height, record.width, record.num_frames) if arch else None
    if tokens is None:
        tokens = float(record.height * record.width * (record.num_frames or 1))
    passes = float(arch.cfg_passes or 1) if arch else 1.0
    parts = {
        "steps": float(record.inference_steps),
        "latent_tokens": tokens,
        "guidance_passes": passes,
        "params": float(params),
    }
    return parts["steps"] * tokens * passes * parts["params"], parts
