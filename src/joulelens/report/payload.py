"""Stored records -> the report's JSON payload (compact and columnar).

One payload feeds the static HTML file and the live server alike. Runs become columns (one
list per field, strings dictionary-encoded), so 1,858 runs cost a few hundred kB rather than
the megabytes of full records. Numbers are rounded to 5 significant digits; a value that was
not measured is ``null`` and shows as a dash, never as 0.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from joulelens import __version__
from joulelens.records import RunRecord, SourceKind
from joulelens.report.findings import study_section
from joulelens.report.frontier import frontier_flags, model_key, setup_key
from joulelens.report.measured import energy_note, measured_runs
from joulelens.report.numbers import sig
from joulelens.store import RunFilter, Store

PAYLOAD_VERSION = 1
OUTPUT_TOKEN_BINS = 48  # common log-spaced bins for the per-task output-length density


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def _energy_per_response(r: RunRecord) -> float | None:
    """J per response for LLMs; diffusion has one generation per response (image or video)."""
    return r.energy_per_generation_joules if r.is_diffusion else r.energy_per_request_joules


def _stable_code(r: RunRecord) -> int | None:
    return None if r.stable is None else int(r.stable)


# (column, extractor, kind): kind "num" is rounded, "int" kept exact, "str" dictionary-encoded.
RUN_COLUMNS: list[tuple[str, Callable[[RunRecord], Any], str]] = [
    ("run_id", lambda r: r.run_id, "raw"),
    ("task", lambda r: r.task, "str"),
    ("kind", lambda r: r.kind.value, "str"),
    ("model", lambda r: r.nickname or r.model_id, "str"),
    ("model_id", lambda r: r.model_id, "str"),
    ("architecture", lambda r: r.architecture, "str"),
    ("gpu", lambda r: r.gpu_model, "str"),
    ("num_gpus", lambda r: r.num_gpus, "int"),
    ("batch", lambda r: r.batch, "int"),
    ("precision", lambda r: r.weight_precision, "str"),
    ("unit", lambda r: r.energy_unit, "str"),
    ("energy_per_unit_j", lambda r: r.energy_per_unit_joules, "num"),
    ("energy_per_response_j", _energy_per_response, "num"),
    ("latency_ms", lambda r: r.latency_ms, "num"),
    ("p90_itl_ms", lambda r: r.p90_itl_ms, "num"),
    ("throughput_per_s", lambda r: r.throughput_units_per_sec, "num"),
    ("power_w", lambda r: r.avg_power_watts, "num"),
    (
        "throughput_per_w",
        lambda r: _ratio(r.throughput_units_per_sec, r.avg_power_watts),
        "num",
    ),
    ("avg_batch", lambda r: r.avg_batch_size, "num"),
    ("avg_output_len", lambda r: r.avg_output_len, "num"),
    ("kv_cache_usage", lambda r: r.avg_kv_cache_usage, "num"),
    ("static_fraction", lambda r: r.static_energy_fraction, "num"),
    ("stable", _stable_code, "int"),
    ("unstable_reasons", lambda r: "; ".join(r.unstable_reasons) or None, "str"),
    ("boundary", lambda r: r.energy_boundary.value, "str"),
    ("method", lambda r: r.energy_method.value, "str"),
    ("source", lambda r: r.provenance.source.value, "str"),
    ("recorded_at", lambda r: r.recorded_at.isoformat(timespec="seconds"), "str"),
]


def runs_columns(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Columnar runs: ``{"n", "cols": {name: values}, "dicts": {name: strings}}``."""
    cols: dict[str, list[Any]] = {}
    dicts: dict[str, list[str | None]] = {}
    for name, get, kind in RUN_COLUMNS:
        values = [get(r) for r in records]
        if kind == "num":
            cols[name] = [sig(v) for v in values]
        elif kind == "str":
            index: dict[str | None, int] = {}
            cols[name] = [index.setdefault(v, len(index)) for v in values]
            dicts[name] = list(index)
        else:
            cols[name] = values
    cols["frontier_setup"] = [_flag(f) for f in frontier_flags(records, setup_key)]
    cols["frontier_model"] = [_flag(f) for f in frontier_flags(records, model_key)]
    return {"n": len(records), "cols": cols, "dicts": dicts}


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def task_info(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    by_task: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r)
    return [
        {
            "task": task,
            "kind": runs[0].kind.value,
            "unit": runs[0].energy_unit,
            "runs": len(runs),
            "models": len({r.model_id for r in runs}),
        }
        for task, runs in sorted(by_task.items())
    ]


