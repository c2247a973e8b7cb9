"""Measuring commands: ``run`` one configuration, ``sweep`` a grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from joulelens.cli.common import StoreOpt, console, fmt_num, open_store, records_table
from joulelens.errors import InputError
from joulelens.records import RunRecord, RunStatus

EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine", help="vllm (start a server), endpoint (attach), transformers, diffusers."
    ),
]


class RichObserver:
    """Progress bar with requests done, tokens/s and power; only observes."""

    def __init__(self, progress: Progress, label: str):
        self.bar = progress
        self.task = progress.add_task(label, total=None, rate="", phase="starting")
        self._first: tuple[float, int] | None = None

    def phase(self, text: str) -> None:
        self.bar.update(self.task, phase=text)

    def progress(self, done: int, total: int, output_tokens: int, power_w: float | None) -> None:
        import time

        now = time.monotonic()
        if self._first is None:
            self._first = (now, output_tokens)
        t0, tok0 = self._first
        rate = (output_tokens - tok0) / (now - t0) if now > t0 else 0.0
        power = f"{power_w:.0f} W" if power_w is not None else "— W"
        self.bar.update(self.task, completed=done, total=total, rate=f"{rate:.0f} tok/s  {power}")


def progress_display() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("[dim]{task.fields[phase]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _config(**fields: Any) -> Any:
    from pydantic import ValidationError

    from joulelens.runner import RunConfig

    clean = {k: v for k, v in fields.items() if v is not None}
    try:
        return RunConfig.model_validate(clean)
    except ValidationError as exc:
        from joulelens.errors import from_validation

        raise from_validation(exc) from exc


# Options of ``run`` that are not RunConfig fields (every other one is named after its field).
NOT_CONFIG_FIELDS = frozenset({"allow_missing_gpu_energy", "store"})


def run_fields(options: dict[str, Any]) -> dict[str, Any]:
    """``run``'s option values keyed by RunConfig field names."""
    from joulelens.runner import RunConfig

    fields = {k: v for k, v in options.items() if k in RunConfig.model_fields}
    fields["missing_gpu_energy"] = "null" if options["allow_missing_gpu_energy"] else "fail"
    return fields


def summary_table(records: list[RunRecord], title: str) -> Any:
    """Results of measured runs; fits 80 columns (energy boundary and method in the caption)."""
    from rich.table import Table

    done = [r for r in records if r.status is RunStatus.COMPLETED]
    unit = done[0].energy_unit if done else "unit"
    scopes = sorted({f"{r.energy_boundary.value}, {r.energy_method.value}" for r in done})
    table = Table(title=title, caption=f"energy: {' | '.join(scopes) or '—'}")
    latency = "batch latency ms" if done and done[0].is_diffusion else "median ITL ms"
    for col in ("batch", f"J/{unit}", f"{unit}s/s", "power W", latency, "running batch", "stable"):
        table.add_column(col, justify="right")
    for r in records:
        if r.status is RunStatus.FAILED:
            table.add_row(str(r.batch), f"[red]failed: {r.failure_reason}", "", "", "", "", "")
            continue
        table.add_row(
            str(r.batch),
            fmt_num(r.energy_per_unit_joules),
            fmt_num(r.throughput_units_per_sec),
            fmt_num(r.avg_power_watts),
            fmt_num(r.latency_ms),
            fmt_num(r.avg_batch_size),
            "yes" if r.stable else "no*",
        )
    return table


def print_reasons(records: list[RunRecord]) -> None:
    """Why runs are unstable, below the table where long reasons stay readable."""
    for r in records:
        for reason in r.unstable_reasons:
            console.print(f"[yellow]* B={r.batch} unstable:[/] {reason}", soft_wrap=True)


