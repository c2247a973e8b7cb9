"""The sweep's rules when results arrive out of order (as they do from a cluster), the
placement checks of a Ray sweep, and Ray staying optional."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from joulelens.records import RunRecord, RunStatus
from joulelens.runner.provenance import failed_record
from joulelens.runner.ray_cluster import Node, demand, task_options, why_unplaceable
from joulelens.runner.sweep import (
    NOT_REACHED,
    Entry,
    State,
    SweepEvents,
    SweepGrid,
    SweepPlan,
)
from joulelens.store import Store

REPO = Path(__file__).resolve().parents[2]
BASE = {"engine": "endpoint", "endpoint": "http://127.0.0.1:9", "num_gpus": 0, "gpus": False}


def _grid(batches: list[int], **extra: object) -> SweepGrid:
    return SweepGrid(models=["m"], tasks=["lm-arena-chat"], batch_sizes=batches, base=BASE, **extra)  # type: ignore[arg-type]


class _Log(SweepEvents):
    def __init__(self) -> None:
        self.skips: list[tuple[int, str]] = []
        self.done: list[str] = []

    def skipped(self, config, reason):  # type: ignore[no-untyped-def]
        self.skips.append((config.batch, reason))

    def finished(self, record):  # type: ignore[no-untyped-def]
        self.done.append(record.run_id)


def _result(entry: Entry, make_record: Callable[..., RunRecord], reached: bool) -> RunRecord:
    reasons = [] if reached else ["low batch utilization: average batch 2 of B=8"]
    return make_record(
        run_id=entry.run_id,
        max_num_seqs=entry.config.batch,
        stable=reached,
        unstable_reasons=reasons,
    )


def _plan(tmp_store: Store, batches: list[int]) -> tuple[SweepPlan, _Log, list[str]]:
    log, committed = _Log(), []

    def commit(entry: Entry) -> None:
        assert entry.record is not None
        tmp_store.put(entry.record)
        committed.append(entry.run_id)

    return SweepPlan(_grid(batches), tmp_store, log, commit), log, committed


def test_a_larger_batch_that_finished_first_waits_for_the_smaller_one(
    tmp_store: Store, make_record: Callable[..., RunRecord]
) -> None:
    plan, _, committed = _plan(tmp_store, [1, 2, 4])
    b1, b2, b4 = plan.pending()
    for e in (b1, b2, b4):
        plan.start(e)
    assert plan.resolve(b4, _result(b4, make_record, True)) == []
    assert committed == [] and b4.state is State.HELD
    plan.resolve(b2, _result(b2, make_record, True))
    assert committed == []
    plan.resolve(b1, _result(b1, make_record, True))
    assert committed == [b1.run_id, b2.run_id, b4.run_id]  # in batch order
    assert [r.max_num_seqs for r in plan.outcome.completed] == [1, 2, 4]
    assert not plan.unfinished()


def test_an_unreachable_batch_drops_running_and_held_larger_ones(
    tmp_store: Store, make_record: Callable[..., RunRecord]
) -> None:
    plan, log, committed = _plan(tmp_store, [2, 8, 16, 32])
    b2, b8, b16, b32 = plan.pending()
    for e in (b2, b8, b16, b32):
        plan.start(e)
    plan.resolve(b32, _result(b32, make_record, True))  # measured, but must not be kept
    plan.resolve(b2, _result(b2, make_record, True))
    dropped = plan.resolve(b8, _result(b8, make_record, False))
    assert dropped == [b16]  # still running: the executor cancels it
    assert committed == [b2.run_id, b8.run_id]
    assert plan.outcome.not_run == [b16.run_id, b32.run_id]
    assert log.skips == [(16, NOT_REACHED), (32, NOT_REACHED)]
    assert plan.resolve(b16, _result(b16, make_record, True)) == []  # late: ignored
    assert sorted(r.max_num_seqs for r in tmp_store.all()) == [2, 8]


def test_a_failed_batch_does_not_stop_the_group_and_ctrl_c_keeps_held_runs(
    tmp_store: Store, make_record: Callable[..., RunRecord]
) -> None:
    plan, _, committed = _plan(tmp_store, [1, 2, 4])
    b1, b2, b4 = plan.pending()
    for e in (b1, b2, b4):
        plan.start(e)
    plan.resolve(b4, _result(b4, make_record, True))
    plan.flush()  # Ctrl-C while B=1 and B=2 run: the finished B=4 is kept
    assert committed == [b4.run_id]
    plan.resolve(b1, failed_record(b1.config, "the server stopped answering"))
    assert committed == [b4.run_id, b1.run_id]
    assert [r.status for r in plan.outcome.failed] == [RunStatus.FAILED]


def test_stored_runs_are_skipped_and_an_unreachable_stored_one_still_stops_the_group(
    tmp_store: Store, make_record: Callable[..., RunRecord]
) -> None:
    plan, _, _ = _plan(tmp_store, [2, 8, 16])
    b2, b8, b16 = plan.pending()
    tmp_store.put(_result(b2, make_record, True))
    tmp_store.put(_result(b8, make_record, False))
    again, _, _ = _plan(tmp_store, [2, 8, 16])
    assert again.pending() == []
    assert again.outcome.skipped == [b2.run_id, b8.run_id]
    assert again.outcome.not_run == [b16.run_id]


def _node(**resources: float) -> Node:
    return Node("ab" * 28, "10.0.0.7", "gpu7", resources)


def test_a_run_asks_for_its_gpus_and_gpu_model() -> None:
    [[config]] = SweepGrid(
        models=["m"],
        tasks=["lm-arena-chat"],
        batch_sizes=[8],
        gpu_models=["B200"],
        num_gpus=[4],
        base={"engine": "vllm"},
    ).groups()
    assert demand(config) == {"CPU": 1.0, "GPU": 4.0, "gpu_model:B200": 4.0}
    options = task_options(config)
    assert options["num_gpus"] == 4.0 and options["resources"] == {"gpu_model:B200": 4.0}
    assert options["max_retries"] == 0  # a node that died is a recorded failure, not a retry
    assert why_unplaceable(config, [_node(CPU=64, GPU=8, **{"gpu_model:B200": 8})]) is None
    too_few = why_unplaceable(config, [_node(CPU=64, GPU=2, **{"gpu_model:B200": 2})])
    assert too_few == "needs 4 GPUs on one node, but the most any alive node has is 2"
    other = why_unplaceable(config, [_node(CPU=64, GPU=8, **{"gpu_model:H100": 8})])
    assert other is not None and "no alive node offers gpu_model:B200" in other
    assert "offered: gpu_model:H100" in other
    assert why_unplaceable(config, []) == "no node of the Ray cluster is alive"


def test_gpu_model_is_part_of_a_configurations_identity() -> None:
    grid = SweepGrid(
        models=["m"], tasks=["lm-arena-chat"], batch_sizes=[1], gpu_models=["H100", "B200"],
        base=BASE,
    )  # fmt: skip
    ids = {c.run_id() for group in grid.groups() for c in group}
    assert len(ids) == 2
    [[plain]] = _grid([1]).groups()
    assert plain.identity().get("gpu_model") is None  # ids of earlier runs unchanged


def _without_ray(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python where ``import ray`` fails, as where the extra is missing."""
    prelude = "import sys; sys.modules['ray'] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def test_the_core_imports_without_ray_and_does_not_load_it() -> None:
    done = _without_ray(
        "import joulelens.cli.app, joulelens.runner.sweep, joulelens.runner.ray_sweep\nprint('ok')"
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, joulelens.cli.app; print('ray' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.stdout.strip() == "False", loaded.stderr


def test_executor_ray_without_ray_says_what_to_install(tmp_path: Path) -> None:
    done = _without_ray(
        "from joulelens.cli.app import main; main()",
        "sweep",
        "--model",
        "m",
        "--task",
        "lm-arena-chat",
        "--batch",
        "1",
        "--executor",
        "ray",
        "--store",
        str(tmp_path / "store"),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs Ray, which is not installed: install joulelens with its ray extra" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "store").exists()  # nothing happened before the check
    hint = _without_ray(
        "from joulelens.runner.ray_cluster import import_ray\n"
        "try:\n    import_ray()\nexcept Exception as exc:\n    print(exc)"
    )
    assert "(pip install 'joulelens[ray]')" in hint.stdout, hint.stderr


@pytest.mark.parametrize("flag", [["--ray-address", "auto"], ["--one-per-node"]])
def test_ray_options_need_the_ray_executor(flag: list[str], tmp_path: Path) -> None:
    done = _without_ray(
        "from joulelens.cli.app import main; main()",
        "sweep",
        "--model",
        "m",
        "--task",
        "lm-arena-chat",
        "--batch",
        "1",
        *flag,
        "--store",
        str(tmp_path / "store"),
    )
    assert done.returncode == 2 and "need --executor ray" in done.stderr, done.stderr


def test_no_cluster_at_the_address_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'joulelens[ray]')")
    from joulelens.errors import ClusterError, InputError
    from joulelens.runner.ray_sweep import run_sweep_on_ray

    with pytest.raises(ClusterError, match="cannot connect to the Ray cluster at 'auto'"):
        run_sweep_on_ray(_grid([1]), Store(tmp_path / "store"), address="auto")
    with pytest.raises(ClusterError, match=r"no Ray cluster answers at '127\.0\.0\.1:1'"):
        run_sweep_on_ray(_grid([1]), Store(tmp_path / "store"), address="127.0.0.1:1")
    with pytest.raises(InputError, match="is not auto, HOST:PORT or ray://HOST:PORT"):
        run_sweep_on_ray(_grid([1]), Store(tmp_path / "store"), address="head-node")


def test_the_cluster_tests_say_why_they_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import ray_netns

    monkeypatch.setattr(ray_netns.os, "geteuid", lambda: 1000)
    if shutil.which("ip") is not None and _installed("ray"):
        assert ray_netns.unavailable() == "creating a network namespace needs root"
    monkeypatch.setattr(ray_netns.shutil, "which", lambda name: None)
    if _installed("ray"):
        assert "iproute2" in (ray_netns.unavailable() or "")


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
