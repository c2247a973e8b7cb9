"""Several meters read as one: windows per device, then sums per boundary."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType

from joulelens.core.boundaries import boundary_totals
from joulelens.core.clock import now_s
from joulelens.core.windows import WindowEnergy
from joulelens.errors import MeterError
from joulelens.meters.base import Clock, Meter, Reading
from joulelens.meters.windows import abandon_window, close_window, open_window
from joulelens.records.schema import EnergyBoundary


class MeterSet:
    """A composite of meters (GPUs, RAPL zones, CPU estimate) and the keeper of their windows.

    Windows are named and may nest or overlap; each starts from one reading per meter.

    ``notes`` says what detection found missing or doubtful (e.g. ``CUDA_VISIBLE_DEVICES``
    entries CUDA ignores), followed by what meters noted since (a sensor dropped mid-run, a
    module-scope power reading); copy them into the run record's warnings after measuring.
    An empty set is valid: its windows have no components and no totals.
    """

    def __init__(
        self,
        meters: Iterable[Meter],
        *,
        notes: Iterable[str] = (),
        on_close: Iterable[Callable[[], None]] = (),
        clock: Clock = now_s,
    ) -> None:
        self.meters: tuple[Meter, ...] = tuple(meters)
        names = [m.name for m in self.meters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"meter names must be unique, repeated: {', '.join(duplicates)}")
        self._notes: tuple[str, ...] = tuple(notes)
        self._on_close = list(on_close)
        self._clock = clock
        # window name -> (when it opened, each meter's first reading)
        self._open: dict[str, tuple[float, dict[str, Reading]]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MeterSet({', '.join(m.name for m in self.meters)})"

    @property
    def notes(self) -> tuple[str, ...]:
        meter_notes = [n for m in self.meters for n in getattr(m, "notes", ())]
        return tuple(dict.fromkeys([*self._notes, *meter_notes]))

    def add_note(self, note: str) -> None:
        """A note found after detection (e.g. which processes the CPU estimate covers)."""
        self._notes = (*self._notes, note)

    def __iter__(self) -> Iterator[Meter]:
        return iter(self.meters)

    def __len__(self) -> int:
        return len(self.meters)

    def __getitem__(self, name: str) -> Meter:
        for meter in self.meters:
            if meter.name == name:
                return meter
        raise KeyError(name)

    @property
    def boundaries(self) -> tuple[EnergyBoundary, ...]:
        """Boundaries covered by at least one meter, in enum order."""
        present = {m.boundary for m in self.meters}
        return tuple(b for b in EnergyBoundary if b in present)

    def begin_window(self, name: str) -> None:
        with self._lock:
            if name in self._open:
                raise MeterError(f"window {name!r} is already open")
        begun: dict[str, Reading] = {}
        try:
            for meter in self.meters:
                begun[meter.name] = open_window(meter)
        except BaseException:
            for meter in self.meters:  # leave no half-open window behind
                if meter.name in begun:
                    abandon_window(meter)
            raise
        with self._lock:
            if name in self._open:  # opened meanwhile by another thread
                for meter in self.meters:
                    abandon_window(meter)
                raise MeterError(f"window {name!r} is already open")
            self._open[name] = (self._clock(), begun)

    def end_window(self, name: str) -> WindowEnergy:
        """Close ``name`` on every meter; one failure still closes the rest, then raises."""
        with self._lock:
            opened = self._open.pop(name, None)
        if opened is None:
            raise MeterError(f"no open window named {name!r}")
        begun_s, begun = opened
        results: list[WindowEnergy] = []
        failure: MeterError | None = None
        for meter in self.meters:
            try:
                results.append(close_window(meter, begun[meter.name], name))
            except MeterError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        components = tuple(c for r in results for c in r.components)
        if results:
            start_s = min(r.start_s for r in results)
            end_s = max(r.end_s for r in results)
        else:
            start_s, end_s = begun_s, self._clock()
        return WindowEnergy(
            name=name,
            start_s=start_s,
            end_s=end_s,
            components=components,
            totals=boundary_totals(components),
            warnings=tuple(w for r in results for w in r.warnings),
        )

    def close(self) -> None:
        for meter in self.meters:
            meter.close()
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()

    def __enter__(self) -> MeterSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
