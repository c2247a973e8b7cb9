"""Runs on a stand-in GPU node: exactly the GPUs a run uses are metered, by UUID, and a run
that uses GPUs never reports CPU energy instead (issue 17, defects 1 and 5).

The node is :class:`FakeNvml` installed as the ``pynvml`` module (the hardware boundary);
the runner, meters, sampler, store and the local SSE server are the real ones.
"""

from __future__ import annotations

import sys

import pytest

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters.fake import FakeGpu, FakeNvml, PowerTrace
from joulelens.meters.fake_nvml import LIB_RM_VERSION_MISMATCH
from joulelens.records import EnergyBoundary, EnergyMethod, RunStatus
from joulelens.runner import RunConfig, run_one
from joulelens.runner.gpus import RunGpus
from joulelens.store import Store
from runner.conftest import endpoint_config


def uuid(k: int) -> str:
    return f"GPU-{k:08x}-aaaa-bbbb-cccc-dddddddddddd"


def install_node(monkeypatch: pytest.MonkeyPatch, count: int = 8, **nvml: object) -> FakeNvml:
    """An 8-GPU node idling at 70-77 W per GPU; GPU 3 is busy at 400 W."""
    gpus = [
        FakeGpu(uuid(k), PowerTrace.constant(400.0 if k == 3 else 70.0 + k)) for k in range(count)
    ]
    fake = FakeNvml(gpus, now_s, **nvml)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def gpu_run(url: str, **overrides: object) -> RunConfig:
    fields: dict[str, object] = {"gpus": True, "num_gpus": 1}
    fields.update(overrides)
    return endpoint_config(url, 4, **fields)


