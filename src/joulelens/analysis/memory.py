"""KV-cache memory: recorded usage when the run has it, otherwise an estimate.

Estimate (all GPUs together)::

    capacity  = num_gpus x (GPU memory x GPU_MEMORY_UTILIZATION - ACTIVATION_RESERVE)
                - weight bytes
    demand    = running batch x KV bytes for one sequence of T tokens (x replication)
    T         = input tokens + media tokens + output tokens in flight
    usage     = demand / capacity

Output tokens in flight: mean output / 2. The whole batch starts together and the steady
window ends once N - B - 1 requests finish, with N only a few times B at large batches, so
a sequence in flight is on average about halfway through its output. (The renewal-theory
figure E[L^2] / (2 E[L]), right for N >> B, overestimated: on the public snapshot it put 33
of 765 full-batch runs above 100% of the KV cache, against 11 for mean / 2.) KV heads are
replicated when tensor parallelism exceeds the KV-head count (MLA: one latent, replicated
on every tensor-parallel rank).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from joulelens.analysis.hardware import gpu_spec
from joulelens.analysis.model_arch import GIB, ModelArch, media_tokens, model_arch, workload_profile
from joulelens.analysis.thresholds import ACTIVATION_RESERVE_GIB_PER_GPU, GPU_MEMORY_UTILIZATION
from joulelens.records import RunRecord


@dataclass(frozen=True, slots=True)
class NoEstimate:
    reason: str


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Estimated KV-cache usage at the run's running batch, and at any other batch."""

    running_batch: float
    tokens_per_sequence: float
    gpu_memory_gib_total: float
    weights_gib: float
    kv_capacity_gib: float
    kv_per_sequence_gib: float
    assumptions: list[str] = field(default_factory=list)

    @property
    def kv_demand_gib(self) -> float:
        return self.running_batch * self.kv_per_sequence_gib

    @property
    def usage(self) -> float:
        """Fraction of the KV cache in use at the running batch (may exceed 1)."""
        return self.usage_at(self.running_batch)

    def usage_at(self, batch: float) -> float:
        if self.kv_capacity_gib <= 0:
            return float("inf")
        return batch * self.kv_per_sequence_gib / self.kv_capacity_gib

    def max_batch(self) -> float:
        """Sequences that fit in the KV cache at this sequence length."""
        if self.kv_per_sequence_gib <= 0:
            return float("inf")
        return max(0.0, self.kv_capacity_gib / self.kv_per_sequence_gib)

    def to_dict(self) -> dict[str, object]:
        return {
            "running_batch": self.running_batch,
            "tokens_per_sequence": self.tokens_per_sequence,
            "gpu_memory_gib_total": self.gpu_memory_gib_total,
            "weights_gib": self.weights_gib,
            "kv_capacity_gib": self.kv_capacity_gib,
            "kv_per_sequence_gib": self.kv_per_sequence_gib,
            "kv_demand_gib": self.kv_demand_gib,
            "usage": self.usage,
            "max_batch": self.max_batch(),
            "assumptions": list(self.assumptions),
        }


def output_tokens_in_flight(record: RunRecord) -> tuple[float, str] | None:
    """Mean output tokens held by a sequence in flight, and how it was obtained."""
    if record.avg_output_len is None:
        return None
    return record.avg_output_len / 2, "mean output / 2: sequences in flight are about halfway"


def input_tokens(record: RunRecord, arch: ModelArch | None) -> tuple[float, list[str]] | None:
    profile = workload_profile(record.task)
    if profile is None:
        return None
    notes = [f"{profile.avg_input_tokens:.0f} text input tokens ({profile.basis})"]
    total = profile.avg_input_tokens
    if profile.media:
        extra, basis = media_tokens(arch, profile.media)
        total += extra
        notes.append(f"{extra:.0f} tokens per {profile.media} ({basis})")
    return total, notes


def estimate_kv_memory(
    record: RunRecord, running_batch: float | None = None
) -> MemoryEstimate | NoEstimate:
    """Estimated KV-cache usage of an LLM/MLLM run from architecture data (see module doc)."""
    if record.is_diffusion:
        return NoEstimate("diffusion runs hold no KV cache")
    spec = gpu_spec(record.gpu_model)
    if spec is None:
        return NoEstimate(f"no memory figure for GPU {record.gpu_model!r}")
    arch = model_arch(record.model_id)
    if arch is None:
        return NoEstimate(f"no architecture data for {record.model_id}")
    batch = running_batch if running_batch is not None else (record.avg_batch_size or record.batch)
    if batch is None:
        return NoEstimate("the run has neither a running batch nor a batch cap")
    inputs = input_tokens(record, arch)
    outputs = output_tokens_in_flight(record)
    if inputs is None or outputs is None:
        return NoEstimate(f"no input/output length figures for task {record.task!r}")
    in_tokens, notes = inputs
    out_tokens, out_basis = outputs
    tokens = in_tokens + out_tokens
    per_seq = arch.kv_bytes_for_sequence(tokens)
    if per_seq is None:
        return NoEstimate(f"architecture data for {record.model_id} lacks KV-head figures")
    tp = record.tensor_parallel or 1
    heads = arch.num_kv_heads or 1
    replication = max(1.0, tp / heads)
    weights = arch.weight_bytes(record.weight_precision)
    if arch.architecture == "dense" and (record.data_parallel or 1) > 1:
        weights *= record.data_parallel or 1
    total_gib = spec.memory_gib * record.num_gpus
    usable = record.num_gpus * (
        spec.memory_gib * GPU_MEMORY_UTILIZATION - ACTIVATION_RESERVE_GIB_PER_GPU
    )
    notes += [
        f"{out_tokens:.0f} output tokens in flight per sequence ({out_basis})",
        f"{arch.kv_bytes_per_token() or 0:.0f} KV bytes per token "
        f"({arch.confidence} architecture data)",
        f"vLLM claims {GPU_MEMORY_UTILIZATION:.0%} of {spec.memory_gib:g} GiB per GPU and keeps "
        f"{ACTIVATION_RESERVE_GIB_PER_GPU:g} GiB per GPU for activations",
    ]
    if replication > 1:
        notes.append(f"KV replicated {replication:g}x: tensor parallel {tp} > {heads} KV heads")
    return MemoryEstimate(
        running_batch=float(batch),
        tokens_per_sequence=tokens,
        gpu_memory_gib_total=total_gib,
        weights_gib=weights / GIB,
        kv_capacity_gib=usable - weights / GIB,
        kv_per_sequence_gib=per_seq * replication / GIB,
        assumptions=notes,
    )
