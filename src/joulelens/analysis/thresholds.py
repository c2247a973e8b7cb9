"""Named thresholds of the diagnosis, each with the reason for its value.

Changing one changes verdicts; tests pin the behaviour on both sides of each.
"""

from __future__ import annotations

# --- Where the batch stopped -------------------------------------------------------------

# The running batch counts as "at the cap" when it averages this fraction of max_num_seqs.
# Continuous batching loses a few slots to requests finishing and joining, so a full
# server typically averages 97-100% of the cap.
BATCH_AT_CAP_FRACTION = 0.95

# The paper's stability rule: below 85% of max_num_seqs on average, memory or a CPU
# bottleneck kept the server from reaching the cap, and the run (and every larger batch of
# the same model, task, GPU and GPU count) is dropped.
BATCH_STABLE_FRACTION = 0.85

# KV-cache usage (fraction of the cache vLLM allocated) at or above which the batch is
# memory-bound. The ML.ENERGY harness checks whether the largest batch reached about 80%.
KV_USAGE_MEMORY_BOUND = 0.80

# KV-cache usage below which memory is clearly not what stops the batch: the cache could
# hold more than twice the tokens. Between this and KV_USAGE_MEMORY_BOUND memory "may
# contribute".
KV_USAGE_MEMORY_FREE = 0.50

# A projected usage above this at the next swept batch means the next batch would not fit:
# vLLM would preempt requests and the running batch would fall under the stable fraction.
KV_USAGE_NEXT_BATCH_OVERFLOW = 1.00

# The batch grid the ML.ENERGY benchmark sweeps for max_num_seqs; used to name the batch
# that comes after the largest stable one when the store does not hold it.
BATCH_GRID: tuple[int, ...] = (
    8,
    16,
    32,
    64,
    96,
    128,
    192,
    256,
    384,
    512,
    768,
    1024,
    1536,
    2048,
    3072,
    4096,
)

# A multimodal model's text counterpart reaching a batch at least this many times larger
# points at a modality-specific (non-GPU) limit rather than the model's memory footprint.
FAMILY_TEXT_BATCH_RATIO = 2.0

# --- Memory estimate (used only when KV-cache usage was not recorded) ---------------------

# vLLM's default --gpu-memory-utilization: the fraction of device memory it claims.
GPU_MEMORY_UTILIZATION = 0.90

# Memory per GPU that vLLM keeps for activations, CUDA graphs and the sampler after its
# profiling run (a few GiB for max_num_batched_tokens=8192 on these models).
ACTIVATION_RESERVE_GIB_PER_GPU = 5.0

# --- Power ------------------------------------------------------------------------------

# Average power under this fraction of the GPUs' combined TDP: the GPUs were underused
# (waiting on memory, small GEMMs, the CPU or each other).
POWER_LOW_FRACTION_OF_TDP = 0.50

# Above this fraction of TDP the GPUs were busy; more batch buys little per-token energy.
POWER_HIGH_FRACTION_OF_TDP = 0.80

# --- Decomposition ----------------------------------------------------------------------

# A factor within this relative distance of 1 is reported as "no change".
FACTOR_NEUTRAL_BAND = 0.05

# The throughput identity (throughput = running batch / per-step latency) is approximate
# when median ITL stands in for step time; beyond this relative residual diagnose says so.
IDENTITY_RESIDUAL_WARN = 0.10

# --- Study ------------------------------------------------------------------------------

# batch_size_effect: the paper compares from the smallest batch of at least this size,
# because batch 8 is dominated by fixed per-step overheads.
BATCH_EFFECT_MIN_BATCH = 16

# precision: compare FP8 and BF16 at batch sizes at or above this; bins per the paper.
PRECISION_MIN_BATCH = 16
PRECISION_BATCH_BINS: tuple[tuple[int, int], ...] = ((8, 16), (17, 64), (65, 256))

# gpu_generation latency deadlines per task family (LLM: median ITL ms; diffusion: batch
# latency s, shown in ms internally).
LLM_ITL_DEADLINES_MS: tuple[float, ...] = (50.0, 100.0, 250.0)
IMAGE_LATENCY_DEADLINES_S: tuple[float, ...] = (10.0, 30.0, 60.0)
VIDEO_LATENCY_DEADLINES_S: tuple[float, ...] = (100.0, 500.0, 1000.0)

# moe_vs_dense: two models are "of similar total size" within this ratio of total params.
MOE_DENSE_SIZE_RATIO_MAX = 1.30
