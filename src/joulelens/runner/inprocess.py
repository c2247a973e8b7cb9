"""Runs on in-process engines (transformers, diffusers): no server, same measurement."""

from __future__ import annotations

import threading
from typing import Any

from joulelens.core.events import BatchTrace, RequestTrace
from joulelens.engines.protocol import ProgressUpdate
from joulelens.records import Provenance
from joulelens.runner.config import RunConfig
from joulelens.runner.execute import llm_requests, measure_options, provenance_for
from joulelens.store import Store


class TransformersRun:
    def __init__(self, config: RunConfig, store: Store):
        from joulelens.engines.models import parse_model
        from joulelens.engines.transformers_engine import TransformersEngine
        from joulelens.tasks import get_task

        self.config = config
        task = get_task(config.task)
        lengths = None
        if parse_model(config.model).random_weights:
            from joulelens.engines.arch import reference_model_for

            lengths = task.output_lengths(store, reference_model_for(config.model, config.task))
        self.engine = TransformersEngine(
            config.model,
            device=config.device,
            dtype=config.dtype or "auto",
            seed=config.seed,
            output_lengths=lengths,
            cpu_threads=config.cpu_threads,
            batching=config.batching,
        )

    def __enter__(self) -> TransformersRun:
        self.engine.load()
        return self

    def gpu_uuids(self) -> list[tuple[int, str]]:
        return self.engine.gpu_uuids()

    def __exit__(self, *exc: object) -> None:
        self.engine.close()

    def drive(self, ctx: Any) -> tuple[list[RequestTrace], None]:
        from joulelens.tasks import fim_format_for_vocab

        fim = None
        if self.config.task == "sourcegraph-fim":
            fim = fim_format_for_vocab(self.engine.loaded.tokenizer.get_vocab())
        requests = llm_requests(self.config, fim_format=fim)

        def report(update: ProgressUpdate) -> None:
            ctx.observer.progress(
                update.requests_done, update.requests_total, update.output_tokens, ctx.power_w()
            )

        traces = self.engine.run(requests, self.config.batch, on_progress=report)
        return traces, None

    def record_fields(self) -> dict[str, Any]:
        return self.engine.record_fields()

    def provenance(self) -> Provenance:
        info = self.engine.describe()
        return provenance_for(
            "transformers", info.get("engine_version"), bool(info.get("random_weights"))
        )

    def compile(
        self, events: Any, readings: Any, spec: Any, server: Any, idle: Any, config: RunConfig
    ) -> Any:
        from joulelens.measure import compile_llm_run

        run = compile_llm_run(
            events,
            readings,
            spec=spec,
            server_metrics=None,
            idle=idle,
            options=measure_options(config),
        )
        engine = self.engine.describe()
        record = run.record.model_copy(
            update={
                "config": {**run.record.config, "engine": engine},
                "warnings": run.record.warnings + list(engine.get("warnings") or []),
            }
        )
        return run._replace(record=record)


class DiffusersRun:
    def __init__(self, config: RunConfig):
        from joulelens.engines.diffusers_engine import DiffusersEngine

        self.config = config
        self.engine = DiffusersEngine(
            config.model,
            device=config.device,
            dtype=config.dtype or "auto",
            seed=config.seed,
            cpu_threads=config.cpu_threads,
        )

    def __enter__(self) -> DiffusersRun:
        self.engine.load()
        return self

    def gpu_uuids(self) -> list[tuple[int, str]]:
        return self.engine.gpu_uuids()

    def __exit__(self, *exc: object) -> None:
        self.engine.close()

    def drive(self, ctx: Any) -> tuple[list[BatchTrace], None]:
        from joulelens.tasks import get_task

        cfg = self.config
        task = get_task(cfg.task)
        items = task.load_prompts(cfg.prompts, seed=cfg.seed)
        batch = cfg.batch
        total = cfg.num_batches + cfg.warmup_batches
        prompts = task.diffusion_prompts(items, batch * total, seed=cfg.seed)
        done = [0]
        lock = threading.Lock()

        def on_batch(trace: BatchTrace) -> None:
            with lock:
                done[0] += 1
            ctx.observer.progress(done[0], total, 0, ctx.power_w())

        traces = self.engine.run_batches(
            prompts,
            batch,
            cfg.num_batches,
            warmup_batches=cfg.warmup_batches,
            steps=cfg.inference_steps,
            height=cfg.height,
            width=cfg.width,
            num_frames=cfg.num_frames,
            on_batch=on_batch,
        )
        return traces, None

    def record_fields(self) -> dict[str, Any]:
        return self.engine.record_fields()

    def provenance(self) -> Provenance:
        info = self.engine.describe()
        return provenance_for("diffusers", info.get("engine_version"), self.engine.random_weights)

    def compile(
        self, events: Any, readings: Any, spec: Any, server: Any, idle: Any, config: RunConfig
    ) -> Any:
        from joulelens.measure import compile_diffusion_run

        run = compile_diffusion_run(
            events, readings, spec=spec, idle=idle, options=measure_options(config)
        )
        record = run.record.model_copy(
            update={"config": {**run.record.config, "engine": self.engine.describe()}}
        )
        return run._replace(record=record)
