"""Sweeps: a grid of run configurations, resumable, failure-tolerant, stopping the batch
growth once the server can no longer reach it (the paper's 85% rule).

:class:`SweepPlan` holds those rules for any executor: the local one below measures one
configuration at a time; the Ray one (``runner.ray_sweep``) many at once, on many nodes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulelens.core.idle import IdlePower
from joulelens.errors import InputError
from joulelens.measure import apply_cascade
from joulelens.records import RunRecord, RunStatus
from joulelens.runner.config import RunConfig
from joulelens.runner.execute import run_one
from joulelens.runner.protocol import RunObserver
from joulelens.runner.provenance import failed_record
from joulelens.store import Store

UNREACHABLE_BATCH_MARK = "low batch utilization"  # the reason the 85% rule leaves
NOT_REACHED = "a smaller batch could not be reached (85% rule)"
ALREADY_STORED = "already in the store"


class SweepGrid(BaseModel):
    """Lists to cross; everything in ``base`` applies to every configuration."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    batch_sizes: list[int] = Field(min_length=1)
    num_gpus: list[int] | None = None  # default: base's num_gpus, else 1
    precisions: list[str | None] = Field(default_factory=lambda: list[str | None]([None]))
    # GPU models to measure on (a cluster places each on nodes of that model); default: base's.
    gpu_models: list[str] | None = None
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
            from joulelens.errors import from_validation

            raise from_validation(exc, path) from exc

    def groups(self) -> Iterator[list[RunConfig]]:
        """One list per (model, task, GPU model, GPU count, precision), batch sizes ascending."""
        gpu_models: list[str | None] = [*self.gpu_models] if self.gpu_models else []
        gpu_models = gpu_models or [self.base.get("gpu_model")]
        for model, task, gpu_model, gpus, precision in itertools.product(
            self.models,
            self.tasks,
            gpu_models,
            self.num_gpus or [self.base.get("num_gpus", 1)],
            self.precisions,
        ):
            group = []
            for batch in sorted(set(self.batch_sizes)):
                fields = {**self.base, "model": model, "task": task, "num_gpus": gpus}
                if gpu_model:
                    fields["gpu_model"] = gpu_model
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
                    from joulelens.errors import from_validation

                    raise from_validation(exc) from exc
            yield group


