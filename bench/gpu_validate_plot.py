"""The PNG of ``gpu_validate.py``: power timelines of the agreement, step, sampler and engine
phases (whichever ran)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_png(series: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(4, 1, figsize=(11, 13))
    agreement, step, sampler, engine = axes
    if "agreement" in series:
        a = series["agreement"]
        t = np.asarray(a["t"])
        origin = t[0] if len(t) else 0.0
        agreement.plot(t - origin, a["w"], label="joulelens power (10 Hz)")
        for edge in (a["on"], a["off"]):
            agreement.axvline(edge - origin, color="grey", linestyle=":")
        agreement.set_title("agreement: >= 10 s of bf16 matmuls (dotted: load on/off)")
    if "step" in series:
        s = series["step"]
        ons, offs = s["edges"]
        origin = ons[0] - 1.0 if ons else 0.0
        for name in ("instant", "average"):
            t, w = (np.asarray(x) for x in s[name])
            step.plot(t - origin, w, label=name)
        for on, off in zip(ons, offs, strict=False):
            step.axvspan(on - origin, off - origin, color="orange", alpha=0.15)
        step.set_title("2 s on / 2 s off (shaded: load): each source's lag")
    if "sampler" in series:
        t, e = (np.asarray(series["sampler"][k]) for k in ("t", "e"))
        if len(t) > 1:
            sampler.plot(t[1:] - t[0], np.diff(e) / np.diff(t), linewidth=0.6)
        sampler.set_title("sampler at 50 Hz: power from counter deltas")
    for label, tl in (series.get("engine") or {}).items():
        if tl.get("t"):
            engine.plot(tl["t"], tl["w"], label=label)
    engine.set_title("engine runs: arch:llama-3.1-8b power (t from each run's first request)")
    for ax in axes:
        ax.set_xlabel("s")
        ax.set_ylabel("W")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
