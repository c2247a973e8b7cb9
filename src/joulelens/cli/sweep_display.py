"""One progress display for a whole sweep: the grid's totals and a row per node (or "local").

Each event is also printed as a line, so a log of a sweep (or a terminal that is not one)
still says what ran where.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from joulelens.cli.common import console
from joulelens.records import RunRecord, RunStatus
from joulelens.runner.sweep import NOT_REACHED, SweepEvents

LOCAL = "local"


def config_label(config: Any) -> str:
    gpu = f" [{config.gpu_model}]" if config.gpu_model else ""
    gpus = f" {config.num_gpus} GPU" if config.num_gpus else ""
    return f"{config.model} {config.task} B={config.batch}{gpus}{gpu}"


class _NodeRow:
    """A node's row: the run it measures now (requests done, tokens/s, power, phase)."""

    def __init__(self, bar: Progress, label: str):
        self.bar, self.label = bar, label
        self.task = bar.add_task(label, total=None, info="idle", phase="")
        self.counts: Counter[str] = Counter()
        self._first: tuple[float, int] | None = None
        self.current = ""

    def begin(self, what: str) -> _NodeRow:
        self.current, self._first = what, None
        self.bar.reset(self.task, total=None, info=what, phase="starting")
        return self

    def end(self, outcome: str) -> None:
        self.counts[outcome] += 1
        done = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
        self.bar.update(self.task, info=f"idle ({done})", phase="")
        self.current = ""

    def phase(self, text: str) -> None:
        self.bar.update(self.task, phase=text)

    def progress(self, done: int, total: int, output_tokens: int, power_w: float | None) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = (now, output_tokens)
        t0, tok0 = self._first
        rate = (output_tokens - tok0) / (now - t0) if now > t0 else 0.0
        power = f"{power_w:.0f} W" if power_w is not None else "— W"
        info = f"{self.current}  {rate:.0f} tok/s  {power}"
        self.bar.update(self.task, completed=done, total=total, info=info)


@dataclass
class _Totals:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    not_run: int = 0
    running: int = 0

    def text(self) -> str:
        return (
            f"{self.running} running · {self.done} done · {self.failed} failed · "
            f"{self.skipped} already stored · {self.not_run} not run (85% rule)"
        )


class SweepDisplay(SweepEvents):
    """Use as a context manager around the sweep; ``per_node()`` summarises afterwards."""

    def __init__(self, total: int):
        self.bar = Progress(
            TextColumn("{task.description}", markup=False),  # labels may hold [brackets]
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TextColumn("[dim]{task.fields[phase]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.totals = _Totals()
        self.overall = self.bar.add_task("sweep", total=total, info=self.totals.text(), phase="")
        self.rows: dict[str, _NodeRow] = {}
        self.where: dict[str, _NodeRow] = {}  # run id -> the row measuring it

    def __enter__(self) -> SweepDisplay:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def per_node(self) -> dict[str, Counter[str]]:
        return {label: row.counts for label, row in self.rows.items() if row.counts}

    # -- events --------------------------------------------------------------------------
    def nodes(self, labels: Sequence[str]) -> None:
        for label in labels:
            self._row(label)
        console.print(escape(f"Ray cluster: {len(labels)} node(s): {'; '.join(labels)}"))

    def starting(self, config: Any, index: int, total: int, node: str | None = None) -> _NodeRow:
        row = self._row(node or LOCAL)
        self.where[config.run_id()] = row
        self.totals.running += 1
        self._update()
        where = f" on {node}" if node else ""
        console.print(escape(f"started [{index}/{total}] {config_label(config)}{where}"))
        return row.begin(config_label(config))

    def finished(self, record: RunRecord) -> None:
        row = self.where.pop(record.run_id, None)
        failed = record.status is RunStatus.FAILED
        if row is not None:
            self.totals.running -= 1
            row.end("failed" if failed else "done")
        if failed:
            self.totals.failed += 1
            console.print(f"[red]failed[/] {escape(f'{record.run_id}: {record.failure_reason}')}")
        else:
            self.totals.done += 1
        self._update(advance=1)

    def skipped(self, config: Any, reason: str) -> None:
        row = self.where.pop(config.run_id(), None)
        if row is not None:  # measured meanwhile, dropped by the 85% rule
            self.totals.running -= 1
            row.end("dropped")
        if reason == NOT_REACHED:
            self.totals.not_run += 1
        else:
            self.totals.skipped += 1
        console.print(escape(f"skip {config_label(config)}: {reason}"))
        self._update(advance=1)

    def _row(self, label: str) -> _NodeRow:
        if label not in self.rows:
            self.rows[label] = _NodeRow(self.bar, label)
        return self.rows[label]

    def _update(self, advance: int = 0) -> None:
        self.bar.update(self.overall, advance=advance, info=self.totals.text())
