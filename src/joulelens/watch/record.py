"""``--record-every``: each window of production traffic as an observed run in the store.

An observed run is labelled as such everywhere: ``arrival="observed"``, a run id starting
``obs-``, ``config["observed"]`` with the window's bounds and a note, the same note in its
warnings, and ``stable`` left unjudged (``None``): no steady-state rule applies to traffic
nobody controls, so the window is the whole interval. ``steady_state_duration_s`` and
``steady_state_energy_joules`` hold the window's duration and energy so that ``why``,
``report`` and ``serve`` read observed runs like measured ones. Latency and output length
come from the server's histograms (differences of cumulative buckets over the window).

Records are built and written on a background thread: a slow disk or a store error never
delays sampling; a failure is logged and counted, and the exporter carries on.
"""

from __future__ import annotations

import logging
import platform
import queue
import statistics
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joulelens import __version__
from joulelens.analysis.hardware import canonical_gpu_name
from joulelens.core.boundaries import boundary_totals
from joulelens.core.idle import IdlePower
from joulelens.core.series import power_series
from joulelens.core.windows import WindowEnergy
from joulelens.errors import JoulelensError
from joulelens.measure.artifacts import artifact_names, write_run_artifacts
from joulelens.measure.metrics import Metrics
from joulelens.measure.shared import put_idle
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Provenance,
    RunKind,
    RunRecord,
    SourceKind,
    TimelineSample,
    required_metric_fields,
    stable_run_id,
)
from joulelens.store import Store
from joulelens.watch.figures import device_components, idle_by_boundary
from joulelens.watch.watcher import ObservedWindow
from joulelens.workloads.prometheus import HistogramCounts, WindowedHistogram, window_histogram

log = logging.getLogger("joulelens.watch")

OBSERVED = "observed"
OBSERVED_NOTE = (
    "observed window of live traffic: arrival is whatever the clients sent and no "
    "steady-state rule was applied (the window is the whole interval); latency and output "
    "length come from the server's histograms"
)
# (server histogram, record field stem)
_LATENCIES = (("ttft", "ttft"), ("itl", "itl"), ("e2e", "e2e_latency"))
_QUANTILES = (("median", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))
MAX_PENDING = 64  # windows waiting for the writer; beyond, the oldest is dropped (logged)


@dataclass(frozen=True)
class ServerInfo:
    model_id: str | None
    engine: str
    version: str | None


def server_info(url: str, timeout_s: float = 5.0) -> ServerInfo:
    """The served model (``/v1/models``) and vLLM's version (``/version``), when offered."""
    import httpx

    model_id = version = None
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        try:
            data = client.get(f"{url}/v1/models").json().get("data") or []
            model_id = str(data[0]["id"]) if data else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            pass
        try:
            response = client.get(f"{url}/version")
            if response.status_code == 200:
                version = str(response.json().get("version") or "") or None
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
    return ServerInfo(model_id, "vllm" if version else "openai-compatible", version)


