"""Planning commands: frontier, plan, datacenter, predict, advise (thin over the library)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from joulelens.analysis import planning as pl
from joulelens.analysis.planning.candidates import Candidate
from joulelens.analysis.selection import gpu_name
from joulelens.cli.common import StoreOpt, console, emit_json, fmt_num, open_store
from joulelens.errors import InputError
from joulelens.records import RunRecord
from joulelens.store import RunFilter


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv.")]
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


def _records(store: Path | None, **filters: Any) -> list[RunRecord]:
    return open_store(store).query(RunFilter(**filters))


def _emit(
    obj: Any, fmt: Format, output: Path | None, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """JSON: the library's full answer; CSV: flat rows; table: the rich table."""
    if fmt is Format.json:
        emit_json(obj, output)
        return
    if fmt is Format.table:
        console.print(table)
        return
    buf = io.StringIO()
    names = list(dict.fromkeys(k for row in rows for k in row)) or ["run_id"]
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if output is None:
        sys.stdout.write(buf.getvalue())
    else:
        from joulelens.store.files import atomic_write_text

        atomic_write_text(output, buf.getvalue())


def _notes(fmt: Format, lines: Sequence[str]) -> None:
    if fmt is Format.table:
        for line in lines:
            console.print(line, soft_wrap=True, highlight=False)


CONFIG_COLUMNS = ("model", "GPUs", "batch", "precision", "source", "latency ms", "J/{unit}")


def _config_table(title: str, first: str, rows: Sequence[tuple[str, Candidate | None]]) -> Table:
    unit = next((c.energy_unit for _, c in rows if c), "unit")
    table = Table(title=title, title_justify="left")
    for col in (first, *CONFIG_COLUMNS, f"{unit}s/s/W"):
        table.add_column(col.format(unit=unit))
    for role, c in rows:
        table.add_row(role, *(_cells(c) if c else ["—"] + [""] * 7))
    return table


def _cells(c: Candidate) -> list[str]:
    band = f" ±{c.band_fraction:.0%}" if c.band_fraction else ""
    return [
        c.model,
        f"{c.num_gpus}x {c.gpu}",
        str(c.batch),
        c.precision or "—",
        c.source,
        fmt_num(c.latency_ms),
        fmt_num(c.energy_per_unit_joules) + band,
        fmt_num(c.throughput_per_watt),
    ]


