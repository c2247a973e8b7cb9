"""``joulelens run`` builds its configuration from its options by field name: every option
reaches the configuration under its field, as the stored configuration shows."""

from __future__ import annotations

import inspect
import shlex
import socket

import pytest

from joulelens.cli.app import run_cli
from joulelens.cli.measure import NOT_CONFIG_FIELDS, run
from joulelens.records import RunStatus
from joulelens.runner import RunConfig
from joulelens.store import Store


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def test_every_run_option_is_a_config_field_or_named_as_not_one() -> None:
    options = set(inspect.signature(run).parameters)
    assert options - NOT_CONFIG_FIELDS <= set(RunConfig.model_fields)
    assert options >= NOT_CONFIG_FIELDS


def test_run_options_reach_the_stored_configuration(
    tmp_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    args = shlex.split("""run --engine endpoint --model m --task lm-arena-chat --max-num-seqs 4
        --num-requests 9 --arrival poisson:3 --max-concurrency 2 --max-tokens 7
        --api-key-env MY_KEY --served-model served --gpu-model H100 --tensor-parallel 2
        --data-parallel 2 --expert-parallel --dtype bfloat16 --max-model-len 512
        --vllm-arg=--a --vllm-arg=--b --ignore-eos --device cpu --steps 3 --height 64
        --width 32 --num-frames 2 --num-batches 5 --no-gpus --gpu 0 --gpu GPU-1
        --allow-missing-gpu-energy --idle-baseline-s 0.5 --min-steady-state-s 2
        --watts-per-core 4""")
    code = run_cli([*args, "--endpoint", url])
    assert code != 0
    assert "cannot reach the endpoint" in capsys.readouterr().err
    [failed] = tmp_store.all()
    assert failed.status is RunStatus.FAILED
    stored = failed.config["run"]
    expected = {
        "engine": "endpoint",
        "endpoint": url,
        "model": "m",
        "task": "lm-arena-chat",
        "max_num_seqs": 4,
        "batch_size": None,
        "num_requests": 9,
        "arrival": "poisson:3",
        "max_concurrency": 2,
        "max_tokens": 7,
        "api_key_env": "MY_KEY",
        "served_model": "served",
        "gpu_model": "H100",
        "tensor_parallel": 2,
        "data_parallel": 2,
        "expert_parallel": True,
        "dtype": "bfloat16",
        "quantization": None,
        "max_model_len": 512,
        "vllm_args": ["--a", "--b"],
        "ignore_eos": True,
        "device": "cpu",
        "inference_steps": 3,
        "height": 64,
        "width": 32,
        "num_frames": 2,
        "num_batches": 5,
        "gpus": False,
        "gpu_ids": ["0", "GPU-1"],
        "missing_gpu_energy": "null",
        "idle_baseline_s": 0.5,
        "min_steady_state_s": 2.0,
        "watts_per_core": 4.0,
        "num_gpus": 1,
        "seed": 0,
    }
    assert {k: stored[k] for k in expected} == expected
    assert failed.run_id == RunConfig.model_validate(stored).run_id()