def run(
    model: Annotated[
        str, typer.Option(help="Model id, local dir, GGUF, smollm2-135m or arch:NAME.")
    ],
    task: Annotated[str, typer.Option(help="Task id, e.g. lm-arena-chat.")],
    engine: EngineOpt = "transformers",
    max_num_seqs: Annotated[int | None, typer.Option(help="LLM batch cap B.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Diffusion batch size.")] = None,
    num_gpus: Annotated[int, typer.Option(help="GPUs used (0 for CPU).")] = 1,
    num_requests: Annotated[
        int | None, typer.Option(help="N requests (default 4B, >= 64).")
    ] = None,
    arrival: Annotated[
        str, typer.Option(help="saturation, poisson:RATE, gamma:RATE:CV.")
    ] = "saturation",
    max_concurrency: Annotated[int | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Lower the task's output cap.")] = None,
    prompts: Annotated[
        str | None, typer.Option(help="builtin, public, or a JSONL/Parquet file.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Attach to a running server.")] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the endpoint's API key, sent as a Bearer "
            "token and never stored (default OPENAI_API_KEY)."
        ),
    ] = None,
    served_model: Annotated[str | None, typer.Option(help="Model name the server expects.")] = None,
    gpu_model: Annotated[
        str | None, typer.Option(help="GPU label when joulelens can't see it.")
    ] = None,
    tensor_parallel: Annotated[int | None, typer.Option()] = None,
    data_parallel: Annotated[int, typer.Option()] = 1,
    expert_parallel: Annotated[bool, typer.Option()] = False,
    dtype: Annotated[str | None, typer.Option()] = None,
    quantization: Annotated[str | None, typer.Option()] = None,
    max_model_len: Annotated[int | None, typer.Option()] = None,
    vllm_args: Annotated[
        list[str] | None, typer.Option("--vllm-arg", help="Extra vllm serve flag (repeat).")
    ] = None,
    vllm_config: Annotated[Path | None, typer.Option(help="vllm serve --config YAML.")] = None,
    vllm_command: Annotated[
        str | None,
        typer.Option(
            help="What starts vLLM: its executable, another venv's python, or a container "
            "command line.",
            envvar="JOULELENS_VLLM_COMMAND",
        ),
    ] = None,
    ignore_eos: Annotated[
        bool, typer.Option(help="Generate to the output cap past EOS (fixed-length runs).")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    inference_steps: Annotated[
        int | None, typer.Option("--steps", help="Diffusion inference steps.")
    ] = None,
    height: Annotated[int | None, typer.Option()] = None,
    width: Annotated[int | None, typer.Option()] = None,
    num_frames: Annotated[int | None, typer.Option()] = None,
    num_batches: Annotated[int, typer.Option(help="Measured diffusion batches.")] = 3,
    gpus: Annotated[bool, typer.Option(help="Read NVIDIA GPUs.")] = True,
    gpu_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--gpu", help="Endpoint: a GPU serving it, nvidia-smi index or UUID (repeat)."
        ),
    ] = None,
    allow_missing_gpu_energy: Annotated[
        bool, typer.Option(help="Record GPU energy as null if the GPUs can't be read.")
    ] = False,
    idle_baseline_s: Annotated[
        float, typer.Option(help="Idle power window; 0 turns it off.")
    ] = 5.0,
    min_steady_state_s: Annotated[float, typer.Option()] = 20.0,
    watts_per_core: Annotated[float, typer.Option(help="CPU estimate: W per busy core.")] = 10.0,
    store: StoreOpt = None,
) -> None:
    """Measure one configuration and store its run record."""
    from joulelens.runner import run_one

    config = _config(**run_fields(locals()))
    st = open_store(store)
    with progress_display() as bar:
        record = run_one(config, st, observer=RichObserver(bar, f"{config.model} B={config.batch}"))
    console.print(summary_table([record], f"{record.run_id}: {record.task} on {record.model_id}"))
    print_reasons([record])
    console.print(f"stored in {st.run_dir(record.run_id)}")


