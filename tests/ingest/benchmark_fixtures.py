"""Hand-written ML.ENERGY Benchmark result files, laid out as the harness writes them.

Numbers are chosen so the expected metrics can be worked out by hand in the tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

T0 = 1_763_283_000.0  # benchmark start (unix s)
SS_START = T0 + 10.0
SS_END = SS_START + 30.0


def llm_run_dir(
    root: Path,
    *,
    task: str = "lm-arena-chat",
    model_id: str = "acme/Chat-8B",
    gpu: str = "H100",
    num_gpus: int = 1,
    max_num_seqs: int = 8,
    family: str = "llm",
) -> Path:
    params = f"num_gpus+{num_gpus}+max_num_seqs+{max_num_seqs}+num_request_repeats+1+seed+48105"
    return root / "run" / family / task / "results" / model_id / gpu / params


def llm_results(
    *,
    model_id: str = "acme/Chat-8B",
    gpu: str = "H100",
    num_gpus: int = 1,
    max_num_seqs: int = 8,
    steady_state_energy: float = 6000.0,
    steady_state_duration: float = 30.0,
    steady_state_energy_per_token: float = 0.5,
) -> dict[str, Any]:
    """Four requests: output lengths 100..400 (mean 250); ITL gaps that smooth to
    10, 10, 10, 30 ms (request 1) and 20, 20, 20 ms (request 2, one 3-token chunk)."""
    requests = [
        {"output_len": 100, "itl": [0.01, 0.02, 0.0, 0.03], "ttft": 0.1, "latency": 1.0},
        {"output_len": 200, "itl": [0.0, 0.06, 0.0, 0.0], "ttft": 0.2, "latency": 2.0},
        {"output_len": 300, "itl": [], "ttft": 0.3, "latency": 3.0},
        {"output_len": 400, "itl": [], "ttft": 0.4, "latency": 4.0},
    ]
    doc: dict[str, Any] = {
        "date": "20251116-101010",
        "endpoint_type": "openai-chat",
        "model_id": model_id,
        "seed": 48105,
        "num_unique_prompts": 4,
        "num_prompts": 4,
        "num_request_repeats": 1,
        "gpu_model": gpu,
        "num_gpus": num_gpus,
        "max_num_seqs": max_num_seqs,
        "max_num_batched_tokens": None,
        "request_rate": "inf",
        "burstiness": 1.0,
        "max_concurrency": None,
        "max_output_tokens": 400,
        "duration": 50.0,
        "completed": 4,
        "steady_state_duration": steady_state_duration,
        "steady_state_energy": steady_state_energy,
        "steady_state_energy_per_token": steady_state_energy_per_token,
        "total_input_tokens": 80,
        "total_output_tokens": 1000,
        "request_throughput": 0.08,
        "output_throughput": 20.0,
        "total_token_throughput": 21.6,
        "steady_state_measurement": {
            "time": steady_state_duration,
            "gpu_energy": {"0": steady_state_energy},
            "cpu_energy": None,
            "dram_energy": None,
            "soc_energy": None,
        },
        "entire_benchmark_measurement": {"time": 50.0, "gpu_energy": {"0": 9000.0}},
        "timeline": {
            "benchmark_start_time": T0,
            "benchmark_end_time": T0 + 50.0,
            "steady_state_start_time": SS_START,
            "steady_state_end_time": SS_END,
            "power": {"device_instant": {"0": [[T0, 150.0]]}},
            "temperature": {"0": [[T0, 40]]},
        },
        "results": [
            {
                "prompt": "hello",
                "output_text": "x",
                "reasoning_output_text": "",
                "input_len": 20,
                "dataset_output_len": 100,
                "success": True,
                "error": "",
                "energy": 50.0,
                **r,
            }
            for r in requests
        ],
    }
    for metric, values in {"ttft": 250.0, "tpot": 12.0, "itl": 15.0, "e2el": 2500.0}.items():
        doc[f"mean_{metric}_ms"] = values
        doc[f"median_{metric}_ms"] = values
        doc[f"std_{metric}_ms"] = 1.0
        for p in (50, 90, 95, 99):
            doc[f"p{p}_{metric}_ms"] = values * (1 + p / 100)
    return doc


def _metrics_text(running: list[float], kv: list[float]) -> str:
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
    ]
    lines += [
        f'vllm:num_requests_running{{engine="{i}",model_name="m"}} {v}'
        for i, v in enumerate(running)
    ]
    lines += ["# TYPE vllm:kv_cache_usage_perc gauge"]
    lines += [
        f'vllm:kv_cache_usage_perc{{engine="{i}",model_name="m"}} {v}' for i, v in enumerate(kv)
    ]
    lines += ['vllm:num_requests_waiting{engine="0",model_name="m"} 3.0']
    return "\n".join(lines) + "\n"


def prometheus_doc(
    *, avg_running: float | None = 7.5, avg_kv: float | None = 0.4, timeline: bool = True
) -> dict[str, Any]:
    """Two engines. In-window snapshots have KV usage (0.3, 0.5) and (0.6, 0.8): per-snapshot
    averages 0.4 and 0.7, so the steady-state max is 0.7; the 0.99 sample is outside."""
    snaps = [
        (T0 + 5.0, [1, 1], [0.99, 0.99]),
        (SS_START + 1.0, [4, 3], [0.3, 0.5]),
        (SS_START + 2.0, [4, 4], [0.6, 0.8]),
        (SS_END + 5.0, [0, 0], [0.99, 0.99]),
    ]
    stats: dict[str, float] = {"vllm:request_prompt_tokens_p50": 20.0}
    if avg_running is not None:
        stats["vllm:num_requests_running"] = avg_running
    if avg_kv is not None:
        stats["vllm:kv_cache_usage_perc"] = avg_kv
    return {
        "collection_interval": 1.0,
        "steady_state_start_time": SS_START,
        "steady_state_end_time": SS_END,
        "steady_state_stats": stats,
        "timeline": [
            {"timestamp": t, "metrics": _metrics_text(running, kv)} for t, running, kv in snaps
        ]
        if timeline
        else [],
    }


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def write_llm_run(
    root: Path,
    *,
    task: str = "lm-arena-chat",
    family: str = "llm",
    prometheus: dict[str, Any] | None = None,
    with_prometheus: bool = True,
    **results: Any,
) -> Path:
    """Write one LLM run directory; returns its results.json path."""
    keys = ("model_id", "gpu", "num_gpus", "max_num_seqs")
    where = {k: results[k] for k in keys if k in results}
    run_dir = llm_run_dir(root, task=task, family=family, **where)
    path = write_json(run_dir / "results.json", llm_results(**results))
    if with_prometheus:
        write_json(run_dir / "prometheus.json", prometheus or prometheus_doc())
    return path


def diffusion_results(
    *, batch_size: int = 4, num_frames: int | None = None, ulysses: int = 2, ring: int = 1
) -> dict[str, Any]:
    """Two measured batches of 800 J / 2 s and 1200 J / 3 s (split over two GPUs), plus one
    zero-time iteration that must be ignored: mean 1000 J and 2.5 s per batch."""
    doc: dict[str, Any] = {
        "date": "20251116-111111",
        "model_id": "acme/Paint-2B",
        "batch_size": batch_size,
        "num_iterations": 3,
        "height": 1024,
        "width": 1024,
        "inference_steps": 28,
        "seed": 48105,
        "total_images": batch_size * 3,
        "total_time": 5.0,
        "throughput_images_per_sec": 2.4,
        "avg_time_per_image": 0.4,
        "total_energy": 2000.0,
        "energy_per_image": 166.7,
        "iteration_energy_measurements": [
            {"time": 2.0, "gpu_energy": {"0": 400.0, "1": 400.0}, "cpu_energy": None},
            {"time": 3.0, "gpu_energy": {"0": 700.0, "1": 500.0}, "cpu_energy": None},
            {"time": 0.0, "gpu_energy": {"0": 0.0, "1": 0.0}, "cpu_energy": None},
        ],
        "configurations": {
            "ulysses_degree": ulysses,
            "ring_degree": ring,
            "use_torch_compile": False,
        },
        "timeline": {"benchmark_start_time": T0, "benchmark_end_time": T0 + 5.0},
    }
    if num_frames is not None:
        doc["num_frames"] = num_frames
        doc["fps"] = 16
    return doc


def write_diffusion_run(
    root: Path, *, task: str = "text-to-image", gpu_dir: str | None = "h100", **results: Any
) -> Path:
    base = root / "diffusion" / gpu_dir / "current" if gpu_dir else root
    doc = diffusion_results(**results)
    name = (
        f"batch-{doc['batch_size']}+size-1024x1024+steps-28+seed-48105+"
        f"uly-{doc['configurations']['ulysses_degree']}+"
        f"ring-{doc['configurations']['ring_degree']}+tc-False"
    )
    run_dir = base / "run" / "diffusion" / task / "acme" / "Paint-2B" / name
    return write_json(run_dir / "results.json", doc)


def write_configs(root: Path, *, task: str = "lm-arena-chat", model_id: str = "acme/Chat-8B"):
    """A benchmark ``configs/`` tree: model_info.json and an expert-parallel server config."""
    base = root / "configs" / "vllm" / task / model_id
    write_json(
        base / "model_info.json",
        {
            "nickname": "Chat 8B",
            "total_parameters_billion": 30,
            "active_parameters_billion": 3,
            "weight_precision": "bfloat16",
            "architecture": "MoE",
        },
    )
    (base / "H100").mkdir(parents=True, exist_ok=True)
    (base / "H100" / "monolithic.config.yaml").write_text(
        "enable-expert-parallel: true\ndata-parallel-size: 0\nmax-model-len: 8192\n"
    )
    return root / "configs"
