"""Measure one configuration end to end and write it to the store.

engine (server or in-process) -> request events; meters -> readings; measurement compiles
them into a run record; the store keeps it. A failure at any step (server crash, Ctrl-C,
bad input) is recorded as a failed run with its reason, then re-raised or returned.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from joulelens import __version__
from joulelens.core.idle import IdlePower
from joulelens.core.series import is_power_series
from joulelens.errors import EngineError, JoulelensError
from joulelens.meters import MeterSet, TimelineSampler, measure_idle_power
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Provenance,
    RunKind,
    RunRecord,
    RunStatus,
    SourceKind,
)
from joulelens.runner.config import RunConfig, parse_arrival
from joulelens.runner.cpu_scope import inference_pids, open_meters, with_cpu_context
from joulelens.runner.gpus import RunGpus
from joulelens.store import Store
from joulelens.tasks import get_task

SERVER_LOG = "server.log"


class RunObserver(Protocol):
    """Progress display hooks; observers never sit inside the measurement."""

    def phase(self, text: str) -> None: ...

    def progress(
        self, done: int, total: int, output_tokens: int, power_w: float | None
    ) -> None: ...


class _Silent:
    def phase(self, text: str) -> None:
        pass

    def progress(self, done: int, total: int, output_tokens: int, power_w: float | None) -> None:
        pass


@dataclass
class _Context:
    config: RunConfig
    meters: MeterSet
    sampler: TimelineSampler
    observer: RunObserver

    def power_w(self) -> float | None:
        """Latest summed power over the sampled devices (for the progress display only)."""
        timeline = self.sampler.timeline
        total, seen = 0.0, False
        for name in timeline.series_names:
            if is_power_series(name):
                _, values = timeline.series(name)
                if len(values):
                    total += values[-1]
                    seen = True
        return total if seen else None


def run_one(
    config: RunConfig,
    store: Store,
    *,
    observer: RunObserver | None = None,
    idle: IdlePower | None = None,
) -> RunRecord:
    """Measure ``config`` and store the record; on failure store a failed record and raise.

    ``idle`` reuses an idle baseline measured earlier (a sweep measures it once).
    """
    obs = observer or _Silent()
    started_at = datetime.now(UTC)
    log_dir = Path(tempfile.mkdtemp(prefix="joulelens-run-"))
    try:
        record, writer = _measure(config, store, obs, idle, log_dir, started_at)
        store.put(record, write_artifacts=writer)
        return record
    except KeyboardInterrupt:
        failed = failed_record(config, "interrupted (Ctrl-C) before the run finished", started_at)
        store.put(_with_logs(failed, log_dir), write_artifacts=_copy_logs(log_dir))
        raise
    except Exception as exc:
        reason = str(exc) if isinstance(exc, JoulelensError) else f"{type(exc).__name__}: {exc}"
        failed = failed_record(config, reason, started_at)
        store.put(_with_logs(failed, log_dir), write_artifacts=_copy_logs(log_dir))
        raise
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def _measure(
    config: RunConfig,
    store: Store,
    obs: RunObserver,
    idle: IdlePower | None,
    log_dir: Path,
    started_at: datetime,
) -> tuple[RunRecord, Callable[[Path], Any]]:
    from joulelens.measure import readings_from_meters

    with ExitStack() as stack:
        gpus = stack.enter_context(RunGpus(config))  # servers: which GPUs to hand over
        obs.phase("starting engine")
        engine = stack.enter_context(_engine(config, store, log_dir, gpus.server_env()))
        meters = stack.enter_context(
            open_meters(
                config,
                *inference_pids(config, engine),
                gpus=gpus.resolve(engine) if config.gpus else False,
                gpu_backend=gpus.backend,
            )
        )
        if idle is None:
            obs.phase(f"measuring idle power ({config.idle_baseline_s:g} s)")
            idle = measure_idle_power(
                meters, config.idle_baseline_s, enabled=config.idle_baseline_s > 0
            )
        sampler = TimelineSampler(meters, period_s=config.sample_period_s)
        ctx = _Context(config, meters, sampler, obs)
        obs.phase("measuring")
        sampler.start()
        try:
            events, server_metrics = engine.drive(ctx)
        finally:
            timeline = sampler.stop()
        notes = [*gpus.notes, *meters.notes]
        readings = readings_from_meters(meters, timeline, notes=dict.fromkeys(notes))
        if gpus.pinned:  # a GPU run reports GPU energy (or null with why), never the CPU's
            readings = dataclasses.replace(readings, pinned_boundary=EnergyBoundary.GPU)
        spec = _spec(config, engine.record_fields(), engine.provenance(), started_at, meters, gpus)
        compiled = engine.compile(events, readings, spec, server_metrics, idle, config)
        compiled = compiled._replace(
            record=with_cpu_context(compiled.record, compiled.timeline, meters)
        )

    def write(staging: Path) -> list[str]:
        names = list(compiled.write_artifacts(staging))
        names += _copy_logs(log_dir)(staging)
        return names

    record = compiled.record.model_copy(
        update={"artifacts": sorted(set(compiled.record.artifacts + _log_names(log_dir)))}
    )
    return _with_log_crashes(record, log_dir), write


def _with_log_crashes(record: RunRecord, log_dir: Path) -> RunRecord:
    """The harness's crash check on the server log: a crash string makes the run unstable."""
    from joulelens.measure.validate import crash_reasons

    path = log_dir / SERVER_LOG
    if not path.is_file():
        return record
    found = crash_reasons(path.read_text(errors="replace"), SERVER_LOG)
    if not found:
        return record
    reasons = [*record.unstable_reasons, *found]
    return record.model_copy(update={"stable": False, "unstable_reasons": reasons})


