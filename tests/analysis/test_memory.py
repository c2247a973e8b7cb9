from __future__ import annotations

import pytest

from joulelens.analysis.memory import MemoryEstimate, NoEstimate, estimate_kv_memory
from joulelens.analysis.model_arch import GIB
from joulelens.analysis.thresholds import ACTIVATION_RESERVE_GIB_PER_GPU, GPU_MEMORY_UTILIZATION


def test_estimate_matches_the_documented_formula(llm_run) -> None:
    run = llm_run("m", 0.1, 256, model_id="Qwen/Qwen3-8B", gpu_model="B200", avg_output_len=600.0)
    est = estimate_kv_memory(run)
    assert isinstance(est, MemoryEstimate)
    tokens = 200 + 600 / 2  # lm-arena-chat input estimate + half the output
    assert est.tokens_per_sequence == pytest.approx(tokens)
    per_seq = tokens * 36 * 2 * 8 * 128 * 2 / GIB
    assert est.kv_per_sequence_gib == pytest.approx(per_seq)
    capacity = 179.1 * GPU_MEMORY_UTILIZATION - ACTIVATION_RESERVE_GIB_PER_GPU - 8.19e9 * 2 / GIB
    assert est.kv_capacity_gib == pytest.approx(capacity)
    assert est.usage == pytest.approx(256 * per_seq / capacity)
    assert est.usage_at(512) == pytest.approx(2 * est.usage)
    assert est.max_batch() == pytest.approx(capacity / per_seq)
    assert est.to_dict()["assumptions"]


def test_more_gpus_add_capacity_and_tp_beyond_kv_heads_replicates(llm_run) -> None:
    one = estimate_kv_memory(llm_run("a", 0.1, 64, model_id="Qwen/Qwen3-30B-A3B-Instruct-2507"))
    two = estimate_kv_memory(
        llm_run("b", 0.1, 64, model_id="Qwen/Qwen3-30B-A3B-Instruct-2507", num_gpus=2)
    )
    eight = estimate_kv_memory(
        llm_run(
            "c", 0.1, 64, model_id="Qwen/Qwen3-30B-A3B-Instruct-2507", num_gpus=8, tensor_parallel=8
        )
    )
    assert isinstance(one, MemoryEstimate) and isinstance(two, MemoryEstimate)
    assert isinstance(eight, MemoryEstimate)
    assert two.kv_capacity_gib > 2 * one.kv_capacity_gib  # the weights are paid once
    assert eight.kv_per_sequence_gib == pytest.approx(2 * one.kv_per_sequence_gib)  # 4 KV heads


def test_media_tokens_enter_multimodal_requests(llm_run) -> None:
    text = estimate_kv_memory(llm_run("t", 0.1, 64, model_id="Qwen/Qwen3-VL-8B-Instruct"))
    video = estimate_kv_memory(
        llm_run("v", 0.1, 64, model_id="Qwen/Qwen3-VL-8B-Instruct", kind="mllm", task="video-chat")
    )
    assert isinstance(text, MemoryEstimate) and isinstance(video, MemoryEstimate)
    assert video.tokens_per_sequence == pytest.approx(40 + 500 + 250)
    assert any("per video" in a for a in video.assumptions)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"gpu_model": "cpu"}, "no memory figure"),
        ({"model_id": "nobody/unknown"}, "no architecture data"),
        ({"task": "my-own-task"}, "no input/output length"),
    ],
)
def test_no_estimate_says_why(llm_run, overrides: dict, reason: str) -> None:
    est = estimate_kv_memory(llm_run("x", 0.1, 64, **{"model_id": "Qwen/Qwen3-8B", **overrides}))
    assert isinstance(est, NoEstimate) and reason in est.reason


def test_diffusion_has_no_kv_cache(diffusion_run) -> None:
    est = estimate_kv_memory(diffusion_run("d", 100.0, 4))
    assert isinstance(est, NoEstimate)