def sweep(
    file: Annotated[
        Path | None,
        typer.Argument(help="Sweep YAML (models, tasks, batch_sizes, num_gpus, precisions, base)."),
    ] = None,
    model: Annotated[list[str] | None, typer.Option(help="Model (repeat).")] = None,
    task: Annotated[list[str] | None, typer.Option(help="Task (repeat).")] = None,
    batch: Annotated[list[int] | None, typer.Option(help="Batch size (repeat).")] = None,
    num_gpus: Annotated[list[int] | None, typer.Option(help="GPU count (repeat).")] = None,
    precision: Annotated[
        list[str] | None, typer.Option(help="dtype or quantization (repeat).")
    ] = None,
    gpu_model: Annotated[
        list[str] | None,
        typer.Option(help="GPU model to measure on, e.g. B200 (repeat; Ray places by it)."),
    ] = None,
    engine: EngineOpt = "transformers",
    endpoint: Annotated[str | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    num_requests: Annotated[int | None, typer.Option()] = None,
    device: Annotated[str, typer.Option()] = "auto",
    gpus: Annotated[bool, typer.Option(help="Read NVIDIA GPUs.")] = True,
    min_steady_state_s: Annotated[float, typer.Option()] = 20.0,
    keep_growing: Annotated[
        bool, typer.Option(help="Keep raising the batch after one the server could not reach.")
    ] = False,
    executor: Annotated[
        str, typer.Option(help="local (this machine, one at a time) or ray (a Ray cluster).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="auto, HOST:PORT or ray://HOST:PORT (default: $RAY_ADDRESS, auto)."),
    ] = None,
    one_per_node: Annotated[
        bool, typer.Option(help="Ray: one configuration per node at a time (CPU/DRAM energy).")
    ] = False,
    node_wait_s: Annotated[
        float,
        typer.Option(help="Ray: how long a run no node can take waits for one (autoscaling)."),
    ] = 0.0,
    store: StoreOpt = None,
) -> None:
    """Measure a grid; resumable (completed configurations are skipped), failures recorded."""
    from joulelens.runner.sweep import SweepGrid, run_sweep

    if executor not in ("local", "ray"):
        raise InputError(f"unknown executor {executor!r}: use local or ray", field="executor")
    if executor == "local" and (ray_address or one_per_node or node_wait_s):
        raise InputError(
            "--ray-address, --one-per-node and --node-wait-s need --executor ray",
            field="executor",
        )
    if file is not None:
        grid = SweepGrid.from_yaml(file)
    else:
        if not (model and task and batch):
            raise InputError("give a sweep file or --model, --task and --batch", field="sweep")
        base: dict[str, Any] = {
            "engine": engine,
            "device": device,
            "gpus": gpus,
            "min_steady_state_s": min_steady_state_s,
        }
        for key, value in (
            ("endpoint", endpoint),
            ("max_tokens", max_tokens),
            ("num_requests", num_requests),
        ):
            if value is not None:
                base[key] = value
        grid = SweepGrid(
            models=model,
            tasks=task,
            batch_sizes=batch,
            num_gpus=num_gpus,
            precisions=_precisions(precision),
            gpu_models=gpu_model,
            base=base,
            stop_at_unreachable_batch=not keep_growing,
        )
    if executor == "ray":
        from joulelens.runner.ray_cluster import import_ray
        from joulelens.runner.ray_sweep import run_sweep_on_ray

        import_ray()  # says what to install before anything else happens

        def on_ray(grid: Any, st: Any, events: Any, idle: Any) -> Any:
            return run_sweep_on_ray(
                grid,
                st,
                address=ray_address,
                one_per_node=one_per_node,
                node_wait_s=node_wait_s,
                events=events,
            )

        outcome = run_sweep_with_display(grid, open_store(store), on_ray)
    else:
        outcome = run_sweep_with_display(grid, open_store(store), run_sweep)
    console.print(records_table(outcome.completed + outcome.failed, title="sweep"))
    console.print(
        f"{len(outcome.completed)} measured, {len(outcome.skipped)} already stored, "
        f"{len(outcome.failed)} failed, {len(outcome.not_run)} not run (85% rule)"
    )


def _precisions(given: list[str] | None) -> list[str | None]:
    return list(given) if given else [None]


def run_sweep_with_display(grid: Any, st: Any, run_sweep: Any, idle: Any = None) -> Any:
    """Run ``run_sweep(grid, st, events=..., idle=...)`` under one display for the grid."""
    from joulelens.cli.sweep_display import SweepDisplay

    total = sum(len(g) for g in grid.groups())
    with SweepDisplay(total) as display:
        outcome = run_sweep(grid, st, events=display, idle=idle)
    nodes = display.per_node()
    if len(nodes) > 1 or outcome.nodes:
        for label, counts in nodes.items():
            done = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            console.print(f"node {label}: {done}")
    return outcome


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("sweep")(sweep)
