"""The run store: files are the truth, the DuckDB catalog follows them and can be rebuilt."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from joulelens.errors import InputError, RunNotFoundError
from joulelens.store import RunFilter, Store


def test_put_get_query_roundtrip(tmp_store: Store, make_record):
    r = make_record(run_id="run-a", max_num_seqs=64, energy_per_token_joules=0.2)
    tmp_store.put(r)
    assert tmp_store.has("run-a")
    assert tmp_store.get("run-a") == r
    assert tmp_store.get("run-") == r  # unique prefix
    assert tmp_store.query() == [r]
    row = tmp_store.catalog.sql("SELECT batch, energy_per_unit_joules, source FROM runs")
    assert row == [(64, 0.2, "joulelens")]
    with pytest.raises(RunNotFoundError):
        tmp_store.get("nope")
    with pytest.raises(InputError):
        tmp_store.run_dir("../escape")


def test_query_filters(tmp_store: Store, make_record):
    tmp_store.put_many(
        [
            make_record(run_id="a", task="gpqa", max_num_seqs=8, gpu_model="H100"),
            make_record(run_id="b", task="gpqa", max_num_seqs=64, gpu_model="B200", num_gpus=2),
            make_record(
                run_id="c",
                task="gpqa",
                max_num_seqs=128,
                weight_precision="fp8",
                stable=False,
                unstable_reasons=["short"],
            ),
            make_record(run_id="d", kind="diffusion", batch_size=4, model_id="x/Paint"),
            make_record(run_id="e", status="failed", failure_reason="server crashed", task="gpqa"),
        ]
    )

    def ids(**kw) -> list[str]:
        return sorted(r.run_id for r in tmp_store.query(RunFilter(**kw)))

    assert ids() == ["a", "b", "c", "d"]
    assert ids(include_failed=True) == ["a", "b", "c", "d", "e"]
    assert ids(task="gpqa") == ["a", "b", "c"]
    assert ids(gpu_model="b200") == ["b"]
    assert ids(num_gpus=2) == ["b"]
    assert ids(batch_min=8, batch_max=64) == ["a", "b"]
    assert ids(batch_max=4) == ["d"]  # diffusion batch_size is the batch too
    assert ids(precision="FP8") == ["c"]
    assert ids(stable_only=True) == ["a", "b", "d"]
    assert ids(model="paint") == ["d"]
    assert ids(kind="diffusion") == ["d"]


def test_reput_replaces_not_duplicates(tmp_store: Store, make_record):
    tmp_store.put(make_record(run_id="a", max_num_seqs=8))
    tmp_store.put(make_record(run_id="a", max_num_seqs=16))
    assert [r.max_num_seqs for r in tmp_store.all()] == [16]
    assert tmp_store.catalog.sql("SELECT count(*) FROM runs") == [(1,)]


def test_put_many_skips_unchanged_runs(tmp_store: Store, make_record):
    first = [make_record(run_id="a", max_num_seqs=8), make_record(run_id="b", max_num_seqs=16)]
    assert tmp_store.put_many(first).written == 2
    stamp = tmp_store.artifact_path("a", "run.json").stat().st_mtime_ns
    again = [make_record(run_id="a", max_num_seqs=8), make_record(run_id="b", max_num_seqs=32)]
    assert again[0].recorded_at != first[0].recorded_at
    counts = tmp_store.put_many(again)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 1)  # only "b" changed
    assert tmp_store.artifact_path("a", "run.json").stat().st_mtime_ns == stamp
    assert tmp_store.get("a").recorded_at == first[0].recorded_at  # first recorded, kept
    assert {r.run_id: r.max_num_seqs for r in tmp_store.all()} == {"a": 8, "b": 32}


def test_catalog_rebuilt_after_deletion(tmp_path: Path, make_record):
    store = Store(tmp_path / "s")
    records = [make_record(run_id=f"r{i}", max_num_seqs=2**i) for i in range(5)]
    store.put_many(records)
    (tmp_path / "s" / "catalog.duckdb").unlink()
    reopened = Store(tmp_path / "s")
    assert sorted(r.run_id for r in reopened.all()) == [r.run_id for r in records]
    assert reopened.rebuild() == 5


def test_hand_added_removed_and_edited_run_dirs_are_noticed(tmp_path: Path, make_record):
    store = Store(tmp_path / "s")
    store.put_many([make_record(run_id="keep"), make_record(run_id="gone")])
    runs = tmp_path / "s" / "runs"
    shutil.rmtree(runs / "gone")
    added = make_record(run_id="added", max_num_seqs=32)
    (runs / "added").mkdir()
    (runs / "added" / "run.json").write_text(added.model_dump_json())
    edited = json.loads((runs / "keep" / "run.json").read_text())
    edited["max_num_seqs"] = 4
    (runs / "keep" / "run.json").write_text(json.dumps(edited))
    os.utime(runs / "keep" / "run.json", ns=(1, 1))  # a different mtime, whatever the clock
    reopened = Store(tmp_path / "s")
    assert {r.run_id: r.max_num_seqs for r in reopened.all()} == {"added": 32, "keep": 4}


def test_run_file_with_wrong_id_or_schema_is_set_aside_and_named(tmp_path: Path, make_record):
    store = Store(tmp_path / "s")
    store.put(make_record(run_id="a"))
    bad = tmp_path / "s" / "runs" / "b" / "run.json"
    bad.parent.mkdir()
    bad.write_text(make_record(run_id="a").model_dump_json())
    reopened = Store(tmp_path / "s")
    assert [r.run_id for r in reopened.all()] == ["a"]
    (problem,) = reopened.set_aside
    assert problem.run_id == "b" and "does not match its directory" in problem.reason
    assert "runs/b/run.json" in problem.reason and str(tmp_path) not in problem.reason
    assert not bad.parent.exists()
    (entry,) = reopened.info().quarantined
    assert entry[0].startswith("b.") and "field 'run_id'" in entry[1]
    moved = tmp_path / "s" / "quarantine" / entry[0] / "run.json"
    doc = json.loads(moved.read_text())
    doc.update(run_id="b", energy_boundary="moon")
    bad.parent.mkdir()
    bad.write_text(json.dumps(doc))
    (problem,) = Store(tmp_path / "s").set_aside
    assert "field 'energy_boundary'" in problem.reason


def test_sql_is_read_only(tmp_store: Store, make_record):
    tmp_store.put(make_record(run_id="a"))
    with pytest.raises(Exception, match="read-only"):
        tmp_store.catalog.sql("DELETE FROM runs")
    assert tmp_store.catalog.sql("SELECT count(*) FROM runs") == [(1,)]
