"""Window math and per-boundary totals: what may be summed, and what stays null."""

from __future__ import annotations

import pytest

from joulelens.core.boundaries import boundary_totals, weakest_method
from joulelens.errors import MeterError
from joulelens.meters import MeterSet, UnavailableMeter
from joulelens.meters.base import Reading
from joulelens.meters.fake import FakeClock, FakeGpu, PowerTrace, fake_gpu_meters
from joulelens.meters.windows import window_component
from joulelens.records.schema import EnergyBoundary as B
from joulelens.records.schema import EnergyComponent
from joulelens.records.schema import EnergyMethod as M


def comp(name: str, joules: float | None, boundary: B, method: M = M.COUNTER) -> EnergyComponent:
    reason = None if joules is not None else f"{name} unreadable"
    return EnergyComponent(
        name=name, joules=joules, boundary=boundary, method=method, missing_reason=reason
    )


def totals_of(components: list[EnergyComponent]) -> dict[B, tuple[float | None, M]]:
    return {t.boundary: (t.joules, t.method) for t in boundary_totals(components)}


def test_gpus_sum_and_full_node_when_all_parts_measured():
    totals = totals_of(
        [
            comp("gpu:0", 100.0, B.GPU),
            comp("gpu:1", 50.0, B.GPU, M.INTEGRATED),
            comp("cpu-package:0", 30.0, B.CPU),
            comp("dram:0", 5.0, B.DRAM),
        ]
    )
    assert totals == {
        B.GPU: (150.0, M.INTEGRATED),
        B.CPU: (30.0, M.COUNTER),
        B.DRAM: (5.0, M.COUNTER),
        B.CPU_DRAM: (35.0, M.COUNTER),
        B.GPU_CPU: (180.0, M.INTEGRATED),
        B.GPU_CPU_DRAM: (185.0, M.INTEGRATED),
    }


def test_estimate_stands_in_for_unreadable_packages_but_never_joins_combined_sums():
    totals = totals_of(
        [
            comp("gpu:0", 100.0, B.GPU),
            comp("cpu-package", None, B.CPU),
            comp("cpu-estimate", 12.0, B.CPU, M.ESTIMATED),
            comp("dram", None, B.DRAM),
        ]
    )
    assert totals[B.GPU] == (100.0, M.COUNTER)
    assert totals[B.CPU] == (12.0, M.ESTIMATED)
    assert totals[B.DRAM][0] is None
    assert totals[B.GPU_CPU][0] is None  # GPU + estimate is not a measured sum
    assert totals[B.GPU_CPU_DRAM][0] is None


def test_estimate_is_ignored_when_packages_are_readable():
    totals = totals_of(
        [comp("cpu-package:0", 40.0, B.CPU), comp("cpu-estimate", 12.0, B.CPU, M.ESTIMATED)]
    )
    assert totals == {B.CPU: (40.0, M.COUNTER)}


def test_one_null_gpu_nulls_the_gpu_total_with_its_reason():
    (total,) = boundary_totals([comp("gpu:0", 10.0, B.GPU), comp("gpu:1", None, B.GPU)])
    assert total.name == "total:gpu"
    assert total.joules is None
    assert total.missing_reason == "gpu:1: gpu:1 unreadable"


def test_combined_null_reason_says_why():
    totals = {
        t.boundary: t
        for t in boundary_totals([comp("gpu:0", 1.0, B.GPU), comp("c", 2.0, B.CPU, M.ESTIMATED)])
    }
    assert "only estimated" in str(totals[B.GPU_CPU].missing_reason)


def test_no_components_no_totals():
    assert boundary_totals([]) == ()


@pytest.mark.parametrize(
    ("methods", "weakest"),
    [
        ([M.COUNTER], M.COUNTER),
        ([M.COUNTER, M.INTEGRATED], M.INTEGRATED),
        ([M.ESTIMATED, M.COUNTER], M.ESTIMATED),
        ([M.ATTRIBUTED, M.INTEGRATED], M.ATTRIBUTED),
    ],
)
def test_weakest_method(methods, weakest):
    assert weakest_method(methods) is weakest


