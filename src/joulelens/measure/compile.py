"""Compile an LLM/MLLM run once, after it ended: traces + readings -> record and rows.

The flow (style habit 6): the load generator accumulated :class:`RequestTrace` events, the
sampler accumulated energy series, the scraper server gauges; this module cuts the
steady-state window from the events, reads every metric over it, validates, attributes
energy per request and returns a :class:`CompiledRun`. Nothing here talks to a device or a
server, so it runs the same on recorded data in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from joulelens.core.boundaries import boundary_parts
from joulelens.core.clock import RESOLUTION_S
from joulelens.core.events import RequestTrace
from joulelens.core.idle import IdlePower
from joulelens.core.windows import WindowEnergy
from joulelens.errors import InputError
from joulelens.measure.artifacts import artifact_names, timeline_rows
from joulelens.measure.attribution import Attribution, attribute_energy
from joulelens.measure.energy import EnergyReadings
from joulelens.measure.metrics import (
    Metrics,
    client_running_batch,
    latency_metrics,
    output_length_histogram,
    timing_warnings,
)
from joulelens.measure.series import SampledSeries
from joulelens.measure.server import KV_CACHE_USAGE, RUNNING, ServerMetrics
from joulelens.measure.shared import (
    boundary_and_method,
    build_record,
    headline_of,
    put_idle,
    range_checks,
)
from joulelens.measure.spec import CompiledRun, MeasureOptions, RunAdditions, RunSpec
from joulelens.measure.steady import (
    Drift,
    SteadyWindow,
    drift_warnings,
    stationarity,
    steady_window,
)
from joulelens.measure.tokens import (
    TokenTimes,
    e2e_s,
    last_activity_s,
    timing_resolution,
    ttft_s,
)
from joulelens.measure.validate import (
    HARNESS_ERROR,
    batch_reasons,
    energy_per_token_ceiling,
    energy_per_unit_reasons,
    request_reasons,
    scrape_coverage_warnings,
    steady_state_reasons,
    steady_state_warnings,
    window_reasons,
)
from joulelens.records.schema import EnergyBoundary, EnergyComponent, RequestRow, RunKind

ENERGY_FIELDS = (
    "steady_state_energy_joules",
    "avg_power_watts",
    "energy_per_token_joules",
    "energy_per_request_joules",
)
# Server gauges on the timeline, named like the meters' series (<quantity>:<device>).
RUNNING_SERIES = "running_batch:server"
# A server gauge averaged over fewer scrapes than this says more about the scrape phase
# than about the window; the client-side count is the better estimate then.
MIN_SCRAPES_IN_WINDOW = 2
KV_CACHE_SERIES = "kv_cache_usage:server"
SCRAPE_INTERVAL_S = 1.0  # the scraper's default period, as the harness's


def compile_llm_run(
    traces: Sequence[RequestTrace],
    energy: EnergyReadings,
    *,
    spec: RunSpec,
    server_metrics: ServerMetrics | None = None,
    idle: IdlePower | None = None,
    options: MeasureOptions | None = None,
    additions: RunAdditions | None = None,
) -> CompiledRun:
    """One LLM/MLLM run: record (every metric a number or null with a reason), per-request
    rows with attributed energy, and timeline rows (times relative to the first send)."""
    options = options or MeasureOptions()
    if spec.kind is RunKind.DIFFUSION:
        raise InputError("compile_llm_run needs an LLM or MLLM spec", field="kind")
    if spec.max_num_seqs is None or spec.max_num_seqs < 1:
        raise InputError("an LLM run needs max_num_seqs >= 1", field="max_num_seqs")
    if not traces:
        raise InputError("no request traces to compile", field="traces")
    n = spec.num_requests if spec.num_requests is not None else len(traces)
    b = spec.max_num_seqs
    tokens = TokenTimes.from_traces(traces)
    steady = steady_window(traces, b, n)
    metrics = Metrics()
    warnings = list(energy.warnings)
    reasons: list[str] = []

    latency_metrics(metrics, traces)
    done = [t for t in traces if t.ok]
    warnings += timing_warnings(timing_resolution(done), metrics.get("median_itl_ms"), RESOLUTION_S)
    lengths = [t.output_tokens for t in done]
    metrics.put(
        "avg_output_len", float(np.mean(lengths)) if lengths else None, "no request completed"
    )
    if tokens.mismatched_requests:
        warnings.append(
            f"{tokens.mismatched_requests} requests reported more or fewer output tokens in "
            "usage than their chunks carried; their streamed tokens are weighted to match"
        )

    window = None
    if steady.found:
        assert steady.start_s is not None and steady.end_s is not None
        window = energy.window(steady.start_s, steady.end_s)
        warnings += window.warnings
    head, why = headline_of(window, energy, options)
    boundary, method = boundary_and_method(head, energy, options)
    _put_window_metrics(metrics, traces, tokens, steady, head, why, server_metrics, warnings)
    e_ss = metrics.get("steady_state_energy_joules")
    put_idle(metrics, idle, boundary, steady.duration_s, e_ss, warnings)

    drifts: list[Drift] = []
    if steady.found:
        assert steady.start_s is not None and steady.end_s is not None
        drifts = stationarity(
            steady.start_s, steady.end_s, _rates(energy, window, boundary, tokens)
        )
        drift_notes = drift_warnings(drifts, options.max_stationary_drift)
        (reasons if options.require_stationary else warnings).extend(drift_notes)
    reasons += steady_state_reasons(steady.duration_s, options.min_steady_state_s, steady.reason)
    reasons += energy_per_unit_reasons(metrics.get("energy_per_token_joules"), "token")
    reasons += batch_reasons(metrics.get("avg_batch_size"), b)
    reasons += request_reasons(traces, n, check_truncation=not options.fixed_output_length)
    reasons += window_reasons(e_ss, metrics.get("output_throughput_tokens_per_sec"))
    warnings += energy_per_token_ceiling(metrics.get("energy_per_token_joules"))
    warnings += steady_state_warnings(steady.duration_s)
    warnings += _scrape_coverage(server_metrics, steady)
    device_reasons, device_warnings = range_checks(energy, window)
    reasons += device_reasons
    warnings += device_warnings

    attribution = _attribute(traces, tokens, energy, boundary, options, warnings)
    if isinstance(attribution, str):
        warnings.append(f"per-request energy not attributed: {attribution}")
        metrics.put("run_energy_joules", None, f"not attributed: {attribution}")
    else:
        metrics.put("run_energy_joules", attribution.energy_j)
    origin_s = options.origin_s if options.origin_s is not None else min(t.sent_s for t in traces)
    rows = _request_rows(traces, tokens, steady, attribution, origin_s)
    timeline = timeline_rows({**energy.series, **_server_series(server_metrics)}, origin_s)
    extra = {
        "num_requests": n,
        "num_completed_requests": len(done),
        "num_failed_requests": sum(t.error is not None for t in traces),
        "num_truncated_requests": sum(t.truncated for t in done),
        "output_length_distribution": output_length_histogram(lengths),
    }
    record = build_record(
        spec,
        metrics,
        boundary=boundary,
        method=method,
        window=window,
        reasons=reasons,
        warnings=warnings,
        options=options,
        extra=extra,
        artifacts=artifact_names(rows, timeline),
        config_extra={"steady_state": _steady_config(steady, drifts, origin_s)},
        timeline=timeline,
        additions=additions,
    )
    return CompiledRun(record, rows, timeline)


def _put_window_metrics(
    metrics: Metrics,
    traces: Sequence[RequestTrace],
    tokens: TokenTimes,
    steady: SteadyWindow,
    head: EnergyComponent | None,
    energy_reason: str,
    server: ServerMetrics | None,
    warnings: list[str],
) -> None:
    """Everything read over the steady-state window: duration, tokens, energy, batch, KV."""
    window_fields = (
        "steady_state_duration_s",
        "output_throughput_tokens_per_sec",
        "avg_batch_size",
        "avg_kv_cache_usage",
        "max_kv_cache_usage",
        *ENERGY_FIELDS,
    )
    if not steady.found:
        metrics.null_all(window_fields, f"no steady state: {steady.reason}")
        return
    assert steady.start_s is not None and steady.end_s is not None
    start_s, end_s = steady.start_s, steady.end_s
    duration_s = end_s - start_s
    window_tokens = tokens.count_in(start_s, end_s)
    metrics.put("steady_state_duration_s", duration_s)
    metrics.put("output_throughput_tokens_per_sec", window_tokens / duration_s)

    if head is None or head.joules is None:
        metrics.null_all(ENERGY_FIELDS, energy_reason)
    else:
        metrics.put("steady_state_energy_joules", head.joules)
        metrics.put("avg_power_watts", head.joules / duration_s)
        no_tokens = "no output token was streamed inside the steady state"
        per_token = head.joules / window_tokens if window_tokens > 0 else None
        metrics.put("energy_per_token_joules", per_token, no_tokens)
        avg_len = metrics.get("avg_output_len")
        per_request = None if per_token is None or avg_len is None else per_token * avg_len
        metrics.put("energy_per_request_joules", per_request, no_tokens)

    running = server.running if server is not None else None
    scrapes = _samples_inside(running, start_s, end_s)
    batch = None
    if running is not None and scrapes >= MIN_SCRAPES_IN_WINDOW:
        batch = running.inside_step_mean(start_s, end_s)
    if batch is None:
        batch = client_running_batch(traces, start_s, end_s)
        if server is None:
            why = "the server offered no metrics"
        elif running is None:
            why = server.missing_reason(RUNNING)
        else:
            why = (
                f"only {scrapes} server scrape(s) inside the {end_s - start_s:.2f} s "
                f"steady state (need {MIN_SCRAPES_IN_WINDOW})"
            )
        warnings.append(
            "average batch from client-side counts (first token to finish): "
            f"{why} (without the server's running-batch gauge {HARNESS_ERROR})"
        )
    metrics.put("avg_batch_size", batch)

    kv = server.kv_cache_usage if server is not None else None
    kv_reason = (
        "no server metrics were scraped"
        if server is None
        else server.missing_reason(KV_CACHE_USAGE)
    )
    kv_scrapes = _samples_inside(kv, start_s, end_s)
    enough = kv is not None and kv_scrapes >= MIN_SCRAPES_IN_WINDOW
    mean = kv.inside_step_mean(start_s, end_s) if kv is not None and enough else None
    peak = kv.inside_step_max(start_s, end_s) if kv is not None and enough else None
    if kv is not None:
        kv_reason = (
            f"{kv_scrapes} server scrape(s) inside the steady state (need {MIN_SCRAPES_IN_WINDOW})"
        )
    metrics.put("avg_kv_cache_usage", mean, kv_reason)
    metrics.put("max_kv_cache_usage", peak, kv_reason)


def _scrape_coverage(server: ServerMetrics | None, steady: SteadyWindow) -> list[str]:
    """The harness's Prometheus coverage check over the steady state (1 Hz scrapes)."""
    running = server.running if server is not None else None
    if running is None or steady.start_s is None or steady.end_s is None:
        return []
    scrapes = _samples_inside(running, steady.start_s, steady.end_s)
    return scrape_coverage_warnings(scrapes, steady.duration_s, SCRAPE_INTERVAL_S, "steady state")