def _with_logs(record: RunRecord, log_dir: Path) -> RunRecord:
    """A failed run lists the server log it keeps (the store redacts it)."""
    return record.model_copy(update={"artifacts": _log_names(log_dir)})


def _log_names(log_dir: Path) -> list[str]:
    return [SERVER_LOG] if (log_dir / SERVER_LOG).is_file() else []


def _copy_logs(log_dir: Path) -> Callable[[Path], list[str]]:
    def copy(staging: Path) -> list[str]:
        names = _log_names(log_dir)
        for name in names:
            shutil.copyfile(log_dir / name, staging / name)
        return names

    return copy


def _gpu_label(config: RunConfig, meters: MeterSet, used: int) -> str | None:
    if config.gpu_model:
        return config.gpu_model
    models = sorted({str(name) for m in meters if (name := getattr(m, "model", None))})
    if models:
        return _short_gpu_name(models[0])
    in_process_on_cpu = config.engine in ("transformers", "diffusers") and used == 0
    return "cpu" if config.num_gpus == 0 or not config.gpus or in_process_on_cpu else None


def _short_gpu_name(nvml_name: str) -> str:
    """ "NVIDIA H100 80GB HBM3" -> "H100", the names the public data uses."""
    for token in nvml_name.replace("NVIDIA", "").split():
        if any(ch.isdigit() for ch in token) and token[0].isalpha():
            return token
    return nvml_name


def _spec(
    config: RunConfig,
    model_fields: dict[str, Any],
    provenance: Provenance,
    started_at: datetime,
    meters: MeterSet,
    gpus: RunGpus,
) -> Any:
    from joulelens.measure import RunSpec

    task = get_task(config.task)
    fields: dict[str, Any] = {
        k: v for k, v in model_fields.items() if k not in ("model_id",) and v is not None
    }
    used = len(gpus.selection.devices) if gpus.selection is not None else config.num_gpus
    in_process = config.engine in ("transformers", "diffusers")
    fields.update(
        gpu_model=_gpu_label(config, meters, used),
        # In-process engines: the GPUs the model is on, whatever --num-gpus said.
        num_gpus=used if in_process and config.gpus else config.num_gpus,
        arrival=config.arrival,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        config={"run": config.model_dump(mode="json"), "gpus": gpus.fields(meters)},
    )
    if not config.is_diffusion:
        fields.setdefault("tensor_parallel", config.tensor_parallel_size)
        fields.setdefault("data_parallel", config.data_parallel)
        fields.setdefault(
            "expert_parallel",
            (fields["tensor_parallel"] * config.data_parallel) if config.expert_parallel else 1,
        )
    return RunSpec(
        run_id=config.run_id(),
        model_id=model_fields.get("model_id") or config.model,
        task=config.task,
        provenance=provenance,
        kind=task.kind,
        max_num_seqs=None if config.is_diffusion else config.max_num_seqs,
        num_requests=None if config.is_diffusion else config.requests,
        max_output_tokens=None if config.is_diffusion else _output_cap(config, task),
        batch_size=config.batch_size if config.is_diffusion else None,
        fields=fields,
    )


