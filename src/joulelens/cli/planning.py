"""Planning commands: frontier, plan, datacenter (thin over the library), and the pieces the
other planning commands (``predict``, ``advise``) share: formats, emitters, the config table."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from joulelens.analysis import planning as pl
from joulelens.analysis.planning.candidates import Candidate
from joulelens.analysis.selection import gpu_name
from joulelens.cli.common import (
    OutputFormat,
    StoreOpt,
    TableFormat,
    WideOpt,
    console,
    emit_json,
    fmt_num,
    gpu_label,
    open_store,
)
from joulelens.cli.filters import check_names, why_empty
from joulelens.cli.tables import Col, fit_table, print_table
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord
from joulelens.store import RunFilter

FormatOpt = Annotated[TableFormat, typer.Option("--format", "-f", help="table, json or csv.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")]
ModelOpt = Annotated[str | None, typer.Option(help="Model id or nickname (substring).")]
LatencyOpt = Annotated[
    pl.LatencyMetric,
    typer.Option(help="What the deadline bounds; paper: median ITL, or diffusion batch latency."),
]
PredOpt = Annotated[
    bool,
    typer.Option("--with-predictions", help="Add interpolated batch sizes (marked predicted)."),
]
DeadlineOpt = Annotated[float, typer.Option(help="Latency deadline, ms.")]


def select_runs(store: Path | None, *, gpus: Sequence[str] = (), **filters: Any) -> list[RunRecord]:
    """The runs a planning command works on; unknown names and empty answers explained."""
    st = open_store(store)
    check_names(st, task=filters.get("task"), model=filters.get("model"), gpu=gpus)
    flt = RunFilter(**filters)
    runs = st.query(flt)
    if not runs:
        raise AnalysisError(why_empty(st, flt))
    if gpus:
        wanted = {g.lower() for g in gpus}
        runs = [r for r in runs if gpu_name(r).lower() in wanted]
        if not runs:
            raise AnalysisError(f"no runs match: none of them on {', '.join(gpus)}")
    return runs


def emit(
    obj: Any,
    fmt: TableFormat,
    output: Path | None,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    wide: bool = False,
) -> None:
    """JSON: the library's full answer; CSV: flat rows; table: the rich table."""
    if fmt is OutputFormat.json:
        emit_json(obj, output)
        return
    if fmt is OutputFormat.table:
        print_table(table, console, wide=wide)
        return
    buf = io.StringIO()
    names = list(dict.fromkeys(k for row in rows for k in row)) or ["run_id"]
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if output is None:
        sys.stdout.write(buf.getvalue())
    else:
        from joulelens.core.files import atomic_write_text

        atomic_write_text(output, buf.getvalue())


def notes(fmt: TableFormat, lines: Sequence[str]) -> None:
    if fmt is OutputFormat.table:
        for line in lines:
            console.print(line, highlight=False)  # wraps at words, so ids stay whole


Row = tuple[str, Candidate | None]


def config_table(
    title: str, first: str, rows: Sequence[Row], *, wide: bool = False, note: str | None = None
) -> Table:
    """Configurations, one per row: run id, model, GPUs, batch, latency and energy first."""
    unit = next((c.energy_unit for _, c in rows if c), "unit")

    def of(get: Callable[[Candidate], str]) -> Callable[[Row], str]:
        return lambda row: get(row[1]) if row[1] is not None else "—"

    cols: list[Col[Row]] = [
        Col(first, lambda row: row[0]),
        Col("run id", of(lambda c: c.run_id or "(predicted)")),
        Col("model", of(lambda c: c.model), wrap=True, min_width=10),
        Col("GPUs", of(lambda c: gpu_label(c.num_gpus, c.gpu))),
        Col("batch", of(lambda c: str(c.batch)), justify="right"),
        Col("latency ms", of(lambda c: fmt_num(c.latency_ms)), justify="right"),
        Col(f"J/{unit}", of(_energy_cell), justify="right"),
        Col("precision", of(lambda c: c.precision or "—"), priority=1, uniform_caption=True),
        Col(
            f"{unit}s/s/W",
            of(lambda c: fmt_num(c.throughput_per_watt)),
            priority=2,
            justify="right",
        ),
        Col("source", of(lambda c: c.source), priority=3, uniform_caption=True),
    ]
    return fit_table(cols, rows, console=console, title=title, caption=note, wide=wide)


def _energy_cell(c: Candidate) -> str:
    band = f" ±{c.band_fraction:.0%}" if c.band_fraction else ""
    return fmt_num(c.energy_per_unit_joules) + band


def frontier(
    task: Annotated[str, typer.Option(help="Task, e.g. gpqa or text-to-image.")],
    model: ModelOpt = None,
    gpu: Annotated[list[str] | None, typer.Option(help="GPU model; repeat for several.")] = None,
    num_gpus: Annotated[int | None, typer.Option(help="Only this GPU count.")] = None,
    precision: Annotated[str | None, typer.Option(help="Only this precision, e.g. fp8.")] = None,
    latency: LatencyOpt = pl.LatencyMetric.PAPER,
    with_predictions: PredOpt = False,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    wide: WideOpt = False,
    store: StoreOpt = None,
) -> None:
    """Time-energy Pareto frontier: configurations no other one beats on both axes (*)."""
    runs = select_runs(
        store, gpus=gpu or [], task=task, model=model, num_gpus=num_gpus, precision=precision
    )
    extra = pl.predicted_candidates(pl.matching_curves(runs), latency) if with_predictions else []
    points = pl.pareto_frontier(runs, latency, extra)
    rows = [p.to_dict() for p in points]
    title = f"time-energy frontier: {task}" + (f", {model}" if model else "")
    table = config_table(
        title,
        "front",
        [("*" if p.on_frontier else "", p.candidate) for p in points],
        wide=wide,
        note="* on the frontier",
    )
    emit(
        {"task": task, "model": model, "latency": latency.value, "points": rows},
        fmt,
        output,
        table,
        rows,
        wide=wide,
    )
    on = sum(p.on_frontier for p in points)
    notes(fmt, [f"{on} of {len(points)} configurations are on the frontier"])


