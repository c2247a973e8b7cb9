"""Builders shared by the report tests: synthetic sweeps and measured-run artifacts."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joulelens.measure.artifacts import write_run_artifacts
from joulelens.measure.compile import KV_CACHE_SERIES, RUNNING_SERIES
from joulelens.records import (
    Histogram,
    Provenance,
    RequestRow,
    RunRecord,
    SourceKind,
    TimelineSample,
)
from joulelens.store import Store

STEADY_WINDOW_S = (20.0, 80.0)
# The measurement's own series names, so the report is tested on what it will really read.
TIMELINE_SERIES = (
    "power_watts:gpu:0",
    "temperature_c:gpu:0",
    RUNNING_SERIES,
    KV_CACHE_SERIES,
)


def write_timeline(staging: Path, duration_s: float = 100.0, period_s: float = 0.1) -> None:
    """A synthetic 10 Hz timeline: power ramps up in the steady state, batch fills, KV grows;
    written by the measurement's own artifact writer."""
    rows = []
    for i in range(int(duration_s / period_s)):
        t = i * period_s
        steady = STEADY_WINDOW_S[0] <= t <= STEADY_WINDOW_S[1]
        values = (
            (600.0 if steady else 250.0) + 20 * math.sin(t),
            40.0 + 0.3 * t,
            64.0 if steady else 10.0,
            0.7 if steady else 0.1,
        )
        rows += [
            TimelineSample(t_s=t, series=name, value=v)
            for name, v in zip(TIMELINE_SERIES, values, strict=True)
        ]
        # A cumulative series the report should leave out of the panels.
        rows.append(TimelineSample(t_s=t, series="energy_joules:gpu:0", value=i * 40.0))
    write_run_artifacts(staging, [], rows)


def write_requests(staging: Path, n: int = 40) -> None:
    rows = [
        RequestRow(
            request_id=f"r{i}",
            sent_s=0.0,
            ttft_ms=50.0 + i,
            e2e_latency_ms=5000.0 + 10 * i,
            input_tokens=100,
            output_tokens=100 + 10 * i,
            finish_reason="stop",
            error=None,
            in_steady_state=5 <= i < n - 5,
            attributed_energy_joules=20.0 + 2.0 * i,
            attributed_prefill_energy_joules=2.0,
            attributed_decode_energy_joules=18.0 + 2.0 * i,
        )
        for i in range(n)
    ]
    write_run_artifacts(staging, rows, [])


def llm_sweep(make_record: Callable[..., RunRecord], **common: Any) -> list[RunRecord]:
    """Two setups x four batch sizes of one model, with a known frontier."""
    out = []
    for gpu, base_power in (("H100", 500.0), ("B200", 450.0)):
        for batch in (8, 32, 128, 512):
            itl = 10.0 + batch / 16 * (0.8 if gpu == "B200" else 1.0)
            tput = batch * 1000.0 / itl
            out.append(
                make_record(
                    run_id=f"llm-{gpu}-{batch}",
                    model_id="org/model-a",
                    nickname="Model A",
                    gpu_model=gpu,
                    max_num_seqs=batch,
                    weight_precision="bfloat16",
                    median_itl_ms=itl,
                    output_throughput_tokens_per_sec=tput,
                    avg_power_watts=base_power + batch,
                    energy_per_token_joules=(base_power + batch) / tput,
                    energy_per_request_joules=(base_power + batch) / tput * 300,
                    avg_output_len=300.0,
                    output_length_distribution=Histogram(
                        bins=[1.0, 100.0, 1000.0], counts=[30, 70]
                    ),
                    provenance=Provenance(source=SourceKind.MLENERGY_LEADERBOARD),
                    **common,
                )
            )
    return out


def fill_report_store(tmp_store: Store, make_record: Callable[..., RunRecord]) -> Store:
    """LLM sweep (8 runs), 2 diffusion runs, 1 unstable run, 1 joulelens-measured run."""
    records = llm_sweep(make_record)
    records += [
        make_record(
            run_id=f"diff-{b}",
            kind="diffusion",
            task="text-to-image",
            model_id="org/diff",
            batch_size=b,
            energy_per_image_joules=1000.0 / b,
            throughput_images_per_sec=b / 5.0,
            batch_latency_s=5.0 * b,
            avg_power_watts=600.0,
            provenance=Provenance(source=SourceKind.MLENERGY_LEADERBOARD),
        )
        for b in (1, 4)
    ]
    records.append(
        make_record(
            run_id="llm-unstable",
            task="gpqa",
            model_id="org/model-b",
            max_num_seqs=1024,
            stable=False,
            unstable_reasons=["average batch 300 under 85% of max_num_seqs 1024"],
            energy_per_token_joules=0.5,
            median_itl_ms=30.0,
        )
    )
    tmp_store.put_many(records)
    measured = make_record(
        run_id="own-measured",
        task="lm-arena-chat",
        model_id="tiny/chat",
        gpu_model="cpu",
        max_num_seqs=64,
        energy_per_token_joules=0.02,
        median_itl_ms=12.0,
        avg_power_watts=600.0,
        artifacts=["timeline.parquet", "requests.parquet"],
        config={"steady_state": {"start_s": STEADY_WINDOW_S[0], "end_s": STEADY_WINDOW_S[1]}},
    )

    def artifacts(staging: Path) -> None:
        write_timeline(staging)
        write_requests(staging)

    tmp_store.put(measured, write_artifacts=artifacts)
    return tmp_store
