"""Device and precision choices for the in-process engines, and the device sync at boundaries."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from joulelens.errors import EngineError, InputError

if TYPE_CHECKING:
    import torch

DTYPES = ("auto", "float32", "bfloat16", "float16")


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: the first CUDA GPU when there is one, else the CPU."""
    import torch

    if device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"not a torch device: {device!r}", field="device") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device} asked for, but torch sees no CUDA GPU")
    return chosen


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on GPUs (what the paper serves), float32 on CPUs (fastest there)."""
    import torch

    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}", field="dtype")
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so a timestamp taken next marks real completion."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_device_memory(device: torch.device | None) -> None:
    """Free what an engine dropped, then return CUDA's cached blocks to the driver.

    ``gc.collect()`` first: a model, KV cache or generation manager caught in a reference
    cycle is only freed by the collector, and ``empty_cache`` can return only blocks no
    tensor holds. Leftovers would shrink the free memory the next run of a sweep sizes its
    KV cache from.
    """
    gc.collect()
    if device is not None and device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def cuda_memory_in_use(device: torch.device) -> dict[str, int]:
    """Bytes torch still holds on ``device`` (allocated by tensors, reserved by its cache)."""
    import torch

    return {
        "allocated_bytes": int(torch.cuda.memory_allocated(device)),
        "reserved_bytes": int(torch.cuda.memory_reserved(device)),
    }


def is_out_of_memory(exc: BaseException) -> bool:
    """A device (or host) allocation failed: torch's OutOfMemoryError, or its CPU message."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc)
    return "out of memory" in text.lower() or "can't allocate memory" in text


def placed_devices(tensors: Iterable[Any]) -> list[torch.device]:
    """The distinct devices of ``tensors`` (a model's parameters and buffers), CUDA by index."""
    seen: dict[tuple[str, int], torch.device] = {}
    for tensor in tensors:
        device = tensor.device
        seen.setdefault((device.type, -1 if device.index is None else device.index), device)
    return [seen[key] for key in sorted(seen)]


def cuda_uuids(devices: Iterable[torch.device]) -> list[tuple[int, str]]:
    """``(cuda index, UUID)`` of each CUDA device, as the CUDA runtime names it in this process.

    The UUID is the identity NVML knows the GPU by, so meters follow the devices the model is
    on whatever ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` say.
    """
    import torch

    out = []
    for device in devices:
        if device.type != "cuda":
            continue
        index = device.index if device.index is not None else torch.cuda.current_device()
        out.append((index, str(torch.cuda.get_device_properties(index).uuid)))
    return sorted(set(out))


def device_label(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def set_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)  # seeds every device's generator too


def set_cpu_threads(threads: int) -> None:
    """Torch's intra-op threads; on a busy small machine fewer threads can be much faster
    (idle OpenMP workers spin while others hold the cores)."""
    import torch

    if threads < 1:
        raise InputError("must be at least 1", field="cpu_threads")
    torch.set_num_threads(threads)


def quiet_library_logs() -> None:
    """Keep transformers/diffusers progress bars and advice off the terminal (joulelens shows
    its own progress); errors still surface as exceptions."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        import diffusers
    except ImportError:
        return
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
