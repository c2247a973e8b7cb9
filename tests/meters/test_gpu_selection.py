"""Which GPUs are metered, by identity, on a realistic NVML stand-in (issue 17, defects 1, 3, 4, 9).

Every test builds a node with :class:`FakeNvml` and runs the real backend, selection and
meters on it. "Before" behaviour each reproduces is named in its docstring.
"""

from __future__ import annotations

import pytest

from joulelens.meters import TimelineSampler, UnavailableMeter, detect_meters
from joulelens.meters.fake import FakeClock, FakeGpu, FakeNvmlBackend, PowerTrace
from joulelens.meters.fake_nvml import UNKNOWN
from joulelens.meters.nvml import NvmlGpuMeter, open_gpu_meters, open_nvml_meters
from joulelens.meters.select import (
    GpuUnreadable,
    cuda_order,
    enumerate_gpus,
    named_selection,
    no_gpus,
    selection_from_uuids,
    visible_selection,
)
from joulelens.records.schema import EnergyBoundary


def uuid(k: int) -> str:
    return f"GPU-{k:08x}-1111-2222-3333-444444444444"


def node(count: int = 8, watts: float = 100.0, **per_gpu: object) -> list[FakeGpu]:
    return [
        FakeGpu(uuid(k), PowerTrace.constant(watts + k), **per_gpu)  # type: ignore[arg-type]
        for k in range(count)
    ]


def backend(gpus: list[FakeGpu], clock: FakeClock) -> FakeNvmlBackend:
    return FakeNvmlBackend(gpus, clock)


def window_j(meters, clock: FakeClock, seconds: float = 10.0) -> dict[str, float | None]:
    meters.begin_window("w")
    clock.advance(seconds)
    window = meters.end_window("w")
    return {c.name: c.joules for c in window.components}


# -- defect 1: only the GPUs the run uses ------------------------------------------------------


def test_one_gpu_run_on_an_8_gpu_node_meters_one_gpu_by_uuid():
    """Before: every visible GPU was opened and summed (8 x ~100 W for a one-GPU run)."""
    clock = FakeClock()
    gpus = node(8)
    b = backend(gpus, clock)
    selection = selection_from_uuids([uuid(5)[4:]], source="placed by the engine")  # torch: bare
    with detect_meters(
        gpus=selection,
        rapl=False,
        cpu_estimate="off",
        gpu_backend=b,
        clock=clock,
        gpu_probe_s=0,
    ) as meters:
        assert [m.name for m in meters] == ["gpu:0"]
        (meter,) = meters
        assert isinstance(meter, NvmlGpuMeter) and meter.uuid == uuid(5)
        assert meter.describe()["uuid"] == uuid(5)
        assert window_j(meters, clock) == {"gpu:0": pytest.approx(1050.0)}  # 105 W x 10 s
    assert b.nvml.opened == {5}  # no other GPU's handle was opened


def test_no_selected_gpu_is_one_null_gpu_with_the_reason():
    clock = FakeClock()
    meters, notes = open_gpu_meters(no_gpus("the engine runs on the CPU"), None, clock=clock)
    assert [m.name for m in meters] == ["gpu"] and isinstance(meters[0], UnavailableMeter)
    assert notes == ["the engine runs on the CPU"]


# -- defect 4: a GPU the run does not use cannot fail it ---------------------------------------


def test_gpus_without_permission_or_lost_are_skipped_with_a_note():
    """Before: the UUID and name of every GPU were read, so one cgroup-hidden or lost GPU made
    opening the meters raise although the run did not use it."""
    clock = FakeClock()
    gpus = node(4)
    gpus[1].no_permission = True
    gpus[2].broken = True
    meters, notes, _ = open_nvml_meters({}, backend=backend(gpus, clock), clock=clock, probe_s=0)
    assert [m.uuid for m in meters if isinstance(m, NvmlGpuMeter)] == [uuid(0), uuid(3)]
    assert [m.name for m in meters] == ["gpu:0", "gpu:1"]  # CUDA numbers only what it can open
    assert any("NVML GPU 1 skipped" in n and "Insufficient Permissions" in n for n in notes)
    assert any("NVML GPU 2 skipped" in n and "GPU is lost" in n for n in notes)


