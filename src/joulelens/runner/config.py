"""What one measured run is: engine, model, task, knobs and measurement choices.

A configuration is built from the option groups of :mod:`joulelens.runner.options` (what
is measured, the load, the server, the GPUs, the model's parallelism and precision with
vLLM's launch, in-process engines, diffusion, the meters) and is one of four variants,
discriminated by ``engine``: :class:`VllmRunConfig`, :class:`EndpointRunConfig`,
:class:`TransformersRunConfig`, :class:`DiffusersRunConfig`. Each variant carries its
engine's rules and acts on the groups ``ENGINE_GROUPS`` lists for it.

Every variant accepts every group, in one flat layout: a sweep grid's ``base`` applies to
all engines alike, and the stored form (``model_dump``) and the run id are those of the
one flat model this replaced. ``RunConfig.model_validate(data)`` and
``RunConfig(**fields)`` pick the variant from ``engine``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, cast

from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from joulelens.errors import InputError
from joulelens.records import stable_run_id
from joulelens.redact import strip_userinfo
from joulelens.runner.options import (
    DiffusionOptions,
    GpuOptions,
    InProcessOptions,
    LoadOptions,
    MeterOptions,
    ModelOptions,
    ServerOptions,
    WorkloadOptions,
)

# The paper picks N >> B so the steady state spans many batch turnovers; prompts repeat.
REQUESTS_PER_BATCH_SLOT = 4
MIN_REQUESTS = 64


def default_num_requests(max_num_seqs: int) -> int:
    """The paper's request-count rule: N >> B (here 4B, at least 64)."""
    return max(REQUESTS_PER_BATCH_SLOT * max_num_seqs, MIN_REQUESTS)


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def parse_arrival(text: str) -> tuple[float | None, float]:
    """``saturation`` -> (None, 1); ``poisson:RATE`` -> (RATE, 1); ``gamma:RATE:CV``."""
    parts = text.split(":")
    try:
        if parts == ["saturation"]:
            return None, 1.0
        if parts[0] == "poisson" and len(parts) == 2:
            return float(parts[1]), 1.0
        if parts[0] == "gamma" and len(parts) == 3:
            return float(parts[1]), float(parts[2])
    except ValueError:
        pass
    raise InputError(
        f"unknown arrival {text!r}: use saturation, poisson:RATE or gamma:RATE:CV", field="arrival"
    )


