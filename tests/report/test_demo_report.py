"""The demo's report fits its data: notes from the records shown, no page of no-data findings,
unstable choices marked, one clock for power, token rate and batch, and nothing clipped."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_helpers import write_requests

from joulelens.measure.artifacts import write_run_artifacts
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Provenance,
    RunRecord,
    SourceKind,
)
from joulelens.records.schema import TimelineSample
from joulelens.report import write_report
from joulelens.report.measured import binned_slope, clock_series, without_stub_intervals
from joulelens.report.payload import build_payload
from joulelens.store import Store

ESTIMATE = "cpu-estimate:process@10W-per-cpu"
COVERS = "CPU time of joulelens (pid 4242) and its child processes x 10 W per busy CPU"


def _estimate_timeline(staging: Path, watts: float = 9.0, duration_s: float = 30.0) -> None:
    """What the CPU-time estimate records: energy in 0.1 J steps (10 ms ticks at 10 W) at
    10 Hz, the power derived from it, and the sampler's last read a moment after the one
    before (a window too short for a tick: 0 W)."""
    rows, last = [], 0.0
    times = [i * 0.1 for i in range(int(duration_s * 10))] + [duration_s - 0.1 + 0.0005]
    for i, t in enumerate(times):
        joules = math.floor(watts * t / 0.1) * 0.1
        rows.append(TimelineSample(t_s=t, series=f"energy_joules:{ESTIMATE}", value=joules))
        if i:
            power = (joules - last) / (t - times[i - 1])
            rows.append(TimelineSample(t_s=t, series=f"power_watts:{ESTIMATE}", value=power))
        last = joules
    write_run_artifacts(staging, [], rows)


@pytest.fixture
def demo_store(tmp_store: Store, make_record: Callable[..., RunRecord]) -> Store:
    """The demo's three runs as it stores them: CPU estimate, all unstable (capped outputs)."""
    for batch, energy in ((1, 1.0), (4, 0.45), (16, 0.25)):
        record = make_record(
            run_id=f"jl-demo-b{batch}",
            model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            gpu_model="cpu",
            num_gpus=0,
            max_num_seqs=batch,
            energy_per_token_joules=energy,
            median_itl_ms=60.0 * batch**0.5,
            avg_power_watts=9.0,
            output_throughput_tokens_per_sec=9.0 / energy,
            energy_boundary=EnergyBoundary.CPU,
            energy_method=EnergyMethod.ESTIMATED,
            provenance=Provenance(source=SourceKind.JOULELENS),
            stable=False,
            unstable_reasons=["13 of 14 outputs (93%) hit the output token cap (limit < 30%)"],
            warnings=["average batch from client-side counts: the server offered no metrics"],
            artifacts=["timeline.parquet", "requests.parquet"],
            config={
                "steady_state": {"start_s": 2.0, "end_s": 25.0},
                "cpu_estimate": {
                    "scope": "process",
                    "covers": COVERS,
                    "cannot_see": "idle and static CPU power, DRAM, and the rest of the machine",
                },
            },
        )

        def artifacts(staging: Path) -> None:
            _estimate_timeline(staging)
            write_requests(staging, n=14)

        tmp_store.put(record, write_artifacts=artifacts)
    return tmp_store


def test_notes_come_from_the_records_shown(demo_store: Store) -> None:
    payload = build_payload(demo_store)
    (note,) = payload["meta"]["energy_notes"]
    assert note.startswith("3 runs from joulelens: cpu boundary, estimated: CPU time of joulelens")
    assert "pid" not in note  # one line for the runs alike, whatever process measured them
    assert "NVML" not in " ".join(payload["meta"]["energy_notes"])
    html = write_report(demo_store, demo_store.root / "r.html").read_text()
    assert "GPU only, NVML counters" not in html  # the old fixed footnote is gone
    run = payload["measured"]["runs"][0]
    assert run["energy"].startswith("cpu boundary, estimated: CPU time of")
    assert run["stable"] is False and run["warnings"][0].startswith("unstable: 13 of 14")
    assert run["label"].endswith("· cpu · batch 16") and "x0" not in run["label"]


def test_the_estimate_is_drawn_without_artificial_zeros(demo_store: Store) -> None:
    run = build_payload(demo_store)["measured"]["runs"][0]
    power = run["timeline"][f"power_watts:{ESTIMATE}"]["v"]
    assert min(power) > 8.0 and max(power) < 10.0  # 9 W throughout: no 0 W edge, no spikes
    times, values = binned_slope([0, 1, 2, 2.001], [0, 9, 18, 18], 0.5)
    assert values == pytest.approx([9.0] * 4) and times[-1] < 2.0
    _kept_t, kept_v = without_stub_intervals([0, 0.1, 0.2, 0.2005], [5, 9, 9, 0])
    assert kept_v == [5, 9, 9]


