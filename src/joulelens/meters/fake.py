"""Fakes at the hardware boundary, for tests here and in other parts of joulelens.

* :class:`FakeClock`: a clock tests advance by hand (``sleep`` advances it too).
* :class:`PowerTrace`: piecewise-linear synthetic power with its exact energy integral.
* :class:`FakeGpu`, :class:`FakeNvml`: fake GPUs behind a stand-in for the ``pynvml`` module
  (:mod:`joulelens.meters.fake_nvml`: per-field failures, GPUs without permission, lost GPUs,
  PCI order unlike NVML order, MIG, module-scope power); energy counter (mJ, refreshed every
  ``counter_period_s``) and power (mW) follow a trace.
* :class:`FakeNvmlBackend`: the real ``PynvmlBackend`` over a :class:`FakeNvml`.
* :func:`fake_gpu_meters`: a :class:`MeterSet` of fake GPUs, e.g. for measurement tests::

      clock = FakeClock()
      meters = fake_gpu_meters([FakeGpu("GPU-aaaa", PowerTrace.constant(300.0))], clock)
      meters.begin_window("w"); clock.advance(10.0); meters.end_window("w")  # 3000 J

* :class:`FakeRaplTree`: a powercap sysfs tree under a directory, counters set by hand.

Only hardware is faked: the meters, windows, totals and sampler under test are the real ones.
"""

from __future__ import annotations

import dataclasses
import itertools
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joulelens.meters.base import Clock
from joulelens.meters.fake_nvml import FakeGpu, FakeNvml, NVMLError
from joulelens.meters.meterset import MeterSet
from joulelens.meters.nvml_backend import PynvmlBackend

__all__ = [
    "CLIENT_ZONES",
    "SERVER_ZONES",
    "FakeClock",
    "FakeGpu",
    "FakeNvml",
    "FakeNvmlBackend",
    "FakeRaplTree",
    "FakeRaplZone",
    "NVMLError",
    "PowerTrace",
    "fake_gpu_meters",
]


