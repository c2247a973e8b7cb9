"""Static figures (PNG/SVG) for papers and slides, drawn with matplotlib's Agg backend.

matplotlib is imported inside :func:`_pyplot` only, so ``import joulelens`` stays fast.
Every plot reads stored records; the figure size and DPI are fixed so outputs are comparable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from joulelens.errors import AnalysisError, InputError
from joulelens.records import RunRecord
from joulelens.report.frontier import frontier_flags, model_key, setup_key
from joulelens.report.measured import TIMELINE_FILE, read_timeline, steady_window
from joulelens.store import Store

FIG_SIZE_IN = (8.0, 5.0)
DPI = 150  # PNG: 1200 x 750 px at the default size
FORMATS = (".png", ".svg")
SETUP_COLORS = {
    "H100 x1": "#93c5fd",
    "H100 x2": "#3b82f6",
    "H100 x4": "#1d4ed8",
    "H100 x8": "#1e3a8a",
    "B200 x1": "#fdba74",
    "B200 x2": "#f97316",
    "B200 x4": "#c2410c",
    "B200 x8": "#7c2d12",
}
TIMELINE_PANELS = (
    ("power_watts", "power (W)"),
    ("temperature_c", "temperature (°C)"),
    ("running", "running batch"),
    ("kv", "KV-cache usage"),
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_output(out: Path) -> None:
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"plot output must end in .png or .svg, got {out.name!r}", field="-o")


def _save(fig: Any, out: Path) -> Path:
    plt = _pyplot()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, metadata={"Software": "joulelens"} if out.suffix == ".png" else None)
    plt.close(fig)
    return out


def _plain_log_axes(ax: Any) -> None:
    """Log axes labelled 20, 50, 0.3 rather than 2x10^1 (readers compare numbers, not powers)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))


def setup_label(r: RunRecord) -> str:
    return f"{r.gpu_model or '?'} x{r.num_gpus}"


def select_model(records: Sequence[RunRecord], task: str, model: str) -> list[RunRecord]:
    """Runs of ``task`` whose model id or nickname is ``model`` (or uniquely contains it)."""
    in_task = [r for r in records if r.task == task]
    if not in_task:
        raise InputError(f"no runs for task {task!r}", field="--task")
    exact = [r for r in in_task if model in (r.model_id, r.nickname)]
    if exact:
        return exact
    needle = model.lower()
    matches = [r for r in in_task if needle in f"{r.model_id} {r.nickname or ''}".lower()]
    ids = sorted({r.model_id for r in matches})
    if not ids:
        raise InputError(f"no model matching {model!r} in task {task!r}", field="--model")
    if len(ids) > 1:
        raise InputError(f"{model!r} matches {len(ids)} models: {', '.join(ids)}", field="--model")
    return matches


