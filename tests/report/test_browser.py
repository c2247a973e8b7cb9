"""The report and the live page in headless Chromium (Debian's chromium + chromium-driver)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from joulelens.records import RunRecord
from joulelens.report import write_report
from joulelens.report.browser import console_errors, wait_ready
from joulelens.report.server import make_server, server_url
from joulelens.store import Store

pytestmark = pytest.mark.browser


def open_page(driver: Any, url: str) -> None:
    console_errors(driver)  # drain entries of earlier pages
    driver.get(url)
    wait_ready(driver)


def js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def wait_for(driver: Any, script: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = js(driver, script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def click_tab(driver: Any, name: str) -> None:
    driver.find_element("css selector", f'nav.tabs button[data-tab="{name}"]').click()


def select(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def table_tasks(driver: Any) -> list[str]:
    return js(
        driver,
        "return [...document.querySelectorAll('#lb-table tbody tr')]"
        ".map(tr => tr.cells[0].textContent)",
    )


def test_leaderboard_rows_filter_and_sort(chromium: Any, report_file: Path) -> None:
    open_page(chromium, report_file.as_uri())
    assert js(chromium, "return performance.getEntriesByType('resource').length") == 0  # offline
    assert chromium.find_element("id", "lb-count").text == "12 of 12 runs"
    assert len(table_tasks(chromium)) == 12
    ids = js(
        chromium,
        "return [...document.querySelectorAll('#lb-table tbody tr')].map(t => t.dataset.run)",
    )
    assert set(ids) >= {"llm-H100-8", "diff-4", "own-measured", "llm-unstable"}

    select(chromium, "f-task", "text-to-image")
    assert chromium.find_element("id", "lb-count").text == "2 of 12 runs"
    assert table_tasks(chromium) == ["text-to-image", "text-to-image"]

    select(chromium, "f-task", "")
    chromium.find_element("id", "f-model").send_keys("Model A")
    assert js(chromium, "return window.__jl.leaderboard.matching") == 8
    chromium.find_element("id", "f-stable").click()
    assert js(chromium, "return window.__jl.leaderboard.matching") == 8  # all stable

    # Sort by J/token: ascending, then descending on a second click.
    header = chromium.find_element("css selector", 'th[data-key="energy_per_unit_j"]')
    header.click()
    first_up = js(chromium, "return document.querySelector('#lb-table tbody tr').dataset.run")
    header.click()
    first_down = js(chromium, "return document.querySelector('#lb-table tbody tr').dataset.run")
    assert first_up == "llm-B200-512" and first_down == "llm-H100-8"
    assert header.get_attribute("aria-sort") == "descending"
    unstable = chromium.find_element("id", "f-stable")
    unstable.click()
    assert console_errors(chromium) == []


def test_deadline_slider_moves_the_choice(chromium: Any, report_file: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    open_page(chromium, report_file.as_uri() + "#tradeoff")
    select(chromium, "to-task", "lm-arena-chat")
    select(chromium, "to-model", "Model A")
    slider = chromium.find_element("id", "to-deadline")
    slider.send_keys(Keys.END)
    loose = js(chromium, "return window.__jl.tradeoff")
    assert loose["choice"] == "llm-B200-512" and loose["feasible"] == loose["total"] == 8
    slider.send_keys(Keys.HOME)
    tight = js(chromium, "return window.__jl.tradeoff")
    assert tight["choice"] is None and tight["feasible"] == 0
    assert "No configuration meets" in chromium.find_element("id", "to-choice").text
    # Midway: the choice is the cheapest configuration within the deadline, not the global one.
    js(
        chromium,
        "var s = document.getElementById('to-deadline'); s.value = 500;"
        "s.dispatchEvent(new Event('input'))",
    )
    mid = js(chromium, "return window.__jl.tradeoff")
    assert 0 < mid["feasible"] < 8 and mid["choice"] not in (None, "llm-B200-512")
    names = js(chromium, "return document.getElementById('to-plot').data.map(t => t.name)")
    assert "min energy ≤ deadline" in names and "frontier (all setups)" in names
    chromium.save_screenshot(str(tmp_path / "tradeoff.png"))
    assert (tmp_path / "tradeoff.png").stat().st_size > 20_000
    assert console_errors(chromium) == []


def test_every_tab_renders(chromium: Any, report_file: Path) -> None:
    open_page(chromium, report_file.as_uri())
    for tab in ("tradeoff", "batch", "tasks", "diffusion", "findings", "measured"):
        click_tab(chromium, tab)
        assert chromium.find_element("id", f"tab-{tab}").is_displayed()
    click_tab(chromium, "batch")
    select(chromium, "bt-task", "lm-arena-chat")
    select(chromium, "bt-model", "Model A")
    assert js(chromium, "return document.getElementById('bt-energy').data.length") == 2
    assert js(chromium, "return document.querySelectorAll('#df-plots .js-plotly-plot').length") == 1
    click_tab(chromium, "diffusion")
    click_tab(chromium, "findings")
    nodes = js(chromium, "return document.querySelectorAll('#fd-graph g[data-node]').length")
    assert nodes == 0 or nodes >= 10  # the framework's nodes, when the graph module is present
    assert console_errors(chromium) == []


def test_measured_run_timelines(chromium: Any, report_file: Path) -> None:
    open_page(chromium, report_file.as_uri() + "#measured")
    select(chromium, "ms-run", "own-measured")
    timeline = js(
        chromium,
        "var d = document.getElementById('ms-timeline'); return {names: d.data.map(t => t.name),"
        " shapes: d.layout.shapes.map(s => [s.x0, s.x1])}",
    )
    assert timeline["names"] == [
        "power_watts:gpu:0",
        "token_rate:client",  # on the same clock as power, from the per-request times
        "temperature_c:gpu:0",
        "running_batch:server",
        "kv_cache_usage:server",
    ]
    assert timeline["shapes"] == [[20, 80]] * 5  # the steady state, shaded in every panel
    points = js(
        chromium, "return document.getElementById('ms-attribution').data.map(t => t.x.length)"
    )
    assert sum(points) == 40
    split = js(chromium, "return document.getElementById('ms-split').data[0].y")
    assert split == pytest.approx([80.0, sum(18 + 2 * i for i in range(40))])
    # The other "own" run has no artifacts: the page says so instead of failing.
    select(chromium, "ms-run", "llm-unstable")
    assert "No timeline" in chromium.find_element("id", "ms-timeline").text
    assert console_errors(chromium) == []


@pytest.fixture
def live(report_store: Store) -> Iterator[ThreadingHTTPServer]:
    server = make_server(report_store.root, port=0, poll_ms=300)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_served_page_refreshes_as_runs_arrive(
    chromium: Any,
    live: ThreadingHTTPServer,
    report_store: Store,
    make_record: Callable[..., RunRecord],
) -> None:
    open_page(chromium, server_url(live))
    assert chromium.find_element("id", "lb-count").text == "12 of 12 runs"
    wait_for(chromium, "return document.getElementById('live-status').textContent.includes('live')")
    select(chromium, "f-task", "gpqa")
    assert js(chromium, "return window.__jl.leaderboard.matching") == 1
    report_store.put(make_record(run_id="new-gpqa", task="gpqa", median_itl_ms=9.0))
    wait_for(chromium, "return window.__jl.leaderboard.matching === 2")
    assert chromium.find_element("id", "f-task").get_attribute("value") == "gpqa"  # kept
    assert chromium.find_element("id", "lb-count").text == "2 of 13 runs"
    assert console_errors(chromium) == []


def test_full_public_snapshot(chromium: Any, public_store: Store, tmp_path: Path) -> None:
    path = write_report(public_store, tmp_path / "full.html")
    open_page(chromium, path.as_uri())
    assert js(chromium, "return window.__jl.leaderboard.matching") == 1858
    assert chromium.find_element("id", "lb-page").text == "page 1 of 19"
    select(chromium, "f-task", "gpqa")
    assert js(chromium, "return window.__jl.leaderboard.matching") == 187
    click_tab(chromium, "tradeoff")
    assert js(chromium, "return window.__jl.tradeoff.total") > 5
    click_tab(chromium, "tasks")
    click_tab(chromium, "diffusion")
    assert js(chromium, "return document.querySelectorAll('#df-plots .js-plotly-plot').length") == 2
    shot = tmp_path / "full.png"
    chromium.save_screenshot(str(shot))
    assert shot.stat().st_size > 50_000
    assert console_errors(chromium) == []
