"""Sweeps: a grid of run configurations, resumable, failure-tolerant, stopping the batch
growth once the server can no longer reach it (the paper's 85% rule)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulelens.errors import InputError
from joulelens.meters import IdlePower
from joulelens.records import RunRecord, RunStatus
from joulelens.runner.config import RunConfig
from joulelens.runner.execute import RunObserver, run_one
from joulelens.store import Store

UNREACHABLE_BATCH_MARK = "low batch utilization"  # the reason the 85% rule leaves


class SweepGrid(BaseModel):
    """Lists to cross; everything in ``base`` applies to every configuration."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    batch_sizes: list[int] = Field(min_length=1)
    num_gpus: list[int] | None = None  # default: base's num_gpus, else 1
    precisions: list[str | None] = Field(default_factory=lambda: list[str | None]([None]))
    base: dict[str, Any] = Field(default_factory=dict)
    stop_at_unreachable_batch: bool = True

    @classmethod
    def from_yaml(cls, path: Path) -> SweepGrid:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read sweep file ({exc})", source=path) from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(
                err["msg"], source=path, field=".".join(str(p) for p in err["loc"])
            ) from exc

    def groups(self) -> Iterator[list[RunConfig]]:
        """One list per (model, task, GPU count, precision), batch sizes ascending."""
        for model, task, gpus, precision in itertools.product(
            self.models,
            self.tasks,
            self.num_gpus or [self.base.get("num_gpus", 1)],
            self.precisions,
        ):
            group = []
            for batch in sorted(set(self.batch_sizes)):
                fields = {**self.base, "model": model, "task": task, "num_gpus": gpus}
                if precision:
                    key = (
                        "quantization"
                        if precision.lower().startswith(("fp8", "int", "awq"))
                        else "dtype"
                    )
                    fields[key] = precision
                batch_key = "batch_size" if fields.get("engine") == "diffusers" else "max_num_seqs"
                fields[batch_key] = batch
                try:
                    group.append(RunConfig.model_validate(fields))
                except ValidationError as exc:
                    err = exc.errors()[0]
                    raise InputError(
                        err["msg"], field=".".join(str(p) for p in err["loc"])
                    ) from exc
            yield group


@dataclass
class SweepOutcome:
    completed: list[RunRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # run ids already in the store
    failed: list[RunRecord] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # beyond an unreachable batch


class SweepEvents:
    """Hooks for the CLI; a sweep never depends on them."""

    def starting(self, config: RunConfig, index: int, total: int) -> RunObserver | None:
        return None

    def finished(self, record: RunRecord) -> None:
        pass

    def skipped(self, config: RunConfig, reason: str) -> None:
        pass


def run_sweep(
    grid: SweepGrid,
    store: Store,
    *,
    events: SweepEvents | None = None,
    idle: IdlePower | None = None,
    measure: Callable[..., RunRecord] = run_one,
) -> SweepOutcome:
    """Measure every configuration not already completed in the store.

    A failed configuration is recorded with its reason and the sweep goes on; Ctrl-C
    records the current run as interrupted and propagates (finished runs stay).
    """
    ev = events or SweepEvents()
    outcome = SweepOutcome()
    groups = list(grid.groups())
    total = sum(len(g) for g in groups)
    index = 0
    for group in groups:
        reached = True
        for config in group:
            index += 1
            run_id = config.run_id()
            if not reached:
                outcome.not_run.append(run_id)
                ev.skipped(config, "a smaller batch could not be reached (85% rule)")
                continue
            stored = store.get(run_id) if store.has(run_id) else None
            if stored is not None and stored.status is RunStatus.COMPLETED:
                outcome.skipped.append(run_id)
                ev.skipped(config, "already in the store")
                reached = _reached(stored)
                continue
            try:
                record = measure(
                    config, store, observer=ev.starting(config, index, total), idle=idle
                )
            except Exception:  # run_one recorded it; an engine bug must not stop the sweep
                if store.has(run_id):
                    failed = store.get(run_id)
                    outcome.failed.append(failed)
                    ev.finished(failed)
                continue
            outcome.completed.append(record)
            ev.finished(record)
            if grid.stop_at_unreachable_batch:
                reached = _reached(record)
        _cascade(store, [c.run_id() for c in group])
    return outcome


def _reached(record: RunRecord) -> bool:
    return not any(UNREACHABLE_BATCH_MARK in r for r in record.unstable_reasons)


def _cascade(store: Store, run_ids: Sequence[str]) -> None:
    """Re-judge the group together: an unstable batch makes every larger one unstable."""
    from joulelens.measure import apply_cascade

    records = [store.get(i) for i in run_ids if store.has(i)]
    done = [r for r in records if r.status is RunStatus.COMPLETED]
    for before, after in zip(done, apply_cascade(done), strict=True):
        if after != before:
            store.update(after)