def _by_setup(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[setup_label(r)].append(r)
    return dict(sorted(groups.items()))


def _latency_axis(task_records: Sequence[RunRecord]) -> tuple[float, str]:
    """(factor from ms, axis label): diffusion batch latency reads better in seconds."""
    if task_records and task_records[0].is_diffusion:
        return 1e-3, "batch latency (s)"
    return 1.0, "median ITL (ms)"


def plot_frontier(
    records: Sequence[RunRecord],
    task: str,
    model: str,
    out: Path,
    *,
    deadline_ms: float | None = None,
) -> Path:
    """Time-energy trade-off of one model: per-setup frontiers, the overall frontier, and the
    minimum-energy point under ``deadline_ms`` (latency in ms; diffusion: batch latency)."""
    _check_output(out)
    runs = [
        r
        for r in select_model(records, task, model)
        if r.latency_ms is not None and r.energy_per_unit_joules is not None
    ]
    if not runs:
        raise AnalysisError(f"no runs of {model!r} on {task!r} have latency and energy")
    factor, xlabel = _latency_axis(runs)
    on_setup = frontier_flags(runs, setup_key)
    on_model = frontier_flags(runs, model_key)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIG_SIZE_IN)
    flags = {r.run_id: (s, m) for r, s, m in zip(runs, on_setup, on_model, strict=True)}
    for label, group in _by_setup(runs).items():
        color = SETUP_COLORS.get(label)
        group.sort(key=lambda r: r.latency_ms or 0.0)
        xs = [(r.latency_ms or 0.0) * factor for r in group]
        ys = [r.energy_per_unit_joules for r in group]
        points = ax.scatter(xs, ys, s=28, color=color, label=label, zorder=3)
        front = [r for r in group if flags[r.run_id][0]]
        ax.plot(
            [(r.latency_ms or 0.0) * factor for r in front],
            [r.energy_per_unit_joules for r in front],
            color=points.get_facecolor()[0],
            lw=1.6,
        )
        for r, x, y in zip(group, xs, ys, strict=True):
            ax.annotate(
                str(r.batch),
                (x, y),
                fontsize=6,
                xytext=(0, 4),
                ha="center",
                textcoords="offset points",
                color="#5d6778",
            )
    overall = sorted((r for r in runs if flags[r.run_id][1]), key=lambda r: r.latency_ms or 0.0)
    ax.plot(
        [(r.latency_ms or 0.0) * factor for r in overall],
        [r.energy_per_unit_joules for r in overall],
        "k--",
        lw=1.2,
        label="frontier (all setups)",
    )
    if deadline_ms is not None:
        feasible = [r for r in runs if (r.latency_ms or 0.0) <= deadline_ms]
        ax.axvline(deadline_ms * factor, color="#dc2626", ls=":", lw=1.4, label="deadline")
        if feasible:
            best = min(feasible, key=lambda r: r.energy_per_unit_joules or 0.0)
            ax.scatter(
                [(best.latency_ms or 0.0) * factor],
                [best.energy_per_unit_joules],
                marker="*",
                s=260,
                color="#dc2626",
                zorder=4,
                label=f"min energy ≤ deadline (batch {best.batch}, {setup_label(best)})",
            )
    name = runs[0].nickname or runs[0].model_id
    ax.set(
        xscale="log", yscale="log", xlabel=xlabel, ylabel=f"energy per {runs[0].energy_unit} (J)"
    )
    _plain_log_axes(ax)
    ax.set_title(f"{name} · {task}: time–energy trade-off")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def plot_energy_vs_batch(records: Sequence[RunRecord], task: str, model: str, out: Path) -> Path:
    """Energy per unit, throughput, latency and power vs batch size, one line per GPU setup."""
    _check_output(out)
    runs = [r for r in select_model(records, task, model) if r.batch is not None]
    if not runs:
        raise AnalysisError(f"no runs of {model!r} on {task!r} have a batch size")
    factor, lat_label = _latency_axis(runs)
    unit = runs[0].energy_unit
    panels = [
        (f"energy per {unit} (J)", lambda r: r.energy_per_unit_joules, "log"),
        (f"{unit}s/s", lambda r: r.throughput_units_per_sec, "log"),
        (lat_label, lambda r: None if r.latency_ms is None else r.latency_ms * factor, "log"),
        ("average power (W)", lambda r: r.avg_power_watts, "linear"),
    ]
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(FIG_SIZE_IN[0] * 1.25, FIG_SIZE_IN[1] * 1.25))
    groups = _by_setup(runs)
    batches = [r.batch for r in runs if r.batch]
    ticks = [2**k for k in range(13) if min(batches) <= 2**k <= max(batches)]
    for ax, (ylabel, get, yscale) in zip(axes.flat, panels, strict=True):
        for label, group in groups.items():
            pts = sorted((r.batch, v) for r in group if (v := get(r)) is not None and r.batch)
            if pts:
                ax.plot(
                    *zip(*pts, strict=True), "o-", ms=3, label=label, color=SETUP_COLORS.get(label)
                )
        ax.set(xscale="log", yscale=yscale, xlabel="batch size", ylabel=ylabel)
        _plain_log_axes(ax)
        ax.set_xticks(ticks)
        ax.grid(True, which="both", alpha=0.25)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{runs[0].nickname or runs[0].model_id} · {task}: batch size")
    fig.tight_layout()
    return _save(fig, out)


