"""GPU facts the diagnosis needs: memory capacity and board power (TDP), kept as data.

Memory is the capacity a process can see (what ``nvidia-smi`` reports), not the marketing
figure: an H100 SXM shows 79.6 GiB, a B200 179 GiB. TDP is the board's default power limit
for the SXM/OAM part. Runs name GPUs loosely ("H100", "NVIDIA H100 80GB HBM3"); use
:func:`gpu_spec` to resolve a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuSpec:
    name: str  # canonical short name, e.g. "H100"
    memory_gib: float  # usable device memory, GiB
    tdp_watts: float  # default board power limit, W
    generation: str  # architecture: "Hopper", "Blackwell" ...
    release_year: int
    memory_bandwidth_tb_per_s: float


GPU_SPECS: dict[str, GpuSpec] = {
    s.name: s
    for s in (
        GpuSpec("V100", 31.7, 300.0, "Volta", 2017, 0.9),
        GpuSpec("A10G", 22.0, 300.0, "Ampere", 2021, 0.6),
        GpuSpec("A100-40GB", 39.4, 400.0, "Ampere", 2020, 1.6),
        GpuSpec("A100", 79.2, 400.0, "Ampere", 2021, 2.0),
        GpuSpec("L4", 22.0, 72.0, "Ada", 2023, 0.3),
        GpuSpec("L40S", 44.4, 350.0, "Ada", 2023, 0.86),
        GpuSpec("RTX4090", 23.6, 450.0, "Ada", 2022, 1.0),
        GpuSpec("H100", 79.6, 700.0, "Hopper", 2022, 3.35),
        GpuSpec("H100-PCIE", 79.6, 350.0, "Hopper", 2022, 2.0),
        GpuSpec("H200", 139.8, 700.0, "Hopper", 2024, 4.8),
        GpuSpec("B200", 179.1, 1000.0, "Blackwell", 2025, 8.0),
        GpuSpec("GB200", 184.0, 1200.0, "Blackwell", 2025, 8.0),
        GpuSpec("MI300X", 191.5, 750.0, "CDNA3", 2023, 5.3),
    )
}

# Newer generation sorts later; used to say which of two GPUs is "newer".
GENERATION_ORDER: tuple[str, ...] = ("Volta", "Ampere", "Ada", "Hopper", "CDNA3", "Blackwell")

_ALIASES: tuple[tuple[str, str], ...] = (
    (r"gb200", "GB200"),
    (r"b200", "B200"),
    (r"h200", "H200"),
    (r"h100.*pcie|h100 pcie", "H100-PCIE"),
    (r"h100", "H100"),
    (r"a100.*40", "A100-40GB"),
    (r"a100", "A100"),
    (r"a10g", "A10G"),
    (r"l40s", "L40S"),
    (r"\bl4\b", "L4"),
    (r"4090", "RTX4090"),
    (r"v100", "V100"),
    (r"mi300x", "MI300X"),
)


def canonical_gpu_name(name: str | None) -> str | None:
    """ "NVIDIA H100 80GB HBM3" -> "H100"; None for an unknown or missing name."""
    if not name:
        return None
    lowered = name.lower()
    for pattern, canonical in _ALIASES:
        if re.search(pattern, lowered):
            return canonical
    return None


def gpu_spec(name: str | None) -> GpuSpec | None:
    canonical = canonical_gpu_name(name)
    return GPU_SPECS.get(canonical) if canonical else None


def is_newer(a: str | None, b: str | None) -> bool | None:
    """Whether GPU ``a`` is a newer generation than ``b``; None when either is unknown."""
    sa, sb = gpu_spec(a), gpu_spec(b)
    if sa is None or sb is None:
        return None
    if sa.generation == sb.generation:
        return sa.release_year > sb.release_year
    return GENERATION_ORDER.index(sa.generation) > GENERATION_ORDER.index(sb.generation)
