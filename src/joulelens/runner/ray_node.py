"""What runs on a cluster node: one configuration measured by ``run_one`` into a scratch
store, and the finished run directory (record and artifacts) packed for the driver.

The node needs joulelens (with the engines the run uses) but no access to the driver's
store: what the run reads from it (output lengths for ``arch:`` models) travels with it.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joulelens.errors import InputError
from joulelens.records import RunRecord
from joulelens.runner.config import RunConfig
from joulelens.runner.execute import run_one
from joulelens.store import Store
from joulelens.store.store import RUN_FILE

Report = Callable[[str, str, Any], None]  # (run id, event, value)
PROGRESS_PERIOD_S = 1.0  # progress reports from a node, at most this often


@dataclass
class NodeResult:
    """A finished run as it travels back to the driver."""

    record_json: str
    files: dict[str, bytes] = field(default_factory=dict)  # artifacts, by relative path
    node: dict[str, Any] = field(default_factory=dict)  # where it ran (see :func:`where`)


def store_inputs(config: RunConfig, store: Store) -> list[str]:
    """Records of the driver's store the run reads on the node (as JSON), usually none."""
    if config.engine != "transformers":
        return []
    from joulelens.engines.models import parse_model

    if not parse_model(config.model).random_weights:
        return []
    from joulelens.store import RunFilter

    return [
        r.model_dump_json()
        for r in store.query(RunFilter(task=config.task))
        if r.output_length_distribution is not None
    ]


def measure_here(
    config_json: str, inputs: Sequence[str], report: Report | None = None
) -> NodeResult:
    """Measure one configuration on this machine; the result, whether it completed or failed.

    ``run_one`` records a failure with its reason, so a failed run comes back like any
    other; only Ctrl-C (a cancelled task) propagates.
    """
    config = RunConfig.model_validate_json(config_json)
    observer = _Reporter(config.run_id(), report) if report else None
    with tempfile.TemporaryDirectory(prefix="joulelens-node-") as tmp:
        scratch = Store(Path(tmp) / "store")
        if inputs:
            scratch.put_many([RunRecord.model_validate_json(text) for text in inputs])
        try:
            run_one(config, scratch, observer=observer)
        except Exception:
            if not scratch.has(config.run_id()):
                raise
        return pack(scratch.run_dir(config.run_id()))


def pack(run_dir: Path) -> NodeResult:
    files = {
        path.relative_to(run_dir).as_posix(): path.read_bytes()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name != RUN_FILE
    }
    return NodeResult((run_dir / RUN_FILE).read_text(), files)


def unpack(files: dict[str, bytes]) -> Callable[[Path], list[str]]:
    """An artifact writer for ``Store.put`` that writes the shipped files into staging."""

    def write(staging: Path) -> list[str]:
        for name, data in files.items():
            rel = Path(name)
            if rel.is_absolute() or ".." in rel.parts or name == RUN_FILE:
                raise InputError(f"a node sent an artifact outside its run: {name!r}")
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return sorted(files)

    return write


def where() -> dict[str, Any]:
    """This node, as the driver's display names it."""
    import ray

    ctx = ray.get_runtime_context()
    return {
        "node_id": ctx.get_node_id(),
        "ip": ray.util.get_node_ip_address(),
        "hostname": platform.node(),
        "gpus": [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def ray_task(config_json: str, inputs: Sequence[str], monitor: Any) -> NodeResult:
    """The body of the Ray task (``ray.remote(ray_task)``): report where, then measure."""
    run_id = RunConfig.model_validate_json(config_json).run_id()

    def report(rid: str, event: str, value: Any) -> None:
        monitor.report.remote(rid, event, value)  # fire and forget: progress is optional

    node = where()
    report(run_id, "started", node)
    result = measure_here(config_json, inputs, report)
    result.node = node
    return result


class Monitor:
    """A small actor the tasks report to (started where, phase, progress); the driver drains it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    def report(self, run_id: str, event: str, value: Any) -> None:
        self.events.append((run_id, event, value))

    def drain(self) -> list[tuple[str, str, Any]]:
        out, self.events = self.events, []
        return out


class _Reporter:
    """A RunObserver that forwards to the monitor, progress at most once a second."""

    def __init__(self, run_id: str, report: Report):
        self.run_id, self.report = run_id, report
        self._last = 0.0

    def phase(self, text: str) -> None:
        self.report(self.run_id, "phase", text)

    def progress(self, done: int, total: int, output_tokens: int, power_w: float | None) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_PERIOD_S or done == total:
            self._last = now
            self.report(self.run_id, "progress", (done, total, output_tokens, power_w))
