"""One scrape of a server's ``/metrics``, reduced to what the exporter follows.

Parsing reuses :func:`joulelens.workloads.prometheus.parse_scrape` and the scraper's names
(:data:`~joulelens.workloads.scraper.METRIC_ALIASES`: vLLM's current names first, then older
vLLM and SGLang). A vLLM page holds hundreds of histogram lines; a regular scrape keeps only
the lines of the few series followed every second (a regex pass in C) before parsing, and
only a record window's edges parse the whole page for the latency histograms.

The transport is a tiny boundary (:class:`Transport`): :class:`HttpTransport` over httpx for
real servers; tests of a simulated week feed exposition text through the same parsing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Protocol

from joulelens.errors import JoulelensError
from joulelens.workloads.prometheus import HistogramCounts, ScrapeValues, counter_name, parse_scrape
from joulelens.workloads.scraper import MEAN_GAUGES, METRIC_ALIASES

# Logical names followed on every sample (see METRIC_ALIASES).
FOLLOWED = ("running", "waiting", "kv_cache_usage", "preemptions", "generation_tokens_total")
# Latency and length histograms read at record-window edges only.
RECORDED_HISTOGRAMS = ("ttft", "itl", "e2e", "generation_tokens")
# A server restart resets its counters; the process start time says so even when the new
# counter has already passed the old value.
START_TIME = "process_start_time_seconds"


def _followed_names() -> list[str]:
    names = [counter_name(n) for key in FOLLOWED for n in METRIC_ALIASES[key]]
    return [*dict.fromkeys(names), START_TIME]


_FOLLOWED_LINES = re.compile(
    r"^(?:# (?:HELP|TYPE) )?(?:"
    + "|".join(re.escape(n) for n in _followed_names())
    + r")(?:_total)?[ {].*$",
    re.MULTILINE,
)


class ScrapeFailed(JoulelensError):
    """The server did not answer with Prometheus text; the message says why."""


class Transport(Protocol):
    """Fetches one exposition text or raises :class:`ScrapeFailed`."""

    def fetch(self) -> str: ...
    def close(self) -> None: ...


class HttpTransport:
    """GET ``url`` with httpx; local servers are reached directly, whatever proxy is set."""

    def __init__(self, url: str, timeout_s: float) -> None:
        import httpx

        self.url = url
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout_s, trust_env=False)

    def fetch(self) -> str:
        try:
            response = self._client.get(self.url)
        except self._httpx.HTTPError as exc:
            raise ScrapeFailed(f"{self.url} unreachable: {exc or type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ScrapeFailed(f"{self.url} answered HTTP {response.status_code}")
        return response.text

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True, slots=True)
class ServerReading:
    """The followed values of one scrape; ``None`` where the server exposes no such series.

    Counts (running, waiting) are summed over engines, KV-cache usage is averaged, counters
    are summed (as :class:`~joulelens.workloads.MetricsScraper` does).
    """

    running: float | None
    waiting: float | None
    kv_usage: float | None  # fraction 0..1
    generation_tokens: float | None  # the server's counter, since it started
    preemptions: float | None
    start_time_s: float | None
    histograms: dict[str, HistogramCounts] = field(default_factory=dict)  # full scrapes only


def _first(table: Container[str], key: str) -> str | None:
    for candidate in METRIC_ALIASES[key]:
        name = counter_name(candidate)
        if name in table:
            return name
    return None


def _gauge(values: ScrapeValues, key: str) -> float | None:
    name = _first(values.gauges, key)
    if name is None:
        return None
    total, label_sets = values.gauges[name]
    return total / label_sets if name in MEAN_GAUGES else total


def _counter(values: ScrapeValues, key: str) -> float | None:
    name = _first(values.counters, key)
    return None if name is None else values.counters[name]


_TYPE_LINE = re.compile(r"^# TYPE (\S+) counter", re.MULTILINE)


def declared_counters(text: str) -> set[str]:
    """Counters a page declares (``# TYPE``), with or without samples yet."""
    return {counter_name(name) for name in _TYPE_LINE.findall(text)}


def _declared_counter(values: ScrapeValues, key: str, declared: set[str]) -> float | None:
    """A counter's value; 0 for one declared without samples (a labelled counter that has
    not counted yet, as Prometheus reads it), ``None`` when the server has no such counter."""
    value = _counter(values, key)
    if value is None and any(counter_name(n) in declared for n in METRIC_ALIASES[key]):
        return 0.0
    return value


def reading_from_values(
    values: ScrapeValues, *, histograms: bool = False, declared: set[str] | None = None
) -> ServerReading:
    declared = declared or set()
    start = values.gauges.get(START_TIME)
    hists: dict[str, HistogramCounts] = {}
    if histograms:
        for key in RECORDED_HISTOGRAMS:
            name = _first(values.histograms, key)
            if name is not None:
                hists[key] = values.histograms[name]
    return ServerReading(
        running=_gauge(values, "running"),
        waiting=_gauge(values, "waiting"),
        kv_usage=_gauge(values, "kv_cache_usage"),
        generation_tokens=_declared_counter(values, "generation_tokens_total", declared),
        preemptions=_declared_counter(values, "preemptions", declared),
        # Several processes (API server, engine cores) may each expose one: the earliest.
        start_time_s=None if start is None else start[0] / max(start[1], 1),
        histograms=hists,
    )


def followed_text(text: str) -> str:
    """Only the lines of the followed series (and their HELP/TYPE lines)."""
    return "\n".join(_FOLLOWED_LINES.findall(text)) + "\n"


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    t_s: float  # midpoint of the exchange, on the watcher's clock
    reading: ServerReading | None
    error: str | None = None


def scrape(transport: Transport, clock: Callable[[], float], *, full: bool) -> ScrapeResult:
    """One scrape: the followed values, and with ``full`` the recorded histograms too."""
    sent_s = clock()
    try:
        text = transport.fetch()
    except ScrapeFailed as exc:
        return ScrapeResult((sent_s + clock()) / 2, None, str(exc))
    t_s = (sent_s + clock()) / 2
    kept = text if full else followed_text(text)
    try:
        values = parse_scrape(kept)
    except ValueError as exc:
        return ScrapeResult(t_s, None, f"not Prometheus text: {exc}")
    reading = reading_from_values(values, histograms=full, declared=declared_counters(kept))
    return ScrapeResult(t_s, reading)
