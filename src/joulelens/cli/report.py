"""Report commands: ``report`` (one HTML file), ``serve`` (live) and ``plot`` (PNG/SVG)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from joulelens.cli.common import (
    BatchMaxOpt,
    BatchMinOpt,
    GpuOpt,
    ModelOpt,
    NumGpusOpt,
    PrecisionOpt,
    SourceOpt,
    StableOpt,
    StoreOpt,
    TaskOpt,
    console,
    err_console,
    open_store,
    run_filter,
)
from joulelens.store import RunFilter

PlotOut = Annotated[Path, typer.Option("--output", "-o", help="Output file: .png or .svg.")]

plot_app = typer.Typer(
    help="Static figures (PNG or SVG, by the output's suffix) for papers and slides.",
    no_args_is_help=True,
)


def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str, typer.Option(help="Title shown on the page.")] = "joulelens report",
    screenshot: Annotated[
        Path | None,
        typer.Option(help="Also save a PNG of the page (needs Debian's chromium-driver)."),
    ] = None,
    screenshot_tab: Annotated[
        str, typer.Option(help="Tab shown in the screenshot, e.g. tradeoff or leaderboard.")
    ] = "tradeoff",
    task: TaskOpt = None,
    model: ModelOpt = None,
    gpu: GpuOpt = None,
    num_gpus: NumGpusOpt = None,
    batch_min: BatchMinOpt = None,
    batch_max: BatchMaxOpt = None,
    precision: PrecisionOpt = None,
    stable: StableOpt = False,
    source: SourceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Write one self-contained HTML report (offline, no CDN) of the runs in the store."""
    from joulelens.report import write_report

    flt = run_filter(
        task=task,
        model=model,
        gpu=gpu,
        num_gpus=num_gpus,
        batch_min=batch_min,
        batch_max=batch_max,
        precision=precision,
        stable=stable,
        source=source,
    )
    started = time.perf_counter()
    path = write_report(open_store(store), output, flt, title=title)
    size_mb = path.stat().st_size / 1e6
    console.print(
        f"wrote {path} ({size_mb:.1f} MB) in {time.perf_counter() - started:.2f} s", highlight=False
    )
    if screenshot is not None:
        from joulelens.report.browser import screenshot as take_screenshot

        take_screenshot(path, screenshot, tab=screenshot_tab)
        console.print(f"wrote {screenshot}", highlight=False)


def serve(
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but 127.0.0.1 exposes the store.")
    ] = "127.0.0.1",
    poll_s: Annotated[float, typer.Option(help="How often the page checks for new runs.")] = 3.0,
    title: Annotated[str, typer.Option(help="Title shown on the page.")] = "joulelens live report",
    task: TaskOpt = None,
    model: ModelOpt = None,
    gpu: GpuOpt = None,
    num_gpus: NumGpusOpt = None,
    precision: PrecisionOpt = None,
    stable: StableOpt = False,
    source: SourceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Serve the report live from the store; the page refreshes as runs are added."""
    from joulelens.report.server import LOCAL_HOST, make_server, server_url

    flt = run_filter(
        task=task,
        model=model,
        gpu=gpu,
        num_gpus=num_gpus,
        precision=precision,
        stable=stable,
        source=source,
    )
    st = open_store(store)
    server = make_server(
        st.root,
        host=host,
        port=port,
        filters=flt,
        poll_ms=max(250, int(poll_s * 1000)),
        title=title,
    )
    if host != LOCAL_HOST:
        err_console.print(f"[yellow]warning:[/] listening on {host}: others can read this store")
    console.print(f"serving {st.root} at {server_url(server)} (Ctrl-C to stop)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@plot_app.command("frontier")
def plot_frontier_cmd(
    task: Annotated[str, typer.Option(help="Task id, e.g. gpqa.")],
    model: Annotated[str, typer.Option(help="Model id, nickname or a unique substring.")],
    output: PlotOut,
    deadline_ms: Annotated[
        float | None,
        typer.Option(help="Latency deadline (ms; diffusion: batch latency) to mark."),
    ] = None,
    gpu: GpuOpt = None,
    store: StoreOpt = None,
) -> None:
    """Time-energy trade-off of one model with per-setup Pareto frontiers."""
    from joulelens.report.static_plots import plot_frontier

    records = open_store(store).query(RunFilter(task=task, gpu_model=gpu))
    _wrote(plot_frontier(records, task, model, output, deadline_ms=deadline_ms))


@plot_app.command("energy-vs-batch")
def plot_energy_vs_batch_cmd(
    task: Annotated[str, typer.Option(help="Task id, e.g. lm-arena-chat.")],
    model: Annotated[str, typer.Option(help="Model id, nickname or a unique substring.")],
    output: PlotOut,
    gpu: GpuOpt = None,
    store: StoreOpt = None,
) -> None:
    """Energy per unit, throughput, latency and power vs batch size, per GPU setup."""
    from joulelens.report.static_plots import plot_energy_vs_batch

    records = open_store(store).query(RunFilter(task=task, gpu_model=gpu))
    _wrote(plot_energy_vs_batch(records, task, model, output))


@plot_app.command("task-distribution")
def plot_task_distribution_cmd(
    output: PlotOut,
    gpu: GpuOpt = None,
    stable: StableOpt = False,
    store: StoreOpt = None,
) -> None:
    """Per-task output tokens, J/token and J/response over all configurations."""
    from joulelens.report.static_plots import plot_task_distribution

    records = open_store(store).query(RunFilter(gpu_model=gpu, stable_only=stable))
    _wrote(plot_task_distribution(records, output))


@plot_app.command("diffusion")
def plot_diffusion_cmd(output: PlotOut, gpu: GpuOpt = None, store: StoreOpt = None) -> None:
    """Diffusion energy per image and per video by model."""
    from joulelens.report.static_plots import plot_diffusion

    records = open_store(store).query(RunFilter(kind="diffusion", gpu_model=gpu))
    _wrote(plot_diffusion(records, output))


@plot_app.command("timeline")
def plot_timeline_cmd(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix (a joulelens-measured run).")],
    output: PlotOut,
    store: StoreOpt = None,
) -> None:
    """Power, temperature, running batch and KV-cache timelines, steady state shaded."""
    from joulelens.report.static_plots import plot_timeline

    _wrote(plot_timeline(open_store(store), run, output))


def _wrote(path: Path) -> None:
    console.print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("serve")(serve)
    app.add_typer(plot_app, name="plot")
