"""Which GPUs a run uses, by identity: CUDA index in the worker process -> NVML UUID.

A run meters exactly these GPUs (:class:`GpuSelection`), never "every GPU NVML sees":

* an in-process engine: the devices it placed the model on, whose UUIDs torch reports
  (:func:`selection_from_uuids`);
* a server joulelens starts: the GPUs it hands over (:func:`visible_selection` resolves
  ``CUDA_VISIBLE_DEVICES`` the way CUDA does; the server then gets them by UUID);
* an endpoint: the GPUs the user names (:func:`named_selection`; indices as ``nvidia-smi``
  shows them, or UUIDs).

Enumeration is tolerant: a GPU this process may not open (cgroup-limited nodes) or that fell
off the bus is skipped with a note (CUDA cannot use it either), so it never fails a run that
does not use it. CUDA's order is PCI bus order, not NVML's index order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from joulelens.errors import MeterError
from joulelens.meters.nvml_backend import GpuBackend
from joulelens.meters.visible import ENV_VAR, parse_entries, visible_gpus


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU a run uses: ``cuda_index`` in the process doing the work (our ``gpu:<k>``)."""

    cuda_index: int
    uuid: str  # as NVML spells it: "GPU-..." (or "MIG-..." for a slice)


@dataclass(frozen=True)
class GpuSelection:
    """The GPUs a run uses and how they were chosen.

    ``required``: a GPU that cannot be read fails the run (:class:`GpuUnreadable`); else it is
    metered as null with the reason. ``missing_reason`` (no device) says why there is none.
    """

    devices: tuple[GpuDevice, ...]
    source: str  # "placed by the engine", "handed to vllm serve", "named with --gpu" ...
    required: bool = True
    missing_reason: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def uuids(self) -> tuple[str, ...]:
        return tuple(d.uuid for d in self.devices)


class GpuUnreadable(MeterError):
    """A GPU the run uses cannot be metered (NVML down, unknown UUID, MIG, no permission...)."""


@dataclass(frozen=True, slots=True)
class NvmlDevice:
    """What enumeration learnt about one NVML index; ``error`` set when it cannot be opened."""

    index: int
    uuid: str | None = None
    name: str | None = None
    pci_bus_id: str | None = None
    error: str | None = None


def normalise_uuid(uuid: str) -> str:
    """torch prints UUIDs bare (``8932f937-...``); NVML spells them ``GPU-8932f937-...``."""
    text = uuid.strip()
    if text.upper().startswith(("GPU-", "MIG-")):
        return text
    return f"GPU-{text}"


def enumerate_gpus(backend: GpuBackend) -> tuple[list[NvmlDevice], list[str]]:
    """Every NVML device with its identity; unreadable ones kept with their error, and notes."""
    devices: list[NvmlDevice] = []
    notes: list[str] = []
    for index in range(backend.device_count()):
        try:
            uuid = backend.uuid(index)
        except MeterError as exc:
            devices.append(NvmlDevice(index, error=str(exc)))
            notes.append(
                f"NVML GPU {index} skipped: {exc} (CUDA cannot use it either; no run here "
                "is charged for it)"
            )
            continue
        name = pci = None
        try:
            name = backend.name(index)
            pci = backend.pci_bus_id(index)
        except MeterError as exc:
            notes.append(f"NVML GPU {index} ({uuid}): {exc}; ordered by NVML index")
        devices.append(NvmlDevice(index, uuid, name, pci))
    return devices, notes


def cuda_order(devices: Sequence[NvmlDevice]) -> list[NvmlDevice]:
    """The devices CUDA can open, in PCI bus order (CUDA's order with ``PCI_BUS_ID``, and its
    fastest-first order on nodes of identical GPUs); NVML's index order is not that."""
    usable = [d for d in devices if d.uuid is not None]
    return sorted(usable, key=lambda d: (d.pci_bus_id is None, d.pci_bus_id or "", d.index))


