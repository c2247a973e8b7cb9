"""Architecture configs kept as data: their shapes match the published parameter counts."""

from __future__ import annotations

import pytest

from joulelens.engines.arch import arch_names, build_model, get_arch, reference_model_for
from joulelens.engines.arch.pipelines import get_pipeline_spec, pipeline_names
from joulelens.engines.arch.tokenizers import BYTE_SPECIAL_TOKENS, byte_tokenizer
from joulelens.errors import EngineError

torch = pytest.importorskip(
    "torch", reason="needs the engines extra (pip install 'joulelens[engines]')"
)
AutoModelForCausalLM = pytest.importorskip(
    "transformers", reason="needs the engines extra (pip install 'joulelens[engines]')"
).AutoModelForCausalLM


def meta_counts(name: str) -> tuple[float, float]:
    """Total and active parameters (billions) of a config, built on the meta device (no memory)."""
    spec = get_arch(name)
    config = spec.hf_config()
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    active = total
    if getattr(config, "num_experts", None):
        per_expert = 3 * config.hidden_size * config.moe_intermediate_size
        layers = config.num_hidden_layers
        active -= layers * (config.num_experts - config.num_experts_per_tok) * per_expert
    return total / 1e9, active / 1e9


def test_the_required_shapes_are_packaged() -> None:
    assert {"llama-3.1-8b", "qwen3-8b", "qwen3-30b-a3b", "tiny-llama", "tiny-qwen2-vl"} <= set(
        arch_names()
    )
    assert {"tiny-sd", "tiny-wan"} <= set(pipeline_names())
    assert get_pipeline_spec("arch:tiny-wan").task == "text-to-video"


@pytest.mark.parametrize(
    "name, published_total, published_active",
    [
        ("llama-3.1-8b", 8.03, 8.03),
        ("qwen3-8b", 8.19, 8.19),
        ("qwen3-30b-a3b", 30.5, 3.3),
        ("qwen3-32b", 32.8, 32.8),
        ("qwen3-235b-a22b", 235.1, 22.2),
        ("llama-3.1-70b", 70.6, 70.6),
        ("smollm2-135m", 0.135, 0.135),
    ],
)
def test_shapes_match_published_parameter_counts(
    name: str, published_total: float, published_active: float
) -> None:
    total, active = meta_counts(name)
    assert total == pytest.approx(published_total, rel=0.01)
    assert active == pytest.approx(published_active, rel=0.02)
    spec = get_arch(name)
    assert spec.total_params_billions == pytest.approx(total, rel=0.01)
    assert spec.activated_params_billions == pytest.approx(active, rel=0.02)


def test_moe_shapes_say_so_and_borrow_output_lengths_per_task() -> None:
    spec = get_arch("arch:qwen3-30b-a3b")
    assert spec.architecture == "MoE"
    assert spec.reference_for("gpqa") == "Qwen/Qwen3-30B-A3B-Thinking-2507"
    assert spec.reference_for("image-chat") == spec.reference_model_id
    assert reference_model_for("arch:qwen3-8b", "gpqa") == "Qwen/Qwen3-8B"
    assert reference_model_for("arch:tiny-llama", "gpqa") is None
    assert reference_model_for("Qwen/Qwen3-8B", "gpqa") is None


def test_tiny_models_build_with_seeded_random_weights() -> None:
    spec = get_arch("tiny-llama")
    a = build_model(spec, torch.device("cpu"), torch.float32, seed=3)
    b = build_model(spec, torch.device("cpu"), torch.float32, seed=3)
    c = build_model(spec, torch.device("cpu"), torch.float32, seed=4)
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert sum(p.numel() for p in a.parameters()) / 1e9 == pytest.approx(
        spec.total_params_billions, rel=0.02
    )


def test_a_shape_too_big_for_this_machine_is_refused_before_building() -> None:
    with pytest.raises(EngineError, match="GiB"):
        build_model(get_arch("qwen3-235b-a22b"), torch.device("cpu"), torch.float32, seed=0)


def test_byte_tokenizer_has_fixed_special_ids_and_round_trips() -> None:
    tok = byte_tokenizer()
    assert [tok.convert_tokens_to_ids(t) for t in BYTE_SPECIAL_TOKENS] == list(
        range(256, 256 + len(BYTE_SPECIAL_TOKENS))
    )
    text = "héllo <|fim_prefix|>x"
    ids = tok(text, add_special_tokens=False).input_ids
    assert ids[:2] == [ord("h"), 0xC3]  # one token per UTF-8 byte, in byte order
    assert 263 in ids  # the FIM marker is one token
    assert tok.decode(ids) == text
    vl = get_arch("tiny-qwen2-vl").config
    assert vl["image_token_id"] == tok.convert_tokens_to_ids("<|image_pad|>")
    assert vl["text_config"]["vocab_size"] >= len(tok)
