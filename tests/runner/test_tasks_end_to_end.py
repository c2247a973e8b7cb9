"""Every task measured end to end with the in-process engines, into valid stored records.

Token counts, shapes and record fields are checked, never generated text.
"""

from __future__ import annotations

import pytest

from joulelens.records import EnergyMethod, RunKind, RunStatus
from joulelens.runner import RunConfig, run_one
from joulelens.store import Store

pytestmark = pytest.mark.engines  # every test here runs torch

QUICK = {
    "num_gpus": 0,
    "gpus": False,
    "device": "cpu",
    "idle_baseline_s": 0.1,
    "min_steady_state_s": 0.05,
    "cpu_threads": 1,
}

LLM_TASKS = [
    ("lm-arena-chat", "arch:tiny-llama", RunKind.LLM),
    ("gpqa", "arch:tiny-llama", RunKind.LLM),
    ("sourcegraph-fim", "arch:tiny-llama", RunKind.LLM),
    ("image-chat", "arch:tiny-qwen2-vl", RunKind.MLLM),
    ("video-chat", "arch:tiny-qwen2-vl", RunKind.MLLM),
]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "model", "kind"), LLM_TASKS)
def test_llm_task_runs_end_to_end(tmp_store: Store, task: str, model: str, kind: RunKind) -> None:
    config = RunConfig(
        engine="transformers",
        model=model,
        task=task,
        max_num_seqs=2,
        num_requests=6,
        max_tokens=12,
        **QUICK,
    )  # type: ignore[arg-type]
    record = run_one(config, tmp_store)
    assert record.status is RunStatus.COMPLETED
    assert record.kind is kind and record.task == task
    assert record.provenance.random_weights is True
    assert record.energy_method is EnergyMethod.ESTIMATED
    assert record.num_completed_requests == 6
    assert record.max_output_tokens == 12
    assert record.avg_output_len is not None and 1 <= record.avg_output_len <= 12
    assert record.energy_per_token_joules is not None and record.energy_per_token_joules > 0
    assert tmp_store.get(record.run_id) == record


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "model", "unit"),
    [
        ("text-to-image", "arch:tiny-sd", "image"),
        ("text-to-video", "arch:tiny-wan", "video"),
    ],
)
def test_diffusion_task_runs_end_to_end(tmp_store: Store, task: str, model: str, unit: str) -> None:
    config = RunConfig(
        engine="diffusers",
        model=model,
        task=task,
        batch_size=2,
        num_batches=2,
        warmup_batches=1,
        **QUICK,
    )  # type: ignore[arg-type]
    record = run_one(config, tmp_store)
    assert record.status is RunStatus.COMPLETED, record.failure_reason
    assert record.kind is RunKind.DIFFUSION and record.energy_unit == unit
    assert record.batch_size == 2
    assert record.energy_per_generation_joules is not None
    assert record.energy_per_generation_joules > 0
    assert record.batch_latency_s is not None and record.batch_latency_s > 0
    assert record.provenance.random_weights is True
