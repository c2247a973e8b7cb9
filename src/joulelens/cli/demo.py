"""``joulelens demo``: measure SmolLM2-135M on this machine at batch 1, 4 and 16, explain why
energy per token falls with the batch, and write the HTML report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from joulelens.cli.common import StoreOpt, console, fmt_num, open_store
from joulelens.cli.measure import print_reasons, progress_display, summary_table
from joulelens.records import EnergyMethod, RunRecord, RunStatus

if TYPE_CHECKING:
    from joulelens.runner import RunConfig

DEMO_MODEL = "smollm2-135m"
DEMO_TASK = "lm-arena-chat"
DEMO_BATCHES = (1, 4, 16)
# Short outputs and a short steady state keep the demo within about two minutes on 2 CPU
# cores; the paper's validation rules still apply and flag what falls short of them.
DEMO_MAX_TOKENS = 32
DEMO_MIN_STEADY_S = 5.0
DEMO_IDLE_S = 3.0
# OpenMP threads that spin while they wait burn CPU time without progress whenever another
# process holds a core: beside one busy loop, batch 1 ran 6x slower and cost 6.6x the CPU
# time per token on 2 cores. Sleeping waiters keep the estimate about the work (read by
# libgomp when torch loads, so it is set before the engine imports torch).
OPENMP_WAIT_ENV = "OMP_WAIT_POLICY"


def demo_requests(batch: int) -> int:
    """Enough requests for a steady state past the ramp (N > 2B + 1), few enough to be quick."""
    return 2 * batch + 6


def demo_config(batch: int, device: str, use_gpu: bool) -> RunConfig:
    from joulelens.runner import RunConfig

    return RunConfig(
        engine="transformers",
        model=DEMO_MODEL,
        task=DEMO_TASK,
        max_num_seqs=batch,
        num_requests=demo_requests(batch),
        max_tokens=DEMO_MAX_TOKENS,
        num_gpus=1 if use_gpu else 0,
        gpus=use_gpu,
        device=device,
        idle_baseline_s=DEMO_IDLE_S,
        min_steady_state_s=DEMO_MIN_STEADY_S,
    )


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Report file.")] = Path(
        "joulelens-demo-report.html"
    ),
    device: Annotated[str, typer.Option(help="auto picks CUDA when present.")] = "auto",
    store: StoreOpt = None,
) -> None:
    """The main job: a real measurement on this machine, a diagnosis and the report."""
    from joulelens.meters import UnavailableMeter, measure_idle_power
    from joulelens.runner import run_one
    from joulelens.runner.cpu_scope import open_meters
    from joulelens.runner.gpus import cuda_available

    os.environ.setdefault(OPENMP_WAIT_ENV, "PASSIVE")
    st = open_store(store)
    use_gpu = device.startswith("cuda") or (device == "auto" and cuda_available())
    console.print(
        f"[bold]joulelens demo[/]: {DEMO_MODEL} on {'CUDA' if use_gpu else 'CPU'}, task "
        f"{DEMO_TASK}, batch sizes {', '.join(map(str, DEMO_BATCHES))}, outputs capped at "
        f"{DEMO_MAX_TOKENS} tokens"
    )
    configs = [demo_config(b, device, use_gpu) for b in DEMO_BATCHES]
    # The same meters as the runs (the in-process engine: this process), so the idle
    # baseline and the runs cover the same processes and hardware.
    with open_meters(configs[0], [os.getpid()], None, gpus=configs[0].gpus) as meters:
        readable = [m.name for m in meters if not isinstance(m, UnavailableMeter)]
        console.print(f"meters: {', '.join(readable) or 'none readable'}", highlight=False)
        idle = measure_idle_power(meters, DEMO_IDLE_S)
    records: list[RunRecord] = []
    with progress_display() as bar:
        from joulelens.cli.measure import RichObserver

        for batch, config in zip(DEMO_BATCHES, configs, strict=True):
            records.append(
                run_one(config, st, observer=RichObserver(bar, f"batch {batch:>2}"), idle=idle)
            )
    console.print(summary_table(records, f"{DEMO_MODEL} on this machine ({DEMO_TASK})"))
    for line in energy_statement(records):
        console.print(line, highlight=False)
    print_reasons(records)
    print_warnings(records)
    _explain(records)
    from joulelens.report import write_report

    path = write_report(st, output, title="joulelens demo")
    console.print(f"report: {path.resolve()}")


def energy_statement(records: list[RunRecord]) -> list[str]:
    """What was measured and how, in one line, from the records (then the machine-wide figure)."""
    done = [r for r in records if r.status is RunStatus.COMPLETED]
    if not done:
        return []
    r = done[-1]
    scope = r.config.get("cpu_estimate") or {}
    how = f"boundary {r.energy_boundary.value}, method {r.energy_method.value}"
    if r.energy_method is EnergyMethod.ESTIMATED and scope:
        line = (
            f"energy: estimated, no power sensor read; {scope.get('covers')} ({how}); "
            f"it cannot see {scope.get('cannot_see')}"
        )
    else:
        sources = [
            c.name
            for c in r.energy_components
            if c.boundary is r.energy_boundary and not c.name.startswith(("total:", "machine"))
        ]
        line = f"energy: {r.energy_method.value} from {', '.join(sources) or '—'} ({how})"
    lines = [line]
    machine = [
        (rec, c)
        for rec in done
        for c in rec.energy_components
        if c.name.startswith("machine-wide:") and c.joules is not None
    ]
    if machine:
        parts = []
        for rec, c in machine:
            duration = rec.steady_state_duration_s or 0
            ours = rec.avg_power_watts
            if duration > 0 and c.joules is not None:
                parts.append(
                    f"B={rec.batch} {fmt_num(c.joules / duration)} W (workload {fmt_num(ours)} W)"
                )
        lines.append(
            "the whole machine's CPU estimate over the same windows, kept apart as "
            f"'machine-wide' (other processes included): {'; '.join(parts)}"
        )
    return lines


def print_warnings(records: list[RunRecord]) -> None:
    """The records' warnings: what the measurement doubts, below the table."""
    for r in records:
        for warning in r.warnings:
            console.print(
                f"[yellow]! B={r.batch}:[/] {escape(warning)}", soft_wrap=True, highlight=False
            )


def _explain(records: list[RunRecord]) -> None:
    from joulelens.analysis.diagnose import diagnose
    from joulelens.analysis.render import diagnosis_text

    done = [r for r in records if r.status is RunStatus.COMPLETED]
    if len(done) < 2:
        console.print("[yellow]not enough completed runs to compare[/]")
        return
    small, large = done[0], done[-1]
    console.print(
        f"\n[bold]Why energy per token changed from batch {small.batch} to {large.batch}[/]"
    )
    console.print(diagnosis_text(diagnose(small, large, done, per_token=True)), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
