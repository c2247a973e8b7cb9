"""Shared CLI pieces: the --store option, output formats and record tables."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from joulelens.cli.tables import Col, fit_table, print_table
from joulelens.errors import InputError
from joulelens.records import RunRecord
from joulelens.store import STORE_ENV, RunFilter, Store

console = Console()
err_console = Console(stderr=True)

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help=f"Store directory (default: the user data dir; or ${STORE_ENV}).",
        show_default=False,
    ),
]


# Run filters shared by every command that selects runs (runs, report, serve ...).
TaskOpt = Annotated[str | None, typer.Option(help="Task id, e.g. gpqa.")]
ModelOpt = Annotated[str | None, typer.Option(help="Substring of model id or nickname.")]
GpuOpt = Annotated[str | None, typer.Option(help="GPU model, e.g. B200.")]
NumGpusOpt = Annotated[int | None, typer.Option(help="GPU count.")]
BatchMinOpt = Annotated[int | None, typer.Option(help="Smallest batch (max_num_seqs).")]
BatchMaxOpt = Annotated[int | None, typer.Option(help="Largest batch.")]
PrecisionOpt = Annotated[str | None, typer.Option(help="e.g. fp8 or bfloat16.")]
StableOpt = Annotated[bool, typer.Option("--stable", help="Stable runs only.")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="Every column, even past the terminal's width.")
]
SourceOpt = Annotated[
    str | None, typer.Option(help="mlenergy-leaderboard, mlenergy-benchmark or joulelens.")
]


def run_filter(
    *,
    task: str | None = None,
    model: str | None = None,
    gpu: str | None = None,
    num_gpus: int | None = None,
    batch_min: int | None = None,
    batch_max: int | None = None,
    precision: str | None = None,
    stable: bool = False,
    source: str | None = None,
    include_failed: bool = False,
) -> RunFilter:
    """The store filter for the CLI's filter options (their names differ from RunFilter's)."""
    return RunFilter(
        task=task,
        model=model,
        gpu_model=gpu,
        num_gpus=num_gpus,
        batch_min=batch_min,
        batch_max=batch_max,
        precision=precision,
        stable_only=stable,
        source=source,
        include_failed=include_failed,
    )


class OutputFormat(StrEnum):
    """Every value any ``--format`` takes. Each command accepts one subset below (a Literal of
    members: Typer offers and accepts exactly those, and the value is still an OutputFormat)."""

    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    text = "text"
    markdown = "markdown"
    mermaid = "mermaid"
    dot = "dot"


# Listings of records (``runs``).
RecordFormat = Literal[
    OutputFormat.table, OutputFormat.json, OutputFormat.csv, OutputFormat.parquet
]
# Computed tables (planning, predict, advise).
TableFormat = Literal[OutputFormat.table, OutputFormat.json, OutputFormat.csv]
# Explanations (``why``, ``diagnose``, ``study``).
DocFormat = Literal[OutputFormat.text, OutputFormat.json, OutputFormat.markdown]
# The diagnostic framework (``graph``).
GraphFormat = Literal[
    OutputFormat.text,
    OutputFormat.json,
    OutputFormat.mermaid,
    OutputFormat.dot,
    OutputFormat.markdown,
]


def open_store(path: Path | None) -> Store:
    """The store; run files it had to set aside while opening are named on stderr."""
    st = Store(path)
    for problem in st.set_aside:
        err_console.print(
            f"[yellow]warning:[/] {escape(f'set aside runs/{problem.run_id}: {problem.reason}')}",
            highlight=False,
            soft_wrap=True,
        )
    return st


def fmt_num(value: float | None, digits: int = 3) -> str:
    """Significant-digit formatting for tables; a missing value shows as '—', never 0."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def record_row(r: RunRecord) -> dict[str, Any]:
    """The flat view of a record used by tables, CSV and Parquet exports."""
    row = r.model_dump(
        mode="json",
        exclude={
            "output_length_distribution",
            "energy_components",
            "config",
            "missing",
            "provenance",
            "artifacts",
        },
    )
    row["unstable_reasons"] = "; ".join(r.unstable_reasons)
    row["warnings"] = "; ".join(r.warnings)
    row["source"] = r.provenance.source.value
    row["source_version"] = r.provenance.source_version
    row["energy_unit"] = r.energy_unit
    row["energy_per_unit_joules"] = r.energy_per_unit_joules
    return row


