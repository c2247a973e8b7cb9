"""The CLI's error boundary: every command, given nothing, an unknown option or a bad value,
answers with what is wrong on the first line and no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joulelens.cli.app import DEBUG_ENV, command, run_cli
from joulelens.store import Store

# Given no arguments these do their real, long job (measure; serve until Ctrl-C).
RUNS_FOREVER_WITHOUT_ARGS = {("demo",), ("serve",)}


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(command()))
LEAVES = [(p, c) for p, c in COMMANDS if not hasattr(c, "commands")]
GROUPS = [(p, c) for p, c in COMMANDS if hasattr(c, "commands")]


def _ids(items: list[tuple[tuple[str, ...], Any]]) -> list[str]:
    return [" ".join(p) or "joulelens" for p, _ in items]


@pytest.fixture(autouse=True)
def _isolated(tmp_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DEBUG_ENV, raising=False)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    assert "This is a bug" not in err, err
    return code, out, err


def _first_line(err: str) -> str:
    return err.strip().splitlines()[0] if err.strip() else ""


def test_the_walk_covers_every_command() -> None:
    names = {" ".join(p) for p, _ in LEAVES}
    assert {"runs", "why", "plan", "import mlenergy", "store info", "plot timeline"} <= names
    assert len(LEAVES) >= 25


@pytest.mark.parametrize(("path", "cmd"), GROUPS, ids=_ids(GROUPS))
def test_a_group_without_a_command_says_so(
    path: tuple[str, ...], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, *path)
    assert code == 2
    first = _first_line(err)
    assert first.startswith("error: ") and "needs a command" in first, err
    assert all(name in first for name in cmd.commands), first
    assert "Usage:" in out  # then the help, for a user who typed the bare command


BARE = [(p, c) for p, c in LEAVES if p not in RUNS_FOREVER_WITHOUT_ARGS]


@pytest.mark.parametrize(("path", "cmd"), BARE, ids=_ids(BARE))
def test_every_command_without_arguments(
    path: tuple[str, ...], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, *path)
    if code == 0:
        return
    assert code in (1, 2)
    first = _first_line(err)
    assert first.startswith("error: "), err
    if any(p.required for p in cmd.params):
        assert code == 2 and "Missing" in first, first


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=_ids(LEAVES))
def test_every_command_with_an_unknown_option(
    path: tuple[str, ...], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, *path, "--no-such-option")
    assert code == 2
    assert _first_line(err).startswith("error: No such option: --no-such-option"), err
    assert f"Try 'joulelens {' '.join(path)} --help'" in err


def _bad_value(cmd: Any) -> tuple[list[str], str]:
    """Arguments giving one option a value of the wrong type, and the option's name."""
    for param in cmd.params:
        if getattr(param, "is_flag", False) or not param.opts[0].startswith("--"):
            continue
        kind = getattr(param, "type_descriptor", None)
        annotation = getattr(kind, "annotation", None)
        if getattr(kind, "is_choice", False) or annotation in (int, float):
            return [param.opts[0], "not-a-value"], param.opts[0]
    return ["unexpected", "extra", "words"], ""


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=_ids(LEAVES))
def test_every_command_with_a_bad_value(
    path: tuple[str, ...], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    args, option = _bad_value(cmd)
    code, _, err = _run(capsys, *path, *args)
    assert code == 2
    first = _first_line(err)
    assert first.startswith("error: "), err
    if option:
        assert f"Invalid value for '{option}'" in first and "not-a-value" in first, first
    else:  # no typed option: stray words (or a missing required option, checked first)
        assert "unexpected extra argument" in first.lower() or "Missing" in first, first


def test_unknown_command_suggests_the_right_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "sumary")
    assert code == 2
    assert _first_line(err) == "error: No such command 'sumary'. Did you mean 'summary'?"


def test_joulelens_errors_exit_2_for_input_and_1_at_runtime(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "why", "no-such-run")
    assert code == 2 and _first_line(err).startswith("error: no run with id 'no-such-run'")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = _run(capsys, "store", "info", "--store", str(blocker))
    assert code == 1 and _first_line(err).startswith("error: cannot create store"), err


def test_brackets_in_an_error_are_printed_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    """Rich read "[ray]" in "pip install 'joulelens[ray]'" as markup and dropped it."""
    code, _, err = _run(capsys, "why", "jl-[ray]-[bold]x[/bold]")
    assert code == 2 and "'jl-[ray]-[bold]x[/bold]'" in _first_line(err), err


def test_a_foreign_error_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    unreadable = tmp_path / "sweep.yaml"
    unreadable.mkdir()  # a directory where a file is expected: IsADirectoryError
    code, _, err = _run(capsys, "sweep", str(unreadable))
    assert code in (1, 2)
    assert len(err.strip().splitlines()) == 1 and str(unreadable) in err, err


def test_a_bug_prints_one_line_and_how_to_see_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("joulelens.analysis.summary.summarize_tasks", broken)
    code = run_cli(["summary"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert "unexpected ZeroDivisionError: division by zero" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        run_cli(["--debug", "summary"])
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        run_cli(["summary"])


def test_help_shows_no_type_placeholder_for_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "runs", "--help")
    assert code == 0 and "--stable" in out and "<bool>" not in out
