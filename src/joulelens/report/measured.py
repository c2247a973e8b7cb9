"""Timelines and per-request attribution of runs measured by joulelens, for the report.

Reads the artifacts beside ``run.json``: ``timeline.parquet`` (rows of
:class:`~joulelens.records.TimelineSample`) and ``requests.parquet`` (rows of
:class:`~joulelens.records.RequestRow`). Either may be absent (an imported run, a run
written before timelines existed); the report then says so instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from joulelens.errors import InputError
from joulelens.records import RunRecord
from joulelens.store import Store

TIMELINE_FILE = "timeline.parquet"
REQUESTS_FILE = "requests.parquet"
MAX_POINTS_PER_SERIES = 600  # enough for a smooth line at screen width, small in the file
MAX_REQUESTS = 4000
SKIPPED_SERIES_PREFIXES = ("energy_joules",)  # cumulative counters: their slope is the power

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
    from joulelens.report.payload import sig

    return [sig(v, digits) for v in values]


def timeline_view(path: Path) -> dict[str, Any]:
    series = {}
    for name, (times, values) in read_timeline(path).items():
        if name.startswith(SKIPPED_SERIES_PREFIXES):
            continue
        t, v = downsample(times, values, MAX_POINTS_PER_SERIES)
        series[name] = {"t": _round_all(t, 6), "v": _round_all(v, 4)}
    return series


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


def measured_runs(store: Store, records: Sequence[RunRecord], limit: int) -> dict[str, Any]:
    """Per run (newest first, at most ``limit``): timeline series, steady window, requests."""
    newest = sorted(records, key=lambda r: r.recorded_at, reverse=True)[:limit]
    runs = []
    for r in newest:
        entry: dict[str, Any] = {
            "run_id": r.run_id,
            "label": f"{r.nickname or r.model_id} · {r.task} · {r.gpu_model} x{r.num_gpus}"
            f" · batch {r.batch}",
            "steady_window_s": steady_window(r),
            "timeline": None,
            "requests": None,
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
            except InputError as exc:
                entry["notes"].append(str(exc))
        runs.append(entry)
    return {"runs": runs, "total": len(records), "shown": len(runs)}