def _output_cap(config: RunConfig, task: Any) -> int | None:
    caps = [c for c in (config.max_tokens, task.output_cap_tokens) if c is not None]
    return min(caps) if caps else None


def failed_record(config: RunConfig, reason: str, started_at: datetime | None = None) -> RunRecord:
    """The record of a configuration that failed (or never got to run) for ``reason``."""
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
    )


def provenance_for(engine: str, version: str | None, random_weights: bool = False) -> Provenance:
    return Provenance(
        source=SourceKind.JOULELENS,
        engine=engine,
        engine_version=version,
        joulelens_version=__version__,
        host=platform.node() or None,
        random_weights=random_weights,
    )


# -- engines -------------------------------------------------------------------------------


class _Engine(Protocol):
    def drive(self, ctx: _Context) -> tuple[Any, Any]: ...

    def record_fields(self) -> dict[str, Any]: ...

    def provenance(self) -> Provenance: ...

    def compile(
        self, events: Any, readings: Any, spec: Any, server: Any, idle: Any, config: RunConfig
    ) -> Any: ...


def measure_options(config: RunConfig) -> Any:
    from joulelens.measure import MeasureOptions

    return MeasureOptions(
        min_steady_state_s=config.min_steady_state_s, fixed_output_length=config.ignore_eos
    )


@contextmanager
def _engine(
    config: RunConfig, store: Store, log_dir: Path, server_env: dict[str, str] | None = None
) -> Iterator[_Engine]:
    if config.engine in ("vllm", "endpoint"):
        from joulelens.runner.served import served_engine

        with served_engine(config, log_dir, env=server_env) as served:
            yield served
    elif config.engine == "transformers":
        from joulelens.runner.inprocess import TransformersRun

        with TransformersRun(config, store) as run:
            yield run
    elif config.engine == "diffusers":
        from joulelens.runner.inprocess import DiffusersRun

        with DiffusersRun(config) as run:
            yield run
    else:  # pragma: no cover - pydantic restricts the values
        raise EngineError(f"unknown engine {config.engine!r}")


def poll_progress(
    read: Callable[[], tuple[int, int, int]],
    ctx: _Context,
    stop: threading.Event,
    period_s: float = 0.5,
) -> threading.Thread:
    """A thread that reports (done, total, tokens) to the observer until ``stop`` is set."""

    def loop() -> None:
        while not stop.wait(period_s):
            done, total, tokens = read()
            ctx.observer.progress(done, total, tokens, ctx.power_w())

    thread = threading.Thread(target=loop, name="joulelens-progress", daemon=True)
    thread.start()
    return thread


def arrival_config(config: RunConfig) -> Any:
    from joulelens.workloads import ArrivalConfig

    rate, cv = parse_arrival(config.arrival)
    return ArrivalConfig(rate_per_s=rate, cv=cv, seed=config.seed)


def llm_requests(config: RunConfig, fim_format: Any = None) -> Sequence[Any]:
    """The run's requests, made as they are read (memory independent of N); the user's
    extra fields win over the task's sampling defaults."""
    task = get_task(config.task)
    items = task.load_prompts(config.prompts, seed=config.seed)
    return task.build_requests(
        items,
        config.requests,
        max_tokens=config.max_tokens,
        fim_format=fim_format,
        seed=config.seed,
        extra_body={**config.extra_body, **({"ignore_eos": True} if config.ignore_eos else {})},
    )


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
