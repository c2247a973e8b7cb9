"""The option groups a run configuration is built from (see :mod:`joulelens.runner.config`).

Each group holds the options of one concern; :data:`ENGINE_GROUPS` says which groups each
engine acts on. Field order across the groups is the stored configuration's key order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from joulelens.redact import redact

EngineName = Literal["vllm", "endpoint", "transformers", "diffusers"]
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


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