def test_token_rate_and_running_batch_share_the_clock() -> None:
    requests = {
        "sent_s": [0.0, 0.0],
        "ttft_ms": [500.0, 1000.0],
        "e2e_latency_ms": [2500.0, 3000.0],
        "output_tokens": [21, 11],
    }
    series = clock_series(requests, has_server_batch=False)
    rate, batch = series["token_rate:client"], series["running_batch:client"]
    assert rate["t"] == batch["t"] and rate["t"][0] == pytest.approx(0.25)
    assert sum(rate["v"]) * 0.5 == pytest.approx(32)  # every token counted once
    assert max(batch["v"]) == pytest.approx(2.0) and batch["v"][0] == 0.0
    assert "running_batch:client" not in clock_series(requests, has_server_batch=True)


def _overflow(driver: Any) -> list[str]:
    """Elements of the visible tab wider than their box: clipped or scrolled columns."""
    return driver.execute_script(
        """
        var out = [], tab = document.querySelector('section.tab:not([hidden])');
        tab.querySelectorAll('.table-wrap, table').forEach(function (el) {
          var box = el.classList.contains('table-wrap') ? el : el.parentElement;
          if (el.scrollWidth > box.clientWidth + 1) out.push(el.id || el.className || 'table');
        });
        if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push('page');
        return out;
        """
    )


def _every_tab_fits(driver: Any, url: str) -> None:
    from joulelens.report.browser import console_errors, wait_ready

    driver.set_window_size(1280, 800)
    try:
        console_errors(driver)
        driver.get(url)
        wait_ready(driver)
        for tab in ("leaderboard", "tradeoff", "batch", "tasks", "diffusion", "findings"):
            _tab(driver, tab)
            assert _overflow(driver) == [], tab
        _tab(driver, "measured")
        assert _overflow(driver) == [], "measured"
        assert console_errors(driver) == []
    finally:
        driver.set_window_size(1400, 1000)  # the session browser's size for the other tests


def _tab(driver: Any, name: str) -> None:
    driver.find_element("css selector", f'nav.tabs button[data-tab="{name}"]').click()


@pytest.mark.browser
def test_demo_report_at_1280_px(chromium: Any, demo_store: Store) -> None:
    url = write_report(demo_store, demo_store.root / "demo.html").as_uri()
    _every_tab_fits(chromium, url)
    _tab(chromium, "findings")
    folded = chromium.execute_script("return window.__jl.findings")
    assert folded["shown"] == 0 and folded["folded"] >= 5  # no page of no-data cards
    assert (
        chromium.execute_script("return document.querySelector('details.no-data-findings').open")
        is False
    )
    _tab(chromium, "tradeoff")
    choice = chromium.execute_script("return window.__jl.tradeoff")
    assert choice["choice"] and choice["choice_stable"] is False
    text = chromium.find_element("id", "to-choice").text
    assert "unstable" in text and "no stable configuration meets this deadline" in text
    assert "×0" not in text and " on cpu, batch" in text
    _tab(chromium, "measured")
    names = chromium.execute_script(
        "return document.getElementById('ms-timeline').data.map(t => t.name)"
    )
    assert names == [f"power_watts:{ESTIMATE}", "token_rate:client", "running_batch:client"]
    assert "CPU time of joulelens" in chromium.find_element("id", "ms-notes").text


@pytest.mark.browser
def test_a_stable_run_is_chosen_before_a_cheaper_unstable_one(
    chromium: Any, tmp_store: Store, make_record: Callable[..., RunRecord]
) -> None:
    common = {"model_id": "org/m", "nickname": "M", "median_itl_ms": 20.0}
    tmp_store.put_many(
        [
            make_record(run_id="stable-8", max_num_seqs=8, energy_per_token_joules=0.5, **common),
            make_record(
                run_id="unstable-16",
                max_num_seqs=16,
                energy_per_token_joules=0.2,
                stable=False,
                unstable_reasons=["short steady state"],
                **common,
            ),
        ]
    )
    chromium.get(write_report(tmp_store, tmp_store.root / "r.html").as_uri() + "#tradeoff")
    from joulelens.report.browser import wait_ready

    wait_ready(chromium)
    choice = chromium.execute_script("return window.__jl.tradeoff")
    assert choice["choice"] == "stable-8" and choice["choice_stable"] is True


@pytest.mark.browser
def test_public_report_at_1280_px(chromium: Any, public_store: Store, tmp_path: Path) -> None:
    _every_tab_fits(chromium, write_report(public_store, tmp_path / "full.html").as_uri())
