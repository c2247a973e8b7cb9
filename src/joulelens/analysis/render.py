"""Plain-language text for ``why`` and ``diagnose`` results (the CLI prints these)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from joulelens.analysis import graph as g
from joulelens.analysis.diagnose import Diagnosis, Factor
from joulelens.analysis.thresholds import FACTOR_NEUTRAL_BAND, IDENTITY_RESIDUAL_WARN
from joulelens.analysis.why import WhyReport

_MORE_LESS: dict[str, tuple[str, str]] = {
    "output_length": ("longer outputs", "shorter outputs"),
    "power": ("higher power", "lower power"),
    "running_batch": ("a smaller running batch", "a larger running batch"),
    "step_latency": ("slower decoding steps", "faster decoding steps"),
    "throughput": ("lower throughput", "higher throughput"),
    "energy_per_token": ("more energy per token", "less energy per token"),
    "steps": ("more denoising steps", "fewer denoising steps"),
    "latent_tokens": ("more latent tokens (resolution x frames)", "fewer latent tokens"),
    "guidance_passes": ("more guidance passes", "fewer guidance passes"),
    "params": ("more active parameters", "fewer active parameters"),
    "time_per_compute": ("slower compute per unit of work", "faster compute per unit of work"),
    "time_per_generation": ("longer time per generation", "shorter time per generation"),
    "throughput_identity": ("the throughput-identity residual", "the throughput-identity residual"),
    "accounting": ("the accounting residual", "the accounting residual"),
}

_STOP_PHRASE = {
    "memory_bound": "capped at {cap} by KV-cache memory",
    "non_gpu_bottleneck": "held at {cap} by a non-GPU bottleneck",
    "cap_chosen": "was set to {cap} by max_num_seqs",
    "sweep_end": "was {cap}, the largest batch the sweep ran",
    "inconclusive": "stopped at {cap} for an unclear reason",
}


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def ratio_text(r: float) -> str:
    return f"{r:.3g}x" if r >= 1 else f"{r:.3g}x ({1 / r:.3g}x less)"


def batch_phrase(stop: str, cap: Any) -> str:
    return _STOP_PHRASE.get(stop, "stopped at {cap}").format(cap=cap)


def factor_phrase(f: Factor, reasons: dict[str, Any]) -> str:
    up, down = _MORE_LESS.get(f.id, (f.label, f.label))
    text = f"{ratio_text(f.ratio)} from {up if f.ratio >= 1 else down}"
    if f.a_value is not None and f.b_value is not None and not f.is_residual:
        text += f" (A {fmt(f.a_value)} vs B {fmt(f.b_value)} {f.unit}"
        text += f"; differs: {', '.join(f.knobs)})" if f.knobs else ")"
    if f.id == "running_batch" and reasons:
        parts = []
        for side, info in sorted(reasons.items()):
            part = f"{side.upper()}'s batch {batch_phrase(info['stop'], info['cap'])}"
            if info.get("tokens_per_sequence") and info["stop"] == "memory_bound":
                part += f" (~{info['tokens_per_sequence']:,.0f} tokens per sequence)"
            parts.append(part)
        text += " — " + "; ".join(parts)
    return text


def diagnosis_summary(d: Diagnosis) -> str:
    """One paragraph: the observed ratio, each factor that moved, the main causes."""
    head = (
        f"B uses {ratio_text(d.observed_ratio)} the {d.metric} of A "
        f"({fmt(d.b_value)} vs {fmt(d.a_value)} {d.unit})"
    )
    ordered = sorted(d.factors, key=lambda f: f.is_residual)
    shown = [factor_phrase(f, d.batch_reasons) for f in ordered if _worth_showing(f)]
    if not shown:
        shown = ["no factor moved by more than a few percent"]
    causes = ", ".join(
        _MORE_LESS.get(c, (c, c))[0 if d.observed_ratio >= 1 else 1] for c in d.main_causes
    )
    text = head + ": " + "; ".join(shown) + "."
    if causes:
        text += f" Main causes: {causes}."
    gaps = d.identity_residuals
    if any(abs(v) > IDENTITY_RESIDUAL_WARN for v in gaps.values()):
        text += (
            f" The throughput identity (throughput = running batch / median ITL) is off by "
            f"{gaps['a']:+.0%} for A and {gaps['b']:+.0%} for B; the residual factor carries it."
        )
    return text


def diagnosis_dict(d: Diagnosis) -> dict[str, Any]:
    """The JSON form: the numbers plus each factor's path labels and the summary."""
    out = asdict(d)
    for f, raw in zip(d.factors, out["factors"], strict=True):
        raw["path_labels"] = [g.path_text(p) for p in f.paths]
        raw["is_residual"] = f.is_residual
    out["summary"] = diagnosis_summary(d)
    return out