def test_one_gpu_run_on_an_8_gpu_node_records_that_gpu_by_uuid(
    tmp_store: Store, sse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acceptance: one GPU's energy, named by UUID. Before: all 8 GPUs were summed."""
    node = install_node(monkeypatch)
    record = run_one(gpu_run(sse_url, gpu_ids=[uuid(3)[:13]]), tmp_store)
    assert record.status is RunStatus.COMPLETED
    assert record.energy_boundary is EnergyBoundary.GPU
    assert record.energy_method is EnergyMethod.COUNTER
    gpu_parts = [c for c in record.energy_components if c.name.startswith("gpu:")]
    assert [c.name for c in gpu_parts] == ["gpu:0"]
    gpus = record.config["gpus"]
    assert gpus["uuids"] == [uuid(3)]
    (device,) = gpus["devices"]
    assert (device["uuid"], device["name"], device["nvml_index"]) == (uuid(3), "gpu:0", 3)
    assert device["power_source"].startswith("instant")
    assert "measured at start-up" in device["update_period"]
    assert record.avg_power_watts == pytest.approx(400.0, rel=0.05)  # GPU 3 only
    assert record.num_gpus == 1 and record.gpu_model == "H100"
    assert node.initialised == 0  # NVML shut down after the run


def test_a_gpu_run_whose_nvml_fails_fails_with_the_reason(
    tmp_store: Store, sse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: NVML failing made the GPUs null and the CPU estimate the headline, silently."""
    install_node(monkeypatch, init_error=LIB_RM_VERSION_MISMATCH)
    config = gpu_run(sse_url, gpu_ids=["3"])
    with pytest.raises(MeterError, match="version mismatch"):
        run_one(config, tmp_store)
    failed = tmp_store.get(config.run_id())
    assert failed.status is RunStatus.FAILED
    assert "--allow-missing-gpu-energy" in str(failed.failure_reason)


def test_allowed_missing_gpu_energy_is_null_with_the_reason_never_cpu(
    tmp_store: Store, sse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_node(monkeypatch, init_error=LIB_RM_VERSION_MISMATCH)
    record = run_one(gpu_run(sse_url, gpu_ids=["3"], missing_gpu_energy="null"), tmp_store)
    assert record.status is RunStatus.COMPLETED
    assert record.energy_boundary is EnergyBoundary.GPU
    assert record.energy_per_token_joules is None
    assert "version mismatch" in record.missing["energy_per_token_joules"]
    assert record.median_itl_ms is not None  # the rest of the run is still measured


def test_an_endpoint_without_named_gpus_says_how_to_name_them(
    tmp_store: Store, sse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = install_node(monkeypatch)
    record = run_one(gpu_run(sse_url), tmp_store)
    assert record.energy_boundary is EnergyBoundary.GPU and record.energy_per_token_joules is None
    assert "--gpu" in record.missing["energy_per_token_joules"]
    assert node.opened == set()  # no GPU was even opened


def test_vllm_gets_exactly_the_metered_gpus_by_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server is handed the GPUs the meters read, by UUID, in CUDA's (PCI) order."""
    node = install_node(monkeypatch)
    for k, gpu in enumerate(node.gpus):
        gpu.pci_bus_id = f"00000000:{0xF0 - 0x10 * k:02X}:00.0"  # PCI order is NVML's reversed
    config = RunConfig(engine="vllm", model="m", task="lm-arena-chat", max_num_seqs=8, num_gpus=2)
    with RunGpus(config, environ={"CUDA_VISIBLE_DEVICES": "0,1"}) as gpus:
        env = gpus.server_env()
        assert env is not None and env["CUDA_VISIBLE_DEVICES"] == f"{uuid(7)},{uuid(6)}"
        selection = gpus.resolve(None)
        assert [(d.cuda_index, d.uuid) for d in selection.devices] == [(0, uuid(7)), (1, uuid(6))]
        assert gpus.pinned


def test_vllm_asking_for_more_gpus_than_visible_fails_before_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_node(monkeypatch, count=2)
    config = RunConfig(engine="vllm", model="m", task="lm-arena-chat", max_num_seqs=8, num_gpus=4)
    with pytest.raises(MeterError, match="needs 4 GPU"), RunGpus(config, environ={}):
        pass


class _PlacedOn:
    """What an in-process engine reports: torch's (cuda index, bare UUID) of its devices."""

    def __init__(self, *placed: tuple[int, str]) -> None:
        self.placed = list(placed)

    def placed_gpus(self) -> list[tuple[int, str]]:
        return self.placed


def test_in_process_meters_the_devices_the_model_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    node = install_node(monkeypatch)
    config = RunConfig(engine="transformers", model="m", task="lm-arena-chat", max_num_seqs=1)
    with RunGpus(config, environ={}) as gpus:
        selection = gpus.resolve(_PlacedOn((1, uuid(6)[4:])))
        assert [(d.cuda_index, d.uuid) for d in selection.devices] == [(1, uuid(6))]
    assert node.opened == set()  # resolving opens nothing; the meters open GPU 6 only


def test_in_process_on_the_cpu_beside_gpus_says_they_were_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_node(monkeypatch)
    config = RunConfig(engine="transformers", model="m", task="lm-arena-chat", max_num_seqs=1)
    with RunGpus(config, environ={}) as gpus:
        assert gpus.resolve(_PlacedOn()).devices == ()
        assert not gpus.pinned
        assert any("NVML sees 8 NVIDIA GPUs but the model ran on the CPU" in n for n in gpus.notes)


@pytest.mark.engines
def test_an_in_process_run_on_the_cpu_of_a_gpu_node_is_a_cpu_run_that_says_so(
    tmp_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch without CUDA on a GPU node: the model ran on the CPU, so no GPU is charged and
    the record says NVML saw GPUs it did not use (the CLI's defaults: --num-gpus 1)."""
    node = install_node(monkeypatch)
    config = RunConfig(
        engine="transformers",
        model="arch:tiny-llama",
        task="lm-arena-chat",
        max_num_seqs=2,
        num_requests=4,
        max_tokens=8,
        cpu_threads=1,
        idle_baseline_s=0.2,
        min_steady_state_s=0.05,
    )
    record = run_one(config, tmp_store)
    assert record.status is RunStatus.COMPLETED
    assert (record.num_gpus, record.gpu_model) == (0, "cpu")
    assert record.energy_boundary is EnergyBoundary.CPU
    assert record.config["gpus"]["uuids"] == []
    assert any("NVML sees 8 NVIDIA GPUs but the model ran on the CPU" in w for w in record.warnings)
    assert node.opened == set()