def emit_records(
    records: Sequence[RunRecord], fmt: RecordFormat, output: Path | None, *, wide: bool = False
) -> None:
    if fmt is OutputFormat.table:
        print_table(records_table(records, wide=wide), console, wide=wide)
        return
    if fmt is OutputFormat.json:
        text = "[" + ",\n".join(r.model_dump_json() for r in records) + "]\n"
        _write_text(text, output)
        return
    rows = [record_row(r) for r in records]
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        names = list(rows[0]) if rows else ["run_id"]
        writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        _write_text(buf.getvalue(), output)
        return
    if output is None:
        raise InputError("parquet output needs a file", field="--output")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from joulelens.core.files import atomic_write_bytes

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    atomic_write_bytes(output, sink.getvalue().to_pybytes())
    err_console.print(f"wrote {len(rows)} runs to {output}")


def emit_json(obj: Any, output: Path | None = None) -> None:
    _write_text(json.dumps(obj, indent=2, default=str) + "\n", output)


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from joulelens.core.files import atomic_write_text

    atomic_write_text(output, text)
    err_console.print(f"wrote {output}")


def gpu_label(num_gpus: int | None, gpu_model: str | None) -> str:
    """ "2x B200"; a CPU-only run reads "cpu", never "0x cpu"."""
    from joulelens.analysis.selection import hardware_label

    return hardware_label(num_gpus or 0, gpu_model or ("cpu" if not num_gpus else "?"))


def _stable_text(r: RunRecord) -> str:
    if r.status.value == "failed":
        return "failed"
    return "yes" if r.stable else ("no" if r.stable is False else "?")


def records_table(
    records: Sequence[RunRecord], title: str | None = None, *, wide: bool = False
) -> Table:
    """Runs, one per row: id, task, model, GPUs, batch, energy per unit and stability first."""
    units = {r.energy_unit for r in records}
    unit = next(iter(units)) if len(units) == 1 else None
    cols: list[Col[RunRecord]] = [
        Col("run id", lambda r: r.run_id),
        Col("task", lambda r: r.task, uniform_caption=True),
        Col("model", lambda r: r.nickname or r.model_id, wrap=True, min_width=8),
        Col("GPUs", lambda r: gpu_label(r.num_gpus, r.gpu_model), uniform_caption=True),
        Col("batch", lambda r: str(r.batch) if r.batch is not None else "—", justify="right"),
        Col(
            f"J/{unit}" if unit else "J/unit",
            lambda r: fmt_num(r.energy_per_unit_joules),
            justify="right",
        ),
        Col("stable", _stable_text),
        Col("latency ms", lambda r: fmt_num(r.latency_ms), priority=1, justify="right"),
        Col(
            f"{unit}s/s" if unit else "units/s",
            lambda r: fmt_num(r.throughput_units_per_sec),
            priority=2,
            justify="right",
        ),
        Col("power W", lambda r: fmt_num(r.avg_power_watts), priority=2, justify="right"),
        Col("precision", lambda r: r.weight_precision or "—", priority=3, uniform_caption=True),
        Col(
            "energy",
            lambda r: f"{r.energy_boundary.value} {r.energy_method.value}",
            priority=3,
            uniform_caption=True,
        ),
    ]
    caption = None if unit else "J/unit: per " + ", ".join(sorted(units)) + " (by task)"
    return fit_table(cols, records, console=console, title=title, caption=caption, wide=wide)
