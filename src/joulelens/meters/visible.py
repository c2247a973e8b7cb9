"""``CUDA_VISIBLE_DEVICES`` -> positions in CUDA's device order, the way the CUDA runtime reads it.

CUDA's rules, which a meter must follow to measure the GPUs the workload really uses:

* unset: every device, in CUDA's order;
* a comma-separated list of indices (``0,2``) or UUIDs (``GPU-8932f937-...``; a unique prefix
  such as ``GPU-8932f937`` is enough); the list order is the CUDA device order, so entry *k*
  becomes ``cuda:k`` and our ``gpu:k``;
* parsing stops at the first invalid entry (not a number or UUID, out of range, unknown or
  ambiguous UUID prefix, a repeat): only the entries before it are visible, so ``-1`` or ``""``
  hide every GPU.

MIG slices (``MIG-...``) are refused: NVML cannot read a slice's energy, and measuring the
whole GPU would charge a slice for its neighbours.

CUDA numbers the GPUs it can open: in PCI bus order with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``;
by default "fastest first", which is PCI order on nodes of identical GPUs. NVML's own index
order is not guaranteed to be either, so callers pass the devices sorted by PCI bus id
(:mod:`joulelens.meters.select`). On mixed nodes without ``PCI_BUS_ID`` the order CUDA uses is
unknowable from NVML, and we warn; UUIDs are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from joulelens.errors import MeterError

ENV_VAR = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True, slots=True)
class VisibleGpus:
    """The devices a process sees, as positions in the list resolved against, in CUDA order,
    and why any entry was dropped."""

    positions: tuple[int, ...]
    warnings: tuple[str, ...] = field(default=())


def parse_entries(value: str | None) -> tuple[str, ...] | None:
    """Split the variable into stripped entries; ``None`` when unset (all devices visible)."""
    if value is None:
        return None
    if not value.strip():
        return ()
    return tuple(entry.strip() for entry in value.split(","))


def _resolve_entry(entry: str, uuids: Sequence[str]) -> int | str:
    """The position an entry names in ``uuids``, or a string saying why it is invalid."""
    if entry.isdigit():
        index = int(entry)
        if index < len(uuids):
            return index
        return f"index {index} is out of range ({len(uuids)} GPUs)"
    if entry.upper().startswith("MIG-"):
        raise MeterError(
            f"{ENV_VAR} names a MIG slice ({entry}); NVML cannot measure a slice's energy. "
            "Measure whole GPUs (name them by index or GPU-UUID)."
        )
    if entry.upper().startswith("GPU-"):
        matches = [i for i, uuid in enumerate(uuids) if uuid.lower().startswith(entry.lower())]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            return f"no GPU has a UUID starting with {entry!r}"
        return f"UUID prefix {entry!r} is ambiguous ({len(matches)} GPUs match)"
    return f"{entry!r} is neither an index nor a GPU UUID"


def visible_gpus(
    value: str | None,
    uuids: Sequence[str],
    names: Sequence[str] | None = None,
    device_order: str | None = None,
) -> VisibleGpus:
    """Resolve ``CUDA_VISIBLE_DEVICES`` against the GPUs CUDA can open, ``uuids`` in PCI bus order.

    ``names`` (model names, same order) and ``device_order`` (``CUDA_DEVICE_ORDER``) only
    feed the warning about CUDA's order on mixed nodes.
    """
    entries = parse_entries(value)
    mixed = names is not None and len(set(names)) > 1
    if entries is None:
        unset_notes: tuple[str, ...] = ()
        if mixed and device_order != "PCI_BUS_ID" and len(uuids) > 1:
            unset_notes = (
                f"{ENV_VAR} is unset on a node with different GPU models and "
                "CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA numbers them fastest first, which "
                "NVML cannot tell; set CUDA_DEVICE_ORDER=PCI_BUS_ID or use GPU UUIDs",
            )
        return VisibleGpus(tuple(range(len(uuids))), unset_notes)
    indices: list[int] = []
    warnings: list[str] = []
    for position, entry in enumerate(entries):
        resolved = _resolve_entry(entry, uuids)
        if isinstance(resolved, int) and resolved in indices:
            resolved = f"GPU {entry} is listed twice"
        if isinstance(resolved, str):
            ignored = len(entries) - position - 1
            tail = f"; the {ignored} entries after it are ignored too" if ignored else ""
            warnings.append(f"{ENV_VAR}={value!r}: {resolved}{tail} (CUDA stops at it)")
            break
        indices.append(resolved)
    by_index = any(e.isdigit() for e in entries)
    if by_index and mixed and device_order != "PCI_BUS_ID":
        warnings.append(
            f"{ENV_VAR} uses indices on a node with different GPU models and "
            "CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA's order may differ from NVML's; "
            "set CUDA_DEVICE_ORDER=PCI_BUS_ID or use GPU UUIDs"
        )
    return VisibleGpus(tuple(indices), tuple(warnings))


def visible_gpus_from_env(
    environ: Mapping[str, str], uuids: Sequence[str], names: Sequence[str] | None = None
) -> VisibleGpus:
    return visible_gpus(environ.get(ENV_VAR), uuids, names, environ.get("CUDA_DEVICE_ORDER"))
