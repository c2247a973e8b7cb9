"""``advise``: the cheapest change to one run under a deadline, or the store-wide savings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from joulelens.analysis import planning as pl
from joulelens.cli.common import (
    OutputFormat,
    StoreOpt,
    TableFormat,
    WideOpt,
    console,
    fmt_num,
    open_store,
)
from joulelens.cli.filters import check_names
from joulelens.cli.planning import (
    FormatOpt,
    LatencyOpt,
    OutputOpt,
    Row,
    config_table,
    emit,
    notes,
)
from joulelens.cli.tables import Col, fit_table
from joulelens.store import RunFilter


def saving_text(fraction: float, unit: str) -> str:
    """ "uses 77.2% less energy per token" (or more): a direction in words, not a sign."""
    if fraction >= 0:
        return f"uses {fraction:.1%} less energy per {unit}"
    return f"uses {-fraction:.1%} more energy per {unit}"


def advise(
    run: Annotated[
        str | None, typer.Argument(help="Run id or prefix; omit for the store-wide savings report.")
    ] = None,
    deadline_ms: Annotated[
        float | None, typer.Option(help="Latency deadline, ms (default: the run's own latency).")
    ] = None,
    latency: LatencyOpt = pl.LatencyMetric.PAPER,
    task: Annotated[
        list[str] | None, typer.Option(help="Savings report: only these tasks.")
    ] = None,
    cap: Annotated[
        int, typer.Option(help="Savings report: the default batch cap.")
    ] = pl.DEFAULT_BATCH_CAP,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    wide: WideOpt = False,
    store: StoreOpt = None,
) -> None:
    """The cheapest change to a run under a deadline, and the diagnosis path behind it.

    Without RUN: per task and deadline, what the minimum-energy batch saves over a default
    batch cap of 256 (or the largest stable batch below it).
    """
    st = open_store(store)
    if run is None:
        for name in task or []:
            check_names(st, task=name)
        savings = pl.deadline_savings(st.query(RunFilter()), cap=cap, tasks=task)
        _savings(savings, cap, fmt, output, wide)
        return
    record = st.get(run)
    advice = pl.advise(record, st.query(RunFilter(task=record.task)), deadline_ms, latency)
    unit = advice.current.energy_unit
    rows: list[Row] = [("current", advice.current)]
    rows += [(o.change.value, o.target) for o in advice.options]
    title = (
        f"{advice.run}: {advice.latency} <= {advice.deadline_ms:.4g} ms ({advice.deadline_source})"
    )
    flat = [{"change": r, **(c.to_dict() if c else {})} for r, c in rows]
    emit(
        advice.to_dict(),
        fmt,
        output,
        config_table(title, "change", rows, wide=wide),
        flat,
        wide=wide,
    )
    lines = [] if advice.current_meets_deadline else ["the run itself MISSES the deadline"]
    if advice.already_best:
        lines.append(
            f"already the best choice within the deadline: no other batch, GPU count, "
            f"precision or GPU meeting {advice.deadline_ms:.4g} ms uses less energy per {unit}"
        )
    lines += [
        f"{o.change.value}: {o.summary}; {saving_text(o.saving_fraction, unit)} ({o.target.source})"
        for o in advice.options
    ]
    if advice.best:
        rationale = advice.best.rationale
        lines.append(
            "why: " + " | ".join(advice.best.paths) + f". {rationale[:1].upper()}{rationale[1:]}"
        )
    lines.append(f"batch: {advice.batch_explanation}")
    lines += [f"not advised, {n.change.value}: {n.reason}" for n in advice.not_advised]
    notes(fmt, lines)


def _savings(
    rows: list[pl.SavingsRow], cap: int, fmt: TableFormat, output: Path | None, wide: bool
) -> None:
    cols: list[Col[Any]] = [
        Col("task", lambda r: r.task),
        Col(
            "deadline ms",
            lambda r: "none" if r.deadline_ms is None else f"{r.deadline_ms:g}",
            justify="right",
        ),
        Col("setups", lambda r: str(r.setups), justify="right"),
        Col("default on time", lambda r: str(r.default_on_time), justify="right"),
        Col("saving median %", lambda r: fmt_num(r.saving_median_pct), justify="right"),
        Col("none on time", lambda r: str(r.nothing_on_time), justify="right"),
        Col("saving max %", lambda r: fmt_num(r.saving_max_pct), priority=1, justify="right"),
        Col("default too slow", lambda r: str(r.default_too_slow), priority=1, justify="right"),
        Col(
            "its cost median %",
            lambda r: fmt_num(r.too_slow_cost_median_pct),
            priority=1,
            justify="right",
        ),
        Col("saving mean %", lambda r: fmt_num(r.saving_mean_pct), priority=2, justify="right"),
    ]
    table = fit_table(
        cols,
        rows,
        console=console,
        title=f"min-energy batch under a deadline vs batch cap {cap} (or the largest stable below)",
        wide=wide,
    )
    dicts = [r.to_dict() for r in rows]
    emit(dicts, fmt, output, table, dicts, wide=wide)


def register(app: typer.Typer) -> None:
    app.command("advise")(advise)
