"""Report fixtures: a small store with LLM, diffusion and joulelens-measured runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from report_helpers import STEADY_WINDOW_S, llm_sweep, write_requests, write_timeline

from joulelens.records import Provenance, RunRecord, SourceKind
from joulelens.store import Store


@pytest.fixture
def report_store(tmp_store: Store, make_record: Callable[..., RunRecord]) -> Store:
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


@pytest.fixture
def report_file(report_store: Store, tmp_path: Path) -> Path:
    from joulelens.report import write_report

    return write_report(report_store, tmp_path / "report.html")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session's browser tests; skipped where it is missing."""
    from joulelens.report.browser import BrowserUnavailable, browser_paths, headless_chromium

    try:
        browser_paths()
        import selenium  # noqa: F401
    except (BrowserUnavailable, ImportError) as exc:
        pytest.skip(f"headless Chromium unavailable: {exc}")
    with headless_chromium(1400, 1000) as driver:
        yield driver
