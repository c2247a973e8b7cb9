"""Converters from what the meters and the scraper produce to the compile step's inputs.

The compile step owns its input types (:mod:`.energy`, :mod:`.server`); these functions
are the only place that knows the meters' and the scraper's shapes. A window the meters
measured and their idle power need no converting: both sides share
:class:`~joulelens.core.windows.WindowEnergy` and :class:`~joulelens.core.idle.IdlePower`.
Meters, their timeline and the scraper are taken by their attributes (duck typing), so
measurement imports neither the meters nor the workloads package: the runner, above both,
hands one to the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from joulelens.core.windows import NamedSource
from joulelens.measure.energy import EnergyReadings, EnergySource
from joulelens.measure.series import SampledSeries
from joulelens.measure.server import KV_CACHE_USAGE, RUNNING, ServerMetrics


class TimelineLike(Protocol):
    """What this module reads of a :class:`joulelens.meters.Timeline`."""

    @property
    def series_names(self) -> list[str]: ...
    def series(self, name: str) -> tuple[Sequence[float], Sequence[float]]: ...


def readings_from_meters(
    meters: Iterable[NamedSource], timeline: TimelineLike, *, notes: Iterable[str] = ()
) -> EnergyReadings:
    """Every meter as an :class:`EnergySource`, every timeline series as a series.

    Pass ``meters=meter_set`` and ``notes=meter_set.notes``; ``timeline`` is the
    :class:`TimelineSampler`'s after ``stop()``. A meter known to be absent keeps its reason;
    one that never produced an energy sample is null with "no energy readings".
    """
    sources = []
    for meter in meters:
        # A meter known to be absent (UnavailableMeter) has available False and a reason.
        reason = None if getattr(meter, "available", True) else getattr(meter, "reason", None)
        sources.append(
            EnergySource(
                name=meter.name,
                boundary=meter.boundary,
                method=meter.method,
                update_period_s=meter.update_period_s,
                missing_reason=reason,
            )
        )
    series = {}
    for name in timeline.series_names:
        times, values = timeline.series(name)
        series[name] = SampledSeries.of(times, values)
    return EnergyReadings(tuple(sources), series, tuple(notes))


class _Gauge(Protocol):
    @property
    def times_s(self) -> Iterable[float]: ...
    @property
    def values(self) -> Iterable[float]: ...


class ScraperLike(Protocol):
    """The part of :class:`joulelens.workloads.MetricsScraper` this module reads."""

    def running_batch_series(self) -> _Gauge | None: ...
    def kv_cache_series(self) -> _Gauge | None: ...
    def missing_reason(
        self, name: str, t0_s: float | None = None, t1_s: float | None = None
    ) -> str: ...


def server_metrics_from_scraper(scraper: ScraperLike) -> ServerMetrics:
    """Running-batch and KV-cache series of a stopped scraper, with reasons for gaps."""
    series: dict[str, SampledSeries | None] = {}
    missing: dict[str, str] = {}
    for name, gauge in (
        (RUNNING, scraper.running_batch_series()),
        (KV_CACHE_USAGE, scraper.kv_cache_series()),
    ):
        if gauge is None or not list(gauge.times_s):
            series[name] = None
            missing[name] = scraper.missing_reason(name)
        else:
            series[name] = SampledSeries.of(list(gauge.times_s), list(gauge.values))
    return ServerMetrics(
        running=series[RUNNING], kv_cache_usage=series[KV_CACHE_USAGE], missing=missing
    )
