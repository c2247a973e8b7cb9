"""RunConfig is one variant per engine, built from option groups; the stored form, the
accepted inputs and the run ids stay those of the flat configuration it replaced."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from joulelens.errors import InputError
from joulelens.runner import RunConfig
from joulelens.runner.config import (
    AnyRunConfig,
    DiffusersRunConfig,
    EndpointRunConfig,
    TransformersRunConfig,
    VllmRunConfig,
)
from joulelens.runner.options import ENGINE_GROUPS

# Run ids of these configurations as the flat RunConfig computed them: stores keep them.
IDS: list[tuple[dict[str, Any], str]] = [
    (
        {
            "engine": "transformers",
            "model": "arch:tiny-llama",
            "task": "lm-arena-chat",
            "max_num_seqs": 2,
        },
        "jl-5624741a4e88",
    ),
    (
        {
            "engine": "vllm",
            "model": "Qwen/Qwen3-8B",
            "task": "gpqa",
            "max_num_seqs": 64,
            "num_gpus": 2,
            "dtype": "bfloat16",
        },
        "jl-b00a1227d14a",
    ),
    (
        {
            "engine": "endpoint",
            "model": "m",
            "task": "lm-arena-chat",
            "endpoint": "http://u:p@127.0.0.1:8000/v1",
            "max_num_seqs": 8,
            "ignore_eos": True,
        },
        "jl-ae04f6d75de5",
    ),
    (
        {
            "engine": "diffusers",
            "model": "arch:tiny-sd",
            "task": "text-to-image",
            "batch_size": 2,
            "height": 64,
            "width": 64,
        },
        "jl-bdb3b5547d88",
    ),
    (  # another engine's option is kept as given: it is part of the id
        {
            "engine": "transformers",
            "model": "m",
            "task": "lm-arena-chat",
            "max_num_seqs": 2,
            "tensor_parallel": 2,
            "gpu_model": "H100",
        },
        "jl-e80b1917bc63",
    ),
]
VARIANTS = {
    "vllm": VllmRunConfig,
    "endpoint": EndpointRunConfig,
    "transformers": TransformersRunConfig,
    "diffusers": DiffusersRunConfig,
}


@pytest.mark.parametrize(("fields", "run_id"), IDS, ids=[f["engine"] for f, _ in IDS])
def test_the_engine_picks_the_variant_and_ids_stay(fields: dict[str, Any], run_id: str) -> None:
    variant = VARIANTS[fields["engine"]]
    built = [
        RunConfig(**fields),
        RunConfig.model_validate(fields),
        variant.model_validate(fields),
        TypeAdapter(AnyRunConfig).validate_python(fields),
    ]
    for config in built:
        assert type(config) is variant
        assert config.run_id() == run_id
    stored = built[0].model_dump_json()
    again = RunConfig.model_validate_json(stored)
    assert type(again) is variant and again.run_id() == run_id
    assert again.model_dump_json() == stored


def test_every_variant_stores_the_same_flat_layout() -> None:
    layouts = {tuple(RunConfig.model_validate(f).model_dump()) for f, _ in IDS}
    assert len(layouts) == 1
    (layout,) = layouts
    assert layout[:3] == ("engine", "model", "task") and len(layout) == 44
    grouped = {name for groups in ENGINE_GROUPS.values() for g in groups for name in g.model_fields}
    assert grouped == set(layout)  # every field belongs to a group some engine reads


def test_each_variant_keeps_its_engines_rules() -> None:
    base = {"model": "m", "task": "lm-arena-chat", "max_num_seqs": 2}
    with pytest.raises(InputError, match="needs --endpoint URL") as err:
        RunConfig.model_validate({**base, "engine": "endpoint"})
    assert err.value.field == "endpoint"
    with pytest.raises(InputError, match="needs a server engine"):
        RunConfig(**base, engine="transformers", ignore_eos=True)
    with pytest.raises(InputError, match="names the GPUs serving an endpoint"):
        RunConfig(**base, engine="vllm", gpu_ids=["0"])
    with pytest.raises(InputError, match="needs --max-num-seqs"):
        RunConfig(engine="vllm", model="m", task="lm-arena-chat")
    assert RunConfig(**base, engine="diffusers").batch_size == 2  # from max_num_seqs
    assert VllmRunConfig(**base, vllm_args=["--api-key", "k"]).auth_headers() == {
        "Authorization": "Bearer k"
    }
    served = [e for e, v in VARIANTS.items() if v.served]
    in_process = [e for e, v in VARIANTS.items() if v.in_process]
    assert (served, in_process) == (["vllm", "endpoint"], ["transformers", "diffusers"])
