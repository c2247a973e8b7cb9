"""Builders of internally consistent synthetic runs for the diagnosis tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from joulelens.records import RunRecord


@pytest.fixture
def llm_run(make_record: Callable[..., RunRecord]) -> Callable[..., RunRecord]:
    """An LLM run whose identities hold: E_tok = P / X, X = b / ITL, E_resp = E_tok x L.

    Give ``energy_per_token_joules``, ``max_num_seqs`` and optionally ``avg_power_watts``,
    ``avg_output_len``, ``fill`` (running batch / cap); anything else passes through.
    """

    def build(
        run_id: str, energy_per_token_joules: float, max_num_seqs: int, **kw: Any
    ) -> RunRecord:
        power = kw.pop("avg_power_watts", 500.0)
        out_len = kw.pop("avg_output_len", 500.0)
        fill = kw.pop("fill", 1.0)
        running = max_num_seqs * fill
        throughput = power / energy_per_token_joules
        fields: dict[str, Any] = {
            "run_id": run_id,
            "max_num_seqs": max_num_seqs,
            "energy_per_token_joules": energy_per_token_joules,
            "energy_per_request_joules": energy_per_token_joules * out_len,
            "avg_power_watts": power,
            "output_throughput_tokens_per_sec": throughput,
            "avg_batch_size": running,
            "median_itl_ms": running / throughput * 1000,
            "avg_output_len": out_len,
        }
        fields.update(kw)
        return make_record(**fields)

    return build


@pytest.fixture
def diffusion_run(make_record: Callable[..., RunRecord]) -> Callable[..., RunRecord]:
    """A diffusion run with E_gen = P x T / n."""

    def build(run_id: str, energy_joules: float, batch_size: int, **kw: Any) -> RunRecord:
        power = kw.pop("avg_power_watts", 600.0)
        task = kw.pop("task", "text-to-image")
        latency = energy_joules * batch_size / power
        unit = "video" if task == "text-to-video" else "image"
        fields: dict[str, Any] = {
            "run_id": run_id,
            "kind": "diffusion",
            "task": task,
            "batch_size": batch_size,
            "avg_power_watts": power,
            "batch_latency_s": latency,
            f"energy_per_{unit}_joules": energy_joules,
            f"throughput_{unit}s_per_sec": batch_size / latency,
            "inference_steps": 20,
            "height": 1024,
            "width": 1024,
        }
        fields.update(kw)
        return make_record(**fields)

    return build
