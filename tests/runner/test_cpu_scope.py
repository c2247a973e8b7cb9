"""The CPU estimate charges the processes doing the inference, not the whole machine, and
keeps the machine-wide figure (and a measured package's share) beside the headline."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from joulelens.measure.cpu_share import ATTRIBUTED_NAME, MACHINE_PREFIX, cpu_context
from joulelens.meters import CpuTimeMeter, MeterSet
from joulelens.records import EnergyBoundary, EnergyComponent, EnergyMethod
from joulelens.records.schema import TimelineSample
from joulelens.runner import run_one
from joulelens.runner.cpu_scope import cpu_estimate, endpoint_pids
from joulelens.store import Store
from runner.conftest import ServerProcess, endpoint_config

SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.fixture
def neighbour() -> Iterator[int]:
    """A busy loop that is not our descendant (its parent shell exits at once)."""
    out = subprocess.run(
        ["sh", "-c", f'{sys.executable} -c "{SPIN.format(s=30)}" >/dev/null 2>&1 & echo $!'],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(out.stdout.strip())
    yield pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


def test_a_neighbours_busy_core_is_not_charged(neighbour: int) -> None:
    meter = CpuTimeMeter("process", watts_per_core=10.0)
    assert meter.pids == (os.getpid(),)
    machine_before = meter.machine_cpu_seconds()
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    _spin(0.4)
    ours = meter_set.end_window("w").components[0].joules
    machine = (meter.machine_cpu_seconds() - machine_before) * 10.0
    assert ours is not None and 3.0 <= ours <= 6.0  # our 0.4 CPU-s at 10 W, 10 ms ticks
    assert machine > ours + 2.0  # the neighbour's core shows only machine-wide
    assert "and its child processes" in meter.describe()


def test_several_process_trees(neighbour: int) -> None:
    meter = CpuTimeMeter("process", watts_per_core=1.0, pid=[os.getpid(), neighbour])
    meter_set = MeterSet([meter])
    meter_set.begin_window("w")
    _spin(0.3)
    joules = meter_set.end_window("w").components[0].joules
    assert joules is not None and joules >= 0.5  # ours plus the neighbour's time meanwhile


def test_an_endpoints_processes_are_found_by_its_port(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    assert server.proc is not None
    pids, note = endpoint_pids(server.url + "/v1")
    assert pids == [server.proc.pid] and note is None
    pids, note = endpoint_pids("http://192.0.2.1:8000")  # TEST-NET-1: never this machine
    assert pids == [] and note is not None and "not this machine" in note


def test_an_endpoint_run_charges_the_servers_process_tree(
    tmp_store: Store, server_process: Callable[..., ServerProcess]
) -> None:
    server = server_process()
    assert server.proc is not None
    record = run_one(endpoint_config(server.url, 4), tmp_store)
    scope = record.config["cpu_estimate"]
    assert scope["scope"] == "process" and scope["pids"] == [server.proc.pid]
    names = {c.name: c for c in record.energy_components}
    machine = next(c for n, c in names.items() if n.startswith(MACHINE_PREFIX))
    headline = names["total:cpu"]
    assert machine.joules is not None and headline.joules is not None
    assert machine.joules >= headline.joules  # the machine includes the server, and more
    assert record.energy_method is EnergyMethod.ESTIMATED
    assert record.steady_state_energy_joules == pytest.approx(headline.joules)


def test_a_remote_endpoint_falls_back_to_the_machine_with_a_note(
    tmp_store: Store, sse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "joulelens.runner.served.endpoint_pids", lambda url: ([], "it is elsewhere")
    )
    record = run_one(endpoint_config(sse_url, 2), tmp_store)
    assert record.config["cpu_estimate"]["scope"] == "system"
    assert any("counts the whole machine" in w and "elsewhere" in w for w in record.warnings)
    assert not any(c.name.startswith(MACHINE_PREFIX) for c in record.energy_components)


def test_with_rapl_the_process_share_is_attributed_beside_the_package() -> None:
    package = EnergyComponent(
        name="total:cpu", joules=100.0, boundary=EnergyBoundary.CPU, method=EnergyMethod.COUNTER
    )
    config = {"steady_state": {"start_s": 1.0, "end_s": 3.0}}
    timeline = [
        TimelineSample(t_s=t, series=series, value=value)
        for t in (0.0, 4.0)
        for series, value in (
            ("cpu_busy_seconds:machine", 8.0 * t / 4),  # 2 cores busy
            ("cpu_busy_seconds:processes", 2.0 * t / 4),  # a quarter of it ours
        )
    ]
    with MeterSet([CpuTimeMeter("process")]) as meters:
        estimate = cpu_estimate(meters)
    assert estimate is not None
    extra, info = cpu_context(estimate, [package], config, timeline)
    names = {c.name: c for c in [package, *extra]}
    assert names[ATTRIBUTED_NAME].joules == pytest.approx(25.0)
    assert names[ATTRIBUTED_NAME].method is EnergyMethod.ATTRIBUTED
    assert names["total:cpu"].joules == 100.0  # the measured package stays the headline
    assert info["machine_busy_cpu_s"] == pytest.approx(4.0)
