"""Data commands: import, runs, summary and store maintenance."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from joulelens.cli.common import (
    BatchMaxOpt,
    BatchMinOpt,
    GpuOpt,
    ModelOpt,
    NumGpusOpt,
    OutputFormat,
    PrecisionOpt,
    RecordFormat,
    StableOpt,
    StoreOpt,
    TaskOpt,
    WideOpt,
    console,
    emit_json,
    emit_records,
    err_console,
    fmt_num,
    open_store,
    run_filter,
)
from joulelens.cli.filters import check_names, why_empty
from joulelens.cli.tables import Col, fit_table, print_table
from joulelens.redact import redact

import_app = typer.Typer(
    help="Import results from other tools into the store.", no_args_is_help=True
)
store_app = typer.Typer(help="Inspect and maintain the run store.", no_args_is_help=True)


@import_app.command("mlenergy")
def import_mlenergy(
    source: Annotated[
        str, typer.Argument(help="Leaderboard JSON directory or base URL, or a raw run tree.")
    ],
    store: StoreOpt = None,
) -> None:
    """Import the ML.ENERGY Leaderboard's published JSON (index.json, tasks/, models/).

    A local directory without index.json that holds results.json files is taken as raw
    ML.ENERGY Benchmark results and imported as `import mlenergy-raw` would.
    """
    from joulelens.ingest.benchmark_layout import looks_like_benchmark_tree
    from joulelens.ingest.mlenergy_leaderboard import read_leaderboard

    if not source.startswith(("http://", "https://")):
        local = Path(source).expanduser()
        if looks_like_benchmark_tree(local):
            _import_raw(local, None, None, skip_invalid=False, store=store)
            return
    started = time.perf_counter()
    records = read_leaderboard(source)
    st = open_store(store)
    counts = st.put_many(records)
    console.print(
        f"imported {len(records)} configurations from {redact(source)} ({counts.describe()}) "
        f"into {st.root} in {time.perf_counter() - started:.2f} s",
        soft_wrap=True,
    )


@import_app.command("mlenergy-raw")
def import_mlenergy_raw(
    path: Annotated[
        Path, typer.Argument(help="ML.ENERGY Benchmark run tree, run directory or results.json.")
    ],
    configs: Annotated[
        Path | None,
        typer.Option(
            help="The benchmark repository's configs/ directory (model metadata, parallelism); "
            "default: configs/ in or above PATH."
        ),
    ] = None,
    gpu_model: Annotated[
        str | None,
        typer.Option(help="GPU model of diffusion runs whose path names none, e.g. H100."),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Import the valid runs and report malformed ones, not fail."
        ),
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Import raw ML.ENERGY Benchmark results (results.json, prometheus.json per run).

    Derives the leaderboard's metrics and stability (with the cascade over larger batches,
    judged together with benchmark runs already in the store). A malformed file stops the
    import and nothing is written, unless --skip-invalid is given.
    """
    _import_raw(path, configs, gpu_model, skip_invalid=skip_invalid, store=store)


def _import_raw(
    path: Path,
    configs: Path | None,
    gpu_model: str | None,
    *,
    skip_invalid: bool,
    store: Path | None,
) -> None:
    from joulelens.ingest.into_store import store_benchmark
    from joulelens.ingest.mlenergy_benchmark import read_benchmark_results

    started = time.perf_counter()
    result = read_benchmark_results(
        path, configs=configs, gpu_model=gpu_model, skip_invalid=skip_invalid
    )
    st = open_store(store)
    done = store_benchmark(result, st)
    for problem in done.skipped:
        err_console.print(
            f"[yellow]skipped:[/] {escape(str(problem))}", highlight=False, soft_wrap=True
        )
    console.print(
        f"imported {len(done.records)} runs from {path} ({done.counts.describe()}; "
        f"{done.unstable} unstable"
        + (f"; {done.rejudged} earlier runs re-judged" if done.rejudged else "")
        + (f"; {len(done.skipped)} malformed skipped" if done.skipped else "")
        + f") into {st.root} in {time.perf_counter() - started:.2f} s"
        + ("" if done.configs_dir else "\nno configs/ found: model metadata left empty"),
        highlight=False,
        soft_wrap=True,
    )


