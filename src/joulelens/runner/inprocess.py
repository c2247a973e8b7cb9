"""Runs on in-process engines (transformers, diffusers): no server, same measurement."""

from __future__ import annotations

import os
import threading
from typing import Any

from joulelens.core.events import BatchTrace
from joulelens.engines.protocol import ProgressUpdate
from joulelens.runner.config import RunConfig
from joulelens.runner.protocol import (
    Contribution,
    DiffusionOutput,
    EngineSetup,
    LlmOutput,
    RunContext,
)
from joulelens.runner.provenance import provenance_for
from joulelens.runner.requests import llm_requests
from joulelens.tasks import fim_format_for_vocab, get_task


class TransformersRun:
    """The model loaded in this process; ``__enter__`` loads it, ``__exit__`` frees it."""

    def __init__(self, config: RunConfig, setup: EngineSetup):
        # Imported here, not at the top: torch and transformers are the engines extra.
        from joulelens.engines.models import parse_model
        from joulelens.engines.transformers_engine import TransformersEngine

        self.config = config
        task = get_task(config.task)
        lengths = None
        if parse_model(config.model).random_weights:
            from joulelens.engines.arch import reference_model_for

            reference = reference_model_for(config.model, config.task)
            lengths = task.output_lengths(setup.store, reference)
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

    def __exit__(self, *exc: object) -> None:
        self.engine.close()

    def inference_pids(self) -> tuple[list[int], str | None]:
        return [os.getpid()], None

    def placed_gpus(self) -> list[tuple[int, str]]:
        return self.engine.gpu_uuids()

    def drive(self, ctx: RunContext) -> LlmOutput:
        fim = None
        if self.config.task == "sourcegraph-fim":
            fim = fim_format_for_vocab(self.engine.loaded.tokenizer.get_vocab())
        requests = llm_requests(self.config, fim_format=fim)

        def report(update: ProgressUpdate) -> None:
            ctx.progress(update.requests_done, update.requests_total, update.output_tokens)

        return LlmOutput(self.engine.run(requests, self.config.batch, on_progress=report))

    def contribution(self) -> Contribution:
        info = self.engine.describe()
        return Contribution(
            provenance=provenance_for(
                "transformers", info.get("engine_version"), bool(info.get("random_weights"))
            ),
            fields=self.engine.record_fields(),
            warnings=list(info.get("warnings") or []),
            config={"engine": info},
        )


class DiffusersRun:
    """The pipeline loaded in this process; ``__enter__`` loads it, ``__exit__`` frees it."""

    def __init__(self, config: RunConfig, setup: EngineSetup):
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

    def __exit__(self, *exc: object) -> None:
        self.engine.close()

    def inference_pids(self) -> tuple[list[int], str | None]:
        return [os.getpid()], None

    def placed_gpus(self) -> list[tuple[int, str]]:
        return self.engine.gpu_uuids()

    def drive(self, ctx: RunContext) -> DiffusionOutput:
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
            ctx.progress(done[0], total, 0)

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
        return DiffusionOutput(traces)

    def contribution(self) -> Contribution:
        info: dict[str, Any] = self.engine.describe()
        return Contribution(
            provenance=provenance_for(
                "diffusers", info.get("engine_version"), self.engine.random_weights
            ),
            fields=self.engine.record_fields(),
            config={"engine": info},
        )