def frontier(
    task: Annotated[str, typer.Option(help="Task, e.g. gpqa or text-to-image.")],
    model: ModelOpt = None,
    gpu: Annotated[list[str] | None, typer.Option(help="GPU model; repeat for several.")] = None,
    num_gpus: Annotated[int | None, typer.Option(help="Only this GPU count.")] = None,
    precision: Annotated[str | None, typer.Option(help="Only this precision, e.g. fp8.")] = None,
    latency: LatencyOpt = pl.LatencyMetric.PAPER,
    with_predictions: PredOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """Time-energy Pareto frontier: configurations no other one beats on both axes (*)."""
    runs = _records(store, task=task, model=model, num_gpus=num_gpus, precision=precision)
    if gpu:
        wanted = {g.lower() for g in gpu}
        runs = [r for r in runs if gpu_name(r).lower() in wanted]
    extra = pl.predicted_candidates(pl.matching_curves(runs), latency) if with_predictions else []
    points = pl.pareto_frontier(runs, latency, extra)
    rows = [p.to_dict() for p in points]
    title = f"time-energy frontier: {task}" + (f", {model}" if model else "")
    table = _config_table(
        title, "front", [("*" if p.on_frontier else "", p.candidate) for p in points]
    )
    _emit(
        {"task": task, "model": model, "latency": latency.value, "points": rows},
        fmt,
        output,
        table,
        rows,
    )
    on = sum(p.on_frontier for p in points)
    _notes(fmt, [f"{on} of {len(points)} configurations are on the frontier"])


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
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """Minimum-energy configuration that meets a latency deadline (and an energy budget)."""
    result = pl.plan(
        _records(store, task=task),
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
    rows = [("best", o.best), ("runner-up", o.runner_up)]
    rows += [
        (f"< {t.deadline_ms:.4g} ms" if i == 0 else f"@ {t.deadline_ms:g} ms", t.replacement)
        for i, t in enumerate(o.tighter)
    ]
    rows += [("per model", ch.best) for ch in result.per_model] if len(result.per_model) > 1 else []
    budget = f", budget {energy_budget:g} J/{budget_per.value}" if energy_budget else ""
    title = f"{task}: {result.latency} <= {deadline_ms:g} ms{budget}"
    flat = [{"role": r, **(c.to_dict() if c else {})} for r, c in rows]
    _emit(result.to_dict(), fmt, output, _config_table(title, "", rows), flat)
    notes = [f"tighter deadline {t.note}" for t in o.tighter]
    notes += [f"{ch.scope}: {ch.reason}" for ch in result.per_model if ch.reason]
    _notes(fmt, notes)


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
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """The configuration that serves the most work in a facility's power, per GPU generation."""
    facility = pl.Facility(power_mw, pue, host_watts_per_gpu, power_basis)
    wanted = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else []
    result = pl.datacenter(
        _records(store, task=task),
        task,
        deadline_ms,
        facility,
        model=model,
        gpus=wanted,
        metric=latency,
    )
    unit = result.best.candidate.energy_unit
    table = Table(
        title=f"{task}: {power_mw:g} MW, {result.latency} <= {deadline_ms:g} ms",
        title_justify="left",
    )
    for col in (
        "configuration",
        "replicas",
        "GPUs",
        f"{unit}s/s",
        f"facility J/{unit}",
        "MWh/day",
        f"{unit}s/day",
    ):
        table.add_column(col)
    for d in result.per_gpu:
        table.add_row(
            d.candidate.label,
            f"{d.replicas:,}",
            f"{d.gpus:,}",
            fmt_num(d.throughput_units_per_sec),
            fmt_num(d.facility_joules_per_unit),
            fmt_num(d.energy_per_day_mwh),
            fmt_num(d.units_per_day),
        )
    rows = [
        {"config": d.candidate.label} | {k: v for k, v in d.to_dict().items() if k != "config"}
        for d in result.per_gpu
    ]
    _emit(result.to_dict(), fmt, output, table, rows)
    _notes(fmt, ["assumptions:", *(f"  - {a}" for a in result.assumptions)])


def predict(
    model: ModelOpt = None,
    task: Annotated[str | None, typer.Option(help="Task.")] = None,
    gpu: Annotated[str | None, typer.Option(help="GPU model, e.g. B200.")] = None,
    num_gpus: Annotated[int | None, typer.Option(help="GPU count.")] = None,
    batch: Annotated[int | None, typer.Option(help="max_num_seqs, or the diffusion batch.")] = None,
    precision: Annotated[str | None, typer.Option(help="Precision, e.g. fp8.")] = None,
    validate: Annotated[
        bool, typer.Option("--validate", help="Leave-one-out accuracy over the store instead.")
    ] = False,
    points: Annotated[
        bool, typer.Option("--points", help="--validate --format json: list every held-out run.")
    ] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """Energy and latency at an unmeasured batch size, with a band; or --validate the method."""
    if validate:
        _validation(pl.leave_one_out(_records(store, task=task, model=model)), fmt, output, points)
        return
    if batch is None:
        raise InputError("give --batch (or --validate)", field="--batch")
    preds = pl.predict(
        _records(store),
        batch,
        model=model,
        task=task,
        gpu=gpu,
        num_gpus=num_gpus,
        precision=precision,
    )
    table = Table(title=f"prediction at batch {batch}", title_justify="left")
    for col in ("setup", "source", "between", "J/unit", "band", "power W", "units/s", "latency ms"):
        table.add_column(col)
    for p in preds:
        lat = ", ".join(
            f"{k.removesuffix('_ms')} {fmt_num(v)}" for k, v in p.latencies_ms.items() if v
        )
        table.add_row(
            p.setup,
            p.source,
            f"{p.lower_batch}-{p.upper_batch}",
            f"{fmt_num(p.energy_per_unit_joules)} /{p.energy_unit}",
            f"{fmt_num(p.energy_low_joules)}-{fmt_num(p.energy_high_joules)}",
            fmt_num(p.power_watts),
            fmt_num(p.throughput_units_per_sec),
            lat,
        )
    rows = [p.to_dict() for p in preds]
    _emit(rows, fmt, output, table, rows)


def _validation(
    report: pl.ValidationReport, fmt: Format, output: Path | None, points: bool
) -> None:
    data = report.to_dict(with_points=points)
    table = Table(
        title=f"leave-one-out, energy per unit: {len(report.points)} held-out interior runs "
        f"in {report.setups_with_interior} setups",
        title_justify="left",
    )
    for col in (
        "method",
        "median %",
        "p90 %",
        "mean %",
        "LLM median / p90",
        "diffusion median / p90",
    ):
        table.add_column(col)
    for s in report.scores.values():
        kinds = [s.by_kind.get(k, {}) for k in ("llm", "diffusion")]
        table.add_row(
            s.label,
            fmt_num(s.median_pct),
            fmt_num(s.p90_pct),
            fmt_num(s.mean_pct),
            *(f"{fmt_num(k.get('median_pct'))} / {fmt_num(k.get('p90_pct'))}" for k in kinds),
        )
    rows = [
        {k: v for k, v in vars(s).items() if not k.startswith("by_")}
        for s in report.scores.values()
    ]
    _emit(data, fmt, output, table, rows)
    verdict = "meets" if report.meets_targets else "MISSES"
    beats = "beats" if report.beats_logistic else "does NOT beat"
    t = data["targets"]
    _notes(
        fmt,
        [
            f"targets median < {t['median_pct']}%, p90 < {t['p90_pct']}%: "
            f"joulelens {verdict} them and {beats} the logistic fit"
        ],
    )


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
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """The cheapest change to a run under a deadline, and the diagnosis path behind it.

    Without RUN: per task and deadline, what the minimum-energy batch saves over a default
    batch cap of 256 (or the largest stable batch below it).
    """
    st = open_store(store)
    if run is None:
        _savings(pl.deadline_savings(st.query(RunFilter()), cap=cap, tasks=task), cap, fmt, output)
        return
    record = st.get(run)
    advice = pl.advise(record, st.query(RunFilter(task=record.task)), deadline_ms, latency)
    rows: list[tuple[str, Candidate | None]] = [("current", advice.current)]
    rows += [(o.change.value, o.target) for o in advice.options]
    title = (
        f"{advice.run}: {advice.latency} <= {advice.deadline_ms:.4g} ms ({advice.deadline_source})"
    )
    flat = [{"change": r, **(c.to_dict() if c else {})} for r, c in rows]
    _emit(advice.to_dict(), fmt, output, _config_table(title, "change", rows), flat)
    notes = [] if advice.current_meets_deadline else ["the run itself MISSES the deadline"]
    notes += [
        f"{o.change.value}: {o.summary}, saving {o.saving_fraction:+.1%} ({o.target.source})"
        for o in advice.options
    ]
    if advice.best:
        notes.append("why: " + " | ".join(advice.best.paths) + f". {advice.best.rationale}")
    notes.append(f"batch: {advice.batch_explanation}")
    notes += [f"not advised, {n.change.value}: {n.reason}" for n in advice.not_advised]
    _notes(fmt, notes)


def _savings(rows: list[pl.SavingsRow], cap: int, fmt: Format, output: Path | None) -> None:
    table = Table(
        title=f"min-energy batch under a deadline vs batch cap {cap} (or the largest stable below)",
        title_justify="left",
    )
    for col in (
        "task",
        "deadline ms",
        "setups",
        "default on time",
        "saving median %",
        "mean %",
        "max %",
        "default too slow",
        "its cost median %",
        "none on time",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.task,
            "none" if r.deadline_ms is None else f"{r.deadline_ms:g}",
            str(r.setups),
            str(r.default_on_time),
            fmt_num(r.saving_median_pct),
            fmt_num(r.saving_mean_pct),
            fmt_num(r.saving_max_pct),
            str(r.default_too_slow),
            fmt_num(r.too_slow_cost_median_pct),
            str(r.nothing_on_time),
        )
    dicts = [r.to_dict() for r in rows]
    _emit(dicts, fmt, output, table, dicts)


def register(app: typer.Typer) -> None:
    app.command("frontier")(frontier)
    app.command("plan")(plan)
    app.command("datacenter")(datacenter)
    app.command("predict")(predict)
    app.command("advise")(advise)
