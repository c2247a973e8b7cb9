from __future__ import annotations

import pytest

from joulelens.analysis.model_arch import (
    all_model_archs,
    base_model_id,
    diffusion_volume,
    media_tokens,
    model_arch,
    weight_bytes_per_param,
    workload_profile,
)
from joulelens.records import RunRecord


def test_every_model_of_the_public_snapshot_has_architecture_data(
    public_records: list[RunRecord],
) -> None:
    missing = sorted({r.model_id for r in public_records if model_arch(r.model_id) is None})
    assert missing == []


def test_llm_entries_carry_kv_figures_and_diffusion_entries_latent_figures() -> None:
    for arch in all_model_archs().values():
        if arch.is_llm:
            assert arch.kv_bytes_per_token(), arch.model_id
            assert arch.num_layers and arch.hidden_size, arch.model_id
        else:
            assert arch.pixels_per_token and arch.cfg_passes, arch.model_id
        assert arch.total_params_billions >= arch.active_params_billions > 0


def test_qwen3_32b_kv_bytes_per_token() -> None:
    arch = model_arch("Qwen/Qwen3-32B")
    assert arch is not None
    # 64 layers x (K and V) x 8 KV heads x 128 dims x 2 bytes
    assert arch.kv_bytes_per_token() == 64 * 2 * 8 * 128 * 2
    assert arch.kv_bytes_for_sequence(1000) == 1000 * 64 * 2 * 8 * 128 * 2


def test_mla_stores_one_latent_per_layer() -> None:
    arch = model_arch("deepseek-ai/DeepSeek-V3.1")
    assert arch is not None
    assert arch.kv_bytes_per_token() == 61 * 576 * 2


def test_sliding_window_layers_stop_growing_at_the_window() -> None:
    arch = model_arch("openai/gpt-oss-20b")
    assert arch is not None
    per_layer = 2 * 8 * 64 * 2
    short, long = arch.kv_bytes_for_sequence(100), arch.kv_bytes_for_sequence(10_000)
    assert short == per_layer * (12 * 100 + 12 * 100)
    assert long == per_layer * (12 * 10_000 + 12 * 128)


def test_hybrid_models_add_fixed_state() -> None:
    arch = model_arch("nvidia/NVIDIA-Nemotron-Nano-9B-v2")
    assert arch is not None
    assert arch.kv_bytes_for_sequence(0) == arch.state_bytes_per_sequence > 0


def test_weight_bytes_by_precision() -> None:
    assert weight_bytes_per_param("bfloat16") == 2.0
    assert weight_bytes_per_param("bf16") == 2.0
    assert weight_bytes_per_param("fp8") == 1.0
    arch = model_arch("Qwen/Qwen3-8B")
    assert arch is not None
    assert arch.weight_bytes() == pytest.approx(8.19e9 * 2)
    assert arch.weight_bytes("fp8") == pytest.approx(8.19e9)
    oss = model_arch("openai/gpt-oss-120b")
    assert oss is not None and oss.weight_bytes() == pytest.approx(65.3e9)


def test_lookup_by_repo_name_and_base_ids() -> None:
    assert model_arch("qwen/qwen3-8b") is model_arch("Qwen/Qwen3-8B")
    assert model_arch("nobody/unknown") is None
    assert base_model_id("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8") == (
        "Qwen/Qwen3-235B-A22B-Instruct-2507"
    )
    assert base_model_id("Qwen/Qwen3-8B") == "Qwen/Qwen3-8B"


def test_workloads_and_media_tokens() -> None:
    video = workload_profile("video-chat")
    assert video is not None and video.media == "video"
    assert workload_profile("no-such-task") is None
    tokens, basis = media_tokens(model_arch("Qwen/Qwen3-VL-8B-Instruct"), "video")
    assert tokens == 500 and "Qwen3-VL-8B" in basis
    default, basis = media_tokens(None, "image")
    assert default > 0 and "default" in basis


def test_diffusion_volume_for_wan(diffusion_run) -> None:
    run = diffusion_run(
        "wan",
        60_000.0,
        1,
        task="text-to-video",
        model_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        height=480,
        width=832,
        num_frames=81,
        inference_steps=50,
        activated_params_billions=1.3,
    )
    volume = diffusion_volume(run)
    assert volume is not None
    total, parts = volume
    # 480x832 / 256 = 1,560 tokens per latent frame; (81 - 1) / 4 + 1 = 21 latent frames
    assert parts["latent_tokens"] == pytest.approx(1560 * 21)
    assert total == pytest.approx(50 * 1560 * 21 * 2 * 1.3)


def test_diffusion_volume_without_model_data_uses_pixels(diffusion_run) -> None:
    run = diffusion_run("x", 100.0, 1, model_id="nobody/unknown", activated_params_billions=1.0)
    volume = diffusion_volume(run)
    assert volume is not None and volume[1]["latent_tokens"] == 1024 * 1024