class FakeClock:
    """Seconds that move only when told; callable like :func:`joulelens.core.clock.now_s`."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.t_s = start_s

    def __call__(self) -> float:
        return self.t_s

    def advance(self, dt_s: float) -> None:
        if dt_s < 0:
            raise ValueError(f"a clock cannot go back ({dt_s} s)")
        self.t_s += dt_s

    def sleep(self, dt_s: float) -> None:
        self.advance(dt_s)


@dataclass(frozen=True, slots=True)
class PowerTrace:
    """Power in W, linear between ``(t_s, watts)`` points and constant outside them."""

    points: tuple[tuple[float, float], ...]
    _times: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a power trace needs at least one point")
        times = tuple(t for t, _ in self.points)
        if list(times) != sorted(times):
            raise ValueError("power trace points must be in time order")
        object.__setattr__(self, "_times", times)

    @classmethod
    def constant(cls, watts: float) -> PowerTrace:
        return cls(((0.0, watts),))

    @classmethod
    def square(
        cls, low_w: float, high_w: float, start_s: float, period_s: float, cycles: int
    ) -> PowerTrace:
        """Alternating half periods of ``high_w`` and ``low_w`` with 1 ms edges."""
        edge_s = 1e-3
        points: list[tuple[float, float]] = [(start_s, low_w)]
        for k in range(cycles):
            t = start_s + k * period_s
            points += [(t + edge_s, high_w), (t + period_s / 2, high_w)]
            points += [(t + period_s / 2 + edge_s, low_w), (t + period_s, low_w)]
        return cls(tuple(points))

    def power_w(self, t_s: float) -> float:
        i = bisect_right(self._times, t_s)
        if i == 0:
            return self.points[0][1]
        if i == len(self.points):
            return self.points[-1][1]
        (t0, w0), (t1, w1) = self.points[i - 1], self.points[i]
        return w0 + (w1 - w0) * (t_s - t0) / (t1 - t0)

    def energy_j(self, start_s: float, end_s: float) -> float:
        """The exact integral from ``start_s`` to ``end_s`` (linear pieces: trapezoids)."""
        inner = [t for t, _ in self.points if start_s < t < end_s]
        knots = [start_s, *inner, end_s]
        pieces = itertools.pairwise(knots)
        return sum(0.5 * (self.power_w(a) + self.power_w(b)) * (b - a) for a, b in pieces)


class FakeNvmlBackend(PynvmlBackend):
    """The real :class:`~joulelens.meters.nvml_backend.PynvmlBackend` over a :class:`FakeNvml`
    of ``gpus`` (NVML index = list index); ``.nvml`` is the stand-in, ``.calls`` its call count."""

    def __init__(self, gpus: Sequence[FakeGpu], clock: Clock, **nvml: Any) -> None:
        super().__init__(FakeNvml(gpus, clock, **nvml))
        self.closed = False

    @property
    def calls(self) -> Counter[str]:
        calls: Counter[str] = self.nvml.calls
        return calls

    def close(self) -> None:
        super().close()
        self.closed = True


def fake_gpu_meters(
    gpus: Sequence[FakeGpu],
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
    poll_period_s: float | None = None,
    probe_s: float = 0.0,
) -> MeterSet:
    """A :class:`MeterSet` of fake GPUs only (no RAPL, no CPU estimate), all visible ones.

    ``poll_period_s=None`` (default) integrates power only when read, which keeps fake-clock
    tests deterministic; ``environ`` may carry ``CUDA_VISIBLE_DEVICES``; ``probe_s=0`` keeps
    the nominal counter period (a probe needs a clock that moves while polling).
    """
    from joulelens.meters.detect import detect_meters

    return detect_meters(
        rapl=False,
        cpu_estimate="off",
        gpu_backend=FakeNvmlBackend(gpus, clock),
        environ={} if environ is None else environ,
        clock=clock,
        gpu_poll_period_s=poll_period_s,
        gpu_probe_s=probe_s,
    )


@dataclass(slots=True)
class FakeRaplZone:
    """One zone directory: ``zone_id`` like ``intel-rapl:0:0``, ``name`` like ``dram``.

    ``energy_uj=None`` leaves the counter file out (a zone the kernel lists but cannot read).
    """

    zone_id: str
    name: str
    energy_uj: int | None = 0
    max_energy_range_uj: int = 262_143_328_850


SERVER_ZONES = (
    FakeRaplZone("intel-rapl:0", "package-0"),
    FakeRaplZone("intel-rapl:0:0", "dram"),
    FakeRaplZone("intel-rapl:1", "package-1"),
    FakeRaplZone("intel-rapl:1:0", "dram"),
)
CLIENT_ZONES = (
    FakeRaplZone("intel-rapl:0", "package-0", max_energy_range_uj=2**32 - 1),
    FakeRaplZone("intel-rapl:0:0", "core", max_energy_range_uj=2**32 - 1),
    FakeRaplZone("intel-rapl:0:1", "uncore", max_energy_range_uj=2**32 - 1),
    FakeRaplZone("intel-rapl:1", "psys", max_energy_range_uj=2**32 - 1),
)


class FakeRaplTree:
    """A powercap tree like ``/sys/class/powercap`` (zones flat, as its symlinks are)."""

    def __init__(self, root: Path, zones: Sequence[FakeRaplZone] = SERVER_ZONES) -> None:
        self.root = root
        self.zones = {z.zone_id: dataclasses.replace(z) for z in zones}
        (root / "intel-rapl").mkdir(parents=True, exist_ok=True)  # the control type, not a zone
        for zone in self.zones.values():
            zone_dir = root / zone.zone_id
            zone_dir.mkdir(parents=True, exist_ok=True)
            (zone_dir / "name").write_text(zone.name + "\n")
            (zone_dir / "max_energy_range_uj").write_text(f"{zone.max_energy_range_uj}\n")
            if zone.energy_uj is not None:
                self.set_energy_uj(zone.zone_id, zone.energy_uj)

    def set_energy_uj(self, zone_id: str, energy_uj: int) -> None:
        zone = self.zones[zone_id]
        zone.energy_uj = energy_uj
        (self.root / zone_id / "energy_uj").write_text(f"{energy_uj}\n")

    def add_energy_j(self, zone_id: str, joules: float) -> None:
        """Advance a counter by ``joules``, wrapping like the hardware does."""
        zone = self.zones[zone_id]
        current = zone.energy_uj or 0
        self.set_energy_uj(
            zone_id, (current + round(joules * 1e6)) % (zone.max_energy_range_uj + 1)
        )
