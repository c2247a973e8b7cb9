"""The engine-run protocol: what the runner asks of an engine adapter, and what it gets back.

The runner owns this interface (the consumer owns it) and the adapters implement it
(``runner.served``, ``runner.inprocess``). For one run the orchestrator (``runner.execute``):

1. opens the adapter for the configuration (``runner.registry``), handing it an
   :class:`EngineSetup`; the adapter starts or loads its engine;
2. asks it which processes and GPUs do the inference, to open the right meters;
3. calls :meth:`EngineRun.drive` with a :class:`RunContext` while the meters are sampled;
   it returns the events the compile step needs (:data:`EngineOutput`);
4. asks it for its :class:`Contribution` to the record (provenance, fields, notes);
5. closes it, then compiles the record once.

Adapters never compile and never touch the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from joulelens.core.events import BatchTrace, RequestTrace
from joulelens.measure.server import ServerMetrics
from joulelens.records import Provenance
from joulelens.runner.config import RunConfig
from joulelens.store import Store

SERVER_LOG = "server.log"  # a started server's log, kept with the run (the store redacts it)


class RunObserver(Protocol):
    """Progress display hooks; observers never sit inside the measurement."""

    def phase(self, text: str) -> None: ...

    def progress(
        self, done: int, total: int, output_tokens: int, power_w: float | None
    ) -> None: ...


@dataclass(frozen=True)
class EngineSetup:
    """What an adapter gets besides the configuration when it opens."""

    store: Store  # read only (e.g. output lengths for random-weight models)
    log_dir: Path  # where a server writes :data:`SERVER_LOG`; copied into the run
    server_env: Mapping[str, str] | None = None  # a server's environment (its GPUs, by UUID)

    @property
    def server_log(self) -> Path:
        return self.log_dir / SERVER_LOG


@dataclass(frozen=True)
class RunContext:
    """What :meth:`EngineRun.drive` gets: the configuration and the progress display."""

    config: RunConfig
    observer: RunObserver
    power_w: Callable[[], float | None]  # latest summed device power, for the display only

    def progress(self, done: int, total: int, output_tokens: int) -> None:
        self.observer.progress(done, total, output_tokens, self.power_w())


@dataclass(frozen=True)
class LlmOutput:
    """An LLM run's events: one trace per request, and the server's gauges if scraped."""

    traces: Sequence[RequestTrace]
    server_metrics: ServerMetrics | None = None


@dataclass(frozen=True)
class DiffusionOutput:
    """A diffusion run's events: one trace per batch (warm-up ones included)."""

    batches: Sequence[BatchTrace]


EngineOutput = LlmOutput | DiffusionOutput


@dataclass(frozen=True)
class Contribution:
    """What an engine adds to the record beside the measurement.

    ``fields`` are run record fields the engine knows (``model_id``, ``weight_precision``,
    ``tensor_parallel`` ...; ``None`` values are left out); ``config`` entries go into
    ``record.config`` (e.g. ``"engine"``: the engine's own description).
    """

    provenance: Provenance
    fields: Mapping[str, Any] = field(default_factory=dict)
    warnings: Sequence[str] = ()
    config: Mapping[str, Any] = field(default_factory=dict)


class EngineRun(Protocol):
    """One open engine for one run (see :data:`EngineFactory`)."""

    def inference_pids(self) -> tuple[list[int], str | None]:
        """The processes doing the inference and, when none can be found, why."""
        ...

    def placed_gpus(self) -> list[tuple[int, str]]:
        """(CUDA index, UUID) of the GPUs the engine placed the model on; servers: none
        (their GPUs are chosen before they start)."""
        ...

    def drive(self, ctx: RunContext) -> EngineOutput:
        """Run the workload; the meters are sampled meanwhile."""
        ...

    def contribution(self) -> Contribution:
        """Called after :meth:`drive`, while the engine is still open."""
        ...


# Opens the engine of one run (a context manager: leaving it stops or unloads the engine).
EngineFactory = Callable[[RunConfig, EngineSetup], AbstractContextManager[EngineRun]]
