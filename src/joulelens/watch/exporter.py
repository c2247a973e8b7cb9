"""The Prometheus side: a custom collector over the watcher's snapshot, and its HTTP server.

Names follow Prometheus conventions (``joulelens_`` prefix, base units, ``_total`` for
counters). Every energy figure carries ``boundary`` (gpu, cpu, dram, cpu+dram, ...) and
``method`` (counter, integrated, estimated); window figures carry ``window`` (10s, 1m, 5m).
A series whose value is unknown is absent, never 0: an endpoint that does not answer keeps
only ``joulelens_endpoint_up{endpoint} 0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from joulelens.errors import InputError
from joulelens.watch.config import ALL_ENDPOINTS
from joulelens.watch.reading import BatchLimit
from joulelens.watch.snapshot import Snapshot
from joulelens.watch.watcher import Watcher

ENERGY = ("endpoint", "boundary", "method")
WINDOWED = (*ENERGY, "window")


class WatchCollector(Collector):
    """Builds every ``joulelens_*`` family from one :class:`Snapshot` per scrape."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def collect(self) -> Iterator[Metric]:
        yield from families(self.watcher.snapshot())


def _gauge(name: str, doc: str, labels: tuple[str, ...], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels), unit=unit)


def families(snap: Snapshot) -> list[Metric]:
    """The metric families for one snapshot (pure: tests call it on a snapshot directly)."""
    out: list[Metric] = []
    out += _device_families(snap)
    out += _endpoint_families(snap)
    out += _window_families(snap)
    out += _self_families(snap)
    return out


def _device_families(snap: Snapshot) -> list[Metric]:
    energy = CounterMetricFamily(
        "joulelens_device_energy_joules",
        "Energy of one device since the exporter started, J.",
        labels=["device", "boundary", "method"],
    )
    power = _gauge(
        "joulelens_device_power_watts",
        "Mean power of one device over the window, W.",
        ("device", "boundary", "method", "window"),
    )
    tick = snap.tick
    if tick is not None:
        for device in snap.devices:
            joules = tick.energy_j.get(device.name)
            if joules is not None:
                energy.add_metric([device.name, device.boundary.value, device.method.value], joules)
    for dw in snap.device_windows:
        for c in dw.components:
            if c.joules is not None and dw.duration_s > 0:
                labels = [c.name, c.boundary.value, c.method.value, dw.window]
                power.add_metric(labels, c.joules / dw.duration_s)
    return [energy, power]


def _endpoint_families(snap: Snapshot) -> list[Metric]:
    up = _gauge("joulelens_endpoint_up", "1 if the server answered the last scrape.", ("endpoint",))
    energy = CounterMetricFamily(
        "joulelens_energy_joules",
        "Energy of an endpoint's devices since the exporter started, per boundary, J.",
        labels=list(ENERGY),
    )
    tokens = CounterMetricFamily(
        "joulelens_output_tokens",
        "Output tokens the server generated since the exporter started (restarts folded in).",
        labels=["endpoint"],
    )
    idle = _gauge(
        "joulelens_idle_power_watts",
        "Idle (static) power of an endpoint's devices, W, when an idle baseline is known.",
        ("endpoint", "boundary"),
    )
    tick = snap.tick
    labels = {s.label for s in snap.endpoints}
    alive = {s.label for s in snap.endpoints if s.up}
    for status in snap.endpoints:
        up.add_metric([status.label], 1.0 if status.up else 0.0)
    for owner in snap.owned:
        if owner in labels and owner not in alive:
            continue  # a server that does not answer: its series are absent
        for total in snap.totals(owner):
            energy.add_metric([owner, total.boundary.value, total.method.value], total.joules or 0)
        for boundary, watts in snap.idle_w.get(owner, {}).items():
            idle.add_metric([owner, boundary.value], watts)
    if tick is not None:
        token_totals = []
        for status in snap.endpoints:
            sample = tick.endpoint(status.label)
            if sample.up and sample.tokens is not None:
                tokens.add_metric([status.label], sample.tokens)
                token_totals.append(sample.tokens)
        all_up = len(token_totals) == len(snap.endpoints)
        if len(snap.endpoints) > 1 and all_up:
            tokens.add_metric([ALL_ENDPOINTS], sum(token_totals))
    return [up, energy, tokens, idle]