# The groups are listed last to first: pydantic puts the fields of the last base first.
class RunConfig(
    MeterOptions,
    DiffusionOptions,
    InProcessOptions,
    ModelOptions,
    GpuOptions,
    ServerOptions,
    LoadOptions,
    WorkloadOptions,
):
    """One configuration to measure. Identity fields decide the run id (see :meth:`run_id`).

    The base of the four engine variants; constructing or validating it picks the variant.
    """

    model_config = ConfigDict(extra="forbid")

    served: ClassVar[bool] = False  # the engine is a server (started or attached to)
    in_process: ClassVar[bool] = False  # the engine runs in this process

    _url_auth: tuple[str, str] | None = PrivateAttr(default=None)

    def __new__(cls, *args: Any, **data: Any) -> RunConfig:
        variant = _VARIANTS.get(data.get("engine")) if cls is RunConfig else None
        return super().__new__(variant or cls)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        engine = obj.get("engine") if isinstance(obj, Mapping) else getattr(obj, "engine", None)
        variant = _VARIANTS.get(engine) if cls is RunConfig else None
        if variant is None:  # a variant, or an unknown engine (the base reports it as before)
            return super().model_validate(obj, **kwargs)
        return cast(Self, variant.model_validate(obj, **kwargs))

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        if cls is not RunConfig:
            return super().model_validate_json(json_data, **kwargs)
        return cls.model_validate(json.loads(json_data), **kwargs)

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        parse_arrival(self.arrival)
        if self.endpoint:
            clean, user, password = strip_userinfo(self.endpoint)
            if user is not None or password is not None:
                self.endpoint = clean
                self._url_auth = (user or "", password or "")
        self._check_engine()
        return self

    def _check_engine(self) -> None:
        """The engine's own rules (variants)."""

    def _no_gpu_ids(self) -> None:
        if self.gpu_ids:
            raise InputError(
                "--gpu names the GPUs serving an endpoint; vllm uses the GPUs visible under "
                "CUDA_VISIBLE_DEVICES, in-process engines the --device they run on",
                field="gpu_ids",
            )

    def _no_ignore_eos(self) -> None:
        if self.ignore_eos:
            raise InputError(
                "--ignore-eos needs a server engine (vllm or endpoint)", field="ignore_eos"
            )

    def _needs_max_num_seqs(self) -> None:
        if self.max_num_seqs is None:
            raise InputError(
                "an LLM run needs --max-num-seqs (the batch cap B)", field="max_num_seqs"
            )

    def _server_api_key(self) -> str | None:
        return None

    def auth_headers(self) -> dict[str, str]:
        """HTTP headers for the server: credentials from the endpoint URL (Basic), else the
        ``--api-key`` joulelens passes to the vLLM it starts, else ``$api_key_env`` (Bearer).
        Computed when needed and never stored."""
        if self._url_auth is not None:
            token = base64.b64encode(":".join(self._url_auth).encode()).decode()
            return {"Authorization": f"Basic {token}"}
        key = self._server_api_key() or os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    @property
    def is_diffusion(self) -> bool:
        return False

    @property
    def batch(self) -> int:
        value = self.batch_size if self.is_diffusion else self.max_num_seqs
        assert value is not None
        return value

    @property
    def tensor_parallel_size(self) -> int:
        """TP degree: as given, else the GPUs of one data-parallel replica."""
        return self.tensor_parallel or max(self.num_gpus // self.data_parallel, 1)

    @property
    def requests(self) -> int:
        return self.num_requests or default_num_requests(self.batch)

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same configuration (resumable sweeps skip these)."""
        keys = (
            "engine",
            "model",
            "task",
            "max_num_seqs",
            "batch_size",
            "num_gpus",
            "arrival",
            "max_tokens",
            "prompts",
            "tensor_parallel",
            "data_parallel",
            "expert_parallel",
            "dtype",
            "quantization",
            "inference_steps",
            "height",
            "width",
            "num_frames",
            "endpoint",
            "served_model",
            "device",
            "batching",
        )
        ident = {k: getattr(self, k) for k in keys}
        ident["num_requests"] = self.requests
        if self.gpu_model is not None:  # a cluster sweep measures one grid on several models
            ident["gpu_model"] = self.gpu_model
        if self.ignore_eos:  # only when set, so that earlier runs keep their ids
            ident["ignore_eos"] = True
        return ident

    def run_id(self) -> str:
        return stable_run_id("jl", self.identity())


class VllmRunConfig(RunConfig):
    """``vllm serve`` started for the run, on the GPUs visible under CUDA_VISIBLE_DEVICES."""

    engine: Literal["vllm"] = "vllm"
    served: ClassVar[bool] = True

    def _check_engine(self) -> None:
        self._no_gpu_ids()
        self._needs_max_num_seqs()

    def _server_api_key(self) -> str | None:
        return _flag_value(self.vllm_args, "--api-key")


class EndpointRunConfig(RunConfig):
    """A running OpenAI-compatible server at ``endpoint``; its GPUs named with ``gpu_ids``."""

    engine: Literal["endpoint"] = "endpoint"
    served: ClassVar[bool] = True

    def _check_engine(self) -> None:
        if not self.endpoint:
            raise InputError("the endpoint engine needs --endpoint URL", field="endpoint")
        self._needs_max_num_seqs()


class TransformersRunConfig(RunConfig):
    """An LLM loaded in this process with Hugging Face transformers."""

    engine: Literal["transformers"] = "transformers"
    in_process: ClassVar[bool] = True

    def _check_engine(self) -> None:
        self._no_gpu_ids()
        self._no_ignore_eos()
        self._needs_max_num_seqs()


class DiffusersRunConfig(RunConfig):
    """A diffusion pipeline loaded in this process; ``batch_size`` defaults to
    ``max_num_seqs``, else 1."""

    engine: Literal["diffusers"] = "diffusers"
    in_process: ClassVar[bool] = True

    def _check_engine(self) -> None:
        self._no_gpu_ids()
        self._no_ignore_eos()
        if self.batch_size is None:
            self.batch_size = self.max_num_seqs or 1

    @property
    def is_diffusion(self) -> bool:
        return True


_VARIANTS: dict[Any, type[RunConfig]] = {
    "vllm": VllmRunConfig,
    "endpoint": EndpointRunConfig,
    "transformers": TransformersRunConfig,
    "diffusers": DiffusersRunConfig,
}
AnyRunConfig = Annotated[
    VllmRunConfig | EndpointRunConfig | TransformersRunConfig | DiffusersRunConfig,
    Field(discriminator="engine"),
]