@pytest.mark.parametrize(
    ("begin", "end", "joules", "reason_part"),
    [
        (Reading(0.0, 10.0), Reading(1.0, 25.5), 15.5, None),
        (Reading(0.0, 10.0), Reading(1.0, 10.0), 0.0, None),
        (Reading(0.0, 10.0), Reading(1.0, 9.0), None, "backwards"),
        (Reading(0.0, None, "absent"), Reading(1.0, None, "absent"), None, "absent"),
        (Reading(0.0, 1.0), Reading(1.0, None, "gone mid-run"), None, "gone mid-run"),
    ],
)
def test_window_component(begin, end, joules, reason_part):
    meter = UnavailableMeter("x:0", B.GPU, M.COUNTER, "unused")
    component = window_component(meter, begin, end)
    assert component.joules == joules
    if reason_part:
        assert reason_part in str(component.missing_reason)


def test_unavailable_meter_never_reads_zero():
    clock = FakeClock()
    meter = UnavailableMeter("gpu", B.GPU, M.COUNTER, "no NVIDIA GPU", clock=clock)
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    clock.advance(10.0)
    window = meter_set.end_window("w")
    assert window.components[0].joules is None
    assert window.components[0].missing_reason == "no NVIDIA GPU"
    assert window.warnings == ()  # no short-window noise about a source that is absent


def test_nested_and_overlapping_windows():
    clock = FakeClock(1000.0)
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(100.0))], clock)
    meters.begin_window("run")
    clock.advance(2.0)
    meters.begin_window("steady")
    clock.advance(5.0)
    steady = meters.end_window("steady")
    clock.advance(3.0)
    run = meters.end_window("run")
    assert steady.component("gpu:0").joules == pytest.approx(500.0)
    assert run.component("gpu:0").joules == pytest.approx(1000.0)
    assert (steady.start_s, steady.end_s) == pytest.approx((1002.0, 1007.0))


def test_window_names_are_checked():
    clock = FakeClock()
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(1.0))], clock)
    meters.begin_window("w")
    with pytest.raises(MeterError, match="already open"):
        meters.begin_window("w")
    with pytest.raises(MeterError, match="no open window"):
        meters.end_window("other")


def test_failed_begin_leaves_no_window_open():
    clock = FakeClock()
    gpus = [FakeGpu("GPU-a", PowerTrace.constant(1.0)), FakeGpu("GPU-b", PowerTrace.constant(1.0))]
    meters = fake_gpu_meters(gpus, clock)
    gpus[1].broken = True
    with pytest.raises(MeterError):
        meters.begin_window("w")
    gpus[1].broken = False
    meters.begin_window("w")  # gpu:0's half-open window was closed again
    clock.advance(1.0)
    assert meters.end_window("w").component("gpu:0").joules == pytest.approx(1.0)


def test_empty_set_is_a_valid_null_object():
    clock = FakeClock(5.0)
    meters = MeterSet([], clock=clock)
    meters.begin_window("w")
    clock.advance(2.0)
    window = meters.end_window("w")
    assert window.components == () and window.totals == ()
    assert window.duration_s == pytest.approx(2.0)


def test_meter_names_must_be_unique():
    a = UnavailableMeter("gpu", B.GPU, M.COUNTER, "x")
    with pytest.raises(ValueError, match="gpu"):
        MeterSet([a, UnavailableMeter("gpu", B.GPU, M.COUNTER, "y")])


def test_close_runs_owner_callbacks_once():
    closed: list[str] = []
    meters = MeterSet([], on_close=[lambda: closed.append("nvml")])
    with meters:
        pass
    meters.close()
    assert closed == ["nvml"]


def test_injected_backend_is_left_to_its_owner():
    clock = FakeClock()
    meters = fake_gpu_meters([FakeGpu("GPU-a", PowerTrace.constant(1.0))], clock)
    with meters:
        pass
    backend = meters["gpu:0"]._backend
    assert backend.closed is False
