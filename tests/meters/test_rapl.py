"""RAPL through a fake powercap tree under tmp_path (no patching of ``open``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joulelens.errors import MeterError
from joulelens.meters import RaplZoneMeter, UnavailableMeter
from joulelens.meters.fake import (
    CLIENT_ZONES,
    SERVER_ZONES,
    FakeClock,
    FakeRaplTree,
    FakeRaplZone,
)
from joulelens.meters.meterset import MeterSet
from joulelens.meters.rapl import find_rapl_zones, open_rapl_meters
from joulelens.records.schema import EnergyBoundary, EnergyMethod


def test_server_layout_finds_packages_and_dram(tmp_path: Path):
    FakeRaplTree(tmp_path, SERVER_ZONES)
    zones = find_rapl_zones(tmp_path)
    assert [(z.name, z.boundary) for z in zones] == [
        ("cpu-package:0", EnergyBoundary.CPU),
        ("cpu-package:1", EnergyBoundary.CPU),
        ("dram:0", EnergyBoundary.DRAM),
        ("dram:1", EnergyBoundary.DRAM),
    ]


def test_client_layout_skips_core_uncore_psys_and_reports_no_dram(tmp_path: Path):
    FakeRaplTree(tmp_path, CLIENT_ZONES)
    meters = open_rapl_meters(tmp_path, clock=FakeClock())
    assert [m.name for m in meters] == ["cpu-package:0", "dram"]
    assert isinstance(meters[1], UnavailableMeter)
    assert "no RAPL dram zone" in meters[1].reason


def test_no_powercap_gives_null_package_and_dram(tmp_path: Path):
    meters = open_rapl_meters(tmp_path / "absent", clock=FakeClock())
    assert [(m.name, type(m)) for m in meters] == [
        ("cpu-package", UnavailableMeter),
        ("dram", UnavailableMeter),
    ]


def test_window_energy_in_joules_from_microjoules(tmp_path: Path):
    tree = FakeRaplTree(tmp_path, SERVER_ZONES)
    clock = FakeClock()
    meters = MeterSet(open_rapl_meters(tmp_path, clock=clock), clock=clock)
    meters.begin_window("w")
    clock.advance(10.0)
    tree.add_energy_j("intel-rapl:0", 1200.5)
    tree.add_energy_j("intel-rapl:1", 800.0)
    tree.add_energy_j("intel-rapl:0:0", 150.0)
    tree.add_energy_j("intel-rapl:1:0", 50.25)
    window = meters.end_window("w")
    by_name = {c.name: c.joules for c in window.components}
    assert by_name == pytest.approx(
        {"cpu-package:0": 1200.5, "cpu-package:1": 800.0, "dram:0": 150.0, "dram:1": 50.25}
    )
    totals = {t.boundary: t.joules for t in window.totals}
    assert totals[EnergyBoundary.CPU] == pytest.approx(2000.5)
    assert totals[EnergyBoundary.DRAM] == pytest.approx(200.25)
    assert totals[EnergyBoundary.CPU_DRAM] == pytest.approx(2200.75)
    assert all(t.method is EnergyMethod.COUNTER for t in window.totals)


@pytest.mark.parametrize(
    ("start_uj", "steps_j", "max_uj"),
    [
        pytest.param(0, [100.0, 100.0], 2**32 - 1, id="no-wrap"),
        pytest.param(4_294_000_000, [3.0], 2**32 - 1, id="wrap-in-first-step"),
        pytest.param(10, [4000.0, 4000.0, 4000.0], 2**32 - 1, id="wrap-every-step"),
        pytest.param(262_143_000_000, [1.0, 500.0], 262_143_328_850, id="server-range"),
    ],
)
def test_wraps_between_reads_are_corrected(tmp_path: Path, start_uj, steps_j, max_uj):
    tree = FakeRaplTree(tmp_path, [FakeRaplZone("intel-rapl:0", "package-0", start_uj, max_uj)])
    clock = FakeClock()
    meter = open_rapl_meters(tmp_path, clock=clock)[0]
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    for step_j in steps_j:
        clock.advance(1.0)
        tree.add_energy_j("intel-rapl:0", step_j)
        meter.read()  # a sampler's read: folds at most one wrap
    window = meter_set.end_window("w")
    assert window.components[0].joules == pytest.approx(sum(steps_j), abs=1e-6)
    assert window.warnings == ()


def test_reads_too_far_apart_warn_about_missed_wraps(tmp_path: Path):
    tree = FakeRaplTree(tmp_path, [FakeRaplZone("intel-rapl:0", "package-0", 0, 2**32 - 1)])
    clock = FakeClock()
    meter = open_rapl_meters(tmp_path, clock=clock, assumed_max_power_w=500.0)[0]
    assert isinstance(meter, RaplZoneMeter)
    assert meter.min_wrap_s == pytest.approx(4294.967295 / 500.0)
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    clock.advance(60.0)  # 60 s at 150 W = 9 kJ: two wraps of a 4.3 kJ counter
    tree.add_energy_j("intel-rapl:0", 9000.0)
    window = meter_set.end_window("w")
    assert window.components[0].joules != pytest.approx(9000.0)  # the documented limit
    assert any("second wrap" in w for w in window.warnings)


def test_zone_without_counter_is_null_with_reason(tmp_path: Path):
    zones = [
        FakeRaplZone("intel-rapl:0", "package-0", energy_uj=None),
        FakeRaplZone("intel-rapl:0:0", "dram", energy_uj=5),
    ]
    FakeRaplTree(tmp_path, zones)
    clock = FakeClock()
    meters = MeterSet(open_rapl_meters(tmp_path, clock=clock), clock=clock)
    meters.begin_window("w")
    clock.advance(2.0)
    window = meters.end_window("w")
    package = window.component("cpu-package:0")
    assert package.joules is None
    assert "energy_uj" in str(package.missing_reason)
    assert window.component("dram:0").joules == 0.0  # readable and idle: a real zero
    cpu_dram = window.total(EnergyBoundary.CPU_DRAM)
    assert cpu_dram is not None and cpu_dram.joules is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_names_the_kernel_policy(tmp_path: Path):
    FakeRaplTree(tmp_path, [FakeRaplZone("intel-rapl:0", "package-0", 7)])
    (tmp_path / "intel-rapl:0" / "energy_uj").chmod(0o000)
    meter = open_rapl_meters(tmp_path, clock=FakeClock())[0]
    assert isinstance(meter, UnavailableMeter)
    assert "permission denied" in meter.reason and "root-only" in meter.reason


def test_unreadable_counter_mid_run_fails_the_window(tmp_path: Path):
    FakeRaplTree(tmp_path, [FakeRaplZone("intel-rapl:0", "package-0", 7)])
    meter = open_rapl_meters(tmp_path, clock=FakeClock())[0]
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("")  # what a dying zone can return
    with pytest.raises(MeterError, match="cannot read"):
        meter_set.end_window("w")
    meter.close()
    with pytest.raises(MeterError, match="closed"):
        meter.read()


def test_permission_error_maps_to_kernel_policy_reason(tmp_path: Path):
    """The mapping itself, for machines where tests run as root and chmod cannot bite."""
    from joulelens.meters.rapl import RaplZone, _unreadable_reason

    zone = RaplZone(tmp_path / "intel-rapl:0", "cpu-package:0", EnergyBoundary.CPU)
    denied = PermissionError(13, "Permission denied", str(zone.path / "energy_uj"))
    assert "root-only since Linux 5.10" in _unreadable_reason(zone, denied)
    wrapped = MeterError("cannot read")
    wrapped.__cause__ = denied
    assert "permission denied" in _unreadable_reason(zone, wrapped)
    assert "root-only" not in _unreadable_reason(zone, FileNotFoundError(2, "gone"))
