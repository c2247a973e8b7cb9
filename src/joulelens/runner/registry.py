"""Engine name -> the adapter that opens it (see :mod:`joulelens.runner.protocol`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from joulelens.errors import EngineError
from joulelens.runner.inprocess import DiffusersRun, TransformersRun
from joulelens.runner.protocol import EngineFactory
from joulelens.runner.served import endpoint_engine, vllm_engine

# One adapter for every engine a configuration can name (a test checks they match).
ENGINES: Mapping[str, EngineFactory] = MappingProxyType(
    {
        "vllm": vllm_engine,
        "endpoint": endpoint_engine,
        "transformers": TransformersRun,
        "diffusers": DiffusersRun,
    }
)


def engine_factory(name: str) -> EngineFactory:
    """The adapter of engine ``name``; an unknown name is an :class:`EngineError`."""
    try:
        return ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise EngineError(f"unknown engine {name!r}: known engines are {known}") from None
