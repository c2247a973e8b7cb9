"""Factors of ``diagnose``: each a ratio B/A of one quantity, attached to the framework.

See :mod:`joulelens.analysis.diagnose` for the identities they come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joulelens.analysis import graph as g
from joulelens.analysis.model_arch import diffusion_volume
from joulelens.analysis.selection import gpu_name
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord

KNOB_FIELDS: tuple[tuple[str, str], ...] = (
    ("task", g.WORKLOAD),
    ("model_id", g.MODEL),
    ("architecture", g.MODEL),
    ("total_params_billions", g.MODEL),
    ("activated_params_billions", g.MODEL),
    ("weight_precision", g.QUANTIZATION),
    ("gpu_model", g.GPU),
    ("num_gpus", g.GPU_COUNT),
    ("tensor_parallel", g.GPU_COUNT),
    ("expert_parallel", g.GPU_COUNT),
    ("max_num_seqs", g.RUNTIME),
    ("batch_size", g.RUNTIME),
    ("inference_steps", g.RUNTIME),
    ("height", g.RUNTIME),
    ("width", g.RUNTIME),
    ("num_frames", g.RUNTIME),
    ("max_output_tokens", g.RUNTIME),
)

RESIDUAL_IDS = frozenset({"throughput_identity", "accounting"})


@dataclass
class KnobDiff:
    field: str
    node: str
    a: Any
    b: Any


@dataclass
class Factor:
    id: str
    label: str
    ratio: float  # this factor's multiplicative contribution to E(B)/E(A)
    a_value: float | None
    b_value: float | None
    unit: str
    latent: str  # graph node the factor acts through
    paths: list[list[str]] = field(default_factory=list)  # knob -> ... -> energy
    knobs: list[str] = field(default_factory=list)  # differing knob fields behind it
    note: str = ""

    @property
    def is_residual(self) -> bool:
        return self.id in RESIDUAL_IDS


def differing_knobs(a: RunRecord, b: RunRecord) -> list[KnobDiff]:
    out = []
    for name, node in KNOB_FIELDS:
        va, vb = getattr(a, name), getattr(b, name)
        if name == "gpu_model":
            va, vb = gpu_name(a), gpu_name(b)
        if va != vb:
            out.append(KnobDiff(name, node, va, vb))
    return out


# Which knob fields can move each factor (beyond the latent's own node).
FACTOR_KNOBS: dict[str, tuple[str, ...]] = {
    "output_length": ("task", "model_id", "max_output_tokens"),
    "power": (
        "gpu_model",
        "num_gpus",
        "max_num_seqs",
        "batch_size",
        "model_id",
        "weight_precision",
    ),
    "running_batch": ("max_num_seqs",),
    "step_latency": (
        "model_id",
        "activated_params_billions",
        "weight_precision",
        "gpu_model",
        "num_gpus",
        "tensor_parallel",
        "expert_parallel",
        "max_num_seqs",
        "task",
    ),
    "throughput": ("model_id", "weight_precision", "gpu_model", "num_gpus", "max_num_seqs", "task"),
    "energy_per_token": (
        "model_id",
        "weight_precision",
        "gpu_model",
        "num_gpus",
        "max_num_seqs",
        "task",
    ),
    "throughput_identity": (),
    "accounting": (),
    "steps": ("inference_steps",),
    "latent_tokens": ("height", "width", "num_frames", "model_id", "task"),
    "guidance_passes": ("model_id",),
    "params": ("model_id", "activated_params_billions"),
    "time_per_compute": ("gpu_model", "num_gpus", "batch_size", "model_id"),
    "time_per_generation": ("gpu_model", "num_gpus", "batch_size", "model_id", "height", "width"),
}


# A knob field's preferred route when several paths of equal length reach the factor.
FIELD_VIA: dict[str, str] = {
    "max_num_seqs": g.BATCH,
    "batch_size": g.BATCH,
    "inference_steps": g.COMPUTE_VOLUME,
    "height": g.COMPUTE_VOLUME,
    "width": g.COMPUTE_VOLUME,
    "num_frames": g.COMPUTE_VOLUME,
    "task": g.COMPUTE_VOLUME,
}


def _shortest_path(start: str, through: str, via: str | None = None) -> list[str] | None:
    paths = [p for p in g.FRAMEWORK.paths(start, g.ENERGY) if through in p]
    preferred = [p for p in paths if via in p] if via else []
    pool = preferred or paths
    return min(pool, key=len) if pool else None


def attach(f: Factor, diffs: list[KnobDiff], batch_paths: list[list[str]]) -> Factor:
    """The knobs that differ and can move this factor, and their paths into energy."""
    allowed = FACTOR_KNOBS.get(f.id, ())
    f.knobs = [d.field for d in diffs if d.field in allowed]
    paths: list[list[str]] = []
    for d in diffs:
        if d.field in allowed:
            p = _shortest_path(d.node, f.latent, FIELD_VIA.get(d.field))
            if p is not None and p not in paths:
                paths.append(p)
    if f.id == "running_batch":
        differing = {d.node for d in diffs}
        for p in batch_paths:
            if p[0] in differing or p[0] not in (
                g.MODEL,
                g.WORKLOAD,
                g.GPU,
                g.GPU_COUNT,
                g.RUNTIME,
            ):
                full = [*p, g.UTILIZATION, g.ENERGY]
                if full not in paths:
                    paths.append(full)
    f.paths = paths or ([p] if (p := _shortest_path(f.latent, f.latent)) else [])
    return f


def _positive(*values: float | None) -> bool:
    """Every value known and > 0: a ratio of logs needs it (a broken sensor can read <= 0)."""
    return all(v is not None and v > 0 for v in values)


def llm_factors(
    a: RunRecord, b: RunRecord, per_token: bool
) -> tuple[list[Factor], dict[str, float]]:
    ea, eb = a.energy_per_token_joules, b.energy_per_token_joules
    if not _positive(ea, eb):
        raise AnalysisError(
            f"both runs need a positive energy_per_token_joules (got {ea} and {eb})"
        )
    assert ea is not None and eb is not None
    factors: list[Factor] = []
    accounting = 1.0
    if not per_token:
        la, lb = a.avg_output_len, b.avg_output_len
        ra, rb = a.energy_per_request_joules, b.energy_per_request_joules
        if not _positive(la, lb, ra, rb):
            raise AnalysisError(
                "per-response diagnosis needs a positive avg_output_len and "
                "energy_per_request_joules on both runs (try --per-token)"
            )
        assert la is not None and lb is not None and ra is not None and rb is not None
        factors.append(
            Factor("output_length", "output length", lb / la, la, lb, "tokens", g.COMPUTE_VOLUME)
        )
        accounting *= (rb / (eb * lb)) / (ra / (ea * la))
    gaps: dict[str, float] = {}
    pa, pb = a.avg_power_watts, b.avg_power_watts
    xa, xb = a.output_throughput_tokens_per_sec, b.output_throughput_tokens_per_sec
    if _positive(pa, pb, xa, xb):
        assert pa is not None and pb is not None and xa is not None and xb is not None
        factors.append(Factor("power", "average power", pb / pa, pa, pb, "W", g.UTILIZATION))
        accounting *= (eb / (pb / xb)) / (ea / (pa / xa))
        ba, bb, ta, tb = a.avg_batch_size, b.avg_batch_size, a.median_itl_ms, b.median_itl_ms
        if _positive(ba, bb, ta, tb):
            assert ba is not None and bb is not None and ta is not None and tb is not None
            ka, kb = xa / (ba / (ta / 1000)), xb / (bb / (tb / 1000))
            gaps = {"a": ka - 1, "b": kb - 1}
            factors += [
                Factor(
                    "running_batch", "running batch (inverse)", ba / bb, ba, bb, "requests", g.BATCH
                ),
                Factor(
                    "step_latency",
                    "per-step latency (median ITL)",
                    tb / ta,
                    ta,
                    tb,
                    "ms",
                    g.UTILIZATION,
                ),
                Factor(
                    "throughput_identity",
                    "throughput-identity residual",
                    ka / kb,
                    ka,
                    kb,
                    "x",
                    g.UTILIZATION,
                    note="throughput / (running batch / median ITL): prefill stalls, ITL skew",
                ),
            ]
        else:
            factors.append(
                Factor(
                    "throughput",
                    "steady throughput (inverse)",
                    xa / xb,
                    xa,
                    xb,
                    "tokens/s",
                    g.UTILIZATION,
                )
            )
    else:
        factors.append(
            Factor(
                "energy_per_token", "energy per token", eb / ea, ea, eb, "J/token", g.UTILIZATION
            )
        )
    factors.append(
        Factor(
            "accounting",
            "accounting residual",
            accounting,
            None,
            None,
            "x",
            g.ENERGY,
            note="gap in E_resp = L x E_tok and E_tok = P / X as recorded",
        )
    )
    return factors, gaps


def diffusion_factors(a: RunRecord, b: RunRecord) -> list[Factor]:
    ea, eb = a.energy_per_generation_joules, b.energy_per_generation_joules
    pa, pb, ta, tb = a.avg_power_watts, b.avg_power_watts, a.batch_latency_s, b.batch_latency_s
    na, nb = a.batch_size, b.batch_size
    if not _positive(ea, eb, pa, pb, ta, tb, na, nb):
        raise AnalysisError(
            "diffusion diagnosis needs a positive energy, power, batch latency and batch size "
            "on both runs"
        )
    assert ea is not None and eb is not None and pa is not None and pb is not None
    assert ta is not None and tb is not None and na is not None and nb is not None
    accounting = (eb / (pb * tb / nb)) / (ea / (pa * ta / na))
    factors = [Factor("power", "average power", pb / pa, pa, pb, "W", g.UTILIZATION)]
    va, vb = diffusion_volume(a), diffusion_volume(b)
    if va is None or vb is None:
        factors.append(
            Factor(
                "time_per_generation",
                "time per generation",
                (tb / nb) / (ta / na),
                ta / na,
                tb / nb,
                "s",
                g.UTILIZATION,
            )
        )
    else:
        units = {
            "steps": "steps",
            "latent_tokens": "tokens",
            "guidance_passes": "passes",
            "params": "B params",
        }
        labels = {
            "steps": "denoising steps",
            "latent_tokens": "latent tokens (resolution x frames)",
            "guidance_passes": "guidance passes per step",
            "params": "active parameters",
        }
        for key in units:
            factors.append(
                Factor(
                    key,
                    labels[key],
                    vb[1][key] / va[1][key],
                    va[1][key],
                    vb[1][key],
                    units[key],
                    g.COMPUTE_VOLUME,
                )
            )
        sa, sb = (ta / na) / va[0], (tb / nb) / vb[0]
        factors.append(
            Factor(
                "time_per_compute",
                "time per unit of compute (batch, GPU, parallelism)",
                sb / sa,
                sa,
                sb,
                "s/unit",
                g.UTILIZATION,
            )
        )
    factors.append(
        Factor(
            "accounting",
            "accounting residual",
            accounting,
            None,
            None,
            "x",
            g.ENERGY,
            note="gap in E_gen = P x T / n as recorded",
        )
    )
    return factors