def _rates(
    energy: EnergyReadings,
    window: WindowEnergy | None,
    boundary: EnergyBoundary,
    tokens: TokenTimes,
) -> dict[str, Callable[[float, float], float | None]]:
    """Mean power and token rate over any sub-window, for the stationarity check."""
    sources = energy.total_sources(window, boundary) if window is not None else []

    def power_w(a: float, b: float) -> float | None:
        if not sources:
            return None
        ends = energy.cumulative_at(sources, np.array([a, b]))
        return float(ends[1] - ends[0]) / (b - a)

    def tokens_per_s(a: float, b: float) -> float | None:
        return tokens.count_in(a, b) / (b - a)

    return {"power (W)": power_w, "token rate (tokens/s)": tokens_per_s}


def _attribute(
    traces: Sequence[RequestTrace],
    tokens: TokenTimes,
    energy: EnergyReadings,
    boundary: EnergyBoundary,
    options: MeasureOptions,
    warnings: list[str],
) -> Attribution | str:
    """Attribute the energy of the whole run (first send to last finish) per request."""
    ends = [e for t in traces if (e := last_activity_s(t)) is not None]
    if not ends:
        return "no request finished"
    start_s, end_s = min(t.sent_s for t in traces), max(ends)
    parts = boundary_parts(boundary)
    candidates = [
        series
        for s in energy.sources
        if s.boundary in parts and s.missing_reason is None
        if (series := energy.cumulative(s.name)) is not None and len(series) >= 2
    ]
    if not candidates:
        return f"no {boundary.value} energy series to attribute"
    covered_start = max(start_s, *(float(s.times_s[0]) for s in candidates))
    covered_end = min(end_s, *(float(s.times_s[-1]) for s in candidates))
    if covered_end <= covered_start:
        return f"the {boundary.value} energy series do not overlap the run"
    if (covered_start, covered_end) != (start_s, end_s):
        warnings.append(
            f"per-request energy covers {covered_start - start_s:.3f}..{covered_end - start_s:.3f}"
            f" s of the run's {end_s - start_s:.3f} s (energy readings start later or end earlier)"
        )
    window = energy.window(covered_start, covered_end)
    sources = energy.total_sources(window, boundary)
    if not sources:
        total = window.total(boundary)
        return f"{boundary.value} energy unavailable: {total.missing_reason if total else '?'}"
    inner = energy.sample_times(sources, covered_start, covered_end)
    edges = np.concatenate(([covered_start], inner, [covered_end]))
    cumulative = energy.cumulative_at(sources, edges)
    return attribute_energy(
        traces, tokens, edges, cumulative, prefill_weight=options.prefill_weight
    )


