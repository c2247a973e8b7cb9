"""The in-process diffusion engine (Hugging Face diffusers): text-to-image and text-to-video.

Each batch (one pipeline call on ``batch_size`` prompts) is one measured window between
device syncs, as in the paper; warm-up batches are marked and excluded by the measurement.
Energy per image (or video) = mean batch energy / batch size.

Usage::

    engine = DiffusersEngine("arch:tiny-sd")      # or a Hub id / local pipeline directory
    engine.load()
    traces = engine.run_batches(prompts, batch_size=4, num_batches=3, warmup_batches=1)
    engine.last_output_shape                      # (4, H, W, 3) images, (4, F, H, W, 3) videos
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joulelens.core.clock import now_s
from joulelens.core.events import BatchTrace
from joulelens.engines import runtime
from joulelens.engines.arch import ARCH_PREFIX
from joulelens.engines.arch.pipelines import PipelineSpec, build_pipeline, get_pipeline_spec
from joulelens.errors import EngineError, InputError

if TYPE_CHECKING:
    import torch

BatchCallback = Callable[[BatchTrace], None]


class DiffusersEngine:
    name = "diffusers"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        seed: int = 0,
        cpu_threads: int | None = None,
    ) -> None:
        self.model = model.strip()
        self.spec: PipelineSpec | None = None
        if self.model.startswith(ARCH_PREFIX):
            self.spec = get_pipeline_spec(self.model)
        elif not Path(self.model).expanduser().is_dir() and self.model.count("/") != 1:
            raise InputError(
                f"not a diffusion model: {model!r} (arch:<name>, a pipeline directory or a Hub id)",
                field="model",
            )
        self._device_name, self._dtype_name = device, dtype
        self.seed = seed
        self.cpu_threads = cpu_threads
        self._pipe: Any = None
        self._device: torch.device | None = None
        self.last_output_shape: tuple[int, ...] | None = None
        self.last_settings: dict[str, Any] = {}

    @property
    def random_weights(self) -> bool:
        return self.spec is not None

    @property
    def model_id(self) -> str:
        if self.spec is not None:
            return self.spec.model_id
        path = Path(self.model).expanduser()
        return path.name if path.is_dir() else self.model

    def load(self) -> None:
        if self._pipe is not None:
            return
        self._device = runtime.pick_device(self._device_name)
        dtype = runtime.pick_dtype(self._dtype_name, self._device)
        runtime.set_seed(self.seed)
        runtime.quiet_library_logs()
        if self.cpu_threads is not None:
            runtime.set_cpu_threads(self.cpu_threads)
        if self.spec is not None:
            self._pipe = build_pipeline(self.spec, self._device, dtype, self.seed)
        else:
            import diffusers
            from diffusers.utils import deprecation_utils

            # diffusers renamed torch_dtype to dtype (0.36+); pass whichever this one takes
            renamed = hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE")
            dtype_arg = {"dtype" if renamed else "torch_dtype": dtype}
            try:
                pipe = diffusers.DiffusionPipeline.from_pretrained(self.model, **dtype_arg)
            except (OSError, ValueError) as exc:
                raise EngineError(f"cannot load diffusion pipeline {self.model!r}: {exc}") from exc
            self._pipe = pipe.to(self._device)
        self._pipe.set_progress_bar_config(disable=True)

    def close(self) -> None:
        self._pipe = None
        runtime.release_device_memory(self._device)

    def gpu_uuids(self) -> list[tuple[int, str]]:
        """``(cuda index, UUID)`` of the GPUs holding the pipeline's modules (empty on a CPU)."""
        import torch

        if self._pipe is None:
            raise EngineError("engine not loaded: call load() first")
        tensors: list[Any] = []
        for part in getattr(self._pipe, "components", {}).values():
            if isinstance(part, torch.nn.Module):
                tensors += [*part.parameters(), *part.buffers()]
        return runtime.cuda_uuids(runtime.placed_devices(tensors))

    def __enter__(self) -> DiffusersEngine:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pipeline(self) -> Any:
        """The loaded diffusers pipeline (e.g. to ``save_pretrained`` a tiny one)."""
        if self._pipe is None:
            raise EngineError("engine not loaded: call load() first")
        return self._pipe

    @property
    def is_video(self) -> bool:
        if self.spec is not None:
            return self.spec.task == "text-to-video"
        return "num_frames" in self._call_parameters()

    def _call_parameters(self) -> set[str]:
        if self._pipe is None:
            raise EngineError("engine not loaded: call load() first")
        return set(inspect.signature(self._pipe.__call__).parameters)

    def run_batches(
        self,
        prompts: Sequence[str],
        batch_size: int,
        num_batches: int,
        warmup_batches: int = 1,
        steps: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        on_batch: BatchCallback | None = None,
    ) -> list[BatchTrace]:
        """``warmup_batches`` then ``num_batches`` measured batches; one trace each.

        ``None`` settings take the pipeline's defaults (the paper's choice) or, for the tiny
        random pipelines, their small built-in defaults.
        """
        if batch_size < 1 or num_batches < 1 or warmup_batches < 0:
            raise InputError(
                "batch_size and num_batches must be >= 1, warmup_batches >= 0", field="batch_size"
            )
        if not prompts:
            raise InputError("no prompts", field="prompts")
        kwargs = self._call_kwargs(steps, height, width, num_frames)
        device = self._device
        assert device is not None
        traces = []
        for index in range(warmup_batches + num_batches):
            batch = [prompts[(index * batch_size + j) % len(prompts)] for j in range(batch_size)]
            trace = self._one_batch(index, batch, kwargs, device, warmup=index < warmup_batches)
            traces.append(trace)
            if on_batch is not None:
                on_batch(trace)
        return traces

    def _call_kwargs(
        self, steps: int | None, height: int | None, width: int | None, num_frames: int | None
    ) -> dict[str, Any]:
        accepted = self._call_parameters()
        defaults = dict(self.spec.defaults) if self.spec else {}
        wanted: dict[str, Any] = dict(self.spec.call_kwargs) if self.spec else {}
        settings = {
            "num_inference_steps": steps if steps is not None else defaults.get("steps"),
            "height": height if height is not None else defaults.get("height"),
            "width": width if width is not None else defaults.get("width"),
            "num_frames": num_frames if num_frames is not None else defaults.get("num_frames"),
        }
        if settings["num_frames"] is not None and "num_frames" not in accepted:
            raise InputError(
                f"{self.model} makes images; num_frames does not apply", field="num_frames"
            )
        wanted.update({k: v for k, v in settings.items() if v is not None})
        wanted["output_type"] = "np"
        self.last_settings = {k: v for k, v in wanted.items() if k in settings}
        return {k: v for k, v in wanted.items() if k in accepted}

    def _one_batch(
        self,
        index: int,
        prompts: list[str],
        kwargs: dict[str, Any],
        device: torch.device,
        warmup: bool,
    ) -> BatchTrace:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(self.seed + index)
        runtime.synchronize(device)
        start = now_s()
        try:
            with torch.inference_mode():
                output = self._pipe(prompt=prompts, generator=generator, **kwargs)
            runtime.synchronize(device)
        except (RuntimeError, ValueError) as exc:
            return BatchTrace(index, len(prompts), start, now_s(), warmup=warmup, error=str(exc))
        end = now_s()
        result = output.frames if self.is_video else output.images
        shape = tuple(int(n) for n in getattr(result, "shape", (len(result),)))
        self.last_output_shape = shape
        if shape[0] != len(prompts):
            return BatchTrace(
                index,
                len(prompts),
                start,
                end,
                warmup=warmup,
                error=f"pipeline returned {shape[0]} outputs for {len(prompts)} prompts",
            )
        return BatchTrace(index, len(prompts), start, end, warmup=warmup)

    def describe(self) -> dict[str, Any]:
        import diffusers
        import torch

        return {
            "engine": self.name,
            "engine_version": diffusers.__version__,
            "torch_version": torch.__version__,
            "model": self.model,
            "model_id": self.model_id,
            "pipeline": type(self._pipe).__name__ if self._pipe is not None else None,
            "device": runtime.device_label(self._device) if self._device is not None else None,
            "dtype": str(self._pipe.dtype).removeprefix("torch.")
            if self._pipe is not None
            else None,
            "random_weights": self.random_weights,
            "seed": self.seed,
            "cpu_threads": torch.get_num_threads(),
            "settings": dict(self.last_settings),
            "output_shape": list(self.last_output_shape) if self.last_output_shape else None,
        }

    def record_fields(self) -> dict[str, Any]:
        """Model and knob fields of the run record (from the last batch's settings/output)."""
        if self._pipe is None:
            raise EngineError("engine not loaded: call load() first")
        import torch

        params = sum(
            p.numel()
            for component in self._pipe.components.values()
            if isinstance(component, torch.nn.Module)
            for p in component.parameters()
        )
        fields: dict[str, Any] = {
            "model_id": self.model_id,
            "architecture": "diffusion",
            "weight_precision": str(self._pipe.dtype).removeprefix("torch."),
            "total_params_billions": round(params / 1e9, 6),
            "inference_steps": self.last_settings.get("num_inference_steps"),
        }
        shape = self.last_output_shape
        if shape is not None and len(shape) >= 4:
            fields["height"], fields["width"] = shape[-3], shape[-2]
            if self.is_video and len(shape) == 5:
                fields["num_frames"] = shape[1]
        if self.spec is not None:
            fields["nickname"] = f"{self.spec.name} (architecture only, random weights)"
        return fields
