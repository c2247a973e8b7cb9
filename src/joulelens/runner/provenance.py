"""Where a run's numbers come from, and the record of a run that failed before compiling."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime

from joulelens import __version__
from joulelens.errors import JoulelensError
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Provenance,
    RunKind,
    RunRecord,
    RunStatus,
    SourceKind,
)
from joulelens.runner.config import RunConfig
from joulelens.tasks import get_task


def provenance_for(engine: str, version: str | None, random_weights: bool = False) -> Provenance:
    return Provenance(
        source=SourceKind.JOULELENS,
        engine=engine,
        engine_version=version,
        joulelens_version=__version__,
        host=platform.node() or None,
        random_weights=random_weights,
    )


def failed_record(
    config: RunConfig,
    reason: str,
    started_at: datetime | None = None,
    artifacts: Sequence[str] = (),
) -> RunRecord:
    """The record of a configuration that failed (or never got to run) for ``reason``;
    ``artifacts``: the files kept with it (a server's log)."""
    try:
        kind = get_task(config.task).kind
    except JoulelensError:
        kind = RunKind.DIFFUSION if config.is_diffusion else RunKind.LLM
    return RunRecord(
        run_id=config.run_id(),
        kind=kind,
        task=config.task,
        status=RunStatus.FAILED,
        failure_reason=reason,
        model_id=config.model,
        num_gpus=config.num_gpus,
        gpu_model=config.gpu_model,
        max_num_seqs=None if config.is_diffusion else config.max_num_seqs,
        batch_size=config.batch_size if config.is_diffusion else None,
        num_requests=None if config.is_diffusion else config.requests,
        arrival=config.arrival,
        energy_boundary=EnergyBoundary.GPU if config.gpus else EnergyBoundary.CPU,
        energy_method=EnergyMethod.COUNTER if config.gpus else EnergyMethod.ESTIMATED,
        provenance=provenance_for(config.engine, None),
        started_at=started_at,  # None: it never started
        finished_at=datetime.now(UTC),
        config={"run": config.model_dump(mode="json")},
        artifacts=list(artifacts),
    )