def visible_selection(
    backend: GpuBackend,
    environ: Mapping[str, str],
    *,
    count: int | None = None,
    source: str = f"visible under {ENV_VAR}",
    required: bool = True,
) -> GpuSelection:
    """The GPUs a CUDA process started with ``environ`` sees (its first ``count`` of them).

    Raises :class:`GpuUnreadable` when ``count`` GPUs are asked for but fewer are visible.
    """
    value = environ.get(ENV_VAR)
    entries = parse_entries(value)
    notes: list[str] = []
    known: list[str] = []
    if entries and all(_full_uuid(e) for e in entries) and count is not None:
        # Exact names: look only those up (no other GPU is opened).
        uuids = [normalise_uuid(e) for e in entries[:count]]
        for uuid in uuids:
            try:
                backend.lookup_uuid(uuid)
            except MeterError as exc:
                raise GpuUnreadable(
                    f"{ENV_VAR} names {uuid}, which NVML cannot open: {exc}"
                ) from exc
    else:
        devices, notes = enumerate_gpus(backend)
        ordered = cuda_order(devices)
        known = [d.uuid or "" for d in ordered]
        names = [d.name or "?" for d in ordered]
        try:
            visible = visible_gpus(value, known, names, environ.get("CUDA_DEVICE_ORDER"))
        except MeterError as exc:  # a MIG slice named
            raise GpuUnreadable(str(exc)) from exc
        notes.extend(visible.warnings)
        uuids = [known[p] for p in visible.positions]
    if count is not None:
        if len(uuids) < count:
            where = f"{ENV_VAR}={value!r}" if value is not None else f"{ENV_VAR} unset"
            raise GpuUnreadable(
                f"this run needs {count} GPU(s) but {len(uuids)} can be used ({where})"
                + (f"; {notes[0]}" if notes else "")
            )
        uuids = uuids[:count]
    chosen = tuple(GpuDevice(k, u) for k, u in enumerate(uuids))
    reason = None if chosen else _none_visible_reason(value, len(known), notes)
    return GpuSelection(chosen, source, required, reason, tuple(notes))


def named_selection(
    backend: GpuBackend, entries: Sequence[str], *, source: str, required: bool = True
) -> GpuSelection:
    """GPUs named by the user: ``nvidia-smi`` indices (NVML's) or UUIDs (unique prefixes too)."""
    devices, notes = enumerate_gpus(backend)
    by_index = {d.index: d for d in devices}
    chosen: list[GpuDevice] = []
    for position, entry in enumerate(entries):
        text = entry.strip()
        if text.isdigit():
            found = by_index.get(int(text))
            if found is None or found.uuid is None:
                why = found.error if found is not None else f"NVML shows {len(devices)} GPUs"
                raise GpuUnreadable(f"GPU {text} cannot be metered: {why}")
            uuid = found.uuid
        else:
            matches = [
                d.uuid for d in devices if d.uuid and d.uuid.lower().startswith(text.lower())
            ]
            if len(matches) != 1:
                what = "no GPU" if not matches else f"{len(matches)} GPUs"
                raise GpuUnreadable(f"{what} NVML can read has a UUID starting with {text!r}")
            uuid = matches[0]
        if uuid in (d.uuid for d in chosen):
            raise GpuUnreadable(f"GPU {text} is named twice")
        chosen.append(GpuDevice(position, uuid))
    return GpuSelection(tuple(chosen), source, required, notes=tuple(notes))


def selection_from_uuids(
    uuids: Sequence[str | tuple[int, str]], *, source: str, required: bool = True
) -> GpuSelection:
    """GPUs as the worker process reports them: ``(cuda index, UUID)`` pairs, or UUIDs in
    CUDA order (``uuids[k]`` is ``cuda:k``'s); torch's bare UUIDs get NVML's ``GPU-``."""
    pairs = [u if isinstance(u, tuple) else (k, u) for k, u in enumerate(uuids)]
    chosen = tuple(GpuDevice(k, normalise_uuid(u)) for k, u in pairs)
    return GpuSelection(chosen, source, required)


def no_gpus(reason: str, *, source: str = "none") -> GpuSelection:
    """A run that uses no GPU (or whose GPUs joulelens cannot know), and why."""
    return GpuSelection((), source, required=False, missing_reason=reason)


def _full_uuid(entry: str) -> bool:
    text = entry.strip()
    return text.upper().startswith("GPU-") and len(text) == len("GPU-") + 36


def _none_visible_reason(value: str | None, usable: int, notes: Sequence[str]) -> str:
    if value is not None and usable:
        return f"no GPU visible: {ENV_VAR}={value!r} hides all {usable} GPUs"
    return "NVML sees no GPU this process can open" + (f" ({notes[0]})" if notes else "")
