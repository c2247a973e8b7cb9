"""``why RUN``: where one run's batch stopped and why, its power against TDP, its static share,
and what the same model does at other batch sizes and GPU counts.

The batch verdict (:mod:`joulelens.analysis.batch_stop`) is a path through the framework:

* cap chosen      runtime parameters -> batch size (larger stable batches exist)
* memory-bound    model / workload -> memory footprint -> batch size, and
                  GPU / GPU count -> memory availability -> batch size
* non-GPU         non-GPU bottlenecks (e.g. CPU media preprocessing) -> batch size
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from joulelens.analysis import graph as g
from joulelens.analysis.batch_stop import (
    BATCH_PATHS,
    BatchStop,
    Evidence,
    MemoryFinding,
    MemoryVerdict,
    batch_verdict,
)
from joulelens.analysis.hardware import gpu_spec
from joulelens.analysis.selection import RunIndex, gpu_name, is_usable, label
from joulelens.analysis.thresholds import POWER_HIGH_FRACTION_OF_TDP, POWER_LOW_FRACTION_OF_TDP
from joulelens.records import RunRecord

__all__ = [
    "BATCH_PATHS",
    "BatchStop",
    "Evidence",
    "MemoryFinding",
    "MemoryVerdict",
    "WhyReport",
    "why",
]


@dataclass
class WhyReport:
    run_id: str
    run: str
    kind: str
    batch_cap: int | None
    running_batch: float | None
    batch_fill: float | None
    batch_stop: BatchStop
    batch_explanation: str
    likely_cause: str | None
    paths: list[list[str]]
    evidence: list[Evidence]
    evidence_used: list[str]
    memory: MemoryFinding | None
    power_watts: float | None
    tdp_watts_total: float | None
    power_fraction_of_tdp: float | None
    power_note: str
    static_fraction: float | None
    static_note: str
    neighbors: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["batch_stop"] = self.batch_stop.value
        if self.memory is not None:
            out["memory"]["verdict"] = self.memory.verdict.value
            out["memory"]["estimate"] = (
                self.memory.estimate.to_dict() if self.memory.estimate else None
            )
        out["path_labels"] = [g.path_text(p) for p in self.paths]
        return out


def _power(record: RunRecord) -> tuple[float | None, float | None, str]:
    spec = gpu_spec(record.gpu_model)
    if record.avg_power_watts is None:
        return (
            None,
            None,
            f"no power figure: {record.missing.get('avg_power_watts', 'not recorded')}",
        )
    if spec is None:
        return None, None, f"no TDP figure for GPU {record.gpu_model!r}"
    if record.num_gpus < 1:
        return None, None, f"no GPU counted (num_gpus {record.num_gpus}): no TDP to compare with"
    tdp = spec.tdp_watts * record.num_gpus
    frac = record.avg_power_watts / tdp
    if frac < POWER_LOW_FRACTION_OF_TDP:
        note = "GPUs underused: much of the energy is static power paid while waiting"
    elif frac >= POWER_HIGH_FRACTION_OF_TDP:
        note = "GPUs busy: close to their power limit"
    else:
        note = "GPUs moderately used"
    return tdp, frac, f"{record.avg_power_watts:,.0f} W of {tdp:,.0f} W TDP ({frac:.0%}): {note}"


def _static(record: RunRecord) -> tuple[float | None, str]:
    if record.static_energy_fraction is not None:
        return (
            record.static_energy_fraction,
            f"static (idle) power is {record.static_energy_fraction:.0%} of the run's energy",
        )
    if record.idle_power_watts is not None and record.avg_power_watts:
        frac = record.idle_power_watts / record.avg_power_watts
        return (
            frac,
            f"idle baseline {record.idle_power_watts:,.0f} W is {frac:.0%} of average power",
        )
    reason = (
        record.missing.get("static_energy_fraction")
        or record.missing.get("idle_power_watts")
        or "no idle baseline"
    )
    return None, f"static share unknown: {reason}"


def _neighbors(record: RunRecord, index: RunIndex) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(
        index.by_model_task.get((record.model_id, record.task), []),
        key=lambda r: (gpu_name(r), r.num_gpus, r.batch or 0),
    ):
        rows.append(
            {
                "run_id": r.run_id,
                "this_run": r.run_id == record.run_id,
                "gpu": gpu_name(r),
                "num_gpus": r.num_gpus,
                "batch": r.batch,
                "running_batch": r.avg_batch_size,
                "energy_per_unit_joules": r.energy_per_unit_joules,
                "latency_ms": r.latency_ms,
                "power_watts": r.avg_power_watts,
                "stable": is_usable(r),
            }
        )
    return rows


def why(record: RunRecord, records: list[RunRecord] | RunIndex) -> WhyReport:
    """Explain one run against the other runs in the store (``records`` may be an index)."""
    index = records if isinstance(records, RunIndex) else RunIndex(list(records))
    verdict, evidence, mem = batch_verdict(record, index)
    tdp, frac, power_note = _power(record)
    static, static_note = _static(record)
    used = sorted({e.kind for e in evidence})
    cap, running = record.batch, record.avg_batch_size
    return WhyReport(
        run_id=record.run_id,
        run=label(record),
        kind=record.kind.value,
        batch_cap=cap,
        running_batch=running,
        batch_fill=running / cap if (running is not None and cap) else None,
        batch_stop=verdict.stop,
        batch_explanation=verdict.explanation,
        likely_cause=verdict.cause,
        paths=BATCH_PATHS[verdict.stop],
        evidence=evidence,
        evidence_used=used,
        memory=mem,
        power_watts=record.avg_power_watts,
        tdp_watts_total=tdp,
        power_fraction_of_tdp=frac,
        power_note=power_note,
        static_fraction=static,
        static_note=static_note,
        neighbors=_neighbors(record, index),
    )
