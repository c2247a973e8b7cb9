"""Power-budgeted datacenters: how much work a facility's power serves under a deadline.

For each configuration that meets the deadline, one replica (its GPUs plus their host share)
draws, at the facility meter,

    replica W = (GPU W + host W per GPU x GPUs per replica) x PUE

GPU W is the run's measured steady-state average (all its GPUs), or the GPUs' TDP when
asked. The facility fits ``floor(facility W / replica W)`` replicas; total throughput is
replicas x the run's steady throughput; energy per day assumes the fleet serves at that
steady state around the clock. The configuration serving the most work wins, overall and
per GPU generation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from joulelens.analysis.hardware import gpu_spec
from joulelens.analysis.planning.candidates import (
    Candidate,
    LatencyMetric,
    candidates,
    check_latency_available,
    latency_label,
)
from joulelens.errors import AnalysisError, InputError
from joulelens.records import RunRecord

SECONDS_PER_DAY = 86_400.0


class PowerBasis(StrEnum):
    MEASURED = "measured"  # the run's steady-state average GPU power
    TDP = "tdp"  # the GPUs' board power limit: a provisioning worst case


@dataclass(frozen=True)
class Facility:
    power_mw: float
    pue: float
    host_watts_per_gpu: float
    power_basis: PowerBasis = PowerBasis.MEASURED

    def __post_init__(self) -> None:
        if self.power_mw <= 0:
            raise InputError("facility power must be positive", field="--power-mw")
        if self.pue < 1.0:
            raise InputError(f"PUE is at least 1.0, got {self.pue}", field="--pue")
        if self.host_watts_per_gpu < 0:
            raise InputError("host overhead cannot be negative", field="--host-watts-per-gpu")

    @property
    def power_watts(self) -> float:
        return self.power_mw * 1e6

    def assumptions(self, latency: str, deadline_ms: float) -> list[str]:
        basis = (
            "GPU power at each run's measured steady-state average (not TDP)"
            if self.power_basis is PowerBasis.MEASURED
            else "GPU power at the GPUs' TDP (board power limit), not the measured average"
        )
        return [
            f"facility power budget {self.power_mw:g} MW at the utility meter",
            f"PUE {self.pue:g}: every IT watt costs {self.pue:g} W at the meter "
            "(cooling, power delivery)",
            f"host overhead {self.host_watts_per_gpu:g} W per GPU "
            "(CPUs, memory, NICs, fans), constant",
            basis,
            f"deadline: {latency} <= {deadline_ms:g} ms, as measured under the run's load "
            "(the benchmark's saturation load: all requests queued at t=0)",
            "every replica serves at its measured steady-state throughput around the clock; "
            "idle time, load swings and networking are not modelled",
            "replicas are whole: leftover power that cannot host one more replica stays unused",
        ]


@dataclass(frozen=True)
class Deployment:
    candidate: Candidate
    gpu_watts_per_replica: float
    replica_facility_watts: float
    replicas: int
    gpus: int
    throughput_units_per_sec: float
    facility_watts_used: float
    energy_per_day_mwh: float
    units_per_day: float
    facility_joules_per_unit: float
    units_per_sec_per_facility_watt: float

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "candidate"}
        out["config"] = self.candidate.to_dict()
        return out


def deploy(c: Candidate, facility: Facility) -> Deployment | None:
    """The arithmetic for one configuration; None when it lacks power or throughput."""
    if c.throughput_units_per_sec is None or c.throughput_units_per_sec <= 0:
        return None
    if c.num_gpus < 1:
        return None  # a CPU run: no GPUs to fill a facility with
    if facility.power_basis is PowerBasis.TDP:
        spec = gpu_spec(c.gpu)
        if spec is None:
            return None
        gpu_w = spec.tdp_watts * c.num_gpus
    else:
        if c.power_watts is None or c.power_watts <= 0:
            return None  # no reading, or a broken sensor's
        gpu_w = c.power_watts
    replica_w = (gpu_w + facility.host_watts_per_gpu * c.num_gpus) * facility.pue
    if not replica_w > 0:
        return None
    replicas = math.floor(facility.power_watts / replica_w)
    throughput = replicas * c.throughput_units_per_sec
    used_w = replicas * replica_w
    return Deployment(
        candidate=c,
        gpu_watts_per_replica=gpu_w,
        replica_facility_watts=replica_w,
        replicas=replicas,
        gpus=replicas * c.num_gpus,
        throughput_units_per_sec=throughput,
        facility_watts_used=used_w,
        energy_per_day_mwh=used_w * SECONDS_PER_DAY / 3.6e9,
        units_per_day=throughput * SECONDS_PER_DAY,
        facility_joules_per_unit=replica_w / c.throughput_units_per_sec,
        units_per_sec_per_facility_watt=c.throughput_units_per_sec / replica_w,
    )


@dataclass
class DatacenterPlan:
    task: str
    latency: str
    deadline_ms: float
    facility: Facility
    assumptions: list[str]
    best: Deployment
    per_gpu: list[Deployment]  # the best deployment for each GPU generation
    considered: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "latency": self.latency,
            "deadline_ms": self.deadline_ms,
            "facility": {
                k: (v.value if isinstance(v, StrEnum) else v)
                for k, v in vars(self.facility).items()
            },
            "assumptions": self.assumptions,
            "considered": self.considered,
            "best": self.best.to_dict(),
            "per_gpu": [d.to_dict() for d in self.per_gpu],
        }


def _rank(d: Deployment) -> tuple[float, int, str]:
    return (-d.throughput_units_per_sec, d.gpus, d.candidate.run_id or d.candidate.label)


def best_deployments(points: Sequence[Candidate], facility: Facility) -> list[Deployment]:
    deps = [d for c in points if (d := deploy(c, facility)) is not None and d.replicas > 0]
    return sorted(deps, key=_rank)


def datacenter(
    records: Iterable[RunRecord],
    task: str,
    deadline_ms: float,
    facility: Facility,
    *,
    model: str | None = None,
    gpus: Sequence[str] = (),
    metric: LatencyMetric = LatencyMetric.PAPER,
) -> DatacenterPlan:
    wanted = {g.lower() for g in gpus}
    runs = [
        r
        for r in records
        if r.task == task
        and (
            not model
            or model.lower() in r.model_id.lower()
            or model.lower() in (r.nickname or "").lower()
        )
    ]
    if not runs:
        raise AnalysisError(f"no run of task {task!r}" + (f" and model {model!r}" if model else ""))
    check_latency_available(runs, metric)
    points = [c for c in candidates(runs, metric) if not wanted or c.gpu.lower() in wanted]
    on_time = [c for c in points if c.latency_ms <= deadline_ms]
    if not on_time:
        fastest = min(points, key=lambda c: c.latency_ms, default=None)
        why = (
            f"the fastest is {fastest.label} at {fastest.latency_ms:.4g} ms"
            if fastest
            else "no usable run"
        )
        raise AnalysisError(f"{task}: no configuration meets {deadline_ms:g} ms ({why})")
    ranked = best_deployments(on_time, facility)
    if not ranked:
        raise AnalysisError(
            f"{task}: no configuration meeting the deadline fits one replica into "
            f"{facility.power_mw:g} MW, or none has both power and throughput"
        )
    per_gpu: dict[str, Deployment] = {}
    for d in ranked:
        per_gpu.setdefault(d.candidate.gpu, d)
    diffusion = on_time[0].is_diffusion
    label = latency_label(metric, diffusion)
    return DatacenterPlan(
        task=task,
        latency=label,
        deadline_ms=deadline_ms,
        facility=facility,
        assumptions=facility.assumptions(label, deadline_ms),
        best=ranked[0],
        per_gpu=sorted(per_gpu.values(), key=_rank),
        considered=len(on_time),
    )