def output_token_density(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Per task, the mean over runs of each run's output-length distribution.

    Every run's histogram is normalised to 1 and spread onto shared log-spaced bins (each
    source bin's mass split over the target bins it overlaps, assuming it is uniform inside),
    so tasks with 50 and with 30,000 tokens per response compare on one axis.
    """
    hists = [(r.task, h) for r in records if (h := r.output_length_distribution) is not None]
    hists = [(task, h) for task, h in hists if h.total > 0]
    if not hists:
        return {"edges": [], "tasks": {}}
    lo = max(1.0, min(h.bins[0] for _, h in hists))
    hi = max(h.bins[-1] for _, h in hists)
    log_lo, step = math.log10(lo), (math.log10(hi) - math.log10(lo)) / OUTPUT_TOKEN_BINS or 1.0
    edges = [10 ** (log_lo + i * step) for i in range(OUTPUT_TOKEN_BINS + 1)]
    sums: dict[str, list[float]] = {}
    runs: dict[str, int] = defaultdict(int)
    for task, h in hists:
        acc = sums.setdefault(task, [0.0] * OUTPUT_TOKEN_BINS)
        for left, right, count in zip(h.bins, h.bins[1:], h.counts, strict=False):
            left, right = max(left, lo), max(right, lo)
            if count == 0 or right <= left:
                if count and right == left:  # a point mass (or a bin below 1 token)
                    acc[_bin_of(right, log_lo, step)] += count / h.total
                continue
            first, last = _bin_of(left, log_lo, step), _bin_of(right, log_lo, step)
            for i in range(first, last + 1):
                overlap = min(right, edges[i + 1]) - max(left, edges[i])
                if overlap > 0:
                    acc[i] += count / h.total * overlap / (right - left)
        runs[task] += 1
    tasks = {
        task: {"fraction": [sig(v / runs[task], 4) for v in acc], "runs": runs[task]}
        for task, acc in sorted(sums.items())
    }
    return {"edges": [sig(e, 4) for e in edges], "tasks": tasks}


def _bin_of(value: float, log_lo: float, step: float) -> int:
    return min(max(int((math.log10(value) - log_lo) / step), 0), OUTPUT_TOKEN_BINS - 1)


def _filters_dict(flt: RunFilter | None) -> dict[str, Any]:
    if flt is None:
        return {}
    return {k: v for k, v in asdict(flt).items() if v not in (None, False)}


def _sources(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str | None], int] = defaultdict(int)
    for r in records:
        seen[(r.provenance.source.value, r.provenance.source_version)] += 1
    return [{"source": s, "version": v, "runs": n} for (s, v), n in sorted(seen.items())]


def energy_notes(records: Sequence[RunRecord]) -> list[str]:
    """How the energy of the runs shown was obtained, one line per kind, from the records."""
    groups: dict[str, int] = defaultdict(int)
    for r in records:
        source = r.provenance.source
        note = re.sub(r" \(pid \d+\)", "", energy_note(r))  # one line for every run alike
        if source is not SourceKind.JOULELENS and r.energy_method.value == "counter":
            note += ": GPU energy counters (NVML) over the steady state, as ML.ENERGY publishes it"
        label = source.value + (
            f" {r.provenance.source_version}" if r.provenance.source_version else ""
        )
        groups[f"{label}: {note}"] += 1
    return [f"{n} run{'s' if n != 1 else ''} from {text}" for text, n in sorted(groups.items())]


def build_payload(
    store: Store,
    flt: RunFilter | None = None,
    *,
    title: str = "joulelens report",
    max_measured_runs: int = 50,
) -> dict[str, Any]:
    """Everything the report shows, read from the store (never re-measured)."""
    records = store.query(flt)
    own = [r for r in records if r.provenance.source is SourceKind.JOULELENS]
    return {
        "version": PAYLOAD_VERSION,
        "meta": {
            "title": title,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "joulelens_version": __version__,
            "filters": _filters_dict(flt),
            "runs": len(records),
            "sources": _sources(records),
            "energy_notes": energy_notes(records),
        },
        "tasks": task_info(records),
        "runs": runs_columns(records),
        "output_tokens": output_token_density(records),
        "study": study_section(records),
        "measured": measured_runs(store, own, limit=max_measured_runs),
    }