def _worth_showing(f: Factor) -> bool:
    band = 0.005 if f.is_residual else FACTOR_NEUTRAL_BAND
    return abs(f.ratio - 1) >= band


def diagnosis_text(d: Diagnosis) -> str:
    """The full text ``joulelens diagnose`` prints: summary, factors and their paths, knobs."""
    lines = [
        f"A: {d.a_label}  [{d.a_id}]",
        f"B: {d.b_label}  [{d.b_id}]",
        "",
        diagnosis_summary(d),
        "",
        "factors (B/A):",
    ]
    for f in d.factors:
        lines.append(f"  {f.ratio:>8.3g}x  {f.label}  [{g.FRAMEWORK.node(f.latent).label}]")
        for p in f.paths[:3]:
            lines.append(f"             path: {g.path_text(p)}")
        if f.note:
            lines.append(f"             note: {f.note}")
    lines.append(
        f"  product {d.product:.4g}x vs observed {d.observed_ratio:.4g}x "
        f"(residual {d.residual:+.2e})"
    )
    if d.identity_residuals:
        lines.append(
            "  throughput identity gap: "
            + ", ".join(f"{k.upper()} {v:+.1%}" for k, v in d.identity_residuals.items())
        )
    if d.differing_knobs:
        lines.append("knobs that differ:")
        for k in d.differing_knobs:
            lines.append(f"  {k.field:<26} {k.a!s:>24} -> {k.b!s}")
    for side, info in sorted(d.batch_reasons.items()):
        lines.append(f"{side.upper()}'s batch: {info['explanation']}")
    return "\n".join(lines) + "\n"


_WIDTHS = (6, 4, 7, 9, 10, 12, 9)


def why_text(w: WhyReport) -> str:
    lines = [
        f"{w.run}  [{w.run_id}]",
        f"batch: {w.batch_stop.value} — {w.batch_explanation}",
    ]
    for p in w.paths:
        lines.append(f"  path: {g.path_text(p)}")
    lines.append("evidence used: " + ", ".join(w.evidence_used))
    for e in w.evidence:
        lines.append(f"  - [{e.kind}] {e.summary}")
    lines.append(f"power: {w.power_note}")
    lines.append(f"static: {w.static_note}")
    if w.neighbors:
        lines.append("same model and task in the store:")
        header = ("GPU", "#", "batch", "running", "J/unit", "latency ms", "power W")
        lines.append("  " + "".join(f"{h:>{w}}" for h, w in zip(header, _WIDTHS, strict=True)))
        for n in w.neighbors:
            mark = " <- this run" if n["this_run"] else ("" if n["stable"] else " (unstable)")
            cells = (
                n["gpu"],
                n["num_gpus"],
                n["batch"] or "—",
                fmt(n["running_batch"]),
                fmt(n["energy_per_unit_joules"]),
                fmt(n["latency_ms"]),
                fmt(n["power_watts"]),
            )
            row = "".join(f"{c!s:>{w}}" for c, w in zip(cells, _WIDTHS, strict=True))
            lines.append("  " + row + mark)
    return "\n".join(lines) + "\n"
