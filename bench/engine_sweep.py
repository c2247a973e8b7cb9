"""The engine phase of ``gpu_validate.py``: an ``arch:`` model sweep on CUDA through the
sweep code ``joulelens sweep`` uses, sized to the time left, memory read after each close."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gpu_validate_lib as lib

MODEL = "arch:llama-3.1-8b"
TASK = "lm-arena-chat"
SUMMARY = (
    "status",
    "failure_reason",
    "max_num_seqs",
    "num_requests",
    "max_output_tokens",
    "energy_per_token_joules",
    "avg_power_watts",
    "median_itl_ms",
    "avg_batch_size",
    "idle_power_watts",
    "static_energy_fraction",
    "steady_state_duration_s",
    "output_throughput_tokens_per_sec",
    "avg_output_len",
    "energy_boundary",
    "energy_method",
    "num_gpus",
    "gpu_model",
    "stable",
    "unstable_reasons",
    "warnings",
    "missing",
)


def cli_command(plan: lib.EnginePlan) -> str:
    return (
        f"joulelens sweep --engine transformers --model {MODEL} --task {TASK} "
        f"--batch {plan.max_num_seqs} --num-requests {plan.num_requests} "
        f"--max-tokens {plan.max_tokens} --min-steady-state-s 5"
    )


def run_engine_sweep(
    torch: Any,
    device: Any,
    store_dir: Path,
    left_s: float,
    batches: tuple[int, ...],
    *,
    model: str = MODEL,
    base_extra: dict[str, Any] | None = None,
    memory_of: Callable[[], tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """One sweep per batch size (each sized to its share of ``left_s``), in this process."""
    from joulelens.runner.sweep import SweepEvents, SweepGrid, run_sweep
    from joulelens.store import Store

    store = Store(store_dir)
    memory: dict[int, int] = {}
    reserved: dict[int, int] = {}

    def cuda_memory() -> tuple[int, int]:
        return int(torch.cuda.memory_allocated(device)), int(torch.cuda.memory_reserved(device))

    read_memory = memory_of or cuda_memory

    class Events(SweepEvents):
        def finished(self, record: Any) -> None:  # the engine has closed by now
            b = int(record.max_num_seqs or 0)
            memory[b], reserved[b] = read_memory()

    deadline = time.monotonic() + left_s
    step_s, overhead_s = 0.035, 35.0  # first guesses; refined from each finished run
    records: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    timelines: dict[str, Any] = {}
    for i, b in enumerate(batches):
        remaining = deadline - time.monotonic()
        plan = lib.plan_engine_runs(remaining, batches[i:], step_s=step_s, overhead_s=overhead_s)[0]
        if plan.est_s > remaining:
            plans.append(
                {"max_num_seqs": b, "skipped": f"needs ~{plan.est_s:.0f} s, {remaining:.0f} s left"}
            )
            break
        base = {
            "engine": "transformers",
            "num_requests": plan.num_requests,
            "max_tokens": plan.max_tokens,
            "min_steady_state_s": 5.0,
            **(base_extra or {}),
        }
        grid = SweepGrid(models=[model], tasks=[TASK], batch_sizes=[b], base=base)
        started = time.monotonic()
        outcome = run_sweep(grid, store, events=Events())
        wall = time.monotonic() - started
        done = outcome.completed + outcome.failed
        if not done:
            continue
        record = store.get(done[0].run_id)  # after the sweep's cascade
        data = record.model_dump(mode="json")
        summary = {k: data.get(k) for k in SUMMARY} | {
            "config": {"gpus": data["config"].get("gpus")}
        }
        records.append(summary)
        plans.append({**plan.__dict__, "wall_s": wall, "cli": cli_command(plan)})
        timelines[f"B={b}"] = _power_timeline(store, record.run_id)
        itl, length = record.median_itl_ms, record.avg_output_len
        if itl and length:
            step_s = itl / 1e3 / (1 + b / 64)
            generation_s = plan.num_requests / b * min(length, plan.max_tokens) * itl / 1e3
            overhead_s = max(15.0, wall - generation_s)
    return {
        "records": records,
        "plans": plans,
        "memory_allocated_after": memory,
        "memory_reserved_after": reserved,
        "power_timelines": timelines,
    }


def _power_timeline(store: Any, run_id: str) -> dict[str, list[float]]:
    import pyarrow.parquet as pq

    path = store.artifact_path(run_id, "timeline.parquet")
    if not Path(path).is_file():
        return {}
    table = pq.read_table(path).to_pydict()
    keep = [i for i, s in enumerate(table["series"]) if s == "power_watts:gpu:0"]
    return {"t": [table["t_s"][i] for i in keep], "w": [table["value"][i] for i in keep]}
