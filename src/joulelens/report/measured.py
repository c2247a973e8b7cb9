"""Timelines and per-request attribution of runs measured by joulelens, for the report.

Reads the artifacts beside ``run.json``: ``timeline.parquet`` (rows of
:class:`~joulelens.records.TimelineSample`) and ``requests.parquet`` (rows of
:class:`~joulelens.records.RequestRow`). Either may be absent (an imported run, a run
written before timelines existed); the report then says so instead of failing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from joulelens.core.series import energy_series, power_device
from joulelens.errors import InputError
from joulelens.records import RunRecord
from joulelens.report.numbers import sig
from joulelens.store import Store

TIMELINE_FILE = "timeline.parquet"
REQUESTS_FILE = "requests.parquet"
MAX_POINTS_PER_SERIES = 600  # enough for a smooth line at screen width, small in the file
MAX_REQUESTS = 4000
# Cumulative counters: their slope is the power (or the busy CPU share) shown instead.
SKIPPED_SERIES_PREFIXES = ("energy_joules", "cpu_busy_seconds")
# The CPU-time estimate counts in 10 ms ticks: at 10 Hz its power jumps by +-10 W from one
# sample to the next, so it is shown as the slope of its energy over bins this long.
ESTIMATE_BIN_S = 0.5
CLOCK_BIN_S = 0.5  # token rate and client-side running batch, from the per-request times

# Where the measurement writes the steady-state window (seconds on the timeline's axis).
_WINDOW_KEYS = (("steady_state_start_s", "steady_state_end_s"),)


def _read_parquet(path: Path, columns: Sequence[str] | None = None) -> dict[str, list[Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=list(columns) if columns else None)
    except (OSError, ValueError, KeyError) as exc:  # pyarrow raises ArrowInvalid (ValueError)
        raise InputError(f"cannot read: {exc}", source=path) from exc
    return table.to_pydict()


def downsample(times: Sequence[float], values: Sequence[float], limit: int) -> tuple[list, list]:
    """Bucket means down to at most ``limit`` points (keeps the shape, drops sampling jitter)."""
    n = len(times)
    if n <= limit:
        return list(times), list(values)
    out_t: list[float] = []
    out_v: list[float] = []
    for b in range(limit):
        lo, hi = b * n // limit, (b + 1) * n // limit
        if hi > lo:
            out_t.append(sum(times[lo:hi]) / (hi - lo))
            out_v.append(sum(values[lo:hi]) / (hi - lo))
    return out_t, out_v


def read_timeline(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """``{series: (times_s, values)}`` sorted by time."""
    cols = _read_parquet(path, ["t_s", "series", "value"])
    series: dict[str, list[tuple[float, float]]] = {}
    for t, name, v in zip(cols["t_s"], cols["series"], cols["value"], strict=True):
        if t is not None and v is not None:
            series.setdefault(name, []).append((t, v))
    out = {}
    for name, pts in sorted(series.items()):
        pts.sort()
        out[name] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


def steady_window(record: RunRecord) -> list[float] | None:
    """The steady-state window [start_s, end_s] on the timeline axis, if the run recorded it."""
    sources: list[dict[str, Any]] = [record.config]
    nested = record.config.get("steady_state")
    if isinstance(nested, dict):
        sources.append(nested)
        sources.append({f"steady_state_{k}": v for k, v in nested.items()})
    for src in sources:
        for start_key, end_key in _WINDOW_KEYS:
            start, end = src.get(start_key), src.get(end_key)
            if isinstance(start, int | float) and isinstance(end, int | float) and end > start:
                return [float(start), float(end)]
    return None


def _round_all(values: Sequence[float | None], digits: int = 5) -> list[float | None]:
    return [sig(v, digits) for v in values]


def timeline_view(path: Path) -> dict[str, Any]:
    raw = read_timeline(path)
    series = {}
    for name, (times, values) in raw.items():
        if name.startswith(SKIPPED_SERIES_PREFIXES):
            continue
        device = power_device(name)
        energy = raw.get(energy_series(device)) if device is not None else None
        if device is not None and device.startswith("cpu-estimate") and energy is not None:
            times, values = binned_slope(*energy, ESTIMATE_BIN_S)
        elif device is not None:
            times, values = without_stub_intervals(times, values)
        t, v = downsample(times, values, MAX_POINTS_PER_SERIES)
        series[name] = {"t": _round_all(t, 6), "v": _round_all(v, 4)}
    return series


def binned_slope(
    times: Sequence[float], cumulative: Sequence[float], bin_s: float
) -> tuple[list[float], list[float]]:
    """Rate of a cumulative series over consecutive bins (at bin centres); a last partial
    bin shorter than half a bin is dropped rather than shown as a spike or a 0."""
    import numpy as np

    if len(times) < 2:
        return [], []
    t = np.asarray(times, dtype=float)
    c = np.asarray(cumulative, dtype=float)
    edges = np.arange(t[0], t[-1], bin_s)
    if t[-1] - edges[-1] >= bin_s / 2:
        edges = np.append(edges, t[-1])
    if len(edges) < 2:
        return [], []
    at = np.interp(edges, t, c)
    rates = np.diff(at) / np.diff(edges)
    return list((edges[:-1] + edges[1:]) / 2), list(rates)


def without_stub_intervals(
    times: Sequence[float], values: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Drop points of a counter-derived power series whose interval is under half the median
    one: the extra reads at start and stop, whose tiny window is mostly rounding."""
    if len(times) < 3:
        return list(times), list(values)
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    floor = gaps[len(gaps) // 2] / 2
    keep_t, keep_v = [times[0]], [values[0]]
    for prev, t, v in zip(times, times[1:], values[1:], strict=False):
        if t - prev >= floor:
            keep_t.append(t)
            keep_v.append(v)
    return keep_t, keep_v


def clock_series(requests: dict[str, list[Any]], has_server_batch: bool) -> dict[str, Any]:
    """Token rate and (without a server gauge) the client-side running batch, on the
    timeline's clock, from each request's send, first-token and finish times."""
    import numpy as np

    sent, ttft, e2e = (requests.get(k) for k in ("sent_s", "ttft_ms", "e2e_latency_ms"))
    tokens = requests.get("output_tokens")
    if not sent or not ttft or not e2e or not tokens:
        return {}
    spans = [
        (s + f / 1000, s + e / 1000, n)
        for s, f, e, n in zip(sent, ttft, e2e, tokens, strict=True)
        if s is not None and f is not None and e is not None and n
    ]
    if not spans:
        return {}
    end = max(b for _, b, _ in spans)
    edges = np.arange(0.0, end + CLOCK_BIN_S, CLOCK_BIN_S)
    rate = np.zeros(len(edges) - 1)
    busy = np.zeros(len(edges) - 1)
    for first, finish, n in spans:
        rate[min(np.searchsorted(edges, first, side="right") - 1, len(rate) - 1)] += 1
        overlap = np.clip(np.minimum(edges[1:], finish) - np.maximum(edges[:-1], first), 0, None)
        busy += overlap / CLOCK_BIN_S
        if n > 1 and finish > first:  # the rest of its tokens, spread evenly until it ends
            rate += (n - 1) * overlap / (finish - first)
    centres = list((edges[:-1] + edges[1:]) / 2)
    out = {
        "token_rate:client": {
            "t": _round_all(centres, 6),
            "v": _round_all(list(rate / CLOCK_BIN_S), 4),
        }
    }
    if not has_server_batch:
        out["running_batch:client"] = {"t": _round_all(centres, 6), "v": _round_all(list(busy), 4)}
    return out


def requests_view(path: Path) -> dict[str, Any]:
    cols = _read_parquet(path)
    n = len(cols.get("output_tokens", []))
    keep = range(n) if n <= MAX_REQUESTS else [i * n // MAX_REQUESTS for i in range(MAX_REQUESTS)]
    names = [
        "output_tokens",
        "input_tokens",
        "e2e_latency_ms",
        "ttft_ms",
        "attributed_energy_joules",
        "attributed_prefill_energy_joules",
        "attributed_decode_energy_joules",
    ]
    view: dict[str, Any] = {"n": n, "shown": len(keep)}
    for name in names:
        values = cols.get(name)
        view[name] = None if values is None else _round_all([values[i] for i in keep])
    steady = cols.get("in_steady_state")
    view["in_steady_state"] = None if steady is None else [int(bool(steady[i])) for i in keep]
    return view


def energy_note(r: RunRecord) -> str:
    """How a run's energy was obtained, in words, from its own record."""
    how = f"{r.energy_boundary.value} boundary, {r.energy_method.value}"
    scope = r.config.get("cpu_estimate")
    if isinstance(scope, dict) and scope.get("covers") and r.energy_method.value == "estimated":
        return f"{how}: {scope['covers']}; cannot see {scope.get('cannot_see', 'the rest')}"
    sources = [
        c.name
        for c in r.energy_components
        if c.boundary is r.energy_boundary and ":" in c.name and not c.name.startswith("total:")
    ]
    return f"{how}" + (f" ({', '.join(sources)})" if sources else "")


def measured_runs(store: Store, records: Sequence[RunRecord], limit: int) -> dict[str, Any]:
    """Per run (newest first, at most ``limit``): timeline series, steady window, requests."""
    newest = sorted(records, key=lambda r: r.recorded_at, reverse=True)[:limit]
    runs = []
    for r in newest:
        hardware = f"{r.num_gpus}x {r.gpu_model}" if r.num_gpus else (r.gpu_model or "cpu")
        entry: dict[str, Any] = {
            "run_id": r.run_id,
            "label": f"{r.nickname or r.model_id} · {r.task} · {hardware} · batch {r.batch}",
            "steady_window_s": steady_window(r),
            "timeline": None,
            "requests": None,
            "stable": r.stable,
            "energy": energy_note(r),
            "warnings": [*(f"unstable: {u}" for u in r.unstable_reasons), *r.warnings],
            "notes": [],
        }
        if entry["steady_window_s"] is None:
            recorded = r.config.get("steady_state")
            why = recorded.get("reason") if isinstance(recorded, dict) else None
            entry["notes"].append("no steady-state window" + (f": {why}" if why else " recorded"))
        run_dir = store.run_dir(r.run_id)
        for name, key, view in (
            (TIMELINE_FILE, "timeline", timeline_view),
            (REQUESTS_FILE, "requests", requests_view),
        ):
            path = run_dir / name
            if not path.is_file():
                entry["notes"].append(f"no {name} in the run directory")
                continue
            try:
                entry[key] = view(path)
                if key == "requests":
                    server_batch = any("running" in n for n in entry["timeline"] or {})
                    clock = clock_series(_read_parquet(path), server_batch)
                    entry["timeline"] = {**(entry["timeline"] or {}), **clock} or None
            except InputError as exc:
                entry["notes"].append(str(exc))
        runs.append(entry)
    return {"runs": runs, "total": len(records), "shown": len(runs)}