def plan(
    task: Annotated[str, typer.Option(help="Task, e.g. lm-arena-chat.")],
    deadline_ms: DeadlineOpt,
    model: ModelOpt = None,
    energy_budget: Annotated[float | None, typer.Option(help="Energy budget, J.")] = None,
    budget_per: Annotated[
        pl.BudgetPer, typer.Option(help="The budget is per unit of work or per response.")
    ] = pl.BudgetPer.UNIT,
    tighter_ms: Annotated[
        float | None, typer.Option(help="Also show the choice at this tighter deadline.")
    ] = None,
    latency: LatencyOpt = pl.LatencyMetric.PAPER,
    with_predictions: PredOpt = False,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    wide: WideOpt = False,
    store: StoreOpt = None,
) -> None:
    """Minimum-energy configuration that meets a latency deadline (and an energy budget)."""
    result = pl.plan(
        select_runs(store, task=task, model=model),
        task,
        deadline_ms,
        model=model,
        energy_budget_joules=energy_budget,
        budget_per=budget_per,
        metric=latency,
        tighter_ms=tighter_ms,
        with_predictions=with_predictions,
    )
    o = result.overall
    rows: list[Row] = [("best", o.best), ("runner-up", o.runner_up)]
    rows += [
        (f"< {t.deadline_ms:.4g} ms" if i == 0 else f"@ {t.deadline_ms:g} ms", t.replacement)
        for i, t in enumerate(o.tighter)
    ]
    rows += [("per model", ch.best) for ch in result.per_model] if len(result.per_model) > 1 else []
    budget = f", budget {energy_budget:g} J/{budget_per.value}" if energy_budget else ""
    title = f"{task}: {result.latency} <= {deadline_ms:g} ms{budget}"
    flat = [{"role": r, **(c.to_dict() if c else {})} for r, c in rows]
    emit(
        result.to_dict(),
        fmt,
        output,
        config_table(title, "choice", rows, wide=wide),
        flat,
        wide=wide,
    )
    lines = [f"tighter deadline {t.note}" for t in o.tighter]
    lines += [f"{ch.scope}: {ch.reason}" for ch in result.per_model if ch.reason]
    notes(fmt, lines)


def datacenter(
    task: Annotated[str, typer.Option(help="Task, e.g. lm-arena-chat.")],
    power_mw: Annotated[float, typer.Option(help="Facility power budget at the meter, MW.")],
    deadline_ms: DeadlineOpt,
    pue: Annotated[float, typer.Option(help="Power usage effectiveness (>= 1).")],
    host_watts_per_gpu: Annotated[float, typer.Option(help="Non-GPU server power per GPU, W.")],
    model: ModelOpt = None,
    gpus: Annotated[str | None, typer.Option(help="GPU models to compare, e.g. H100,B200.")] = None,
    power_basis: Annotated[
        pl.PowerBasis, typer.Option(help="GPU power: measured average, or TDP.")
    ] = pl.PowerBasis.MEASURED,
    latency: LatencyOpt = pl.LatencyMetric.PAPER,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    wide: WideOpt = False,
    store: StoreOpt = None,
) -> None:
    """The configuration that serves the most work in a facility's power, per GPU generation."""
    facility = pl.Facility(power_mw, pue, host_watts_per_gpu, power_basis)
    wanted = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else []
    check_names(open_store(store), model=model, gpu=wanted)
    result = pl.datacenter(
        select_runs(store, task=task),
        task,
        deadline_ms,
        facility,
        model=model,
        gpus=wanted,
        metric=latency,
    )
    unit = result.best.candidate.energy_unit
    cols: list[Col[Any]] = [
        Col("configuration", lambda d: d.candidate.label, wrap=True, min_width=16),
        Col("GPUs", lambda d: f"{d.gpus:,}", justify="right"),
        Col(f"{unit}s/s", lambda d: fmt_num(d.throughput_units_per_sec), justify="right"),
        Col(f"facility J/{unit}", lambda d: fmt_num(d.facility_joules_per_unit), justify="right"),
        Col("MWh/day", lambda d: fmt_num(d.energy_per_day_mwh), justify="right"),
        Col("replicas", lambda d: f"{d.replicas:,}", priority=1, justify="right"),
        Col(f"{unit}s/day", lambda d: fmt_num(d.units_per_day), priority=1, justify="right"),
    ]
    table = fit_table(
        cols,
        result.per_gpu,
        console=console,
        title=f"{task}: {power_mw:g} MW, {result.latency} <= {deadline_ms:g} ms",
        wide=wide,
    )
    rows = [
        {"config": d.candidate.label} | {k: v for k, v in d.to_dict().items() if k != "config"}
        for d in result.per_gpu
    ]
    emit(result.to_dict(), fmt, output, table, rows, wide=wide)
    notes(fmt, ["assumptions:", *(f"  - {a}" for a in result.assumptions)])


def register(app: typer.Typer) -> None:
    app.command("frontier")(frontier)
    app.command("plan")(plan)
    app.command("datacenter")(datacenter)
