"""``diagnose A B``: an exact multiplicative decomposition of B's energy over A's.

LLM runs (per response; ``per_token=True`` drops the first factor)::

    E_resp = L x E_tok                       L: mean output tokens
    E_tok  = P / X                           P: average power, X: steady throughput
    X      = b / t x k                       b: running batch, t: median ITL (per-step proxy),
                                             k: how far the identity X = b / t is off
so  E_resp(B)/E_resp(A) = (L_B/L_A) x (P_B/P_A) x (b_A/b_B) x (t_B/t_A) x (k_A/k_B) x r

where r collects the accounting residuals of the first two identities (1 for data that obey
them). Diffusion runs (per image or video)::

    E_gen = P x T / n = P x V x s            T: batch latency, n: batch size,
                                             V: compute volume per generation,
                                             s: seconds per unit of compute volume
    V     = steps x latent tokens x guidance passes x active parameters

Every factor is a ratio B/A of one quantity; the factors multiply to the observed ratio
exactly (the residual factors make it so), and each names its latent variable, the graph
paths into energy, and the knobs that differ between A and B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from joulelens.analysis.factors import (
    Factor,
    KnobDiff,
    attach,
    differing_knobs,
    diffusion_factors,
    llm_factors,
)
from joulelens.analysis.selection import RunIndex, label
from joulelens.analysis.thresholds import FACTOR_NEUTRAL_BAND
from joulelens.analysis.why import BATCH_PATHS, BatchStop, why
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord

__all__ = ["Diagnosis", "Factor", "KnobDiff", "diagnose", "main_causes"]


@dataclass
class Diagnosis:
    """Numbers only: the wording (summary, JSON labels) is :mod:`joulelens.analysis.render`'s."""

    a_id: str
    b_id: str
    a_label: str
    b_label: str
    metric: str  # "energy per response", "energy per token", "energy per image" ...
    unit: str
    a_value: float
    b_value: float
    observed_ratio: float
    factors: list[Factor]
    product: float
    residual: float  # product / observed - 1 (0 up to rounding)
    identity_residuals: dict[str, float]  # per run: X / (b / t) - 1, the approximation gap
    differing_knobs: list[KnobDiff]
    main_causes: list[str]  # factor ids that carry the ratio
    batch_reasons: dict[str, dict[str, Any]]  # "a"/"b" -> stop, cap, explanation


def main_causes(factors: list[Factor], observed: float) -> list[str]:
    """Non-residual factors, largest first, that push in the ratio's direction until they carry
    90% of the log-contribution in that direction."""
    sign = 1.0 if observed >= 1 else -1.0
    pushing = sorted(
        (
            f
            for f in factors
            if not f.is_residual and sign * math.log(f.ratio) > math.log1p(FACTOR_NEUTRAL_BAND)
        ),
        key=lambda f: -abs(math.log(f.ratio)),
    )
    total = sum(abs(math.log(f.ratio)) for f in pushing)
    out, acc = [], 0.0
    for f in pushing:
        out.append(f.id)
        acc += abs(math.log(f.ratio))
        if acc >= 0.9 * total:
            break
    return out


def _batch_reasons(a: RunRecord, b: RunRecord, index: RunIndex | None) -> dict[str, dict[str, Any]]:
    """Why each run's batch stopped (from :func:`why`), when the store is at hand."""
    if index is None or a.is_diffusion:
        return {}
    out = {}
    for name, r in (("a", a), ("b", b)):
        w = why(r, index)
        est = w.memory.estimate if w.memory is not None else None
        out[name] = {
            "stop": w.batch_stop.value,
            "cap": r.batch,
            "explanation": w.batch_explanation,
            "tokens_per_sequence": est.tokens_per_sequence if est is not None else None,
        }
    return out


def diagnose(
    a: RunRecord,
    b: RunRecord,
    records: list[RunRecord] | RunIndex | None = None,
    *,
    per_token: bool = False,
) -> Diagnosis:
    """Why B's energy differs from A's. ``records`` (or an index) lets the batch factor say
    why each batch stopped; without them the decomposition still holds."""
    if a.is_diffusion != b.is_diffusion:
        raise AnalysisError(
            "cannot decompose an LLM run against a diffusion run: their energy units differ"
        )
    index = records if isinstance(records, RunIndex) or records is None else RunIndex(list(records))
    diffs = differing_knobs(a, b)
    gaps: dict[str, float] = {}
    if a.is_diffusion:
        factors = diffusion_factors(a, b)
        gen = b.energy_unit if a.energy_unit == b.energy_unit else "generation"
        metric, unit = f"energy per {gen}", f"J/{gen}"
        va, vb = a.energy_per_generation_joules, b.energy_per_generation_joules
    else:
        factors, gaps = llm_factors(a, b, per_token)
        metric = "energy per token" if per_token else "energy per response"
        unit = "J/token" if per_token else "J/response"
        va = a.energy_per_token_joules if per_token else a.energy_per_request_joules
        vb = b.energy_per_token_joules if per_token else b.energy_per_request_joules
    assert va is not None and vb is not None  # checked by the factor builders
    reasons = _batch_reasons(a, b, index)
    batch_paths: list[list[str]] = []
    for info in reasons.values():
        batch_paths += [p for p in BATCH_PATHS[BatchStop(info["stop"])] if p not in batch_paths]
    for f in factors:
        attach(f, diffs, batch_paths)
    observed = vb / va
    product = math.prod(f.ratio for f in factors)
    return Diagnosis(
        a_id=a.run_id,
        b_id=b.run_id,
        a_label=label(a),
        b_label=label(b),
        metric=metric,
        unit=unit,
        a_value=va,
        b_value=vb,
        observed_ratio=observed,
        factors=factors,
        product=product,
        residual=product / observed - 1,
        identity_residuals=gaps,
        differing_knobs=diffs,
        main_causes=main_causes(factors, observed),
        batch_reasons=reasons,
    )
