"""Synthetic batch-size sweeps whose identities hold (energy = power / throughput)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from joulelens.records import RunRecord

MakeRecord = Callable[..., RunRecord]


def llm_power_watts(batch: float, num_gpus: int = 1) -> float:
    """Rises with batch and saturates: 300 W static-ish floor, up to 700 W per GPU."""
    return num_gpus * (300.0 + 400.0 * (1.0 - 2.0 ** (-batch / 64.0)))


def llm_itl_ms(batch: float, num_gpus: int = 1) -> float:
    return (10.0 + 0.05 * batch) / num_gpus**0.5


def llm_run(
    make_record: MakeRecord,
    batch: int,
    *,
    run_id: str | None = None,
    model_id: str = "test/model",
    gpu: str = "H100",
    num_gpus: int = 1,
    precision: str = "bfloat16",
    task: str = "lm-arena-chat",
    power_watts: float | None = None,
    itl_ms: float | None = None,
    **extra: Any,
) -> RunRecord:
    power = power_watts if power_watts is not None else llm_power_watts(batch, num_gpus)
    itl = itl_ms if itl_ms is not None else llm_itl_ms(batch, num_gpus)
    throughput = batch / (itl / 1000.0)
    energy = power / throughput
    fields: dict[str, Any] = {
        "run_id": run_id or f"{model_id.replace('/', '-')}-{gpu}-{num_gpus}-{task}-{batch}",
        "kind": "llm",
        "task": task,
        "model_id": model_id,
        "nickname": model_id.split("/")[-1],
        "gpu_model": gpu,
        "num_gpus": num_gpus,
        "tensor_parallel": num_gpus,
        "weight_precision": precision,
        "max_num_seqs": batch,
        "avg_batch_size": float(batch),
        "avg_power_watts": power,
        "output_throughput_tokens_per_sec": throughput,
        "energy_per_token_joules": energy,
        "energy_per_request_joules": energy * 500.0,
        "avg_output_len": 500.0,
        "median_itl_ms": itl,
        "p90_itl_ms": itl * 1.3,
        "p95_itl_ms": itl * 1.45,
        "p99_itl_ms": itl * 1.6,
    }
    fields.update(extra)
    return make_record(**fields)


def llm_sweep(make_record: MakeRecord, batches: list[int], **kw: Any) -> list[RunRecord]:
    return [llm_run(make_record, b, **kw) for b in batches]


def diffusion_run(
    make_record: MakeRecord,
    batch: int,
    *,
    model_id: str = "test/diffusion",
    gpu: str = "H100",
    num_gpus: int = 1,
    task: str = "text-to-image",
    **extra: Any,
) -> RunRecord:
    latency_s = 1.0 + 0.8 * batch
    power = 500.0 + 30.0 * batch
    unit = "video" if "video" in task else "image"
    fields: dict[str, Any] = {
        "run_id": f"{model_id.replace('/', '-')}-{gpu}-{num_gpus}-{task}-{batch}",
        "kind": "diffusion",
        "task": task,
        "model_id": model_id,
        "gpu_model": gpu,
        "num_gpus": num_gpus,
        "weight_precision": "bfloat16",
        "batch_size": batch,
        "batch_latency_s": latency_s,
        "avg_power_watts": power,
        f"energy_per_{unit}_joules": power * latency_s / batch,
        f"throughput_{unit}s_per_sec": batch / latency_s,
        "height": 1024,
        "width": 1024,
        "inference_steps": 20,
    }
    fields.update(extra)
    return make_record(**fields)