@dataclass
class SweepOutcome:
    completed: list[RunRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # run ids already in the store
    failed: list[RunRecord] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # beyond an unreachable batch
    nodes: dict[str, str] = field(default_factory=dict)  # run id -> cluster node that ran it


class SweepEvents:
    """Hooks for the CLI; a sweep never depends on them."""

    def starting(
        self, config: RunConfig, index: int, total: int, node: str | None = None
    ) -> RunObserver | None:
        return None

    def finished(self, record: RunRecord) -> None:
        pass

    def skipped(self, config: RunConfig, reason: str) -> None:
        pass

    def nodes(self, labels: Sequence[str]) -> None:
        """The cluster's nodes, before anything starts (cluster executors only)."""


class State(Enum):
    PENDING = "pending"  # not started
    RUNNING = "running"  # handed to an executor
    HELD = "held"  # result in, waiting for the smaller batches of its group
    DONE = "done"  # stored (measured now, failed, or already there before the sweep)
    NOT_RUN = "not run"  # beyond a batch the server could not reach


@dataclass(eq=False)
class Entry:
    config: RunConfig
    index: int  # 1-based position in the grid
    group: int
    state: State = State.PENDING
    record: RunRecord | None = None
    payload: Any = None  # what the executor needs to store the held result

    @property
    def run_id(self) -> str:
        return self.config.run_id()


Commit = Callable[[Entry], None]


class SweepPlan:
    """The grid's configurations and the rules that decide what runs and what is final.

    Results may arrive in any order; a group's results become final (stored, reported)
    in batch order, so a larger batch measured while a smaller one was still running is
    dropped when the smaller one turns out unreachable: the store ends as a one-at-a-time
    sweep would leave it.
    """

    def __init__(self, grid: SweepGrid, store: Store, events: SweepEvents, commit: Commit):
        self.grid, self.store, self.events, self._commit = grid, store, events, commit
        self.outcome = SweepOutcome()
        self.groups: list[list[Entry]] = []
        for g, configs in enumerate(grid.groups()):
            self.groups.append(
                [Entry(c, sum(map(len, self.groups)) + i + 1, g) for i, c in enumerate(configs)]
            )
        self.total = sum(map(len, self.groups))
        self._cascaded: set[int] = set()
        for group in self.groups:
            for entry in group:
                stored = self.store.get(entry.run_id) if self.store.has(entry.run_id) else None
                if stored is not None and stored.status is RunStatus.COMPLETED:
                    entry.state, entry.record = State.DONE, stored
                    self.outcome.skipped.append(entry.run_id)
                    events.skipped(entry.config, ALREADY_STORED)
            self._advance(group)

    def entries(self) -> Iterator[Entry]:
        return (e for group in self.groups for e in group)

    def pending(self) -> list[Entry]:
        return [e for e in self.entries() if e.state is State.PENDING]

    def unfinished(self) -> bool:
        return any(e.state in (State.PENDING, State.RUNNING, State.HELD) for e in self.entries())

    def start(self, entry: Entry) -> None:
        assert entry.state is State.PENDING, entry.state
        entry.state = State.RUNNING

    def resolve(self, entry: Entry, record: RunRecord, payload: Any = None) -> list[Entry]:
        """A configuration's result is in; returns the running entries it made obsolete."""
        if entry.state is not State.RUNNING:  # dropped meanwhile (85% rule)
            return []
        entry.state, entry.record, entry.payload = State.HELD, record, payload
        return self._advance(self.groups[entry.group])

    def flush(self) -> None:
        """Store every held result now, in order or not (Ctrl-C keeps finished runs)."""
        for entry in self.entries():
            if entry.state is State.HELD:
                self._finish(entry)

    def _advance(self, group: list[Entry]) -> list[Entry]:
        dropped: list[Entry] = []
        reached, in_order = True, True
        for entry in group:
            if not reached and entry.state is not State.DONE:
                if entry.state is State.RUNNING:
                    dropped.append(entry)
                if entry.state is not State.NOT_RUN:
                    entry.state, entry.payload = State.NOT_RUN, None
                    self.outcome.not_run.append(entry.run_id)
                    self.events.skipped(entry.config, NOT_REACHED)
                continue
            if entry.state is State.HELD and in_order:
                self._finish(entry)
            if entry.state is not State.DONE:
                in_order = False
            elif self.grid.stop_at_unreachable_batch and entry.record is not None:
                reached = reached and _reached(entry.record)
        if all(e.state in (State.DONE, State.NOT_RUN) for e in group):
            g = group[0].group
            if g not in self._cascaded:
                self._cascaded.add(g)
                _cascade(self.store, [e.run_id for e in group])
        return dropped

    def _finish(self, entry: Entry) -> None:
        assert entry.record is not None
        self._commit(entry)
        entry.state, entry.payload = State.DONE, None
        if entry.record.status is RunStatus.COMPLETED:
            self.outcome.completed.append(entry.record)
        else:
            self.outcome.failed.append(entry.record)
        self.events.finished(entry.record)


def run_sweep(
    grid: SweepGrid,
    store: Store,
    *,
    events: SweepEvents | None = None,
    idle: IdlePower | None = None,
    measure: Callable[..., RunRecord] = run_one,
) -> SweepOutcome:
    """Measure every configuration not already completed in the store, one at a time.

    A failed configuration is recorded with its reason and the sweep goes on; Ctrl-C
    records the current run as interrupted and propagates (finished runs stay).
    """
    ev = events or SweepEvents()
    plan = SweepPlan(grid, store, ev, commit=lambda entry: None)  # run_one stores each run
    for entry in list(plan.entries()):
        if entry.state is not State.PENDING:  # already stored, or beyond an unreachable batch
            continue
        plan.start(entry)
        config = entry.config
        try:
            record = measure(
                config, store, observer=ev.starting(config, entry.index, plan.total), idle=idle
            )
        except Exception as exc:  # run_one recorded it; an engine bug must not stop the sweep
            if not store.has(entry.run_id):
                store.put(failed_record(config, f"{type(exc).__name__}: {exc}"))
            record = store.get(entry.run_id)
        plan.resolve(entry, record)
    return plan.outcome


def _reached(record: RunRecord) -> bool:
    return not any(UNREACHABLE_BATCH_MARK in r for r in record.unstable_reasons)


def _cascade(store: Store, run_ids: Sequence[str]) -> None:
    """Re-judge the group together: an unstable batch makes every larger one unstable."""
    records = [store.get(i) for i in run_ids if store.has(i)]
    done = [r for r in records if r.status is RunStatus.COMPLETED]
    for before, after in zip(done, apply_cascade(done), strict=True):
        if after != before:
            store.update(after)
