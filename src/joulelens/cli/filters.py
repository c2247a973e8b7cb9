"""Forgiving run filters: a typo gets a suggestion, an empty answer says which filter emptied it.

``check_names`` runs before a command does any work: an unknown task, model or GPU is a
usage error (exit code 2) that names the close matches and what the store knows. An empty
result is not an error of the user's spelling, so ``why_empty`` explains it: the filters
are applied one at a time and the first one that leaves nothing is named, with the values
the runs that remained have for it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace

from joulelens.errors import InputError
from joulelens.store import RunFilter, Store

MAX_KNOWN_LISTED = 12

# RunFilter field -> the CLI option that sets it.
OPTION_OF = {
    "task": "--task",
    "model": "--model",
    "gpu_model": "--gpu",
    "num_gpus": "--num-gpus",
    "batch_min": "--batch-min",
    "batch_max": "--batch-max",
    "precision": "--precision",
    "stable_only": "--stable",
    "kind": "kind",
    "source": "--source",
}
# Catalog column whose values are shown when a filter on it leaves nothing.
_COLUMN_OF = {
    "task": "task",
    "model": "coalesce(nickname, model_id)",
    "gpu_model": "gpu_model",
    "num_gpus": "num_gpus",
    "batch_min": "batch",
    "batch_max": "batch",
    "precision": "weight_precision",
    "stable_only": "stable",
    "kind": "kind",
    "source": "source",
}

_LABEL = {"batch_min": "batch sizes", "batch_max": "batch sizes"}


def check_names(
    store: Store,
    *,
    task: str | None = None,
    model: str | None = None,
    gpu: str | Iterable[str] | None = None,
) -> None:
    """Raise :class:`InputError` for a task, model or GPU that nothing in the store has."""
    if task:
        _check_task(store, task)
    if model:
        _check_model(store, model)
    for name in [gpu] if isinstance(gpu, str) else list(gpu or []):
        known = _distinct(store, "gpu_model")
        if name.lower() not in {k.lower() for k in known}:
            raise InputError(_unknown("GPU", name, known))


def _check_task(store: Store, task: str) -> None:
    from joulelens.tasks import task_names

    known = sorted(set(task_names()) | set(_distinct(store, "task")))
    if task not in known:
        raise InputError(_unknown("task", task, known))


def _check_model(store: Store, model: str) -> None:
    rows = store.catalog.sql("SELECT DISTINCT model_id, nickname FROM runs")
    names = sorted({n for row in rows for n in row if n})
    if not any(model.lower() in n.lower() for n in names):
        raise InputError(_unknown("model matching", model, names))


def _unknown(what: str, given: str, known: Sequence[str]) -> str:
    lowered = {k.lower(): k for k in known}
    close = [lowered[m] for m in difflib.get_close_matches(given.lower(), list(lowered), n=3)]
    message = f"no {what} {given!r}"
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not known:
        return message + " (the store has no runs; import or measure some first)"
    listed = list(known[:MAX_KNOWN_LISTED])
    more = f" ... ({len(known)} in all)" if len(known) > len(listed) else ""
    return f"{message}{'' if close else ';'} known: {', '.join(listed)}{more}"


def _distinct(store: Store, column: str) -> list[str]:
    rows = store.catalog.sql(f"SELECT DISTINCT {column} FROM runs WHERE {column} IS NOT NULL")
    return sorted(str(r[0]) for r in rows)


def why_empty(store: Store, flt: RunFilter) -> str:
    """Which filter of ``flt`` left no runs, with the values the runs before it have."""
    base = RunFilter(include_failed=flt.include_failed)
    applied: list[str] = []
    for f in fields(RunFilter):
        value = getattr(flt, f.name)
        if f.name == "include_failed" or value in (None, False, ""):
            continue
        narrower = replace(base, **{f.name: value})
        if _count(store, narrower) == 0:
            before = _count(store, base)
            scope = f"{before} runs" + (f" with {' '.join(applied)}" if applied else "")
            option = OPTION_OF.get(f.name, f.name)
            shown = "" if value is True else f" {value}"
            values = _values(store, base, _COLUMN_OF.get(f.name), span=f.name.startswith("batch"))
            return f"no runs match: {scope}, none with {option}{shown}" + (
                f" (those have {_LABEL.get(f.name, option)} {values})" if values else ""
            )
        base = narrower
        applied.append(f"{OPTION_OF.get(f.name, f.name)}" + ("" if value is True else f" {value}"))
    return "no runs match" if _count(store, base) == 0 else ""


def _count(store: Store, flt: RunFilter) -> int:
    where, params = flt.to_sql()
    return int(store.catalog.sql(f"SELECT count(*) FROM runs WHERE {where}", params)[0][0])


def _values(store: Store, flt: RunFilter, column: str | None, *, span: bool = False) -> str:
    if column is None:
        return ""
    where, params = flt.to_sql()
    if span:
        low, high = store.catalog.sql(
            f"SELECT min({column}), max({column}) FROM runs WHERE {where}", params
        )[0]
        return f"{low}..{high}" if low is not None else ""
    rows = store.catalog.sql(
        f"SELECT DISTINCT {column} AS v FROM runs WHERE {where} AND {column} IS NOT NULL "
        "ORDER BY v",
        params,
    )
    values = [str(r[0]) for r in rows]
    listed = values[:MAX_KNOWN_LISTED]
    return ", ".join(listed) + (f" ... ({len(values)} in all)" if len(values) > len(listed) else "")
