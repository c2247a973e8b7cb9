"""What a cluster node does with one configuration, without Ray in between: measure into a
scratch store seeded with what the run reads from the driver's store, pack the run
directory, and the driver's store taking it whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from joulelens.records import Histogram, RunRecord, RunStatus
from joulelens.runner import RunConfig, run_one
from joulelens.runner.ray_node import measure_here, store_inputs, unpack
from joulelens.store import Store


@pytest.mark.engines
@pytest.mark.slow
def test_a_node_run_reads_the_drivers_output_lengths_and_arrives_whole(
    tmp_path: object, make_record: Callable[..., RunRecord]
) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    driver, local = Store(root / "driver"), Store(root / "local")
    # Published lengths of 2-3 tokens: far from the packaged default (hundreds, capped at 40).
    short = make_record(
        run_id="published-short",
        task="lm-arena-chat",
        output_length_distribution=Histogram(bins=[2, 3, 4], counts=[5, 5]),
    )
    for store in (driver, local):
        store.put(short)
    config = RunConfig(
        engine="transformers",
        model="arch:tiny-llama",
        task="lm-arena-chat",
        max_num_seqs=2,
        num_requests=6,
        max_tokens=40,
        num_gpus=0,
        gpus=False,
        device="cpu",
        cpu_threads=1,
        idle_baseline_s=0.1,
        min_steady_state_s=0.05,
    )
    inputs = store_inputs(config, driver)
    assert [RunRecord.model_validate_json(i).run_id for i in inputs] == ["published-short"]

    reports: list[tuple[str, str]] = []
    result = measure_here(config.model_dump_json(), inputs, lambda r, e, v: reports.append((r, e)))
    remote = RunRecord.model_validate_json(result.record_json)
    here = run_one(config, local)
    assert remote.status is RunStatus.COMPLETED and here.status is RunStatus.COMPLETED
    assert remote.avg_output_len == here.avg_output_len
    assert remote.avg_output_len is not None and remote.avg_output_len <= 4
    assert ("phase" in {e for _, e in reports}) and {r for r, _ in reports} == {config.run_id()}

    assert sorted(result.files) == sorted(remote.artifacts)
    driver.put(remote, write_artifacts=unpack(result.files))
    assert driver.get(config.run_id()) == remote
    for name, data in result.files.items():
        assert driver.artifact_path(config.run_id(), name).read_bytes() == data


def test_a_node_cannot_write_outside_its_run_directory(tmp_store: Store, make_record) -> None:  # type: ignore[no-untyped-def]
    from joulelens.errors import InputError

    record = make_record(run_id="jl-x")
    with pytest.raises(InputError, match="outside its run"):
        tmp_store.put(record, write_artifacts=unpack({"../evil": b"x"}))
    assert not tmp_store.has("jl-x")
    assert not (tmp_store.runs_dir / "evil").exists()
