"""What a compile call needs besides events and readings: the run's identity and knobs
(:class:`RunSpec`) and the measurement choices (:class:`MeasureOptions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from joulelens.errors import InputError
from joulelens.measure.artifacts import write_run_artifacts
from joulelens.measure.attribution import DEFAULT_PREFILL_WEIGHT
from joulelens.measure.cpu_share import CpuEstimate
from joulelens.measure.steady import MAX_STATIONARY_DRIFT
from joulelens.measure.validate import MIN_STEADY_STATE_S
from joulelens.records.schema import (
    DIFFUSION_METRIC_FIELDS,
    IMAGE_METRIC_FIELDS,
    LLM_METRIC_FIELDS,
    VIDEO_METRIC_FIELDS,
    EnergyBoundary,
    Provenance,
    RequestRow,
    RunKind,
    RunRecord,
    TimelineSample,
)

# Fields the compile step computes; a spec may not preset them.
COMPUTED_FIELDS = frozenset(
    {
        *LLM_METRIC_FIELDS,
        *DIFFUSION_METRIC_FIELDS,
        *IMAGE_METRIC_FIELDS,
        *VIDEO_METRIC_FIELDS,
        "num_completed_requests",
        "num_failed_requests",
        "num_truncated_requests",
        "output_length_distribution",
        "run_energy_joules",
        "energy_boundary",
        "energy_method",
        "energy_components",
        "stable",
        "unstable_reasons",
        "warnings",
        "missing",
        "artifacts",
        "status",
        "failure_reason",
    }
)
_SPEC_OWN = frozenset(
    {
        "run_id",
        "model_id",
        "task",
        "provenance",
        "kind",
        "max_num_seqs",
        "num_requests",
        "max_output_tokens",
        "batch_size",
    }
)


@dataclass(frozen=True)
class RunSpec:
    """Identity and knobs of one run; ``fields`` carries any further :class:`RunRecord`
    field (``gpu_model``, ``num_gpus``, ``tensor_parallel``, ``weight_precision``,
    ``arrival``, ``nickname``, ``inference_steps``, ``started_at``, ``config`` ...)."""

    run_id: str
    model_id: str
    task: str
    provenance: Provenance
    kind: RunKind = RunKind.LLM
    max_num_seqs: int | None = None  # LLM batch cap B (required for LLM/MLLM)
    num_requests: int | None = None  # N sent; default: the number of traces
    max_output_tokens: int | None = None
    batch_size: int | None = None  # diffusion; default: the batches' most common size
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(RunRecord.model_fields))
        if unknown:
            raise InputError(f"not run record fields: {', '.join(unknown)}", field="fields")
        clash = sorted(set(self.fields) & (COMPUTED_FIELDS | _SPEC_OWN))
        if clash:
            raise InputError(
                f"computed by the measurement or given as RunSpec arguments: {', '.join(clash)}",
                field="fields",
            )


@dataclass(frozen=True)
class MeasureOptions:
    """Measurement choices; stored in the record's ``config["measurement"]``."""

    boundary: EnergyBoundary | None = None  # headline energy; None: GPU, else CPU+DRAM, else CPU
    min_steady_state_s: float = MIN_STEADY_STATE_S
    max_stationary_drift: float = MAX_STATIONARY_DRIFT
    require_stationary: bool = False  # drift beyond the limit: unstable (True) or a warning
    prefill_weight: float = DEFAULT_PREFILL_WEIGHT  # attribution: work per input token
    # Outputs run to the cap by design (ignore_eos): hitting the cap is no defect then.
    fixed_output_length: bool = False
    origin_s: float | None = None  # t=0 of artifacts; default: the first request sent

    def as_config(self) -> dict[str, Any]:
        out = asdict(self)
        out["boundary"] = None if self.boundary is None else self.boundary.value
        out.pop("origin_s")
        return out


@dataclass(frozen=True)
class RunAdditions:
    """What the harness adds to the record beside the measurement, handed to the compile
    step so that the record is built once: the engine's notes and description, what the
    server log shows, the files kept with the run, and what the CPU estimate covered."""

    warnings: Sequence[str] = ()
    unstable_reasons: Sequence[str] = ()  # e.g. a crash in the server log
    artifacts: Sequence[str] = ()  # files written beside the compiled ones (server.log)
    config: Mapping[str, Any] = field(default_factory=dict)  # after the measurement's entries
    cpu_estimate: CpuEstimate | None = None


class CompiledRun(NamedTuple):
    """The record plus the rows of its two artifacts (see :mod:`.artifacts`)."""

    record: RunRecord
    requests: list[RequestRow]
    timeline: list[TimelineSample]

    def write_artifacts(self, staging_dir: Path) -> list[str]:
        """For ``Store.put(run.record, write_artifacts=run.write_artifacts)``."""
        return write_run_artifacts(staging_dir, self.requests, self.timeline)
