"""A small ML.ENERGY Leaderboard snapshot (index.json, tasks/, models/) written by the tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

LLM = "acme/Reason-8B"
VLM = "acme/See-4B"
T2I = "acme/Paint-2B"
T2V = "acme/Film-1B"


def llm_row(model_id: str = LLM, *, max_num_seqs: int = 8, **over: Any) -> dict[str, Any]:
    row = {
        "activated_params_billions": 8.0,
        "architecture": "Dense Transformer",
        "avg_batch_size": max_num_seqs * 0.99,
        "avg_output_len": 1000.0,
        "avg_power_watts": 300.0,
        "data_parallel": 1,
        "energy_per_request_joules": 500.0,
        "energy_per_token_joules": 0.5,
        "expert_parallel": 1,
        "gpu_model": "H100",
        "max_num_seqs": max_num_seqs,
        "median_itl_ms": 20.0,
        "model_id": model_id,
        "nickname": "Reason 8B",
        "num_gpus": 1,
        "output_throughput_tokens_per_sec": 600.0,
        "p90_itl_ms": 30.0,
        "p95_itl_ms": 35.0,
        "p99_itl_ms": 50.0,
        "tensor_parallel": 1,
        "total_params_billions": 8.0,
        "weight_precision": "bfloat16",
    }
    return {**row, **over}


def image_row(**over: Any) -> dict[str, Any]:
    row = {
        "activated_params_billions": 2.0,
        "avg_power_watts": 500.0,
        "batch_latency_s": 4.0,
        "batch_size": 4,
        "energy_per_image_joules": 500.0,
        "gpu_model": "B200",
        "image_height": 1024,
        "image_width": 1024,
        "inference_steps": 28,
        "model_id": T2I,
        "nickname": "Paint 2B",
        "num_gpus": 1,
        "ring_degree": 1,
        "throughput_images_per_sec": 1.0,
        "total_params_billions": 2.0,
        "ulysses_degree": 1,
        "weight_precision": "bfloat16",
    }
    return {**row, **over}


def video_row(**over: Any) -> dict[str, Any]:
    row = {
        "activated_params_billions": 1.0,
        "avg_power_watts": 800.0,
        "batch_latency_s": 80.0,
        "batch_size": 1,
        "energy_per_video_joules": 64000.0,
        "fps": 15,
        "gpu_model": "H100",
        "inference_steps": 50,
        "model_id": T2V,
        "nickname": "Film 1B",
        "num_frames": 81,
        "num_gpus": 1,
        "ring_degree": 1,
        "throughput_videos_per_sec": 0.0125,
        "total_params_billions": 1.0,
        "ulysses_degree": 1,
        "video_height": 480,
        "video_width": 832,
        "weight_precision": "bfloat16",
    }
    return {**row, **over}


HIST_8 = {"bins": [0.0, 500.0, 1000.0, 1500.0], "counts": [2, 5, 3]}


def snapshot_docs() -> dict[str, Any]:
    """Relative path -> JSON document. gpqa: batches 8 and 16 plus a repeated batch 8 row;
    only batch 8 has a histogram. image-chat has no model file at all."""
    gpqa = [llm_row(), llm_row(max_num_seqs=16), llm_row(avg_power_watts=310.0)]
    chat = [llm_row(VLM, nickname=None, architecture=None, max_num_seqs=32)]
    return {
        "index.json": {
            "architectures": {
                "diffusion": ["text-to-image", "text-to-video"],
                "llm": ["gpqa"],
                "mllm": ["image-chat"],
            },
            "last_updated": "2026-02-16",
            "models": {
                LLM: {"nickname": "Reason 8B", "architecture": "Dense Transformer"},
                VLM: {"nickname": "See 4B", "architecture": "Vision MoE"},
                T2I: {"nickname": "Paint 2B"},
                T2V: {"nickname": "Film 1B"},
            },
            "tasks": ["gpqa", "image-chat", "text-to-image", "text-to-video"],
        },
        "tasks/gpqa.json": {"task": "gpqa", "configurations": gpqa},
        "tasks/image-chat.json": {"task": "image-chat", "configurations": chat},
        "tasks/text-to-image.json": {
            "architecture": "diffusion",
            "task": "text-to-image",
            "configurations": [image_row(), image_row(batch_size=8, batch_latency_s=7.0)],
        },
        "tasks/text-to-video.json": {
            "architecture": "diffusion",
            "task": "text-to-video",
            "configurations": [video_row()],
        },
        "models/acme__Reason-8B__gpqa.json": {
            "model_id": LLM,
            "task": "gpqa",
            "configurations": [
                {
                    "gpu_model": "H100",
                    "num_gpus": 1,
                    "max_num_seqs": 8,
                    "parallelization": {"tensor_parallel": 1},
                    "output_length_distribution": copy.deepcopy(HIST_8),
                }
            ],
        },
    }


def write_snapshot(root: Path, docs: dict[str, Any] | None = None) -> Path:
    for rel, doc in (docs or snapshot_docs()).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return root
