"""A crash while writing a run never leaves a half-written run, and the old run survives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from joulelens.core.files import remove_stale_staging
from joulelens.records import RunRecord
from joulelens.store import Store


def _leftovers(store: Store) -> list[str]:
    return sorted(p.name for p in store.runs_dir.iterdir() if p.name.startswith("."))


def _artifact_writer(fail_with: BaseException):
    def write(staging: Path) -> None:
        (staging / "requests.parquet").write_bytes(b"half a parquet file")
        raise fail_with

    return write


@pytest.mark.parametrize("crash", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_crash_in_artifact_writer_keeps_old_run(tmp_store: Store, make_record, crash):
    old = make_record(run_id="r1", max_num_seqs=8)
    tmp_store.put(old, write_artifacts=lambda d: (d / "requests.parquet").write_bytes(b"old"))
    new = make_record(run_id="r1", max_num_seqs=16)
    with pytest.raises(type(crash)):
        tmp_store.put(new, write_artifacts=_artifact_writer(crash))
    assert _leftovers(tmp_store) == []
    assert tmp_store.get("r1").max_num_seqs == 8
    assert tmp_store.artifact_path("r1", "requests.parquet").read_bytes() == b"old"
    assert [r.max_num_seqs for r in Store(tmp_store.root).all()] == [8]


def test_crash_on_first_write_leaves_no_run(tmp_store: Store, make_record):
    with pytest.raises(RuntimeError):
        tmp_store.put(make_record(run_id="r2"), write_artifacts=_artifact_writer(RuntimeError()))
    assert not tmp_store.run_dir("r2").exists()
    assert _leftovers(tmp_store) == []
    assert tmp_store.all() == []


_CHILD = """
import os, sys
from joulelens.records import RunRecord
from joulelens.store import Store
import joulelens.core.files as files

store = Store(sys.argv[1])
record = RunRecord.model_validate_json(open(sys.argv[2]).read())
mode = sys.argv[3]
if mode == "inside-writer":
    def writer(staging):
        (staging / "timeline.parquet").write_bytes(b"partial")
        os._exit(3)  # the process dies: no cleanup, no finally blocks
    store.put(record, write_artifacts=writer)
else:  # between moving the old run aside and moving the new one in
    real = files.os.replace
    calls = []
    def replace(src, dst):
        calls.append(src)
        if len(calls) == 2:
            os._exit(3)
        real(src, dst)
    files.os.replace = replace
    store.put(record)
"""


@pytest.mark.parametrize("mode", ["inside-writer", "between-renames"])
def test_killed_writer_is_cleaned_up_on_next_open(tmp_path: Path, make_record, mode: str):
    root = tmp_path / "s"
    Store(root).put(make_record(run_id="r1", max_num_seqs=8))
    new: RunRecord = make_record(run_id="r1", max_num_seqs=16)
    new_file = tmp_path / "new.json"
    new_file.write_text(new.model_dump_json())
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), str(root), str(new_file), mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 3, child.stderr
    store = Store(root)  # a later open finds the dead writer's leftovers
    assert _leftovers(store) == []
    assert [r.max_num_seqs for r in store.all()] == [8]
    assert store.get("r1").max_num_seqs == 8


def test_live_writers_staging_is_left_alone(tmp_path: Path):
    runs = tmp_path / "runs"
    runs.mkdir()
    mine = runs / f".r1.{os.getpid()}.abcd1234.staging"
    dead = runs / ".r2.999999999.abcd1234.staging"
    legacy = runs / ".r3.abcd1234.staging"
    for d in (mine, dead, legacy):
        d.mkdir()
    (runs / ".r4.json.x1y2.tmp").write_text("partial")
    assert remove_stale_staging(runs) == 3
    assert [p.name for p in runs.iterdir()] == [mine.name]
