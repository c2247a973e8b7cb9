"""Background scraper of a server's Prometheus ``/metrics``, with windowed queries.

Series are aggregated over label sets (engines): counts such as running and waiting
requests are summed (the running batch of a data-parallel server is the sum over engines),
fractions such as KV-cache usage are averaged over engines. Names may be given as logical
names (:data:`METRIC_ALIASES`, e.g. ``"running"``, ``"kv_cache_usage"``, ``"itl"``), which
resolve to the first candidate the server exposes (vLLM's current name first, then older
vLLM and SGLang names), or as raw metric names.

A server without ``/metrics`` (404, refused) is not an error: :attr:`available` is false,
:attr:`unavailable_reason` says why, every query returns ``None`` and
:meth:`missing_reason` explains it, so callers fall back to client-side estimates.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from joulelens.errors import JoulelensError
from joulelens.workloads.prometheus import (
    HistogramCounts,
    ScrapeValues,
    WindowedHistogram,
    counter_name,
    window_histogram,
)
from joulelens.workloads.scrape_process import HEADERS_ENV, values_from_json

METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "running": ("vllm:num_requests_running", "sglang:num_running_reqs"),
    "waiting": ("vllm:num_requests_waiting", "sglang:num_queue_reqs"),
    "kv_cache_usage": (
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "sglang:token_usage",
    ),
    "preemptions": ("vllm:num_preemptions",),
    "generation_tokens_total": ("vllm:generation_tokens",),
    "prompt_tokens_total": ("vllm:prompt_tokens",),
    "ttft": ("vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds"),
    "itl": (
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
        "sglang:inter_token_latency_seconds",
    ),
    "e2e": ("vllm:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds"),
    "queue_time": ("vllm:request_queue_time_seconds",),
    "generation_tokens": ("vllm:request_generation_tokens",),
    "prompt_tokens": ("vllm:request_prompt_tokens",),
}
# Gauges that are fractions of a per-engine resource: averaged over engines, not summed.
MEAN_GAUGES = frozenset(
    {
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "vllm:cpu_cache_usage_perc",
        "sglang:token_usage",
    }
)
MAX_ERRORS_KEPT = 100


@dataclass(frozen=True, slots=True)
class GaugeSeries:
    """One aggregated series; ``name`` is the metric it was resolved to."""

    name: str
    times_s: array
    values: array

    def __len__(self) -> int:
        return len(self.times_s)


class MetricsScraper:
    """Scrapes ``server_url + path`` every ``interval_s`` from :meth:`start` to :meth:`stop`.

    The scraping runs in a child process (see :mod:`.scrape_process`) so parsing never
    competes with the load generator for the GIL; a reader thread here only appends
    numbers. ``start`` waits for the first scrape to decide availability; ``stop`` takes a
    last scrape, so windows that end before ``stop`` are covered at both ends.
    """

    def __init__(
        self,
        server_url: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 5.0,
        path: str = "/metrics",
        start_timeout_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = server_url.rstrip("/") + path
        self._headers = dict(headers or {})  # e.g. Authorization; reaches the child by env
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.available = False
        self.unavailable_reason: str | None = "not started"
        self.errors: list[tuple[float, str]] = []  # failed scrapes after the first good one
        self._lock = threading.Lock()
        self._times = array("d")
        self._gauges: dict[str, tuple[array, array]] = {}
        self._counters: dict[str, tuple[array, array]] = {}
        self._histograms: dict[str, _HistogramTrack] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._first = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> MetricsScraper:
        if self._proc is not None:
            raise JoulelensError("metrics scraper already started")
        # "-c" rather than "-m": the package already imports scrape_process, and runpy
        # warns about executing a module that is imported before it runs.
        entry = "from joulelens.workloads.scrape_process import main; main()"
        argv = [sys.executable, "-c", entry, self.url]
        argv += ["--interval-s", str(self.interval_s), "--timeout-s", str(self.timeout_s)]
        env = None
        if self._headers:  # never on the command line, where any user can read it
            env = {**os.environ, HEADERS_ENV: json.dumps(self._headers)}
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env
        )
        self._reader = threading.Thread(target=self._read, name="metrics-scraper", daemon=True)
        self._reader.start()
        if not self._first.wait(self.start_timeout_s):
            self.unavailable_reason = f"{self.url}: no scrape within {self.start_timeout_s:g} s"
            self.stop()
        elif not self.available:
            self.stop()
        return self

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()  # the child scrapes once more and exits
        try:
            proc.wait(self.timeout_s + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> MetricsScraper:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            if "values" in message:
                self.ingest(message["t"], values_from_json(message["values"]))
            elif not self.available and not self._first.is_set():
                self.unavailable_reason = message["error"]
            elif len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append((message["t"], message["error"]))
            self._first.set()
        if not self._first.is_set():
            self.unavailable_reason = f"scraper process exited with {self._proc.wait()}"
            self._first.set()

    def ingest(self, t_s: float, values: ScrapeValues) -> None:
        """Add one scrape (the reader thread calls this; tests may feed scrapes directly)."""
        with self._lock:
            if self._times and t_s < self._times[-1]:
                raise ValueError("scrapes must be ingested in time order")
            self._times.append(t_s)
            for name, (total, label_sets) in values.gauges.items():
                value = total / label_sets if name in MEAN_GAUGES else total
                _append(self._gauges, name, t_s, value)
            for name, total in values.counters.items():
                _append(self._counters, name, t_s, total)
            for name, counts in values.histograms.items():
                track = self._histograms.get(name)
                if track is None:
                    track = self._histograms[name] = _HistogramTrack(counts.bounds)
                if not track.append(t_s, counts) and len(self.errors) < MAX_ERRORS_KEPT:
                    self.errors.append((t_s, f"{name}: bucket bounds changed; scrape dropped"))
            self.available = True
            self.unavailable_reason = None

    # -- queries -----------------------------------------------------------------------

    @property
    def scrape_times_s(self) -> array:
        with self._lock:
            return array("d", self._times)

    def resolve(self, name: str) -> str | None:
        """The exposed metric a logical or raw name refers to, or ``None``."""
        with self._lock:
            for candidate in METRIC_ALIASES.get(name, (name,)):
                for table in (self._gauges, self._histograms):
                    if candidate in table:
                        return candidate
                if counter_name(candidate) in self._counters:
                    return counter_name(candidate)
        return None

    def gauge_series(self, name: str) -> GaugeSeries | None:
        return self._series(self._gauges, name)

    def counter_series(self, name: str) -> GaugeSeries | None:
        return self._series(self._counters, name)

    def running_batch_series(self) -> GaugeSeries | None:
        """Requests running, summed over engines: the batch the server actually ran."""
        return self.gauge_series("running")

    def waiting_series(self) -> GaugeSeries | None:
        return self.gauge_series("waiting")

    def kv_cache_series(self) -> GaugeSeries | None:
        """KV-cache usage as a fraction 0..1, averaged over engines."""
        return self.gauge_series("kv_cache_usage")

    def preemptions_series(self) -> GaugeSeries | None:
        """Cumulative preemptions since the server started."""
        return self.counter_series("preemptions")

    def gauge_mean(self, name: str, t0_s: float, t1_s: float) -> float | None:
        """Time-weighted mean of a gauge over [t0, t1], each scrape's value held until the
        next scrape (the value before t0 holds from t0 to the first scrape inside). ``None``
        when no scrape falls inside the window."""
        series = self.gauge_series(name)
        if series is None or t1_s <= t0_s:
            return None
        times, values = series.times_s, series.values
        first = bisect_left(times, t0_s)
        last = bisect_right(times, t1_s)
        if first == last:
            return None
        area = 0.0
        if first > 0:
            area += values[first - 1] * (times[first] - t0_s)
            start_s = t0_s
        else:
            start_s = times[first]
        for i in range(first, last):
            end_s = times[i + 1] if i + 1 < last else t1_s
            area += values[i] * (end_s - times[i])
        return area / (t1_s - start_s) if t1_s > start_s else values[first]

    def counter_delta(self, name: str, t0_s: float, t1_s: float) -> float | None:
        """Increase of a counter between the scrapes nearest t0 and t1 (a counter that had
        not appeared yet at a scrape counts as 0 there)."""
        resolved = self.resolve(name)
        with self._lock:
            entry = self._counters.get(resolved or "")
            ends = self._window_ends(t0_s, t1_s)
            if entry is None or ends is None:
                return None
            first, last = (_value_at(entry[0], entry[1], t) for t in ends)
        if first is None or last is None or last < first:
            return None
        return last - first

    def histogram_window(self, name: str, t0_s: float, t1_s: float) -> WindowedHistogram | None:
        """Observations between the scrapes nearest t0 and t1 (differences of cumulative
        buckets, so not since server start). ``None`` when the two nearest scrapes are the
        same one or the counts went down (server restart). A histogram that had not
        appeared yet at the first scrape (labelled series exist only once observed) counts
        as empty there."""
        resolved = self.resolve(name)
        with self._lock:
            track = self._histograms.get(resolved or "")
            ends = self._window_ends(t0_s, t1_s)
            if track is None or ends is None:
                return None
            start, end = (track.counts_at(t) for t in ends)
        if start is None or end is None:
            return None
        try:
            return window_histogram(resolved or name, start, end, ends[0], ends[1])
        except ValueError:
            return None

    def _window_ends(self, t0_s: float, t1_s: float) -> tuple[float, float] | None:
        """Times of the scrapes nearest t0 and t1 (caller holds the lock)."""
        if not self._times:
            return None
        i0 = _nearest(self._times, t0_s)
        i1 = _nearest(self._times, t1_s)
        if i1 <= i0:
            return None
        return self._times[i0], self._times[i1]

    def missing_reason(
        self, name: str, t0_s: float | None = None, t1_s: float | None = None
    ) -> str:
        """Why a query for ``name`` (over [t0, t1]) returns ``None``; for null-with-reason."""
        if not self.available:
            return f"server metrics unavailable: {self.unavailable_reason}"
        resolved = self.resolve(name)
        if resolved is None:
            candidates = ", ".join(METRIC_ALIASES.get(name, (name,)))
            return f"server does not expose {candidates}"
        if t0_s is None or t1_s is None:
            return f"{resolved} has no value"
        with self._lock:
            inside = sum(1 for t in self._times if t0_s <= t <= t1_s)
        if inside == 0:
            return f"no scrape of {resolved} inside the window"
        if resolved in self._histograms:
            return f"{resolved}: window shorter than the scrape interval or counts reset"
        return f"{resolved} has no usable value in the window"

    def _series(self, table: dict[str, tuple[array, array]], name: str) -> GaugeSeries | None:
        resolved = self.resolve(name)
        with self._lock:
            entry = table.get(resolved or "")
            if entry is None:
                return None
            return GaugeSeries(resolved or name, array("d", entry[0]), array("d", entry[1]))


class _HistogramTrack:
    """Cumulative bucket counts per scrape, flat in one array (bounds fixed per track)."""

    __slots__ = ("bounds", "counts_flat", "sums", "times_s", "totals")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.times_s = array("d")
        self.counts_flat = array("d")
        self.sums = array("d")
        self.totals = array("d")

    def append(self, t_s: float, counts: HistogramCounts) -> bool:
        if counts.bounds != self.bounds:
            return False
        self.times_s.append(t_s)
        self.counts_flat.extend(counts.cumulative)
        self.sums.append(counts.sum)
        self.totals.append(counts.count)
        return True

    def counts_at(self, t_s: float) -> HistogramCounts | None:
        """Counts at the scrape taken at ``t_s``: zeros before the first appearance,
        ``None`` if the histogram was missing from that scrape."""
        i = bisect_left(self.times_s, t_s)
        if i == 0 and (not self.times_s or self.times_s[0] != t_s):
            zeros = (0.0,) * len(self.bounds)
            return HistogramCounts(self.bounds, zeros, 0.0, 0.0)
        if i == len(self.times_s) or self.times_s[i] != t_s:
            return None
        width = len(self.bounds)
        cumulative = tuple(self.counts_flat[i * width : (i + 1) * width])
        return HistogramCounts(self.bounds, cumulative, self.sums[i], self.totals[i])


def _append(table: dict[str, tuple[array, array]], name: str, t_s: float, value: float) -> None:
    entry = table.get(name)
    if entry is None:
        entry = table[name] = (array("d"), array("d"))
    entry[0].append(t_s)
    entry[1].append(value)


def _value_at(times: array, values: array, t_s: float) -> float | None:
    """A counter's value at the scrape taken at ``t_s`` (0 before it first appeared)."""
    i = bisect_left(times, t_s)
    if i < len(times) and times[i] == t_s:
        return values[i]
    return 0.0 if i == 0 else None


def _nearest(times: array, t_s: float) -> int:
    i = bisect_left(times, t_s)
    if i == 0:
        return 0
    if i == len(times):
        return i - 1
    return i if times[i] - t_s < t_s - times[i - 1] else i - 1