def _iso(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


def _window_hist(window: ObservedWindow, key: str) -> WindowedHistogram | str:
    """A server histogram over the window, or why there is none. A labelled histogram
    exists only once it has observed something, so one absent at the start counts as
    empty there (as the benchmark's scraper reads it)."""
    end = window.histograms_end.get(key)
    if end is None:
        return f"the server exposes no {key} histogram"
    start = window.histograms_start.get(key)
    if start is None:
        zeros = (0.0,) * len(end.bounds)
        start = HistogramCounts(end.bounds, zeros, 0.0, 0.0)
    try:
        return window_histogram(key, start, end, window.start.t_s, window.end.t_s)
    except ValueError as exc:
        return str(exc)


def _put_latencies(metrics: Metrics, window: ObservedWindow) -> float | None:
    """Latency fields from the server histograms; returns the request count in the window."""
    completed = None
    for key, stem in _LATENCIES:
        fields = [f"mean_{stem}_ms", *(f"{q}_{stem}_ms" for q, _ in _QUANTILES)]
        hist = _window_hist(window, key)
        if isinstance(hist, str):
            metrics.null_all(fields, hist)
            continue
        empty = "no request finished in the window"
        metrics.put(fields[0], None if hist.mean is None else hist.mean * 1e3, empty)
        for field, (_, q) in zip(fields[1:], _QUANTILES, strict=True):
            value = hist.quantile(q)
            metrics.put(field, None if value is None else value * 1e3, empty)
        if key == "e2e":
            completed = hist.count
    return completed


def _mean_output_len(window: ObservedWindow) -> tuple[float | None, str]:
    hist = _window_hist(window, "generation_tokens")
    if isinstance(hist, str):
        return None, hist
    return hist.mean, "no request finished in the window"


def _timeline(window: ObservedWindow) -> list[TimelineSample]:
    """Power per device, running batch and KV-cache usage at each tick, from the start."""
    rows: list[TimelineSample] = []
    previous = window.start
    label = window.spec.label
    for tick in window.ticks:
        t = tick.t_s - window.start.t_s
        dt = tick.t_s - previous.t_s
        for device in window.devices:
            a, b = previous.energy_j.get(device.name), tick.energy_j.get(device.name)
            if a is not None and b is not None and dt > 0:
                series = power_series(device.name)
                rows.append(TimelineSample(t_s=t, series=series, value=(b - a) / dt))
        sample = tick.endpoint(label)
        for series, value in (
            ("running_batch:server", sample.running),
            ("kv_cache_usage:server", sample.kv_usage),
        ):
            if sample.up and value is not None:
                rows.append(TimelineSample(t_s=t, series=series, value=value))
        previous = tick
    return rows


def observed_record(
    window: ObservedWindow,
    info: ServerInfo,
    *,
    task: str = OBSERVED,
    gpu_models: Mapping[str, str] | None = None,
) -> tuple[RunRecord, list[TimelineSample]]:
    """The observed run of one window and its timeline rows."""
    spec, start, end = window.spec, window.start, window.end
    duration_s = end.t_s - start.t_s
    metrics = Metrics()
    warnings = [OBSERVED_NOTE]
    components = device_components(start, end, window.devices)
    energy = WindowEnergy(start.t_s, end.t_s, components, boundary_totals(components))
    head = energy.headline()
    first, last = start.endpoint(spec.label), end.endpoint(spec.label)
    tokens = None if first.tokens is None or last.tokens is None else last.tokens - first.tokens
    no_tokens = "the server exposes no generation-token counter"
    metrics.put("steady_state_duration_s", duration_s)
    throughput = None if tokens is None else tokens / duration_s
    metrics.put("output_throughput_tokens_per_sec", throughput, no_tokens)
    avg_len, len_reason = _mean_output_len(window)
    metrics.put("avg_output_len", avg_len, len_reason)
    if head is None or head.joules is None:
        reason = (
            "no device is assigned to this endpoint (give --gpus)"
            if head is None
            else f"{head.boundary.value} energy unavailable: {head.missing_reason}"
        )
        metrics.null_all(
            (
                "steady_state_energy_joules",
                "avg_power_watts",
                "energy_per_token_joules",
                "energy_per_request_joules",
            ),
            reason,
        )
    else:
        metrics.put("steady_state_energy_joules", head.joules)
        metrics.put("avg_power_watts", head.joules / duration_s)
        per_token = head.joules / tokens if tokens else None
        metrics.put("energy_per_token_joules", per_token, "no output token in the window")
        per_request = None if per_token is None or avg_len is None else per_token * avg_len
        metrics.put("energy_per_request_joules", per_request, len_reason)
    samples = [t.endpoint(spec.label) for t in window.ticks if t.endpoint(spec.label).up]
    running = [s.running for s in samples if s.running is not None]
    kv = [s.kv_usage for s in samples if s.kv_usage is not None]
    metrics.put("avg_batch_size", statistics.fmean(running) if running else None, "not exposed")
    metrics.put("avg_kv_cache_usage", statistics.fmean(kv) if kv else None, "not exposed")
    metrics.put("max_kv_cache_usage", max(kv) if kv else None, "not exposed")
    completed = _put_latencies(metrics, window)
    boundary = head.boundary if head is not None else EnergyBoundary.GPU
    method = head.method if head is not None else EnergyMethod.COUNTER
    idle_w = idle_by_boundary(window.idle_watts, window.devices)
    idle = IdlePower(idle_w) if window.idle_watts else None
    e_ss = metrics.get("steady_state_energy_joules")
    put_idle(metrics, idle, boundary, duration_s, e_ss, warnings)
    for name in required_metric_fields(RunKind.LLM, task):
        if name not in metrics.values:
            metrics.put(name, None, "not read from server metrics in observed windows")
    gpus = [d.name for d in window.devices if d.boundary is EnergyBoundary.GPU and d.reason is None]
    models = sorted({(gpu_models or {}).get(g, "") for g in gpus} - {""})
    timeline = _timeline(window)
    observed: dict[str, Any] = {
        "endpoint": spec.label,
        "metrics_url": spec.metrics_url,
        "start": _iso(start.unix_s).isoformat(),
        "end": _iso(end.unix_s).isoformat(),
        "samples": len(window.ticks) + 1,
        "devices": [d.name for d in window.devices],
        "note": OBSERVED_NOTE,
    }
    values: dict[str, Any] = dict(metrics.values)
    record = RunRecord(
        run_id=stable_run_id("obs", {"endpoint": spec.label, "start": observed["start"]}),
        kind=RunKind.LLM,
        task=task,
        model_id=info.model_id or spec.label,
        gpu_model=_short_gpu_name(models[0]) if models else ("cpu" if not gpus else None),
        num_gpus=len(gpus),
        max_num_seqs=spec.max_num_seqs,
        arrival=OBSERVED,
        num_completed_requests=None if completed is None else round(completed),
        energy_boundary=boundary,
        energy_method=method,
        energy_components=[*components, *energy.totals],
        stable=None,
        warnings=warnings,
        provenance=Provenance(
            source=SourceKind.JOULELENS,
            engine=info.engine,
            engine_version=info.version,
            joulelens_version=__version__,
            host=platform.node() or None,
        ),
        started_at=_iso(start.unix_s),
        finished_at=_iso(end.unix_s),
        artifacts=artifact_names([], timeline),
        config={"observed": observed},
        missing=dict(metrics.missing),
        **values,
    )
    return record, timeline


def _short_gpu_name(nvml_name: str) -> str:
    return canonical_gpu_name(nvml_name) or nvml_name


class StoreRecorder:
    """Writes each observed window into ``store`` on its own thread (``watcher.on_record``)."""

    def __init__(
        self,
        store: Store,
        *,
        task: str = OBSERVED,
        gpu_models: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.task = task
        self.gpu_models = dict(gpu_models or {})
        self.written = 0
        self.failed = 0
        self.last_run_id: str | None = None
        self._queue: queue.Queue[ObservedWindow | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="joulelens-record", daemon=True)
        self._thread.start()

    def __call__(self, window: ObservedWindow) -> None:
        if self._queue.qsize() >= MAX_PENDING:
            log.error("recording falls behind: %d windows pending; one dropped", MAX_PENDING)
            self.failed += 1
            return
        self._queue.put(window)

    def _run(self) -> None:
        while True:
            window = self._queue.get()
            if window is None:
                return
            self.write(window)

    def write(self, window: ObservedWindow) -> RunRecord | None:
        label = window.spec.label
        try:
            record, timeline = observed_record(
                window, server_info(window.spec.url), task=self.task, gpu_models=self.gpu_models
            )
            self.store.put(record, write_artifacts=lambda d: write_run_artifacts(d, [], timeline))
        except (JoulelensError, OSError, ValueError) as exc:
            self.failed += 1
            log.error("%s: window not recorded: %s", label, exc)
            return None
        self.written += 1
        self.last_run_id = record.run_id
        per_token = record.energy_per_token_joules
        shown = f"{per_token:.4g} J/token" if per_token is not None else "energy per token unknown"
        log.info("%s: recorded observed run %s (%s)", label, record.run_id, shown)
        return record

    def close(self) -> None:
        """Write what is pending, then stop the thread."""
        self._queue.put(None)
        self._thread.join()
