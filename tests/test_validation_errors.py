"""Pydantic's errors become one InputError that names the file and every bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.benchmark_fixtures import llm_results, write_llm_run
from ingest.leaderboard_fixtures import snapshot_docs, write_snapshot
from joulelens.cli.app import run_cli
from joulelens.errors import MAX_LISTED_PROBLEMS, InputError, from_validation
from joulelens.ingest.mlenergy_benchmark import read_benchmark_results
from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.records.migrations import MIGRATIONS
from joulelens.runner.sweep import SweepGrid
from joulelens.store import Store
from joulelens.store.runfiles import load_run_file

GPQA = "tasks/gpqa.json"


class _Row(BaseModel):
    model_config = ConfigDict(strict=True)

    watts: float = Field(gt=0)
    runs: list[int]


def _error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        _Row.model_validate(data)
    return exc.value


def test_one_problem_reads_as_before() -> None:
    err = from_validation(_error({"watts": -3.0, "runs": [1]}), "grid.json", "rows[2]")
    assert (err.source, err.field) == ("grid.json", "rows[2].watts")
    assert str(err) == "grid.json: field 'rows[2].watts': Input should be greater than 0 (got -3.0)"
    assert err.problems == [("rows[2].watts", "Input should be greater than 0 (got -3.0)")]


def test_every_problem_is_named_with_its_field_and_value() -> None:
    err = from_validation(_error({"watts": "5", "runs": [1, "x"]}), "grid.json")
    assert [f for f, _ in err.problems] == ["watts", "runs[1]"]
    assert err.field == "watts" and err.source == "grid.json"
    assert str(err) == (
        "grid.json: 2 problems: field 'watts': Input should be a valid number (got '5'); "
        "field 'runs[1]': Input should be a valid integer (got 'x')"
    )


def test_a_missing_field_does_not_echo_the_whole_document() -> None:
    err = from_validation(_error({"runs": [1]}))
    assert err.source is None and err.problems == [("watts", "Field required")]
    assert str(err) == "field 'watts': Field required"


def test_thousands_of_problems_are_all_counted_and_some_listed() -> None:
    err = from_validation(_error({"watts": 1.0, "runs": ["x"] * 5000}), "big.json")
    assert len(err.problems) == 5000
    assert str(err).startswith("big.json: 5000 problems: field 'runs[0]': ")
    assert str(err).count("field 'runs[") == MAX_LISTED_PROBLEMS
    assert str(err).endswith(f"; and {5000 - MAX_LISTED_PROBLEMS} more")


def test_a_leaderboard_file_with_two_bad_fields_names_both(tmp_path: Path) -> None:
    docs = snapshot_docs()
    docs[GPQA]["configurations"][1].update(avg_power_watts=-300.0, max_num_seqs="8")
    root = write_snapshot(tmp_path / "lb", docs)
    with pytest.raises(InputError) as exc:
        read_leaderboard(root)
    fields = [f for f, _ in exc.value.problems]
    assert fields == ["configurations[1].max_num_seqs", "configurations[1].avg_power_watts"]
    assert exc.value.source == str(root / GPQA)
    assert all(f"field '{f}'" in str(exc.value) for f in fields)


def test_raw_benchmark_results_with_two_bad_fields_name_both(tmp_path: Path) -> None:
    path = write_llm_run(tmp_path)
    doc = llm_results()
    doc["results"][2]["ttft"] = -0.3
    doc["results"][1]["itl"][0] = "fast"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as exc:
        read_benchmark_results(tmp_path)
    assert [f for f, _ in exc.value.problems] == ["results[1].itl[0]", "results[2].ttft"]
    assert exc.value.source == str(path) and "2 problems" in str(exc.value)


def test_a_run_file_with_two_bad_fields_names_both(tmp_store: Store, make_record) -> None:
    tmp_store.put(make_record(run_id="r1", max_num_seqs=8, energy_per_token_joules=0.2))
    path = tmp_store.runs_dir / "r1" / "run.json"
    doc = json.loads(path.read_text())
    doc.update(max_num_seqs="eight", num_gpus=-1)
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as exc:
        load_run_file(path, MIGRATIONS)
    assert {f for f, _ in exc.value.problems} == {"max_num_seqs", "num_gpus"}
    assert exc.value.source == str(path)
    assert "field 'max_num_seqs'" in str(exc.value) and "field 'num_gpus'" in str(exc.value)


def test_a_sweep_file_with_two_bad_fields_names_both(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("models: []\ntasks: [gpqa]\nbatch_sizes: [1, two]\n")
    with pytest.raises(InputError) as exc:
        SweepGrid.from_yaml(path)
    assert [f for f, _ in exc.value.problems] == ["models", "batch_sizes[1]"]
    assert exc.value.source == str(path)


def test_the_cli_prints_every_bad_field(
    tmp_path: Path, tmp_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = snapshot_docs()
    docs[GPQA]["configurations"][0].update(energy_per_token_joules=-1.0, num_gpus=0)
    root = write_snapshot(tmp_path / "lb", docs)
    assert run_cli(["import", "mlenergy", str(root)]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "configurations[0].energy_per_token_joules" in err
    assert "configurations[0].num_gpus" in err
    assert Store(tmp_store.root).all() == []
