"""CPU package and DRAM energy from RAPL through the Linux powercap sysfs tree.

Layout (Intel, and AMD Zen through the same ``intel-rapl`` driver)::

    <root>/intel-rapl:0/{name,energy_uj,max_energy_range_uj}    name "package-0"
    <root>/intel-rapl:0:0/...                                     name "dram" (or "core", ...)

Only ``package-N`` (boundary cpu) and ``dram`` (boundary dram) zones are read: ``core`` and
``uncore`` are parts of a package, and ``psys`` covers an undefined platform scope. The
root is a parameter so tests use a fake tree under a temporary directory.

``energy_uj`` wraps at ``max_energy_range_uj`` (often 2^32 µJ, about 4.3 kJ, or 262 kJ). Each
read folds the raw value into a software counter correcting at most one wrap per read, so
reads must come more often than the counter can wrap: a timeline sampler at 10 Hz does this,
and a window whose reads were too far apart carries a warning.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from joulelens.core.clock import now_s
from joulelens.errors import MeterError
from joulelens.meters.base import (
    Clock,
    Reading,
    SeriesSink,
    UnavailableMeter,
)
from joulelens.meters.units import counter_delta, uj_to_j
from joulelens.records.schema import EnergyBoundary, EnergyMethod

DEFAULT_RAPL_ROOT = Path("/sys/class/powercap")
RAPL_ZONE_PREFIXES = ("intel-rapl:",)
RAPL_UPDATE_PERIOD_S = 0.001
# Power we assume a zone can never exceed, to know how often reads must come to see every
# wrap: at 500 W a 262 kJ counter wraps after about 9 minutes, a 4.3 kJ one after 8.6 s.
ASSUMED_MAX_ZONE_POWER_W = 500.0

_PACKAGE = re.compile(r"package-(\d+)$")


@dataclass(frozen=True, slots=True)
class RaplZone:
    """One RAPL zone worth reading: ``name`` is ``cpu-package:N`` or ``dram:N``."""

    path: Path
    name: str
    boundary: EnergyBoundary


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def _socket_of(zone_dir: Path, root: Path) -> int | None:
    """The package index a zone belongs to, from its own or its parent zone's name."""
    for candidate in (zone_dir, root / zone_dir.name.rsplit(":", 1)[0]):
        try:
            match = _PACKAGE.match(_read_text(candidate / "name"))
        except OSError:
            continue
        if match:
            return int(match.group(1))
    return None


def find_rapl_zones(
    root: Path = DEFAULT_RAPL_ROOT, prefixes: tuple[str, ...] = RAPL_ZONE_PREFIXES
) -> list[RaplZone]:
    """Package and DRAM zones under ``root``, packages first, each named once."""
    zones: list[RaplZone] = []
    seen: set[str] = set()
    dirs = sorted(p for p in root.glob("*") if p.name.startswith(prefixes)) if root.is_dir() else []
    for zone_dir in dirs:
        try:
            kind = _read_text(zone_dir / "name")
        except OSError:
            continue
        package = _PACKAGE.match(kind)
        if package:
            name, boundary = f"cpu-package:{package.group(1)}", EnergyBoundary.CPU
        elif kind == "dram":
            socket = _socket_of(zone_dir, root)
            index = (
                socket
                if socket is not None
                else sum(z.boundary is EnergyBoundary.DRAM for z in zones)
            )
            name, boundary = f"dram:{index}", EnergyBoundary.DRAM
        else:
            continue
        if name not in seen:
            seen.add(name)
            zones.append(RaplZone(zone_dir, name, boundary))
    zones.sort(key=lambda z: (z.boundary is not EnergyBoundary.CPU, z.name))
    return zones


