"""Live energy of running servers: ``joulelens watch``, a Prometheus exporter of joules per token.

The watcher samples the local meters (NVML GPUs, RAPL, the CPU-time estimate) and scrapes
each server's ``/metrics`` once per period; the exporter serves energy counters, power,
output tokens, energy per output token and tokens per joule over rolling windows, the
running batch, KV-cache usage, the static share and the live reading of what limits the
batch. ``--record-every`` writes each window into the store as an observed run::

    with detect_meters() as meters, Watcher(config, meters) as watcher:
        watcher.start()
        server = ExporterServer(watcher, "127.0.0.1", 9464)
        ...                                      # serve until told to stop
        server.close()

This package sits above runner, store and analysis and below the CLI; nothing lower
imports it. See ``docs/watch.md``.
"""

from joulelens.watch.config import (
    ALL_ENDPOINTS,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WINDOWS_S,
    EndpointSpec,
    WatchConfig,
    build_endpoints,
    duration_label,
    parse_duration_s,
    parse_idle_watts,
)
from joulelens.watch.exporter import ExporterServer, build_registry, families
from joulelens.watch.reading import BatchLimit, LiveReading, batch_limit
from joulelens.watch.record import OBSERVED, StoreRecorder, observed_record
from joulelens.watch.scrape import HttpTransport, ScrapeFailed, Transport
from joulelens.watch.snapshot import Snapshot
from joulelens.watch.watcher import ObservedWindow, Watcher

__all__ = [
    "ALL_ENDPOINTS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_WINDOWS_S",
    "OBSERVED",
    "BatchLimit",
    "EndpointSpec",
    "ExporterServer",
    "HttpTransport",
    "LiveReading",
    "ObservedWindow",
    "ScrapeFailed",
    "Snapshot",
    "StoreRecorder",
    "Transport",
    "WatchConfig",
    "Watcher",
    "batch_limit",
    "build_endpoints",
    "build_registry",
    "duration_label",
    "families",
    "observed_record",
    "parse_duration_s",
    "parse_idle_watts",
]
