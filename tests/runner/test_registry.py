"""Engines are dispatched through the registry: every engine a configuration can name has
an adapter, and an unknown name fails the run with a clear error (and a failed record)."""

from __future__ import annotations

from typing import get_args

import pytest

from joulelens.errors import EngineError
from joulelens.records import RunStatus
from joulelens.runner import RunConfig, run_one
from joulelens.runner.options import EngineName
from joulelens.runner.registry import ENGINES, engine_factory
from joulelens.store import Store


def test_every_engine_a_config_names_has_an_adapter() -> None:
    assert set(ENGINES) == set(get_args(EngineName))
    for name in get_args(EngineName):
        assert engine_factory(name) is ENGINES[name]


def test_an_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(EngineError) as err:
        engine_factory("tgi")
    assert str(err.value) == (
        "unknown engine 'tgi': known engines are diffusers, endpoint, transformers, vllm"
    )


def test_a_run_on_an_unknown_engine_fails_and_is_recorded(tmp_store: Store) -> None:
    """A configuration built without validation (a programming error) names no adapter."""
    valid = RunConfig(engine="transformers", model="m", task="lm-arena-chat", max_num_seqs=1)
    config = valid.model_copy(update={"engine": "tgi"})
    with pytest.raises(EngineError, match="unknown engine 'tgi'"):
        run_one(config, tmp_store)
    stored = tmp_store.get(config.run_id())
    assert stored.status is RunStatus.FAILED
    assert stored.failure_reason is not None and "unknown engine 'tgi'" in stored.failure_reason
