"""Measure one configuration end to end and write it to the store.

engine (server or in-process) -> request events; meters -> readings; measurement compiles
them into a run record; the store keeps it. A failure at any step (server crash, Ctrl-C,
bad input) is recorded as a failed run with its reason, then re-raised or returned.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joulelens.core.idle import IdlePower
from joulelens.core.series import is_power_series
from joulelens.errors import JoulelensError
from joulelens.measure import (
    CompiledRun,
    EnergyReadings,
    MeasureOptions,
    RunSpec,
    compile_diffusion_run,
    compile_llm_run,
    readings_from_meters,
)
from joulelens.measure.spec import RunAdditions
from joulelens.measure.validate import crash_reasons
from joulelens.meters import MeterSet, TimelineSampler, measure_idle_power
from joulelens.records import EnergyBoundary, RunRecord
from joulelens.runner.config import RunConfig
from joulelens.runner.cpu_scope import cpu_estimate, open_meters
from joulelens.runner.gpus import RunGpus
from joulelens.runner.protocol import (
    SERVER_LOG,
    Contribution,
    EngineOutput,
    EngineSetup,
    LlmOutput,
    RunContext,
    RunObserver,
)
from joulelens.runner.provenance import failed_record
from joulelens.runner.registry import engine_factory
from joulelens.store import Store
from joulelens.tasks import Task, get_task


class _Silent:
    def phase(self, text: str) -> None:
        pass

    def progress(self, done: int, total: int, output_tokens: int, power_w: float | None) -> None:
        pass


def _power_w(sampler: TimelineSampler) -> float | None:
    """Latest summed power over the sampled devices (for the progress display only)."""
    timeline = sampler.timeline
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
        reason = "interrupted (Ctrl-C) before the run finished"
        failed = failed_record(config, reason, started_at, artifacts=_log_names(log_dir))
        store.put(failed, write_artifacts=_copy_logs(log_dir))
        raise
    except Exception as exc:
        reason = str(exc) if isinstance(exc, JoulelensError) else f"{type(exc).__name__}: {exc}"
        failed = failed_record(config, reason, started_at, artifacts=_log_names(log_dir))
        store.put(failed, write_artifacts=_copy_logs(log_dir))
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
    with ExitStack() as stack:
        gpus = stack.enter_context(RunGpus(config))  # servers: which GPUs to hand over
        obs.phase("starting engine")
        setup = EngineSetup(store, log_dir, gpus.server_env())
        engine = stack.enter_context(engine_factory(config.engine)(config, setup))
        meters = stack.enter_context(
            open_meters(
                config,
                *engine.inference_pids(),
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
        obs.phase("measuring")
        sampler.start()
        try:
            output = engine.drive(RunContext(config, obs, lambda: _power_w(sampler)))
        finally:
            timeline = sampler.stop()
        notes = [*gpus.notes, *meters.notes]
        readings = readings_from_meters(meters, timeline, notes=dict.fromkeys(notes))
        if gpus.pinned:  # a GPU run reports GPU energy (or null with why), never the CPU's
            readings = dataclasses.replace(readings, pinned_boundary=EnergyBoundary.GPU)
        contribution = engine.contribution()
        spec = _spec(config, contribution, started_at, meters, gpus)
        estimate = cpu_estimate(meters)
    # The engine is closed now, so a server's log is complete.
    additions = RunAdditions(
        warnings=contribution.warnings,
        unstable_reasons=_log_crashes(log_dir),
        artifacts=_log_names(log_dir),
        config=contribution.config,
        cpu_estimate=estimate,
    )
    compiled = _compile(config, output, readings, spec, idle, additions)

    def write(staging: Path) -> list[str]:
        names = list(compiled.write_artifacts(staging))
        names += _copy_logs(log_dir)(staging)
        return names

    return compiled.record, write


def _compile(
    config: RunConfig,
    output: EngineOutput,
    readings: EnergyReadings,
    spec: RunSpec,
    idle: IdlePower,
    additions: RunAdditions,
) -> CompiledRun:
    """The run's one compile step: events and readings, plus what the harness adds."""
    options = MeasureOptions(
        min_steady_state_s=config.min_steady_state_s, fixed_output_length=config.ignore_eos
    )
    if isinstance(output, LlmOutput):
        return compile_llm_run(
            output.traces,
            readings,
            spec=spec,
            server_metrics=output.server_metrics,
            idle=idle,
            options=options,
            additions=additions,
        )
    return compile_diffusion_run(
        output.batches, readings, spec=spec, idle=idle, options=options, additions=additions
    )


def _log_crashes(log_dir: Path) -> list[str]:
    """The harness's crash check on the server log: a crash string makes the run unstable."""
    path = log_dir / SERVER_LOG
    if not path.is_file():
        return []
    return crash_reasons(path.read_text(errors="replace"), SERVER_LOG)


def _log_names(log_dir: Path) -> list[str]:
    """The server log, when there is one: kept with the run (the store redacts it)."""
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
    in_process_on_cpu = config.in_process and used == 0
    return "cpu" if config.num_gpus == 0 or not config.gpus or in_process_on_cpu else None


def _short_gpu_name(nvml_name: str) -> str:
    """ "NVIDIA H100 80GB HBM3" -> "H100", the names the public data uses."""
    for token in nvml_name.replace("NVIDIA", "").split():
        if any(ch.isdigit() for ch in token) and token[0].isalpha():
            return token
    return nvml_name


def _spec(
    config: RunConfig,
    contribution: Contribution,
    started_at: datetime,
    meters: MeterSet,
    gpus: RunGpus,
) -> RunSpec:
    task = get_task(config.task)
    fields: dict[str, Any] = {
        k: v for k, v in contribution.fields.items() if k != "model_id" and v is not None
    }
    used = len(gpus.selection.devices) if gpus.selection is not None else config.num_gpus
    fields.update(
        gpu_model=_gpu_label(config, meters, used),
        # In-process engines: the GPUs the model is on, whatever --num-gpus said.
        num_gpus=used if config.in_process and config.gpus else config.num_gpus,
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
        model_id=contribution.fields.get("model_id") or config.model,
        task=config.task,
        provenance=contribution.provenance,
        kind=task.kind,
        max_num_seqs=None if config.is_diffusion else config.max_num_seqs,
        num_requests=None if config.is_diffusion else config.requests,
        max_output_tokens=None if config.is_diffusion else _output_cap(config, task),
        batch_size=config.batch_size if config.is_diffusion else None,
        fields=fields,
    )


def _output_cap(config: RunConfig, task: Task) -> int | None:
    caps = [c for c in (config.max_tokens, task.output_cap_tokens) if c is not None]
    return min(caps) if caps else None
