"""CUDA state between the runs of a sweep, and device identity (issue 17, defect 8).

No GPU here: the CUDA allocator is faked at its boundary (``torch.cuda.empty_cache``,
``get_device_properties``, an allocation raising ``torch.cuda.OutOfMemoryError``); the
engine and its helpers are the real ones on a tiny random model.
"""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

import pytest

from joulelens.engines import runtime
from joulelens.engines.transformers_engine import TransformersEngine
from joulelens.errors import EngineError
from joulelens.records import Histogram
from joulelens.tasks import OutputLengthDistribution, get_task

torch = pytest.importorskip(
    "torch", reason="needs the engines extra (pip install 'joulelens[engines]')"
)

LENGTHS = OutputLengthDistribution.from_histogram(
    Histogram(bins=[1, 4, 8], counts=[5, 5]), "test histogram"
)


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.block = torch.zeros(1024)


def test_released_memory_is_collected_before_the_cache_is_emptied(monkeypatch):
    """Before: empty_cache ran while a model caught in a reference cycle still held its
    blocks, so the next run of a sweep sized its KV cache from less free memory."""
    gc.collect()
    gc.disable()  # the cycle must survive until release_device_memory collects it
    try:
        leftover = _Cycle()
        alive = weakref.ref(leftover)
        del leftover
        seen: list[bool] = []
        monkeypatch.setattr(torch.cuda, "empty_cache", lambda: seen.append(alive() is None))
        runtime.release_device_memory(torch.device("cuda", 0))
    finally:
        gc.enable()
    assert seen == [True]


def _requests(n: int = 4) -> list:
    task = get_task("lm-arena-chat")
    return task.build_requests(task.load_prompts(), n, max_tokens=8)


def test_out_of_memory_is_a_failed_run_not_a_switch_to_static_batching(monkeypatch):
    """Before: OutOfMemoryError (a RuntimeError) made 'auto' fall back to static batches."""
    engine = TransformersEngine(
        "arch:tiny-llama", output_lengths=LENGTHS, cpu_threads=1, batching="auto"
    )
    with engine:

        def no_room(*args: object, **kwargs: object) -> None:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        monkeypatch.setattr(type(engine.loaded.model), "init_continuous_batching", no_room)
        with pytest.raises(EngineError, match=r"out of memory .* max_num_seqs=4"):
            engine.run(_requests(), max_batch=4)
        assert not any("static batches" in w for w in engine.warnings)


def test_out_of_memory_in_static_batches_names_the_batch_size(monkeypatch):
    engine = TransformersEngine(
        "arch:tiny-llama", output_lengths=LENGTHS, cpu_threads=1, batching="static"
    )
    with engine:

        def no_room(*args: object, **kwargs: object) -> None:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

        monkeypatch.setattr(type(engine.loaded.model), "generate", no_room)
        with pytest.raises(EngineError, match="max_num_seqs=2 \\(static batching\\)"):
            engine.run(_requests(), max_batch=2)


def test_an_engine_on_the_cpu_uses_no_gpu():
    with TransformersEngine("arch:tiny-llama", output_lengths=LENGTHS, cpu_threads=1) as engine:
        assert engine.gpu_uuids() == []


def test_cuda_devices_are_named_by_the_uuid_cuda_reports(monkeypatch):
    uuids = {0: "8932f937-d72c-4106-c12f-20bd9faed9f6", 1: "5f0c1b2a-1111-2222-3333-444455556666"}
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda k: SimpleNamespace(uuid=uuids[k])
    )
    placed = [SimpleNamespace(device=torch.device("cuda", k)) for k in (1, 0, 1)]
    placed.append(SimpleNamespace(device=torch.device("cpu")))
    devices = runtime.placed_devices(placed)
    assert [str(d) for d in devices] == ["cpu", "cuda:0", "cuda:1"]
    assert runtime.cuda_uuids(devices) == [(0, uuids[0]), (1, uuids[1])]