def test_a_used_gpu_that_cannot_be_opened_fails_the_selection():
    clock = FakeClock()
    gpus = node(2)
    gpus[1].no_permission = True
    with pytest.raises(GpuUnreadable, match="Insufficient Permissions"):
        open_gpu_meters(selection_from_uuids([uuid(1)], source="t"), backend(gpus, clock))
    optional = selection_from_uuids([uuid(1)], source="t", required=False)
    meters, notes = open_gpu_meters(optional, backend(gpus, clock), probe_s=0)
    assert isinstance(meters[0], UnavailableMeter) and "Insufficient Permissions" in notes[0]


def test_an_optional_sensor_failing_at_probe_is_dropped_with_the_reason():
    """Before: any error but 'not supported' from temperature/utilization/clock aborted."""
    clock = FakeClock()
    gpus = node(1, errors={"nvmlDeviceGetTemperatureV": UNKNOWN})
    meters = detect_meters(
        gpus=selection_from_uuids([uuid(0)], source="t"),
        rapl=False,
        cpu_estimate="off",
        gpu_backend=backend(gpus, clock),
        clock=clock,
        gpu_probe_s=0,
    )
    meter = meters["gpu:0"]
    assert isinstance(meter, NvmlGpuMeter)
    assert "temperature_c:gpu:0" not in meter.sensor_series
    assert "Unknown Error" in meter.dropped["temperature_c:gpu:0"]
    assert any("temperature_c:gpu:0 dropped" in n for n in meters.notes)
    assert window_j(meters, clock) == {"gpu:0": pytest.approx(1000.0)}


def test_an_optional_sensor_failing_mid_run_is_dropped_and_sampling_goes_on():
    """Before: the sampler stopped and the whole measurement failed."""
    clock = FakeClock()
    gpus = node(1)
    meters = detect_meters(
        gpus=selection_from_uuids([uuid(0)], source="t"),
        rapl=False,
        cpu_estimate="off",
        gpu_backend=backend(gpus, clock),
        clock=clock,
        gpu_probe_s=0,
    )
    sampler = TimelineSampler(meters, clock=clock, state_period_s=None)
    meters.begin_window("w")
    for tick in range(20):
        if tick == 10:
            gpus[0].errors["nvmlDeviceGetUtilizationRates"] = UNKNOWN
        sampler.sample_once()
        clock.advance(0.1)
    window = meters.end_window("w")
    times, _ = sampler.timeline.series("gpu_utilization_pct:gpu:0")
    assert len(times) == 10
    assert len(sampler.timeline.series("temperature_c:gpu:0")[0]) == 20
    assert window.component("gpu:0").joules == pytest.approx(200.0)
    assert any("gpu_utilization_pct:gpu:0 dropped, failed mid-run" in n for n in meters.notes)


# -- defect 3: the CUDA-to-NVML mapping is established, not assumed ----------------------------


