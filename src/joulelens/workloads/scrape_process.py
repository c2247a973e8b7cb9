"""The scraping loop, run in a child Python process by :class:`~.scraper.MetricsScraper`.

Parsing a large ``/metrics`` page takes tens of milliseconds of pure Python; in a thread of
the load generator's process it would hold the GIL and delay chunk timestamps. The child
fetches and parses and writes one JSON line per scrape to stdout::

    {"t": 12.5, "values": {"gauges": ..., "counters": ..., "histograms": ...}}
    {"t": 13.5, "error": "http://...: answered HTTP 404"}

``t`` is the midpoint of the HTTP exchange on the system-wide monotonic clock (the clock of
:func:`joulelens.core.clock.now_s`). The child stops, after one last scrape, when its
stdin closes (the parent stopping it, or the parent dying).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from typing import Any, TextIO

from joulelens.core.clock import now_s
from joulelens.workloads.prometheus import HistogramCounts, ScrapeValues, parse_scrape

# Local servers are scraped directly, whatever proxy the environment names.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Request headers (JSON object) for a server that wants an API key on /metrics too.
HEADERS_ENV = "JOULELENS_SCRAPE_HEADERS"


def scrape_once(
    url: str, timeout_s: float, headers: dict[str, str] | None = None
) -> tuple[float, ScrapeValues | None, str | None]:
    """(time, values, error reason): exactly one of values and reason is set."""
    sent_s = now_s()
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with _opener.open(request, timeout=timeout_s) as response:
            text = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return (sent_s + now_s()) / 2, None, f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return (sent_s + now_s()) / 2, None, f"{url} unreachable: {reason}"
    t_s = (sent_s + now_s()) / 2
    try:
        return t_s, parse_scrape(text), None
    except ValueError as exc:
        return t_s, None, f"{url} is not Prometheus text: {exc}"


def values_to_json(values: ScrapeValues) -> dict[str, Any]:
    return {
        "gauges": values.gauges,
        "counters": values.counters,
        "histograms": {
            name: [h.bounds, h.cumulative, h.sum, h.count] for name, h in values.histograms.items()
        },
    }


def values_from_json(obj: dict[str, Any]) -> ScrapeValues:
    return ScrapeValues(
        gauges={name: (float(v[0]), int(v[1])) for name, v in obj["gauges"].items()},
        counters={name: float(v) for name, v in obj["counters"].items()},
        histograms={
            name: HistogramCounts(tuple(h[0]), tuple(h[1]), float(h[2]), float(h[3]))
            for name, h in obj["histograms"].items()
        },
    )


def scrape_loop(
    url: str,
    interval_s: float,
    timeout_s: float,
    out: TextIO,
    stop: threading.Event,
    headers: dict[str, str] | None = None,
) -> None:
    """Scrape on a fixed schedule (``start + k * interval``, missed ticks skipped) until
    ``stop`` is set, then once more so a window can end at the stop time."""
    start_s = now_s()
    tick = 0
    while True:
        # The last scrape must start after the stop request, not merely finish after it.
        stopping = stop.is_set()
        t_s, values, reason = scrape_once(url, timeout_s, headers)
        line: dict[str, Any] = {"t": t_s}
        if values is not None:
            line["values"] = values_to_json(values)
        else:
            line["error"] = reason
        out.write(json.dumps(line) + "\n")
        out.flush()
        if stopping:
            return
        tick = max(tick + 1, int((now_s() - start_s) / interval_s) + 1)
        stop.wait(max(0.0, start_s + tick * interval_s - now_s()))


def main() -> None:
    parser = argparse.ArgumentParser(description="Scrape a Prometheus endpoint into JSON lines")
    parser.add_argument("url")
    parser.add_argument("--interval-s", type=float, default=1.0)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C hits the group; the parent decides
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    with contextlib.suppress(BrokenPipeError):  # the parent went away
        headers = json.loads(os.environ.pop(HEADERS_ENV, "{}") or "{}")
        scrape_loop(args.url, args.interval_s, args.timeout_s, sys.stdout, stop, headers)


if __name__ == "__main__":
    main()
