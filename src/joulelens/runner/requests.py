"""The requests of an LLM run and how they arrive, from the run's configuration."""

from __future__ import annotations

from collections.abc import Sequence

from joulelens.runner.config import RunConfig, parse_arrival
from joulelens.tasks import FimFormat, get_task
from joulelens.workloads import ArrivalConfig, LoadRequest


def arrival_config(config: RunConfig) -> ArrivalConfig:
    rate, cv = parse_arrival(config.arrival)
    return ArrivalConfig(rate_per_s=rate, cv=cv, seed=config.seed)


def llm_requests(config: RunConfig, fim_format: FimFormat | None = None) -> Sequence[LoadRequest]:
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