def _request_rows(
    traces: Sequence[RequestTrace],
    tokens: TokenTimes,
    steady: SteadyWindow,
    attribution: Attribution | str,
    origin_s: float,
) -> list[RequestRow]:
    in_window = np.zeros(len(traces), dtype=bool)
    if steady.found:
        assert steady.start_s is not None and steady.end_s is not None
        in_window[tokens.request_index[tokens.mask_in(steady.start_s, steady.end_s)]] = True
    rows = []
    for i, trace in enumerate(traces):
        ttft, e2e = ttft_s(trace), e2e_s(trace)
        attributed: dict[str, float | None] = dict.fromkeys(
            (
                "attributed_energy_joules",
                "attributed_prefill_energy_joules",
                "attributed_decode_energy_joules",
            )
        )
        if isinstance(attribution, Attribution):
            prefill, decode = float(attribution.prefill_j[i]), float(attribution.decode_j[i])
            attributed = {
                "attributed_energy_joules": prefill + decode,
                "attributed_prefill_energy_joules": prefill,
                "attributed_decode_energy_joules": decode,
            }
        rows.append(
            RequestRow(
                request_id=trace.request_id,
                sent_s=trace.sent_s - origin_s,
                ttft_ms=None if ttft is None else ttft * 1000.0,
                e2e_latency_ms=None if e2e is None else e2e * 1000.0,
                input_tokens=trace.input_tokens,
                output_tokens=trace.output_tokens,
                finish_reason=trace.finish_reason,
                error=trace.error,
                in_steady_state=bool(in_window[i]),
                **attributed,
            )
        )
    return rows


def _samples_inside(series: SampledSeries | None, start_s: float, end_s: float) -> int:
    if series is None:
        return 0
    times = series.times_s
    return int(((times >= start_s) & (times <= end_s)).sum())


def _server_series(server: ServerMetrics | None) -> dict[str, SampledSeries]:
    if server is None:
        return {}
    named = {RUNNING_SERIES: server.running, KV_CACHE_SERIES: server.kv_cache_usage}
    return {name: s for name, s in named.items() if s is not None}


def _steady_config(steady: SteadyWindow, drifts: Sequence[Drift], origin_s: float) -> dict:
    """The window on the artifacts' time axis (s since ``origin_s``) and its drifts."""
    out: dict[str, object] = {"rule": steady.rule}
    if steady.start_s is None or steady.end_s is None:
        out["reason"] = steady.reason
        return out
    out["start_s"] = steady.start_s - origin_s
    out["end_s"] = steady.end_s - origin_s
    for drift in drifts:
        out[f"drift:{drift.quantity}"] = drift.relative
    return out
