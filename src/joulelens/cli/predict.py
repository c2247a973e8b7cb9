"""``predict``: energy and latency at an unmeasured batch size, or ``--validate`` the method."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from joulelens.analysis import planning as pl
from joulelens.cli.common import OutputFormat, StoreOpt, TableFormat, WideOpt, console, fmt_num
from joulelens.cli.planning import FormatOpt, ModelOpt, OutputOpt, emit, notes, select_runs
from joulelens.cli.tables import Col, fit_table
from joulelens.errors import InputError


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
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    wide: WideOpt = False,
    store: StoreOpt = None,
) -> None:
    """Energy and latency at an unmeasured batch size, with a band; or --validate the method."""
    if validate:
        runs = select_runs(store, task=task, model=model)
        _validation(pl.leave_one_out(runs), fmt, output, points, wide)
        return
    if batch is None:
        raise InputError("give --batch (or --validate)", field="--batch")
    preds = pl.predict(
        select_runs(store, gpus=[gpu] if gpu else [], task=task, model=model),
        batch,
        model=model,
        task=task,
        gpu=gpu,
        num_gpus=num_gpus,
        precision=precision,
    )
    unit = preds[0].energy_unit if preds and len({p.energy_unit for p in preds}) == 1 else "unit"
    cols: list[Col[Any]] = [
        Col("setup", lambda p: p.setup, wrap=True, min_width=16),
        Col(f"J/{unit}", lambda p: fmt_num(p.energy_per_unit_joules), justify="right"),
        Col(
            "band",
            lambda p: f"{fmt_num(p.energy_low_joules)}-{fmt_num(p.energy_high_joules)}",
            justify="right",
        ),
        Col("between", lambda p: f"{p.lower_batch}-{p.upper_batch}", justify="right"),
        Col("latency ms", _latencies, priority=1, wrap=True, min_width=12),
        Col("power W", lambda p: fmt_num(p.power_watts), priority=2, justify="right"),
        Col(f"{unit}s/s", lambda p: fmt_num(p.throughput_units_per_sec), priority=2),
        Col("source", lambda p: p.source, priority=3, uniform_caption=True),
    ]
    table = fit_table(cols, preds, console=console, title=f"prediction at batch {batch}", wide=wide)
    rows = [p.to_dict() for p in preds]
    emit(rows, fmt, output, table, rows, wide=wide)


def _latencies(p: Any) -> str:
    return ", ".join(
        f"{k.removesuffix('_ms')} {fmt_num(v)}" for k, v in p.latencies_ms.items() if v
    )


def _validation(
    report: pl.ValidationReport, fmt: TableFormat, output: Path | None, points: bool, wide: bool
) -> None:
    data = report.to_dict(with_points=points)
    scores = list(report.scores.values())

    def kind(name: str) -> Any:
        def cell(s: Any) -> str:
            k = s.by_kind.get(name, {})
            return f"{fmt_num(k.get('median_pct'))} / {fmt_num(k.get('p90_pct'))}"

        return cell

    cols: list[Col[Any]] = [
        Col("method", lambda s: s.label, wrap=True, min_width=20),
        Col("median %", lambda s: fmt_num(s.median_pct), justify="right"),
        Col("p90 %", lambda s: fmt_num(s.p90_pct), justify="right"),
        Col("LLM median / p90", kind("llm"), justify="right"),
        Col("diffusion median / p90", kind("diffusion"), justify="right"),
        Col("mean %", lambda s: fmt_num(s.mean_pct), priority=1, justify="right"),
    ]
    table = fit_table(
        cols,
        scores,
        console=console,
        title=f"leave-one-out, energy per unit: {len(report.points)} held-out interior runs "
        f"in {report.setups_with_interior} setups",
        wide=wide,
    )
    rows = [{k: v for k, v in vars(s).items() if not k.startswith("by_")} for s in scores]
    emit(data, fmt, output, table, rows, wide=wide)
    verdict = "meets" if report.meets_targets else "MISSES"
    beats = "beats" if report.beats_logistic else "does NOT beat"
    t = data["targets"]
    notes(
        fmt,
        [
            f"targets median < {t['median_pct']}%, p90 < {t['p90_pct']}%: "
            f"joulelens {verdict} them and {beats} the logistic fit"
        ],
    )


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