class RaplZoneMeter:
    """One RAPL zone as a cumulative, wrap-corrected counter (method ``counter``)."""

    method = EnergyMethod.COUNTER
    offers_power = False
    update_period_s = RAPL_UPDATE_PERIOD_S

    def __init__(
        self,
        zone: RaplZone,
        *,
        clock: Clock = now_s,
        assumed_max_power_w: float = ASSUMED_MAX_ZONE_POWER_W,
    ) -> None:
        self.zone = zone
        self.name = zone.name
        self.boundary = zone.boundary
        self._clock = clock
        self._energy_file = zone.path / "energy_uj"
        self.max_energy_range_uj = int(_read_text(zone.path / "max_energy_range_uj"))
        # Held open and re-read with pread at offset 0 (sysfs regenerates the value):
        # about 1 µs a read instead of 10-20 µs for open/read/close at 10 Hz per zone.
        self._fd: int | None = os.open(self._energy_file, os.O_RDONLY)
        self.min_wrap_s = uj_to_j(self.max_energy_range_uj) / assumed_max_power_w
        self._lock = threading.Lock()
        try:
            self._last_raw_uj = self._read_raw()
        except MeterError:
            self.close()
            raise
        self._last_t_s = clock()
        self._accumulated_uj = 0
        self._long_gaps: list[tuple[float, float]] = []

    def __repr__(self) -> str:
        return f"RaplZoneMeter({self.name!r}, {str(self.zone.path)!r})"

    def _read_raw(self) -> int:
        if self._fd is None:
            raise MeterError(f"{self.name}: meter is closed")
        try:
            return int(os.pread(self._fd, 32, 0))
        except (OSError, ValueError) as exc:
            raise MeterError(f"{self.name}: cannot read {self._energy_file}: {exc}") from exc

    def read(self) -> Reading:
        # Read under the lock: two threads folding raw values out of order would see a wrap.
        with self._lock:
            raw_uj = self._read_raw()
            t_s = self._clock()
            self._accumulated_uj += counter_delta(
                self._last_raw_uj, raw_uj, self.max_energy_range_uj
            )
            if t_s - self._last_t_s > self.min_wrap_s:
                self._long_gaps.append((self._last_t_s, t_s))
            self._last_raw_uj, self._last_t_s = raw_uj, t_s
            return Reading(t_s, uj_to_j(self._accumulated_uj))

    def sample(self, t_s: float, sink: SeriesSink, *, state: bool = True) -> None:
        return None

    def window_warnings(self, start_s: float, end_s: float) -> tuple[str, ...]:
        with self._lock:
            gaps = [(a, b) for a, b in self._long_gaps if b > start_s and a < end_s]
        if not gaps:
            return ()
        worst = max(b - a for a, b in gaps)
        return (
            f"{self.name}: reads were up to {worst:.0f} s apart, longer than the "
            f"{self.min_wrap_s:.0f} s this counter may need to wrap; a second wrap between "
            "reads would go unnoticed (run a TimelineSampler during long windows)",
        )

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _unreadable_reason(zone: RaplZone, exc: Exception) -> str:
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    if isinstance(cause, PermissionError):
        return (
            f"permission denied reading {cause.filename or zone.path} (RAPL counters are "
            "root-only since Linux 5.10; run as root or grant read access)"
        )
    return f"cannot read RAPL zone {zone.path}: {exc}"


def open_rapl_meters(
    root: Path = DEFAULT_RAPL_ROOT,
    *,
    clock: Clock = now_s,
    assumed_max_power_w: float = ASSUMED_MAX_ZONE_POWER_W,
) -> list[RaplZoneMeter | UnavailableMeter]:
    """A meter per package and DRAM zone; unreadable or absent ones as null with a reason.

    No zones at all gives ``cpu-package`` and ``dram`` :class:`UnavailableMeter` s; packages
    without a DRAM zone (common on client CPUs) give an unavailable ``dram``.
    """
    zones = find_rapl_zones(root)
    meters: list[RaplZoneMeter | UnavailableMeter] = []
    if not zones:
        reason = f"no RAPL powercap zones under {root}"
        return [
            UnavailableMeter(
                "cpu-package", EnergyBoundary.CPU, EnergyMethod.COUNTER, reason, clock=clock
            ),
            UnavailableMeter(
                "dram", EnergyBoundary.DRAM, EnergyMethod.COUNTER, reason, clock=clock
            ),
        ]
    for zone in zones:
        try:
            meters.append(RaplZoneMeter(zone, clock=clock, assumed_max_power_w=assumed_max_power_w))
        except (OSError, ValueError, MeterError) as exc:
            reason = _unreadable_reason(zone, exc)
            meters.append(
                UnavailableMeter(
                    zone.name, zone.boundary, EnergyMethod.COUNTER, reason, clock=clock
                )
            )
    if not any(z.boundary is EnergyBoundary.DRAM for z in zones):
        reason = f"no RAPL dram zone under {root} (many client CPUs have none)"
        meters.append(
            UnavailableMeter("dram", EnergyBoundary.DRAM, EnergyMethod.COUNTER, reason, clock=clock)
        )
    return meters
