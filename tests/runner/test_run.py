"""One measured run against real local servers, written to the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pyarrow.parquet as pq
import pytest

from joulelens.errors import EngineError
from joulelens.records import EnergyBoundary, EnergyMethod, RunStatus
from joulelens.runner import RunConfig, run_one
from joulelens.store import Store
from runner.conftest import ServerProcess, endpoint_config


def test_endpoint_run_produces_a_complete_record(tmp_store: Store, sse_url: str) -> None:
    record = run_one(endpoint_config(sse_url, 4), tmp_store)
    assert record.status is RunStatus.COMPLETED
    assert record.energy_method is EnergyMethod.ESTIMATED
    assert record.energy_boundary is EnergyBoundary.CPU
    assert record.energy_per_token_joules is not None and record.energy_per_token_joules > 0
    assert record.num_completed_requests == 16
    assert record.avg_output_len == pytest.approx(15)
    # ITL on the server's 10 ms decode grid: its stepper writes once per step, so the median
    # gap is one step up to read jitter, and load only lengthens gaps (a missed step is 20 ms).
    # TTFT and E2E measured client-side.
    assert record.median_itl_ms is not None and 9.0 <= record.median_itl_ms <= 15.0
    assert record.median_ttft_ms is not None and record.median_e2e_latency_ms is not None
    assert record.avg_batch_size is not None and 2 <= record.avg_batch_size <= 4
    assert record.provenance.engine == "openai-compatible"
    stored = tmp_store.get(record.run_id)
    assert stored == record
    requests = pq.read_table(tmp_store.artifact_path(record.run_id, "requests.parquet"))
    assert requests.num_rows == 16
    timeline = pq.read_table(tmp_store.artifact_path(record.run_id, "timeline.parquet"))
    series = set(timeline.column("series").to_pylist())
    assert any(s.startswith("power_watts:") for s in series)
    assert "running_batch:server" in series


def test_user_extra_body_overrides_task_sampling(tmp_store: Store, sse_url: str) -> None:
    from joulelens.runner.requests import llm_requests

    config = endpoint_config(sse_url, 2, extra_body={"temperature": 0.0})
    requests = llm_requests(config)
    assert {r.extra_body["temperature"] for r in requests} == {0.0}
    assert {r.extra_body["top_p"] for r in requests} == {0.95}


def test_ignore_eos_is_sent_recorded_and_not_an_instability(tmp_store: Store, sse_url: str) -> None:
    from joulelens.errors import InputError
    from joulelens.runner.requests import llm_requests

    plain = endpoint_config(sse_url, 2, max_tokens=15)
    config = endpoint_config(sse_url, 2, max_tokens=15, ignore_eos=True)
    assert config.run_id() != plain.run_id()
    assert "ignore_eos" not in plain.identity()  # earlier runs keep their ids
    assert {r.extra_body.get("ignore_eos") for r in llm_requests(config)} == {True}
    record = run_one(config, tmp_store)
    # Every output hits the 15-token cap by design: no "hit the output token cap" reason.
    assert record.num_truncated_requests == record.num_completed_requests == 8
    assert not any("output token cap" in r for r in record.unstable_reasons)
    assert record.config["run"]["ignore_eos"] is True
    # The test server ignores the field: outputs that stop early are caught.
    short = run_one(
        endpoint_config(sse_url, 2, max_tokens=20, ignore_eos=True, num_requests=9), tmp_store
    )
    assert any("ignore_eos was asked but 9 of 9" in w for w in short.warnings)
    with pytest.raises(InputError, match="server engine"):
        RunConfig.model_validate(
            {**plain.model_dump(), "engine": "transformers", "ignore_eos": True}
        )


def test_record_states_the_energy_attribution_splits(tmp_store: Store, sse_url: str) -> None:
    record = run_one(endpoint_config(sse_url, 4), tmp_store)
    assert record.run_energy_joules is not None and record.steady_state_energy_joules
    assert record.run_energy_joules > record.steady_state_energy_joules
    rows = pq.read_table(tmp_store.artifact_path(record.run_id, "requests.parquet"))
    attributed = sum(rows.column("attributed_energy_joules").to_pylist())
    assert attributed == pytest.approx(record.run_energy_joules, rel=1e-9)


def test_server_killed_mid_run_is_recorded_as_failed(
    tmp_store: Store, server_process: Callable[..., ServerProcess]
) -> None:
    server = server_process()
    earlier = run_one(endpoint_config(server.url, 2), tmp_store)
    slow = {"sse_test": {"itl_s": 0.05, "chunks": 200}}
    config = endpoint_config(server.url, 4, max_tokens=200, extra_body=slow)
    killer = threading.Timer(1.5, server.kill)
    killer.start()
    with pytest.raises(EngineError, match="stopped answering"):
        run_one(config, tmp_store)
    killer.join()
    failed = tmp_store.get(config.run_id())
    assert failed.status is RunStatus.FAILED
    assert "stopped answering" in (failed.failure_reason or "")
    assert tmp_store.get(earlier.run_id) == earlier
    assert not [p for p in tmp_store.runs_dir.iterdir() if p.name.startswith(".")]


def test_unreachable_endpoint_fails_cleanly(tmp_store: Store) -> None:
    from joulelens.engines.vllm_server import free_port

    config = endpoint_config(f"http://127.0.0.1:{free_port()}", 2)
    started = time.monotonic()
    with pytest.raises(EngineError):
        run_one(config, tmp_store)
    assert time.monotonic() - started < 30
    assert tmp_store.get(config.run_id()).status is RunStatus.FAILED


@pytest.mark.parametrize(
    ("num_gpus", "data_parallel", "tensor_parallel", "expected"),
    [(1, 1, None, 1), (4, 1, None, 4), (4, 2, None, 2), (8, 2, 2, 2), (0, 1, None, 1)],
)
def test_tensor_parallel_size_is_one_replicas_gpus(
    num_gpus: int, data_parallel: int, tensor_parallel: int | None, expected: int
) -> None:
    """The server's --tensor-parallel-size and the record's tensor_parallel agree."""
    from joulelens.runner import RunConfig

    config = RunConfig(
        engine="vllm",
        model="m",
        task="gpqa",
        max_num_seqs=8,
        num_gpus=num_gpus,
        data_parallel=data_parallel,
        tensor_parallel=tensor_parallel,
    )  # type: ignore[call-arg]
    assert config.tensor_parallel_size == expected