def plot_task_distribution(records: Sequence[RunRecord], out: Path) -> Path:
    """Per LLM task: output tokens per response, J/token and J/response over configurations."""
    _check_output(out)
    llm = [r for r in records if not r.is_diffusion]
    if not llm:
        raise AnalysisError("no LLM runs to compare across tasks")
    tasks = sorted({r.task for r in llm})
    panels = [
        ("mean output tokens", lambda r: r.avg_output_len),
        ("energy per token (J)", lambda r: r.energy_per_token_joules),
        ("energy per response (J)", lambda r: r.energy_per_request_joules),
    ]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(FIG_SIZE_IN[0] * 1.5, FIG_SIZE_IN[1]))
    for ax, (label, get) in zip(axes, panels, strict=True):
        data = [[v for r in llm if r.task == t and (v := get(r)) is not None] for t in tasks]
        shown = [(t, d) for t, d in zip(tasks, data, strict=True) if d]
        if shown:
            ax.boxplot([d for _, d in shown], tick_labels=[t for t, _ in shown], showfliers=True)
        ax.set(yscale="log", ylabel=label, title=label)
        _plain_log_axes(ax)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.25)
    fig.suptitle("Per-task distributions over all configurations")
    fig.tight_layout()
    return _save(fig, out)


def plot_diffusion(records: Sequence[RunRecord], out: Path) -> Path:
    """Energy per image and per video by model (all setups and batch sizes)."""
    _check_output(out)
    runs = [r for r in records if r.is_diffusion and r.energy_per_generation_joules is not None]
    if not runs:
        raise AnalysisError("no diffusion runs with energy per generation")
    tasks = sorted({r.task for r in runs})
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(FIG_SIZE_IN[0] * 0.75 * len(tasks) + 2, 5.5), squeeze=False
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        by_model: dict[str, list[float]] = defaultdict(list)
        for r in runs:
            if r.task == task and r.energy_per_generation_joules is not None:
                by_model[r.nickname or r.model_id].append(r.energy_per_generation_joules)
        names = sorted(by_model, key=lambda m: min(by_model[m]))
        ax.boxplot([by_model[m] for m in names], tick_labels=names)
        unit = next(r.energy_unit for r in runs if r.task == task)
        ax.set(yscale="log", ylabel=f"energy per {unit} (J)", title=task)
        _plain_log_axes(ax)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.grid(True, axis="y", which="both", alpha=0.25)
    fig.tight_layout()
    return _save(fig, out)


def plot_timeline(store: Store, run_id: str, out: Path) -> Path:
    """Power, temperature, running batch and KV-cache timelines with the steady state shaded."""
    _check_output(out)
    record = store.get(run_id)
    path = store.artifact_path(record.run_id, TIMELINE_FILE)
    if not path.is_file():
        raise AnalysisError(f"run {record.run_id} has no {TIMELINE_FILE} (imported runs have none)")
    series = read_timeline(path)
    panels = [
        (title, [n for n in series if prefix in n.split(":", 1)[0]])
        for prefix, title in TIMELINE_PANELS
    ]
    panels = [(t, names) for t, names in panels if names]
    if not panels:
        raise AnalysisError(
            f"run {record.run_id}: the timeline has no power, temperature, batch or KV-cache series"
        )
    window = steady_window(record)
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(panels),
        1,
        sharex=True,
        squeeze=False,
        figsize=(FIG_SIZE_IN[0], 1.9 * len(panels) + 0.8),
    )
    for ax, (title, names) in zip(axes[:, 0], panels, strict=True):
        for name in names:
            ax.plot(*series[name], lw=1.2, label=name)
        if window is not None:
            ax.axvspan(
                *window,
                color="#22c55e",
                alpha=0.15,
                lw=0,
                label="steady state" if ax is axes[0, 0] else None,
            )
        ax.set_ylabel(title)
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time since run start (s)")
    fig.suptitle(f"{record.nickname or record.model_id} · {record.task} · run {record.run_id}")
    fig.tight_layout()
    return _save(fig, out)
