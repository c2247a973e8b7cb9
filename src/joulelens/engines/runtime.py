"""Device and precision choices for the in-process engines, and the device sync at boundaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    """Return cached CUDA memory once an engine drops its model (no-op elsewhere)."""
    if device is not None and device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


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
