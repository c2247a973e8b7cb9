"""joulelens against a real vLLM server it attaches to (``--engine endpoint``)."""

from __future__ import annotations

import time
from array import array
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from joulelens.core.clock import now_s
from joulelens.core.events import RequestTrace
from joulelens.engines.vllm_server import VllmServer
from joulelens.records import RunStatus
from joulelens.runner import run_one
from joulelens.store import Store
from joulelens.workloads import LoadConfig, LoadRequest, MetricsScraper, run_load_sync
from vllm_helpers import MAX_NUM_SEQS, run_config

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _endpoint_run(server: VllmServer, model: Path, store: Store, **fields):
    config = run_config(model, engine="endpoint", endpoint=server.base_url, **fields)
    return run_one(config, store)


def test_chat_run_is_complete_names_vllm_and_attribution_adds_up(
    vllm_server: VllmServer, tiny_model: Path, tmp_store: Store
) -> None:
    record = _endpoint_run(vllm_server, tiny_model, tmp_store, ignore_eos=True)
    assert record.status is RunStatus.COMPLETED, record.failure_reason
    server_version = httpx.get(f"{vllm_server.base_url}/version").json()["version"]
    assert record.provenance.engine_version == server_version == "0.32.0"
    assert record.num_completed_requests == 64
    # --ignore-eos: every output runs to the cap, and that is not a defect.
    assert record.avg_output_len == 128
    assert record.config["run"]["ignore_eos"] is True
    assert not any("output token cap" in r for r in record.unstable_reasons)
    for name in ("median_itl_ms", "median_tpot_ms", "median_ttft_ms", "p90_itl_ms"):
        value = getattr(record, name)
        assert value is not None and value > 0, (name, record.missing.get(name))
    # The split energy is recorded beside the steady-state one, and the per-request
    # attribution on real chunk timings sums to it.
    assert record.run_energy_joules is not None and record.steady_state_energy_joules
    assert record.run_energy_joules >= record.steady_state_energy_joules
    rows = pq.read_table(tmp_store.artifact_path(record.run_id, "requests.parquet")).to_pydict()
    attributed = np.array(rows["attributed_energy_joules"], dtype=float)
    assert np.all(attributed > 0)
    assert attributed.sum() == pytest.approx(record.run_energy_joules, rel=1e-9)
    prefill = np.array(rows["attributed_prefill_energy_joules"], dtype=float)
    decode = np.array(rows["attributed_decode_energy_joules"], dtype=float)
    assert prefill + decode == pytest.approx(attributed)


def test_completions_fill_in_the_middle(
    vllm_server: VllmServer, tiny_model: Path, tmp_store: Store
) -> None:
    record = _endpoint_run(
        vllm_server, tiny_model, tmp_store, task="sourcegraph-fim", num_requests=32, max_tokens=64
    )
    assert record.status is RunStatus.COMPLETED, record.failure_reason
    assert record.num_completed_requests == 32 and record.num_failed_requests == 0
    assert record.provenance.engine_version == "0.32.0"
    assert record.median_itl_ms is not None and record.median_itl_ms > 0
    assert record.avg_output_len is not None and record.avg_output_len > 0


def test_metrics_names_scraped_and_histograms_windowed(vllm_server: VllmServer) -> None:
    # 2B long requests first: B take every slot and the rest wait for two rounds of long
    # ones, about 3.6 s here. With 32 equal 64-token requests the queue could last under
    # 0.4 s, and a scrape answered by a busy server can take over 1 s: none saw a queue.
    long_tokens, short_tokens = 768, 64
    lengths = [long_tokens] * (2 * MAX_NUM_SEQS) + [short_tokens] * (2 * MAX_NUM_SEQS)

    def load(max_tokens: list[int]) -> list[RequestTrace]:
        requests = [
            LoadRequest.chat(f"count to {i}", max_tokens=n) for i, n in enumerate(max_tokens)
        ]
        config = LoadConfig(vllm_server.base_url, extra_body={"ignore_eos": True})
        traces = run_load_sync(requests, config)
        assert all(t.ok for t in traces), [t.error for t in traces if not t.ok][:3]
        return traces

    with MetricsScraper(vllm_server.base_url, interval_s=0.2) as scraper:
        load([short_tokens] * MAX_NUM_SEQS)  # before the window: must not count in it
        time.sleep(0.5)
        t0 = now_s()
        traces = load(lengths)  # all at once: B run, the rest wait
        time.sleep(0.5)
        t1 = now_s()
    assert scraper.available, scraper.unavailable_reason
    assert scraper.resolve("running") == "vllm:num_requests_running"
    assert scraper.resolve("waiting") == "vllm:num_requests_waiting"
    assert scraper.resolve("kv_cache_usage") == "vllm:kv_cache_usage_perc"
    running, waiting, kv = (
        scraper.running_batch_series(),
        scraper.waiting_series(),
        scraper.kv_cache_series(),
    )
    assert running is not None and waiting is not None and kv is not None
    seen = _load_and_scrapes(traces, scraper.scrape_times_s, scraper.errors)
    assert 0 < max(running.values) <= MAX_NUM_SEQS, seen
    assert max(waiting.values) > 0, seen
    assert 0 < max(kv.values) <= 1, seen
    e2e = scraper.histogram_window("e2e", t0, t1)
    assert e2e is not None and e2e.count == len(lengths)  # the window's requests only
    # The server's own cumulative account of the queue the gauge sampled: 24 requests
    # waited behind the long ones, 8 of them one round and 16 two.
    queued = scraper.histogram_window("queue_time", t0, t1)
    assert queued is not None and queued.count == len(lengths) and queued.sum > 1.0, seen
    itl = scraper.histogram_window("itl", t0, t1)
    # One observation per token update: n - 1 a request of n tokens, fewer when vLLM hands
    # a request two tokens in one update (seen under load); the 8 earlier requests would
    # add 8 * 63 = 504 above the bound.
    gaps = sum(n - 1 for n in lengths)
    assert itl is not None and 0.9 * gaps <= itl.count <= gaps
    assert itl.mean is not None and 0 < itl.mean < 1.0


def _load_and_scrapes(
    traces: list[RequestTrace], scrape_times_s: array, errors: list[tuple[float, str]]
) -> str:
    """What a failed gauge assertion needs to be read: when the load ran, when scrapes came
    and which failed."""
    sent = [t.sent_s for t in traces]
    finished = [t.finished_s for t in traces if t.finished_s is not None]
    times = ", ".join(f"{t:.3f}" for t in scrape_times_s)
    failed = "; ".join(f"{t:.3f}: {e}" for t, e in errors)
    return (
        f"sent {min(sent):.3f}-{max(sent):.3f}, finished by {max(finished):.3f}; "
        f"scrapes {times}; failed scrapes: {failed or 'none'}"
    )
