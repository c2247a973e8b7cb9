"""Forgiving filters: a typo in a task, model or GPU gets a suggestion and exit code 2; an
empty answer says which filter emptied it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from analysis.planning_helpers import llm_sweep
from joulelens.cli.app import run_cli
from joulelens.records import RunRecord
from joulelens.store import Store


@pytest.fixture(autouse=True)
def store(tmp_store: Store, make_record: Callable[..., RunRecord]) -> Store:
    tmp_store.put_many(
        llm_sweep(make_record, [8, 64], task="gpqa", model_id="Qwen/Qwen3-8B")
        + llm_sweep(make_record, [8, 64, 512], task="lm-arena-chat", gpu="B200")
    )
    return tmp_store


def _err(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, " ".join(captured.err.split())


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["frontier"],
        ["plan", "--deadline-ms", "50"],
        ["predict", "--batch", "32"],
    ],
    ids=lambda c: c[0],
)
def test_a_misspelt_task_gets_a_suggestion(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _err(capsys, *command, "--task", "gqpa")
    assert code == 2
    assert err.startswith("error: no task 'gqpa'; did you mean 'gpqa'? known: gpqa,"), err
    assert "lm-arena-chat" in err  # the known list also has the built-in tasks


def test_a_misspelt_model_or_gpu_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _err(capsys, "runs", "--model", "Qwen3-9B")
    assert code == 2 and "no model matching 'Qwen3-9B'; did you mean" in err, err
    code, err = _err(capsys, "frontier", "--task", "gpqa", "--gpu", "H10")
    assert code == 2 and "no GPU 'H10'; did you mean 'H100'? known: B200, H100" in err, err
    code, err = _err(capsys, "runs", "--gpu", "MI300X")
    assert code == 2 and err.endswith("no GPU 'MI300X'; known: B200, H100"), err


def test_an_empty_result_names_the_filter_that_emptied_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _err(capsys, "runs", "--task", "gpqa", "--gpu", "B200")
    assert code == 0
    assert (
        err
        == "no runs match: 2 runs with --task gpqa, none with --gpu B200 (those have --gpu H100)"
    )
    code, err = _err(capsys, "runs", "--task", "lm-arena-chat", "--batch-min", "1000")
    assert "none with --batch-min 1000 (those have batch sizes 8..512)" in err, err
    code, err = _err(capsys, "frontier", "--task", "gpqa", "--num-gpus", "4")
    assert code == 1 and "none with --num-gpus 4 (those have --num-gpus 1)" in err, err