def _window_families(snap: Snapshot) -> list[Metric]:
    power = _gauge(
        "joulelens_power_watts", "Mean power over the window, per boundary, W.", WINDOWED
    )
    per_token = _gauge(
        "joulelens_energy_per_output_token_joules",
        "Energy per output token over the window, J (absent when no token was generated).",
        WINDOWED,
    )
    per_joule = _gauge(
        "joulelens_output_tokens_per_joule", "Output tokens per joule over the window.", WINDOWED
    )
    static = _gauge(
        "joulelens_static_energy_ratio",
        "Share of the window's energy the devices would have drawn idling (0..1).",
        WINDOWED,
    )
    throughput = _gauge(
        "joulelens_output_tokens_per_second",
        "Output tokens per second over the window.",
        ("endpoint", "window"),
    )
    running = _gauge(
        "joulelens_running_requests",
        "Mean running batch (requests in execution, summed over engines) over the window.",
        ("endpoint", "window"),
    )
    waiting = _gauge(
        "joulelens_waiting_requests",
        "Mean requests waiting in the scheduler's queue over the window.",
        ("endpoint", "window"),
    )
    kv = _gauge(
        "joulelens_kv_cache_usage_ratio",
        "Mean KV-cache usage over the window (0..1, averaged over engines).",
        ("endpoint", "window"),
    )
    limit = _gauge(
        "joulelens_batch_limit",
        "What limits the running batch in the window (1 for the current reading, else 0).",
        ("endpoint", "window", "limit"),
    )
    for w in snap.windows:
        if w.tokens is not None and w.duration_s > 0:
            throughput.add_metric([w.endpoint, w.window], w.tokens / w.duration_s)
        for total in w.energy:
            labels = [w.endpoint, total.boundary.value, total.method.value, w.window]
            power.add_metric(labels, w.power_w(total))
            _add(per_token, labels, w.joules_per_token(total))
            _add(per_joule, labels, w.tokens_per_joule(total))
            _add(static, labels, w.static_ratio(total))
        _add(running, [w.endpoint, w.window], w.running)
        _add(waiting, [w.endpoint, w.window], w.waiting)
        _add(kv, [w.endpoint, w.window], w.kv_usage)
        if w.reading is not None:
            for state in BatchLimit:
                value = 1.0 if state is w.reading.limit else 0.0
                limit.add_metric([w.endpoint, w.window, state.value], value)
    return [power, per_token, per_joule, static, throughput, running, waiting, kv, limit]


def _self_families(snap: Snapshot) -> list[Metric]:
    stamp = _gauge(
        "joulelens_sample_timestamp_seconds",
        "Unix time of the sample the served values come from.",
        (),
    )
    samples = CounterMetricFamily("joulelens_watch_samples", "Samples taken.", labels=[])
    missed = CounterMetricFamily(
        "joulelens_watch_missed_samples", "Samples skipped because one came late.", labels=[]
    )
    duration = _gauge(
        "joulelens_watch_sample_duration_seconds", "Wall time of the last sample, s.", ()
    )
    if snap.tick is not None:
        stamp.add_metric([], snap.tick.unix_s)
    samples.add_metric([], float(snap.samples))
    missed.add_metric([], float(snap.missed_samples))
    if snap.last_sample_duration_s is not None:
        duration.add_metric([], snap.last_sample_duration_s)
    return [stamp, samples, missed, duration]


def _add(family: GaugeMetricFamily, labels: list[Any], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, value)


def build_registry(watcher: Watcher) -> CollectorRegistry:
    """A registry holding the watcher's collector and the exporter's own process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatchCollector(watcher))
    ProcessCollector(registry=registry)
    return registry


class ExporterServer:
    """``/metrics`` on ``host:port`` (``port=0``: a free port, see :attr:`port`)."""

    def __init__(self, watcher: Watcher, host: str, port: int) -> None:
        from prometheus_client import start_http_server

        try:
            self._httpd, self._thread = start_http_server(
                port, addr=host, registry=build_registry(watcher)
            )
        except OSError as exc:
            raise InputError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; pick another "
                "--port or --host",
                field="port",
            ) from exc

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