def test_cuda_order_is_pci_bus_order_not_nvml_index_order():
    """Before: with CUDA_VISIBLE_DEVICES unset, CUDA index k was taken as NVML index k."""
    clock = FakeClock()
    gpus = node(3)
    gpus[0].pci_bus_id = "00000000:C1:00.0"
    gpus[1].pci_bus_id = "00000000:41:00.0"
    gpus[2].pci_bus_id = "00000000:01:00.0"
    b = backend(gpus, clock)
    devices, _ = enumerate_gpus(b)
    assert [d.uuid for d in cuda_order(devices)] == [uuid(2), uuid(1), uuid(0)]
    first = visible_selection(b, {}, count=1)
    assert first.uuids == (uuid(2),)
    indexed = visible_selection(b, {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert indexed.uuids == (uuid(1),)


def test_fastest_first_order_comes_from_the_worker_by_uuid():
    """CUDA's default FASTEST_FIRST order can differ from PCI order on a mixed node; torch's
    UUIDs say which GPU cuda:k is, so the meter names follow the worker exactly."""
    clock = FakeClock()
    gpus = [
        FakeGpu(uuid(0), PowerTrace.constant(60.0), name="NVIDIA A100-SXM4-80GB"),
        FakeGpu(uuid(1), PowerTrace.constant(90.0), name="NVIDIA H100 80GB HBM3"),
    ]
    fastest_first = [uuid(1), uuid(0)]  # what torch.cuda.get_device_properties(k).uuid says
    meters = detect_meters(
        gpus=selection_from_uuids(fastest_first, source="placed by the engine"),
        rapl=False,
        cpu_estimate="off",
        gpu_backend=backend(gpus, clock),
        clock=clock,
        gpu_probe_s=0,
    )
    assert [(m.name, getattr(m, "model", "")) for m in meters] == [
        ("gpu:0", "NVIDIA H100 80GB HBM3"),
        ("gpu:1", "NVIDIA A100-SXM4-80GB"),
    ]
    assert window_j(meters, clock, 1.0) == {"gpu:0": 90.0, "gpu:1": 60.0}


def test_unset_visible_devices_on_a_mixed_node_warns_about_the_order():
    """Before: the mixed-node warning was skipped whenever CUDA_VISIBLE_DEVICES was unset."""
    clock = FakeClock()
    gpus = [
        FakeGpu(uuid(0), PowerTrace.constant(60.0), name="NVIDIA A100-SXM4-80GB"),
        FakeGpu(uuid(1), PowerTrace.constant(90.0), name="NVIDIA H100 80GB HBM3"),
    ]
    selection = visible_selection(backend(gpus, clock), {})
    assert any("fastest first" in n for n in selection.notes)
    pinned = visible_selection(backend(gpus, clock), {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert not any("fastest first" in n for n in pinned.notes)


def test_full_uuids_in_visible_devices_open_only_those_gpus():
    clock = FakeClock()
    b = backend(node(8), clock)
    env = {"CUDA_VISIBLE_DEVICES": f"{uuid(6)},{uuid(2)}"}
    selection = visible_selection(b, env, count=2)
    assert selection.uuids == (uuid(6), uuid(2))
    assert b.nvml.opened == {6, 2}


def test_too_few_visible_gpus_for_the_run_is_an_error():
    clock = FakeClock()
    with pytest.raises(GpuUnreadable, match="needs 4 GPU"):
        visible_selection(backend(node(2), clock), {}, count=4)


def test_named_gpus_by_nvidia_smi_index_or_uuid_prefix():
    clock = FakeClock()
    b = backend(node(4), clock)
    assert named_selection(b, ["3", uuid(1)[:12]], source="named").uuids == (uuid(3), uuid(1))
    with pytest.raises(GpuUnreadable, match="named twice"):
        named_selection(b, ["1", uuid(1)], source="named")
    with pytest.raises(GpuUnreadable, match="starting with"):
        named_selection(b, ["GPU-ffff"], source="named")


# -- defect 9: MIG detected and refused clearly ------------------------------------------------


def test_a_mig_slice_uuid_is_refused():
    clock = FakeClock()
    gpus = node(2)
    gpus[1].mig_mode = True
    gpus[1].mig_uuids = ("MIG-0b1c2d3e-aaaa-bbbb-cccc-000000000001",)
    b = backend(gpus, clock)
    with pytest.raises(GpuUnreadable, match="is a MIG slice"):
        open_gpu_meters(
            selection_from_uuids(["0b1c2d3e-aaaa-bbbb-cccc-000000000001"], source="t"), b
        )


def test_a_gpu_in_mig_mode_named_by_index_or_parent_uuid_is_refused():
    """Before: MIG was only caught as a MIG- entry in CUDA_VISIBLE_DEVICES."""
    clock = FakeClock()
    gpus = node(2)
    gpus[0].mig_mode = True
    b = backend(gpus, clock)
    by_index = visible_selection(b, {"CUDA_VISIBLE_DEVICES": "0"})
    with pytest.raises(GpuUnreadable, match="has MIG mode enabled"):
        open_gpu_meters(by_index, b)
    optional = selection_from_uuids([uuid(0)], source="t", required=False)
    meters, _ = open_gpu_meters(optional, b, probe_s=0)
    assert isinstance(meters[0], UnavailableMeter) and "MIG" in meters[0].reason


def test_nvml_not_starting_is_unreadable_for_a_run_that_needs_gpus():
    meters, notes = open_gpu_meters(
        selection_from_uuids([uuid(0)], source="t", required=False),
        None,
        backend_error="no NVIDIA GPU readable: NVML failed to initialise: Driver Not Loaded",
    )
    assert meters[0].boundary is EnergyBoundary.GPU and "Driver Not Loaded" in notes[0]
    with pytest.raises(GpuUnreadable, match="Driver Not Loaded"):
        open_gpu_meters(
            selection_from_uuids([uuid(0)], source="t"), None, backend_error="Driver Not Loaded"
        )