def runs(
    task: TaskOpt = None,
    model: ModelOpt = None,
    gpu: GpuOpt = None,
    num_gpus: NumGpusOpt = None,
    batch_min: BatchMinOpt = None,
    batch_max: BatchMaxOpt = None,
    precision: PrecisionOpt = None,
    stable: StableOpt = False,
    failed: Annotated[bool, typer.Option("--failed", help="Include failed runs.")] = False,
    fmt: Annotated[RecordFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    wide: WideOpt = False,
    store: StoreOpt = None,
) -> None:
    """List runs in the store, filtered; JSON prints an array of full run records."""
    flt = run_filter(
        task=task,
        model=model,
        gpu=gpu,
        num_gpus=num_gpus,
        batch_min=batch_min,
        batch_max=batch_max,
        precision=precision,
        stable=stable,
        include_failed=failed,
    )
    st = open_store(store)
    check_names(st, task=task, model=model, gpu=gpu)
    records = st.query(flt)
    if not records and fmt is OutputFormat.table:
        err_console.print(why_empty(st, flt), highlight=False, soft_wrap=True)
        return
    emit_records(records, fmt, output, wide=wide)


def summary(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
    wide: WideOpt = False,
    store: StoreOpt = None,
) -> None:
    """Per-task summary of the store: runs, models, GPUs, energy per unit of work."""
    from joulelens.analysis.summary import TaskSummary, summarize_tasks

    rows = summarize_tasks(open_store(store).query())
    if fmt == OutputFormat.json:
        emit_json([dataclasses.asdict(r) for r in rows])
        return
    cols: list[Col[TaskSummary]] = [
        Col("task", lambda r: r.task),
        Col("runs", lambda r: str(r.runs), justify="right"),
        Col("stable", lambda r: str(r.stable_runs), justify="right"),
        Col("min J", lambda r: fmt_num(r.min_energy_per_unit_joules), justify="right"),
        Col("median J", lambda r: fmt_num(r.median_energy_per_unit_joules), justify="right"),
        Col("per", lambda r: r.energy_unit),
        Col("models", lambda r: str(r.models), priority=1, justify="right"),
        Col(
            "median output tokens",
            lambda r: fmt_num(r.median_output_len),
            priority=1,
            justify="right",
        ),
        Col("GPUs", lambda r: ", ".join(r.gpu_models), priority=2, wrap=True, min_width=10),
    ]
    table = fit_table(
        cols,
        rows,
        console=console,
        title="joulelens store: per-task summary (energy boundary: as recorded)",
        wide=wide,
    )
    print_table(table, console, wide=wide)


@store_app.command("rebuild")
def store_rebuild(store: StoreOpt = None) -> None:
    """Recreate the DuckDB catalog from the run files."""
    st = open_store(store)
    started = time.perf_counter()
    already = len(st.set_aside)
    n = st.rebuild()
    for problem in st.set_aside[already:]:
        err_console.print(
            f"[yellow]set aside:[/] {escape(f'runs/{problem.run_id}: {problem.reason}')}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"catalog rebuilt from {n} run files in {time.perf_counter() - started:.2f} s")


@store_app.command("info")
def store_info(store: StoreOpt = None) -> None:
    """Where the store is, how many runs it holds, and any run files it set aside."""
    info = open_store(store).info()
    lines = [f"store: {info.root}", f"runs: {info.runs}"]
    if info.read_only:
        lines.append("read-only: reads work, writes need a writable store")
    if info.problems or info.quarantined:
        lines.append(
            f"problems: {len(info.problems)} run files not indexed, "
            f"{len(info.quarantined)} set aside in quarantine/ (see `joulelens store doctor`)"
        )
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


@store_app.command("doctor")
def store_doctor(store: StoreOpt = None) -> None:
    """Check the store: run files not indexed, files set aside, catalog state; exit 1 on any."""
    st = open_store(store)
    info = st.info()
    console.print(
        f"store: {info.root}\nruns: {info.runs}\ncatalog: {info.catalog} when opened"
        + (" (rebuilt from the run files)" if info.catalog != "current" else "")
        + ("\nread-only: yes" if info.read_only else ""),
        highlight=False,
        soft_wrap=True,
    )
    for problem in info.problems:
        hint = (
            "written by a newer joulelens: upgrade to read it"
            if problem.kind == "newer"
            else "fix or remove the file"
        )
        text = f"runs/{problem.run_id}: {problem.reason} ({hint})"
        console.print(
            f"[yellow]{problem.kind}:[/] {escape(text)}",
            highlight=False,
            soft_wrap=True,
        )
    for name, reason in info.quarantined:
        console.print(
            f"[yellow]quarantined:[/] {escape(f'quarantine/{name}: {reason}')}",
            highlight=False,
            soft_wrap=True,
        )
    if info.quarantined:
        console.print(
            "a set-aside run comes back when its folder, fixed, is moved to runs/<run_id>/; "
            "delete the folder to drop it",
            highlight=False,
            soft_wrap=True,
        )
    if info.problems or info.quarantined:
        raise typer.Exit(1)
    console.print("no problems found")


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(store_app, name="store")
    app.command("runs")(runs)
    app.command("summary")(summary)
