"""What one measured run is: engine, model, task, knobs and measurement choices.

A configuration is built from option groups (what is measured, the load, the server, the
GPUs, the model's parallelism and precision with vLLM's launch, in-process engines,
diffusion, the meters) and is one of four variants,
discriminated by ``engine``: :class:`VllmRunConfig`, :class:`EndpointRunConfig`,
:class:`TransformersRunConfig`, :class:`DiffusersRunConfig`. Each variant carries its
engine's rules and reads the groups of :data:`ENGINE_GROUPS`.

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
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_serializer, model_validator

from joulelens.errors import InputError
from joulelens.records import stable_run_id
from joulelens.redact import redact, strip_userinfo

EngineName = Literal["vllm", "endpoint", "transformers", "diffusers"]
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
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


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkloadOptions(_Group):
    """What is measured: engine, model, task, the batch and the GPU count."""

    engine: EngineName
    model: str
    task: str
    # Caps far beyond any server (vLLM runs a few thousand sequences) that catch a typo.
    max_num_seqs: int | None = Field(
        default=None, ge=1, le=1_000_000, description="LLM batch cap B"
    )
    batch_size: int | None = Field(default=None, ge=1, le=100_000, description="diffusion batch")
    num_gpus: int = Field(default=1, ge=0, le=4096)


class LoadOptions(_Group):
    """The requests of an LLM run and how they arrive (diffusion reads prompts and seed)."""

    num_requests: int | None = Field(default=None, ge=1, le=100_000_000)
    arrival: str = "saturation"
    max_concurrency: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1, description="lower the task's output cap")
    prompts: str | None = None  # None/"builtin", "public", or a JSONL/Parquet file
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into every request
    # Generate to the output cap, past EOS (vLLM's ignore_eos): fixed-length runs that match
    # ``vllm bench serve --ignore-eos``. Off by default, as in the paper.
    ignore_eos: bool = False
    seed: int = 0


class ServerOptions(_Group):
    """The server the load generator talks to (vllm, endpoint)."""

    endpoint: str | None = None  # stored without user info (that becomes Basic auth, unstored)
    # The endpoint's API key is read from this environment variable and sent as a Bearer
    # token; only the variable's name is part of the config, never the key.
    api_key_env: str = Field(default=DEFAULT_API_KEY_ENV, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    served_model: str | None = None  # the name the server knows the model by


class GpuOptions(_Group):
    """Which GPUs a run is on, where joulelens cannot find out itself."""

    # GPU label: for endpoint runs whose GPUs joulelens can't see; on a Ray cluster also
    # where the run goes (nodes of that model, custom resource gpu_model:LABEL).
    gpu_model: str | None = None
    # The GPUs serving an endpoint, as nvidia-smi shows them (index or UUID): metered by UUID.
    gpu_ids: list[str] = Field(default_factory=list)


class ModelOptions(_Group):
    """Parallelism and precision (recorded for every LLM run; in-process engines load the
    model in ``dtype``), and how vLLM is started."""

    tensor_parallel: int | None = None
    data_parallel: int = 1
    expert_parallel: bool = False
    dtype: str | None = None
    quantization: str | None = None
    max_model_len: int | None = None
    vllm_args: list[str] = Field(default_factory=list)
    vllm_config: Path | None = None
    # What starts vLLM (see engines.vllm_server.launch_command); None: $JOULELENS_VLLM_COMMAND
    # or ``vllm``. How the server is launched, not what is measured: not in the identity.
    vllm_command: str | None = None

    @field_serializer("vllm_command")
    def _redacted_command(self, value: str | None) -> str | None:
        """A container command line may carry a token (-e HF_TOKEN=...): never recorded."""
        return None if value is None else redact(value)


class InProcessOptions(_Group):
    """Engines that run the model in this process (transformers, diffusers)."""

    device: str = "auto"
    cpu_threads: int | None = None
    batching: Literal["auto", "continuous", "static"] = "auto"  # transformers engine


class DiffusionOptions(_Group):
    """Batches and output size of a diffusion run (diffusers)."""

    num_batches: int = Field(default=3, ge=1)
    warmup_batches: int = Field(default=1, ge=0)
    inference_steps: int | None = None
    height: int | None = None
    width: int | None = None
    num_frames: int | None = None


class MeterOptions(_Group):
    """What is metered and how the measurement is judged."""

    gpus: bool = True  # read NVIDIA GPUs (off for CPU-only runs)
    # A run using GPUs whose energy cannot be read: fail it, or record GPU energy as null.
    missing_gpu_energy: Literal["fail", "null"] = "fail"
    cpu_estimate: Literal["auto", "system", "process", "off"] = "auto"
    watts_per_core: float = Field(default=10.0, gt=0)
    idle_baseline_s: float = Field(default=5.0, ge=0, description="0 turns the baseline off")
    sample_period_s: float = Field(default=0.1, gt=0)
    min_steady_state_s: float = Field(default=20.0, ge=0)


_ALL = (WorkloadOptions, LoadOptions, GpuOptions, ModelOptions, MeterOptions)
# The groups whose options each engine acts on; it keeps the others' values as given, for
# the stored configuration and the run id.
ENGINE_GROUPS: Mapping[str, tuple[type[_Group], ...]] = {
    "vllm": (*_ALL, ServerOptions),
    "endpoint": (*_ALL, ServerOptions),
    "transformers": (*_ALL, InProcessOptions),
    "diffusers": (*_ALL, InProcessOptions, DiffusionOptions),
}


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
