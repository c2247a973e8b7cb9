"""The whole validation rule set for one imported raw LLM/MLLM run.

The same rules as a run joulelens measures (:mod:`joulelens.measure.validate`), fed from
the harness's files: ``results.json`` (requests, steady-state energy, power and
temperature timelines), ``prometheus.json`` (running batch, scrape coverage) and the
``server.log``/``driver.log`` beside them (crash markers).
"""

from __future__ import annotations

from pathlib import Path

from joulelens.ingest.benchmark_files import LlmResults, PrometheusDoc, Samples
from joulelens.measure.series import SampledSeries
from joulelens.measure.validate import (
    DeviceSeries,
    batch_reasons,
    completion_reasons,
    crash_reasons,
    device_range_checks,
    energy_per_token_ceiling,
    energy_per_unit_reasons,
    running_gauge_reasons,
    scrape_coverage_warnings,
    steady_state_reasons,
    steady_state_warnings,
    truncation_reasons,
    window_reasons,
)

# The harness's own TDP table for its power-range check (W); other GPUs go unchecked there.
HARNESS_TDP_W = {"H100": 700.0, "B200": 1000.0}
LOG_FILES = ("server.log", "driver.log")
MAX_LOG_BYTES = 64 * 1024 * 1024  # read the tail of larger logs only


def raw_llm_checks(
    path: Path,
    doc: LlmResults,
    prom: PrometheusDoc | None,
    *,
    avg_batch_size: float | None,
    energy_per_token_j: float | None,
    throughput_per_s: float | None,
    cap: int | None,
) -> tuple[list[str], list[str]]:
    """(unstable reasons, warnings) of one raw run."""
    reasons = [
        *steady_state_reasons(doc.steady_state_duration),
        *energy_per_unit_reasons(energy_per_token_j, "token"),
        *energy_per_token_ceiling(energy_per_token_j),
        *window_reasons(doc.steady_state_energy, throughput_per_s),
        *batch_reasons(avg_batch_size, doc.max_num_seqs),
        *running_gauge_reasons(avg_batch_size is not None),
    ]
    warnings = steady_state_warnings(doc.steady_state_duration)
    failed = [r for r in doc.results if not r.success]
    reasons += completion_reasons(
        doc.completed, doc.num_prompts, len(failed), [r.error or "" for r in failed]
    )
    if not doc.results:
        reasons.append("results.json lists no requests [ML.ENERGY harness: error]")
    if cap is not None:
        ok = [r for r in doc.results if r.success]
        reasons += truncation_reasons(sum(1 for r in ok if (r.output_len or 0) >= cap), len(ok))
    device_reasons, device_warnings = _device_checks(doc)
    reasons += device_reasons
    warnings += device_warnings
    warnings += _coverage(doc, prom)
    log_reasons, log_warnings = _log_checks(path.parent)
    return reasons + log_reasons, warnings + log_warnings


def _coverage(doc: LlmResults, prom: PrometheusDoc | None) -> list[str]:
    if prom is None:
        return []
    interval = prom.collection_interval or 1.0
    start, end = prom.steady_state_start_time, prom.steady_state_end_time
    steady = sum(1 for s in prom.timeline if start <= s.timestamp <= end)
    return [
        *scrape_coverage_warnings(len(prom.timeline), doc.duration, interval, "benchmark"),
        *scrape_coverage_warnings(steady, doc.steady_state_duration, interval, "steady state"),
    ]


def _series(samples: Samples | None, device: str) -> SampledSeries | None:
    points = sorted((p[0], p[1]) for p in (samples or {}).get(device, []))
    if not points:
        return None
    return SampledSeries.of([t for t, _ in points], [v for _, v in points])


def _device_checks(doc: LlmResults) -> tuple[list[str], list[str]]:
    timeline = doc.timeline
    if timeline is None or (timeline.power is None and timeline.temperature is None):
        return [], ["power and temperature not checked: results.json has no timeline samples"]
    power = timeline.power.device_instant if timeline.power else {}
    temperature = timeline.temperature or {}
    limit = HARNESS_TDP_W.get(doc.gpu_model.upper())
    window = doc.steady_state_measurement
    devices = []
    times: list[float] = []
    for device in sorted({*power, *temperature}, key=lambda d: (len(d), d)):
        watts, temps = _series(power, device), _series(temperature, device)
        for series in (watts, temps):
            if series is not None:
                times += [float(series.times_s[0]), float(series.times_s[-1])]
        joules = window.gpu_energy.get(device) if window is not None else None
        mean = joules / window.time if window is not None and joules and window.time > 0 else None
        devices.append(DeviceSeries(f"gpu:{device}", watts, temps, limit, mean))
    if not times:
        return [], ["power and temperature not checked: the timeline has no samples"]
    return device_range_checks(devices, min(times), max(times))


def _log_checks(run_dir: Path) -> tuple[list[str], list[str]]:
    reasons: list[str] = []
    warnings: list[str] = []
    for name in LOG_FILES:
        path = run_dir / name
        if not path.is_file():
            warnings.append(
                f"no {name} beside results.json: crashes not checked there "
                "[ML.ENERGY harness: error (missing file)]"
            )
            continue
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(max(size - MAX_LOG_BYTES, 0))
                text = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            warnings.append(f"{name} not checked for crashes: {exc.strerror or exc}")
            continue
        reasons += crash_reasons(text, name)
    return reasons, warnings
