"""The GPUs a run uses, found before (servers) or after (in-process engines) the engine starts.

* ``--engine vllm``: the first ``tensor_parallel x data_parallel`` GPUs visible under
  ``CUDA_VISIBLE_DEVICES`` (resolved as CUDA does), handed to ``vllm serve`` by UUID, so the
  meters and the server agree on every device whatever the index order;
* ``--engine endpoint``: the GPUs named with ``--gpu`` (``nvidia-smi`` index or UUID); none
  named leaves GPU energy null with a note saying how to name them;
* in-process engines: the CUDA devices the engine placed the model on, by the UUIDs torch
  reports; on the CPU, no GPU.

A run that uses GPUs has its headline pinned to the GPU boundary: if they cannot be read it
fails, or with ``missing_gpu_energy="null"`` records GPU energy as null with the reason;
it never reports CPU energy as its headline instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

from joulelens.errors import MeterError
from joulelens.meters import MeterSet, NvmlGpuMeter, PynvmlBackend, UnavailableMeter
from joulelens.meters.nvml import open_backend
from joulelens.meters.select import (
    ENV_VAR,
    GpuSelection,
    GpuUnreadable,
    named_selection,
    no_gpus,
    selection_from_uuids,
    visible_selection,
)
from joulelens.runner.config import RunConfig

ALLOW_FLAG = "--allow-missing-gpu-energy"


class _PlacedEngine(Protocol):
    def placed_gpus(self) -> list[tuple[int, str]]: ...


class RunGpus:
    """Plan, then own, the NVML side of one run (a context manager that closes NVML)."""

    def __init__(self, config: RunConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.environ = dict(os.environ if environ is None else environ)
        self.backend: PynvmlBackend | None = None
        self.backend_error: str | None = None
        self.selection: GpuSelection | None = None
        self.notes: list[str] = []

    # -- before the engine -------------------------------------------------------------------
    def plan(self) -> RunGpus:
        """Choose the GPUs of a server run now (they are handed to the server)."""
        config = self.config
        if not config.gpus:
            self.selection = no_gpus("GPU reading turned off (--no-gpus)")
            return self
        if not config.served:
            return self  # in-process: known once the engine has placed the model
        if config.num_gpus == 0:
            self.selection = no_gpus("the server uses no GPU (--num-gpus 0)")
            return self
        if config.engine == "endpoint" and not config.gpu_ids:
            self.selection = no_gpus(
                f"GPU energy not metered: joulelens cannot tell which GPUs serve "
                f"{config.endpoint}; name them with --gpu INDEX|UUID (as nvidia-smi shows "
                "them), or pass --num-gpus 0 for a server without GPUs"
            )
            self.notes.append(str(self.selection.missing_reason))
            return self
        backend = self._open()
        required = config.missing_gpu_energy == "fail"
        count = config.tensor_parallel_size * config.data_parallel
        source = (
            f"handed to vllm serve ({count} GPU{'s' if count != 1 else ''})"
            if config.engine == "vllm"
            else f"named with --gpu ({', '.join(config.gpu_ids)})"
        )
        try:
            if backend is None:
                raise GpuUnreadable(self.backend_error or "NVML is not available")
            if config.engine == "vllm":
                self.selection = visible_selection(
                    backend, self.environ, count=count, source=source, required=required
                )
            else:
                self.selection = named_selection(
                    backend, config.gpu_ids, source=source, required=required
                )
        except GpuUnreadable as exc:
            self._unreadable(exc, source)
        return self

    def server_env(self) -> dict[str, str] | None:
        """The environment for ``vllm serve``: exactly the chosen GPUs, by UUID."""
        if self.config.engine != "vllm" or self.selection is None or not self.selection.devices:
            return None
        return {**self.environ, ENV_VAR: ",".join(self.selection.uuids)}

    # -- after the engine --------------------------------------------------------------------
    def resolve(self, engine: _PlacedEngine) -> GpuSelection:
        """The final selection: for in-process engines, the devices the model is on."""
        if self.selection is not None:
            return self.selection
        placed: list[tuple[int, str]] = list(engine.placed_gpus())
        if not placed:
            self.selection = no_gpus("the model runs on the CPU: no GPU is used")
            self._note_unused_gpus()
            return self.selection
        source = "placed by the engine (" + ", ".join(f"cuda:{k}" for k, _ in placed) + ")"
        required = self.config.missing_gpu_energy == "fail"
        self.selection = selection_from_uuids(placed, source=source, required=required)
        if self._open() is None:
            self._unreadable(GpuUnreadable(self.backend_error or "NVML is not available"), source)
        return self.selection

    @property
    def pinned(self) -> bool:
        """The run uses GPUs (or asked for them): its headline is the GPU boundary."""
        selection = self.selection
        if selection is None:
            return False
        if selection.devices:
            return True
        return self.config.gpus and self.config.served and (self.config.num_gpus > 0)

    def fields(self, meters: MeterSet) -> dict[str, Any]:
        """What the record says about the GPUs: ``config["gpus"]`` and the GPU count used."""
        selection = self.selection
        devices = []
        for meter in meters:
            if isinstance(meter, NvmlGpuMeter):
                devices.append(meter.describe())
            elif isinstance(meter, UnavailableMeter) and meter.name.startswith("gpu"):
                devices.append({"name": meter.name, "missing_reason": meter.reason})
        summary = {
            "source": selection.source if selection else None,
            "uuids": list(selection.uuids) if selection else [],
            "devices": devices,
            "pinned_to_gpu_boundary": self.pinned,
        }
        if selection is not None and not selection.devices:
            summary["missing_reason"] = selection.missing_reason
        return summary

    # -- helpers -----------------------------------------------------------------------------
    def _open(self) -> PynvmlBackend | None:
        if self.backend is None and self.backend_error is None:
            self.backend, self.backend_error = open_backend()
        return self.backend

    def _unreadable(self, exc: MeterError, source: str) -> None:
        if self.config.missing_gpu_energy == "fail":
            raise GpuUnreadable(
                f"this run uses GPUs ({source}) but their energy cannot be read: {exc}. Fix "
                f"that, or pass {ALLOW_FLAG} to record GPU energy as null with this reason "
                "(--num-gpus 0 or --no-gpus measure a CPU-only run)"
            ) from exc
        reason = f"GPU energy not measured ({source}): {exc}"
        self.notes.append(reason)
        devices = self.selection.devices if self.selection is not None else ()
        self.selection = GpuSelection(devices, source, required=False, missing_reason=reason)
        if not devices:
            self.selection = no_gpus(reason, source=source)

    def _note_unused_gpus(self) -> None:
        backend = self._open()
        if backend is None:
            return
        try:
            count = backend.device_count()
        except MeterError:
            return
        if count:
            self.notes.append(
                f"NVML sees {count} NVIDIA GPU{'s' if count != 1 else ''} but the model ran on "
                "the CPU (torch cannot use CUDA here, or --device cpu): no GPU was metered"
            )

    def close(self) -> None:
        if self.backend is not None:
            backend, self.backend = self.backend, None
            backend.close()

    def __enter__(self) -> RunGpus:
        return self.plan()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
