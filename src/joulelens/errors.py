"""One error tree for joulelens; foreign errors are mapped at the boundary (``raise ... from``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class JoulelensError(Exception):
    """Base of every error joulelens raises on purpose; the CLI prints these without a traceback.

    The message is redacted (:mod:`joulelens.redact`): an error never shows a secret, wherever
    it is printed or stored (failure reasons are ``str(error)``).
    """

    def __str__(self) -> str:
        from joulelens.redact import redact

        return redact(super().__str__())


class InputError(JoulelensError):
    """Bad user input: names the file (or URL) and the field that is wrong.

    ``problems`` lists every (field, message) found; built by :func:`from_validation`, it may
    hold several, and ``field`` is then the first of them.
    """

    def __init__(self, message: str, *, source: str | Path | None = None, field: str | None = None):
        self.source = str(source) if source is not None else None
        self.field = field
        self.problems: list[tuple[str | None, str]] = [(field, message)]
        where = []
        if self.source:
            where.append(self.source)
        if field:
            where.append(f"field '{field}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class StoreError(JoulelensError):
    """The run store cannot be read or written."""


class RunNotFoundError(StoreError):
    """No run with the given id (or prefix) is in the store."""


class MeterError(JoulelensError):
    """An energy or power source failed while measuring."""


class EngineError(JoulelensError):
    """An inference engine or server failed to start, answer or stop."""


class AnalysisError(JoulelensError):
    """An analysis cannot be computed from the runs at hand (e.g. nothing meets a deadline)."""


class ClusterError(JoulelensError):
    """A cluster (Ray) could not be reached, lost a node or worker, or cannot place a run."""


MAX_LISTED_PROBLEMS = 20  # a hostile file can hold millions; the rest are counted, not listed
_NO_INPUT_SHOWN = ("missing", "model_type", "dict_type")  # the input is the whole document


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("results", 3, "itl")`` -> ``results[3].itl``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(err: Any, prefix: str) -> tuple[str | None, str]:
    inner = field_path(err["loc"])
    joiner = "" if inner.startswith("[") else "."
    field = joiner.join(p for p in (prefix, inner) if p) or None
    message = err["msg"]
    if "input" in err and err["type"] not in _NO_INPUT_SHOWN:
        got = repr(err["input"])
        message += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
    return field, message


def from_validation(
    exc: ValidationError, source: str | Path | None = None, prefix: str = ""
) -> InputError:
    """Every problem pydantic found, as one InputError naming the file and each field (and
    the value given). ``prefix`` is where the validated object sits in its file."""
    problems = [_problem(err, prefix) for err in exc.errors()]
    if len(problems) == 1:
        field, message = problems[0]
        return InputError(message, source=source, field=field)
    listed = [f"field '{f}': {m}" if f else m for f, m in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        listed.append(f"and {len(problems) - MAX_LISTED_PROBLEMS} more")
    error = InputError(f"{len(problems)} problems: " + "; ".join(listed), source=source)
    error.field, error.problems = problems[0][0], problems
    return error
