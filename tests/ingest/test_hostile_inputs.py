"""Inputs a new user plausibly feeds the importers: each is refused by file, row and field,
nothing is written, and the store keeps working (issue 12, failures 1 to 3)."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.benchmark_fixtures import llm_results, write_llm_run
from ingest.leaderboard_fixtures import snapshot_docs, write_snapshot
from joulelens.cli.app import app
from joulelens.errors import InputError
from joulelens.ingest.mlenergy_benchmark import read_benchmark_results
from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.store import Store

runner = CliRunner()
GPQA = "tasks/gpqa.json"


def _snapshot_with(tmp_path: Path, row: int, **values: Any) -> Path:
    docs = snapshot_docs()
    docs[GPQA]["configurations"][row].update(values)
    return write_snapshot(tmp_path / "lb", docs)


def _refused(root: Path) -> InputError:
    with pytest.raises(InputError) as err:
        read_leaderboard(root)
    return err.value


@pytest.mark.parametrize("spelling", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(tmp_path: Path, tmp_store: Store, spelling: str) -> None:
    """Failure 1: json.loads accepts NaN; the record was written as null without a reason
    and every later command failed on that file."""
    root = write_snapshot(tmp_path / "lb")
    path = root / GPQA
    text = path.read_text().replace(
        '"energy_per_token_joules": 0.5', f'"energy_per_token_joules": {spelling}', 1
    )
    path.write_text(text)
    err = _refused(root)
    assert err.source == str(path) and err.field == "configurations[0].energy_per_token_joules"
    assert "finite" in str(err)
    result = runner.invoke(app, ["import", "mlenergy", str(root)])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert Store(tmp_store.root).all() == []  # nothing partially imported
    good = write_snapshot(tmp_path / "good")
    assert runner.invoke(app, ["import", "mlenergy", str(good)]).exit_code == 0
    assert runner.invoke(app, ["store", "info"]).exit_code == 0


@pytest.mark.parametrize(
    ("row", "values", "field", "message"),
    [
        (0, {"energy_per_token_joules": -1.0}, "energy_per_token_joules", "greater than 0"),
        (1, {"max_num_seqs": -5}, "max_num_seqs", "greater than or equal to 1"),
        (0, {"num_gpus": 0}, "num_gpus", "greater than or equal to 1"),
        (2, {"avg_power_watts": -300.0}, "avg_power_watts", "greater than 0"),
        (0, {"energy_per_request_joules": 1e308}, "energy_per_request_joules", "less than"),
        (0, {"avg_power_watts": 9000.0}, "", "per GPU"),
        (1, {"energy_per_token_joules": "0.5"}, "energy_per_token_joules", "valid number"),
        (0, {"avg_output_len": True}, "avg_output_len", "valid number"),
        (0, {"max_num_seqs": 8.5}, "max_num_seqs", "valid integer"),
    ],
)
def test_out_of_range_and_mistyped_values_name_file_row_and_field(
    tmp_path: Path, row: int, values: dict[str, Any], field: str, message: str
) -> None:
    """Failure 2: negative energy, max_num_seqs -5, num_gpus 0, -300 W, 1e308 and the
    strings "0.5" and true all imported silently."""
    root = _snapshot_with(tmp_path, row, **values)
    err = _refused(root)
    assert err.source == str(root / GPQA)
    assert err.field == f"configurations[{row}]" + (f".{field}" if field else "")
    assert message in str(err)


def test_raw_results_are_checked_as_strictly(tmp_path: Path) -> None:
    path = write_llm_run(tmp_path)
    doc = llm_results()
    doc["results"][2]["ttft"] = -0.3
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        read_benchmark_results(tmp_path)
    assert err.value.field == "results[2].ttft" and err.value.source == str(path)
    doc = llm_results()
    doc["results"][1]["itl"][1] = float("nan")
    path.write_text(json.dumps(doc))  # json writes NaN
    with pytest.raises(InputError, match="finite") as err:
        read_benchmark_results(tmp_path)
    assert err.value.field == "results[1].itl[1]"
    doc = llm_results()
    doc["max_output_tokens"] = 0  # valid input, refused by the record it would make
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        read_benchmark_results(tmp_path)
    assert err.value.field == "max_output_tokens" and err.value.source == str(path)


def test_random_bytes_are_a_clear_error(tmp_path: Path) -> None:
    """Failure 3a: a task file of random bytes raised a raw UnicodeDecodeError."""
    root = write_snapshot(tmp_path / "lb")
    (root / GPQA).write_bytes(b"\x00\xff" + os.urandom(4096))
    err = _refused(root)
    assert err.source == str(root / GPQA) and "JSON" in str(err)
    (root / GPQA).write_bytes(b"{" + bytes(range(128, 256)) * 8)  # starts like JSON
    assert "UTF-8" in str(_refused(root))
    result = runner.invoke(app, ["import", "mlenergy", str(root)])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)


def _peak(work: Any) -> tuple[Exception, int]:
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as err:
            work()
        return err.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_garbage_file_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """Failure 3b: a 200 MB garbage file peaked at about 477 MB."""
    root = write_snapshot(tmp_path / "lb")
    with open(root / GPQA, "wb") as fh:  # 200 MB, sparse: no disk is used
        fh.write(b"\x89PNG garbage")
        fh.truncate(200 * 1024 * 1024)
    err, peak = _peak(lambda: read_leaderboard(root))
    assert "larger than the 64 MiB" in str(err) and peak < 5 * 1024 * 1024
    # Raw results may be larger (every inter-token gap of every request), but garbage is
    # recognised from its first bytes, before the file is read.
    results = write_llm_run(tmp_path / "bench")
    with open(results, "wb") as fh:
        fh.write(b"\x89PNG" + os.urandom(4096))
        fh.truncate(200 * 1024 * 1024)
    err, peak = _peak(lambda: read_benchmark_results(tmp_path / "bench"))
    assert "not a JSON document" in str(err) and peak < 5 * 1024 * 1024


@pytest.mark.parametrize("task", ["../../outside/evil", "/etc/passwd", "..", "a/../../b"])
def test_task_names_cannot_leave_the_source_tree(tmp_path: Path, task: str) -> None:
    """Failure 3c: an index.json task named ../../outside/evil read a file outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.json").write_text(json.dumps({"task": task, "configurations": []}))
    docs = snapshot_docs()
    docs["index.json"]["tasks"].append(task)
    docs["index.json"]["architectures"]["llm"].append(task)
    root = write_snapshot(tmp_path / "a" / "b" / "lb", docs)
    err = _refused(root)
    assert err.source == str(root / "index.json") and "plain name" in str(err)


def test_model_ids_from_raw_results_cannot_leave_the_configs_tree(tmp_path: Path) -> None:
    secret = tmp_path / "secret" / "model_info.json"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"nickname": "should never be read"}))
    configs = tmp_path / "bench" / "configs" / "vllm"
    configs.mkdir(parents=True)
    run = write_llm_run(tmp_path / "bench", model_id="acme/m")
    doc = json.loads(run.read_text())
    doc["model_id"] = "../../../../secret"
    run.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="leaves the source tree"):
        read_benchmark_results(tmp_path / "bench", skip_invalid=False)
