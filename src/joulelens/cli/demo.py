"""``joulelens demo``: measure SmolLM2-135M on this machine at batch 1, 4 and 16, explain why
energy per token falls with the batch, and write the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from joulelens.cli.common import StoreOpt, console, open_store
from joulelens.cli.measure import print_reasons, progress_display, summary_table
from joulelens.records import RunRecord, RunStatus

DEMO_MODEL = "smollm2-135m"
DEMO_TASK = "lm-arena-chat"
DEMO_BATCHES = (1, 4, 16)
# Short outputs and a short steady state keep the demo within about two minutes on 2 CPU
# cores; the paper's validation rules still apply and flag what falls short of them.
DEMO_MAX_TOKENS = 32
DEMO_MIN_STEADY_S = 5.0
DEMO_IDLE_S = 3.0


def demo_requests(batch: int) -> int:
    """Enough requests for a steady state past the ramp (N > 2B + 1), few enough to be quick."""
    return 2 * batch + 6


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Report file.")] = Path(
        "joulelens-demo-report.html"
    ),
    device: Annotated[str, typer.Option(help="auto picks CUDA when present.")] = "auto",
    store: StoreOpt = None,
) -> None:
    """The main job: a real measurement on this machine, a diagnosis and the report."""
    from joulelens.meters import detect_meters, measure_idle_power
    from joulelens.runner import RunConfig, run_one
    from joulelens.runner.execute import cuda_available

    st = open_store(store)
    use_gpu = device.startswith("cuda") or (device == "auto" and cuda_available())
    console.print(
        f"[bold]joulelens demo[/]: {DEMO_MODEL} on {'CUDA' if use_gpu else 'CPU'}, task "
        f"{DEMO_TASK}, batch sizes {', '.join(map(str, DEMO_BATCHES))}, outputs capped at "
        f"{DEMO_MAX_TOKENS} tokens"
    )
    with detect_meters(gpus=use_gpu) as meters:
        console.print(f"meters: {', '.join(m.name for m in meters)}")
        idle = measure_idle_power(meters, DEMO_IDLE_S)
    records: list[RunRecord] = []
    with progress_display() as bar:
        from joulelens.cli.measure import RichObserver

        for batch in DEMO_BATCHES:
            config = RunConfig(
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
            records.append(
                run_one(config, st, observer=RichObserver(bar, f"batch {batch:>2}"), idle=idle)
            )
    console.print(summary_table(records, f"{DEMO_MODEL} on this machine ({DEMO_TASK})"))
    print_reasons(records)
    _explain(records)
    from joulelens.report import write_report

    path = write_report(st, output, title="joulelens demo")
    console.print(f"report: {path.resolve()}")


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
