"""Sweep curves: one batch-size sweep of one setup, interpolated in log2(batch).

A *setup* is everything but the batch: model, task, GPU, GPU count, precision, and the
parallel layout and diffusion shape (resolution, steps, frames). Each measured quantity is
interpolated on its own as ``log(value)`` against ``log2(batch)`` with a monotone cubic
(PCHIP), so a prediction passes exactly through every measured batch and never overshoots
between two of them. Energy per unit keeps the paper's identity

    energy per unit = average power / throughput x k

where ``k`` (the identity's residual, 1 for data that obey it) is interpolated linearly.
Repeats of one batch are combined by their geometric mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from joulelens.analysis.planning.interpolate import Pchip
from joulelens.analysis.selection import gpu_name, hardware_label, is_usable
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord

# Quantities a curve interpolates, as record readers. Latencies are in ms.
Reader = Callable[[RunRecord], float | None]
READERS: dict[str, Reader] = {
    "power_watts": lambda r: r.avg_power_watts,
    "throughput_units_per_sec": lambda r: r.throughput_units_per_sec,
    "energy_per_unit_joules": lambda r: r.energy_per_unit_joules,
    "median_itl_ms": lambda r: None if r.is_diffusion else r.median_itl_ms,
    "p90_itl_ms": lambda r: None if r.is_diffusion else r.p90_itl_ms,
    "p95_itl_ms": lambda r: None if r.is_diffusion else r.p95_itl_ms,
    "p99_itl_ms": lambda r: None if r.is_diffusion else r.p99_itl_ms,
    "median_ttft_ms": lambda r: None if r.is_diffusion else r.median_ttft_ms,
    "p90_ttft_ms": lambda r: None if r.is_diffusion else r.p90_ttft_ms,
    "p99_ttft_ms": lambda r: None if r.is_diffusion else r.p99_ttft_ms,
    "batch_latency_ms": lambda r: r.latency_ms if r.is_diffusion else None,
    "avg_output_len": lambda r: r.avg_output_len,
}


@dataclass(frozen=True, order=True)
class SetupKey:
    model_id: str
    task: str
    gpu: str
    num_gpus: int
    precision: str
    layout: tuple[tuple[str, int | None], ...] = ()  # parallelism and diffusion shape

    def describe(self) -> str:
        # Parallel degrees of 1 are the default layout; naming them is noise.
        extra = ", ".join(f"{k}={v}" for k, v in self.layout if v is not None and v != 1)
        hardware = hardware_label(self.num_gpus, self.gpu)
        base = f"{self.model_id}, {self.task}, {hardware}, {self.precision}"
        return f"{base} ({extra})" if extra else base


_LAYOUT_FIELDS = (
    "tensor_parallel",
    "expert_parallel",
    "data_parallel",
    "ulysses_degree",
    "ring_degree",
    "height",
    "width",
    "inference_steps",
    "num_frames",
)


def setup_key(record: RunRecord) -> SetupKey:
    layout = tuple(
        (f, getattr(record, f)) for f in _LAYOUT_FIELDS if getattr(record, f) is not None
    )
    return SetupKey(
        record.model_id,
        record.task,
        gpu_name(record),
        record.num_gpus,
        record.weight_precision or "unknown",
        layout,
    )


def group_setups(records: Iterable[RunRecord]) -> dict[SetupKey, list[RunRecord]]:
    """Usable runs with a batch, by setup."""
    out: dict[SetupKey, list[RunRecord]] = defaultdict(list)
    for r in records:
        if is_usable(r) and r.batch is not None and r.batch > 0:
            out[setup_key(r)].append(r)
    return dict(out)


@dataclass
class SweepCurve:
    """Interpolants of one setup's measured batches; build with :meth:`fit`."""

    key: SetupKey
    batches: list[int]  # distinct measured batches, ascending
    run_ids: dict[int, list[str]]
    values: dict[str, dict[int, float]]  # quantity -> batch -> geometric mean over repeats
    curves: dict[str, Pchip] = field(default_factory=dict)  # on (log2 batch, log value)
    residual: dict[int, float] = field(default_factory=dict)  # log k per batch
    nickname: str | None = None
    kind: str = "llm"
    energy_unit: str = "token"

    @classmethod
    def fit(cls, runs: Sequence[RunRecord]) -> SweepCurve:
        """Fit from the runs of one setup (all must share it); needs two distinct batches."""
        usable = [r for r in runs if is_usable(r) and r.batch]
        if not usable:
            raise AnalysisError("no usable run to fit a sweep curve to")
        key = setup_key(usable[0])
        if any(setup_key(r) != key for r in usable):
            raise AnalysisError("a sweep curve is fitted to the runs of one setup only")
        by_batch: dict[int, list[RunRecord]] = defaultdict(list)
        for r in usable:
            assert r.batch is not None  # filtered above
            by_batch[r.batch].append(r)
        batches = sorted(by_batch)
        if len(batches) < 2:
            raise AnalysisError(
                f"{key.describe()}: only batch {batches[0]} is measured; interpolation needs two"
            )
        values: dict[str, dict[int, float]] = {}
        for name, read in READERS.items():
            per_batch = {}
            for b in batches:
                got = [v for r in by_batch[b] if (v := read(r)) is not None and v > 0]
                if got:
                    per_batch[b] = math.exp(sum(math.log(v) for v in got) / len(got))
            values[name] = per_batch
        curve = cls(
            key=key,
            batches=batches,
            run_ids={b: sorted(r.run_id for r in by_batch[b]) for b in batches},
            values=values,
            nickname=usable[0].nickname,
            kind=usable[0].kind.value,
            energy_unit=usable[0].energy_unit,
        )
        curve._build()
        return curve

    def _build(self) -> None:
        for name, per_batch in self.values.items():
            if len(per_batch) >= 2:
                bs = sorted(per_batch)
                self.curves[name] = Pchip.fit(
                    [math.log2(b) for b in bs], [math.log(per_batch[b]) for b in bs]
                )
        p, x, e = (
            self.values[n]
            for n in ("power_watts", "throughput_units_per_sec", "energy_per_unit_joules")
        )
        if all(b in p and b in x and b in e for b in self.batches):
            self.residual = {b: math.log(e[b] * x[b] / p[b]) for b in self.batches}

    def without(self, batch: int) -> SweepCurve:
        """The curve refitted with every run of ``batch`` left out (for leave-one-out)."""
        keep = [b for b in self.batches if b != batch]
        if len(keep) < 2:
            raise AnalysisError(f"{self.key.describe()}: too few batches left without {batch}")
        values = {n: {b: v for b, v in pb.items() if b != batch} for n, pb in self.values.items()}
        out = SweepCurve(
            self.key,
            keep,
            {b: self.run_ids[b] for b in keep},
            values,
            nickname=self.nickname,
            kind=self.kind,
            energy_unit=self.energy_unit,
        )
        out._build()
        return out

    @property
    def batch_min(self) -> int:
        return self.batches[0]

    @property
    def batch_max(self) -> int:
        return self.batches[-1]

    def covers(self, batch: float) -> bool:
        return self.batch_min <= batch <= self.batch_max

    def value(self, name: str, batch: int) -> float | None:
        """A quantity at ``batch``: measured where it was, interpolated between, else None."""
        if not self.covers(batch):
            raise AnalysisError(
                f"batch {batch} is outside the measured range {self.batch_min}-"
                f"{self.batch_max} of {self.key.describe()}; joulelens interpolates but does "
                "not extrapolate (past the largest stable batch the server may run out of "
                "memory or fall short of the cap)"
            )
        measured = self.values.get(name, {})
        if batch in measured:
            return measured[batch]
        if name == "energy_per_unit_joules" and self.residual:
            power = self.value("power_watts", batch)
            throughput = self.value("throughput_units_per_sec", batch)
            if power is not None and throughput:
                return power / throughput * math.exp(self._residual_at(batch))
        curve = self.curves.get(name)
        if curve is None:
            return None
        x = math.log2(batch)
        if not curve.x_min <= x <= curve.x_max:
            return None  # this quantity was measured over a narrower range
        return math.exp(curve(x))

    def _residual_at(self, batch: float) -> float:
        xs = [math.log2(b) for b in self.batches]
        return float(np.interp(math.log2(batch), xs, [self.residual[b] for b in self.batches]))
