"""The factory on fake hardware and on this machine; import weight and layering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from joulelens.meters import (
    CpuTimeMeter,
    NvmlGpuMeter,
    RaplZoneMeter,
    UnavailableMeter,
    detect_meters,
)
from joulelens.meters.fake import (
    SERVER_ZONES,
    FakeClock,
    FakeGpu,
    FakeNvmlBackend,
    FakeRaplTree,
    FakeRaplZone,
    PowerTrace,
)
from joulelens.records.schema import EnergyBoundary, EnergyMethod


def _backend(clock: FakeClock) -> FakeNvmlBackend:
    gpus = [
        FakeGpu("GPU-a", PowerTrace.constant(300.0)),
        FakeGpu("GPU-b", PowerTrace.constant(280.0)),
    ]
    return FakeNvmlBackend(gpus, clock)


def test_full_node_with_readable_rapl_has_no_estimate(tmp_path: Path):
    tree = FakeRaplTree(tmp_path, SERVER_ZONES)
    clock = FakeClock()
    meters = detect_meters(rapl_root=tmp_path, gpu_backend=_backend(clock), environ={}, clock=clock)
    assert [type(m) for m in meters] == [NvmlGpuMeter] * 2 + [RaplZoneMeter] * 4
    meters.begin_window("w")
    clock.advance(10.0)
    for zone_id, joules in [
        ("intel-rapl:0", 900.0),
        ("intel-rapl:1", 700.0),
        ("intel-rapl:0:0", 80.0),
        ("intel-rapl:1:0", 70.0),
    ]:
        tree.add_energy_j(zone_id, joules)
    window = meters.end_window("w")
    node = window.total(EnergyBoundary.GPU_CPU_DRAM)
    assert node is not None and node.method is EnergyMethod.COUNTER
    assert node.joules == 5800.0 + 1600.0 + 150.0


def test_auto_estimate_when_rapl_unreadable(tmp_path: Path):
    FakeRaplTree(tmp_path, [FakeRaplZone("intel-rapl:0", "package-0", energy_uj=None)])
    meters = detect_meters(gpus=False, rapl_root=tmp_path)
    assert [m.name for m in meters] == ["cpu-package:0", "dram", "cpu-estimate:system@10W-per-cpu"]
    assert isinstance(meters["cpu-package:0"], UnavailableMeter)


def test_explicit_estimate_modes(tmp_path: Path):
    FakeRaplTree(tmp_path, SERVER_ZONES)
    process = detect_meters(
        gpus=False, rapl_root=tmp_path, cpu_estimate="process", watts_per_core=4.0
    )
    assert process["cpu-estimate:process@4W-per-cpu"].method is EnergyMethod.ESTIMATED
    off = detect_meters(gpus=False, rapl=False, cpu_estimate="off")
    assert len(off) == 0


def test_this_machine_reports_what_it_lacks():
    """This CI box has no GPU and no RAPL: nulls with reasons plus the CPU estimate."""
    with detect_meters(rapl_root="/nonexistent/powercap") as meters:
        gpu = [m for m in meters if m.boundary is EnergyBoundary.GPU]
        assert gpu, "a GPU boundary is always reported, real or null"
        assert any(isinstance(m, CpuTimeMeter) for m in meters)
        meters.begin_window("w")
        window = meters.end_window("w")
    for component in window.components:
        assert component.joules is not None or component.missing_reason


def test_import_is_light_and_layered():
    code = (
        "import sys, joulelens.meters, joulelens.meters.fake\n"
        "heavy = [m for m in ('pynvml', 'psutil', 'torch') if m in sys.modules]\n"
        "higher = ('joulelens.measure', 'joulelens.analysis', 'joulelens.report',"
        " 'joulelens.cli')\n"
        "upper = [m for m in sys.modules if m.startswith(higher)]\n"
        "print(heavy, upper)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
