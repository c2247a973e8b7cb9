"""A sweep on a Ray cluster: one task per configuration, placed by its GPUs and GPU model.

The driver (this process) keeps the store; nodes measure with their own meters and send
the finished run directory back, which the driver writes atomically. The rules of a local
sweep hold (:class:`~joulelens.runner.sweep.SweepPlan`): resumable, failures recorded with
their reason, the 85% rule and its cascade, Ctrl-C keeps every finished run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from joulelens.records import RunRecord
from joulelens.runner.protocol import RunObserver
from joulelens.runner.provenance import failed_record
from joulelens.runner.ray_cluster import (
    Node,
    alive_nodes,
    as_cluster_error,
    connected,
    demand,
    task_options,
    why_unplaceable,
)
from joulelens.runner.ray_node import Monitor, NodeResult, ray_task, store_inputs, unpack
from joulelens.runner.sweep import Entry, State, SweepEvents, SweepGrid, SweepOutcome, SweepPlan
from joulelens.store import Store

POLL_S = 0.5  # how long one wait for results lasts
NODES_EVERY_S = 2.0  # how often the driver re-reads which nodes are alive
CANCEL_GRACE_S = 15.0  # after Ctrl-C, how long cancelled runs get to stop and report
INTERRUPTED = "interrupted (Ctrl-C) before the run finished"  # as a local run says it


@dataclass
class _Running:
    entry: Entry
    node_id: str | None = None  # one-per-node placement, or where the task said it started
    started_at: Any = None
    observer: RunObserver | None = None


def run_sweep_on_ray(
    grid: SweepGrid,
    store: Store,
    *,
    address: str | None = None,
    one_per_node: bool = False,
    node_wait_s: float = 0.0,
    events: SweepEvents | None = None,
) -> SweepOutcome:
    """Measure every configuration not already completed in the store on the cluster.

    ``one_per_node``: at most one configuration on a node at a time (CPU and DRAM energy
    are per machine). ``node_wait_s``: how long a configuration no alive node can take
    waits for one (an autoscaler adding nodes) before it is recorded as failed.
    """
    with connected(address) as ray:
        return _RaySweep(ray, grid, store, events or SweepEvents(), one_per_node, node_wait_s).run()


class _RaySweep:
    def __init__(
        self,
        ray: Any,
        grid: SweepGrid,
        store: Store,
        events: SweepEvents,
        one_per_node: bool,
        node_wait_s: float,
    ):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray, self.store, self.events = ray, store, events
        self.one_per_node, self.node_wait_s = one_per_node, node_wait_s
        self._affinity = NodeAffinitySchedulingStrategy
        self.nodes: dict[str, Node] = {n.node_id: n for n in alive_nodes(ray)}
        self.known: dict[str, Node] = dict(self.nodes)  # alive or not: names dead nodes
        self._nodes_read = time.monotonic()
        self.events.nodes([n.label for n in self.nodes.values()])
        self.plan = SweepPlan(grid, store, events, commit=self._commit)
        self.task = ray.remote(ray_task)
        here = ray.get_runtime_context().get_node_id()
        self.monitor = (
            ray.remote(Monitor)
            .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, True))
            .remote()
        )
        self.running: dict[Any, _Running] = {}  # object ref -> its run
        self._unplaceable_since: dict[str, float] = {}
        self._where: dict[str, dict[str, Any]] = {}  # run id -> the node it started on
        self._node_of: dict[str, str] = {}  # run id -> that node's label

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> SweepOutcome:
        try:
            while self.plan.unfinished():
                if self._read_nodes():
                    self._drop_unplaceable()
                self._submit()
                self._collect()
        except KeyboardInterrupt:
            self._interrupt()
            raise
        return self.plan.outcome

    def _read_nodes(self, force: bool = False) -> bool:
        """Re-read which nodes are alive (every few seconds, or now); whether it did."""
        if not force and time.monotonic() - self._nodes_read < NODES_EVERY_S:
            return False
        self.nodes = {n.node_id: n for n in alive_nodes(self.ray)}
        self.known.update(self.nodes)
        self._nodes_read = time.monotonic()
        return True

    def _submit(self) -> None:
        busy = {r.node_id for r in self.running.values()}
        for entry in self.plan.pending():
            reason = why_unplaceable(entry.config, list(self.nodes.values()))
            if reason is not None:
                self._unplaceable(entry, reason)
                continue
            self._unplaceable_since.pop(entry.run_id, None)
            options = task_options(entry.config)
            node_id = None
            if self.one_per_node:
                free = [
                    n
                    for n in self.nodes.values()
                    if n.node_id not in busy and n.offers(demand(entry.config))
                ]
                if not free:
                    continue
                node_id = free[0].node_id
                busy.add(node_id)
                options["scheduling_strategy"] = self._affinity(node_id, soft=False)
            inputs = store_inputs(entry.config, self.store)
            ref = self.task.options(**options).remote(
                entry.config.model_dump_json(), inputs, self.monitor
            )
            self.plan.start(entry)
            self.running[ref] = _Running(entry, node_id=node_id)

    def _collect(self) -> None:
        if not self.running:
            time.sleep(POLL_S)
            return
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
        self._drain_monitor()
        if ready:
            ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
        for ref in ready:
            run = self.running.pop(ref, None)
            if run is None:  # given up meanwhile (no node can take it any more)
                continue
            record, payload = self._result(ref, run)
            for obsolete in self.plan.resolve(run.entry, record, payload):
                self._cancel(obsolete)

    # -- results -----------------------------------------------------------------------
    def _result(self, ref: Any, run: _Running) -> tuple[RunRecord, Any]:
        entry = run.entry
        try:
            result: NodeResult = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            error = as_cluster_error(exc, self._label(run.node_id))
            return self._failed(run, str(error)), None
        if result.node.get("node_id"):
            run.node_id = result.node["node_id"]
        try:
            record = RunRecord.model_validate_json(result.record_json)
        except ValidationError as exc:
            from joulelens.errors import from_validation

            reason = (
                f"the record from node {self._label(run.node_id)} does not validate here "
                f"({from_validation(exc)}); run the same joulelens version on every node"
            )
            return self._failed(run, reason), None
        if record.run_id != entry.run_id:
            return self._failed(run, f"node returned run {record.run_id}, not this one"), None
        return record, result.files

    def _failed(self, run: _Running, reason: str) -> RunRecord:
        record = failed_record(run.entry.config, reason, run.started_at)
        where = self._where.get(run.entry.run_id, {})
        if where.get("hostname"):
            record = record.model_copy(
                update={
                    "provenance": record.provenance.model_copy(update={"host": where["hostname"]})
                }
            )
        return record

    def _commit(self, entry: Entry) -> None:
        assert entry.record is not None
        files = entry.payload or {}
        self.store.put(entry.record, write_artifacts=unpack(files) if files else None)
        node = self._node_of.get(entry.run_id)
        if node:
            self.plan.outcome.nodes[entry.run_id] = node

    # -- what can't run (any more) -------------------------------------------------------
    def _unplaceable(self, entry: Entry, reason: str) -> None:
        since = self._unplaceable_since.setdefault(entry.run_id, time.monotonic())
        if time.monotonic() - since < self.node_wait_s:
            return
        self.plan.start(entry)
        self.plan.resolve(
            entry, failed_record(entry.config, f"cannot run on this cluster: {reason}")
        )

    def _drop_unplaceable(self) -> None:
        """Runs still queued in Ray that no alive node can take any more (a node died)."""
        for ref, run in list(self.running.items()):
            if run.entry.run_id in self._where:
                continue  # started: if its node died, Ray reports that itself
            reason = why_unplaceable(run.entry.config, list(self.nodes.values()))
            if reason is None:
                self._unplaceable_since.pop(run.entry.run_id, None)
                continue
            since = self._unplaceable_since.setdefault(run.entry.run_id, time.monotonic())
            if time.monotonic() - since < self.node_wait_s:
                continue
            self.ray.cancel(ref)
            del self.running[ref]
            record = self._failed(run, f"cannot run on this cluster any more: {reason}")
            for obsolete in self.plan.resolve(run.entry, record):
                self._cancel(obsolete)

    def _cancel(self, entry: Entry) -> None:
        """Stop a run the 85% rule made obsolete; one-per-node keeps its node until it ends."""
        for ref, run in list(self.running.items()):
            if run.entry is entry:
                self.ray.cancel(ref)
                if not self.one_per_node:
                    del self.running[ref]

    # -- progress ------------------------------------------------------------------------
    def _drain_monitor(self) -> None:
        try:
            events = self.ray.get(self.monitor.drain.remote(), timeout=10)
        except self.ray.exceptions.RayError:
            return  # the display misses an update; the measurement does not depend on it
        by_id = {r.entry.run_id: r for r in self.running.values()}
        for run_id, event, value in events:
            run = by_id.get(run_id)
            if run is None or run.entry.state is not State.RUNNING:
                continue
            if event == "started":
                self._started(run, value)
            elif run.observer is not None and event == "phase":
                run.observer.phase(str(value))
            elif run.observer is not None and event == "progress":
                run.observer.progress(*value)

    def _started(self, run: _Running, where: dict[str, Any]) -> None:
        from datetime import UTC, datetime

        entry = run.entry
        self._where[entry.run_id] = where
        run.node_id = where.get("node_id") or run.node_id
        run.started_at = datetime.now(UTC)
        label = self._label(run.node_id)
        self._node_of[entry.run_id] = label
        run.observer = self.events.starting(entry.config, entry.index, self.plan.total, label)

    def _label(self, node_id: str | None) -> str:
        if node_id is None:
            return "?"
        if node_id not in self.known:
            self._read_nodes(force=True)
        node = self.known.get(node_id)
        return node.label if node else node_id[:8]

    # -- Ctrl-C --------------------------------------------------------------------------
    def _interrupt(self) -> None:
        """Cancel everything outstanding; keep what finished; record what was cut short."""
        try:
            self._drain_monitor()
            for ref in self.running:
                self.ray.cancel(ref)  # not forced: the task gets Ctrl-C and stops its engine
            refs = list(self.running)
            ready = set()
            if refs:
                ready = set(self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)[0])
            for ref, run in list(self.running.items()):
                started = run.entry.run_id in self._where
                record, payload = None, None
                if ref in ready:
                    try:
                        result: NodeResult = self.ray.get(ref)
                        record = RunRecord.model_validate_json(result.record_json)
                        payload = result.files  # finished (or failed on its own) in time
                    except (self.ray.exceptions.RayError, ValidationError):
                        record = None
                if record is None and started:
                    record = self._failed(run, INTERRUPTED)
                if record is not None:  # never started: nothing to record
                    self.plan.resolve(run.entry, record, payload)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting, still keep what is finished
        finally:
            self.plan.flush()
