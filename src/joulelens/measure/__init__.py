"""Measurement: turns engine request events and meter readings into run records.

Typical LLM run (see ``docs/measurement.md``)::

    with detect_meters() as meters:
        idle = measure_idle_power(meters)
        with TimelineSampler(meters) as sampler, MetricsScraper(url) as scraper:
            traces = run_load_sync(requests, load_config)
    run = compile_llm_run(
        traces,
        readings_from_meters(meters, sampler.timeline, notes=meters.notes),
        spec=RunSpec(run_id, model_id, task, provenance, max_num_seqs=64),
        server_metrics=server_metrics_from_scraper(scraper),
        idle=idle_from_meters(idle),
    )
    store.put(run.record, write_artifacts=run.write_artifacts)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joulelens.measure.adapters import (
        idle_from_meters,
        readings_from_meters,
        server_metrics_from_scraper,
        window_energy_from_meters,
    )
    from joulelens.measure.artifacts import REQUESTS_FILE, TIMELINE_FILE, write_run_artifacts
    from joulelens.measure.attribution import Attribution, attribute_energy
    from joulelens.measure.compile import compile_llm_run
    from joulelens.measure.diffusion import compile_diffusion_run
    from joulelens.measure.energy import (
        EnergyReadings,
        EnergySource,
        IdleBaseline,
        WindowEnergy,
    )
    from joulelens.measure.events import BatchTrace, RequestTrace
    from joulelens.measure.series import SampledSeries
    from joulelens.measure.server import ServerMetrics
    from joulelens.measure.spec import CompiledRun, MeasureOptions, RunSpec
    from joulelens.measure.steady import SteadyWindow, steady_window
    from joulelens.measure.validate import apply_cascade, stable_largest_batch

# The API is loaded on first use: meters and workloads import ``measure.clock`` and
# ``measure.events``, and an eager import of the compile step (which reads the meters'
# types) from here would be circular.
_LAZY: dict[str, str] = {
    "Attribution": "joulelens.measure.attribution",
    "BatchTrace": "joulelens.measure.events",
    "CompiledRun": "joulelens.measure.spec",
    "EnergyReadings": "joulelens.measure.energy",
    "EnergySource": "joulelens.measure.energy",
    "IdleBaseline": "joulelens.measure.energy",
    "MeasureOptions": "joulelens.measure.spec",
    "REQUESTS_FILE": "joulelens.measure.artifacts",
    "RequestTrace": "joulelens.measure.events",
    "RunSpec": "joulelens.measure.spec",
    "SampledSeries": "joulelens.measure.series",
    "ServerMetrics": "joulelens.measure.server",
    "SteadyWindow": "joulelens.measure.steady",
    "TIMELINE_FILE": "joulelens.measure.artifacts",
    "WindowEnergy": "joulelens.measure.energy",
    "apply_cascade": "joulelens.measure.validate",
    "attribute_energy": "joulelens.measure.attribution",
    "compile_diffusion_run": "joulelens.measure.diffusion",
    "compile_llm_run": "joulelens.measure.compile",
    "idle_from_meters": "joulelens.measure.adapters",
    "readings_from_meters": "joulelens.measure.adapters",
    "server_metrics_from_scraper": "joulelens.measure.adapters",
    "stable_largest_batch": "joulelens.measure.validate",
    "steady_window": "joulelens.measure.steady",
    "window_energy_from_meters": "joulelens.measure.adapters",
    "write_run_artifacts": "joulelens.measure.artifacts",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "REQUESTS_FILE",
    "TIMELINE_FILE",
    "Attribution",
    "BatchTrace",
    "CompiledRun",
    "EnergyReadings",
    "EnergySource",
    "IdleBaseline",
    "MeasureOptions",
    "RequestTrace",
    "RunSpec",
    "SampledSeries",
    "ServerMetrics",
    "SteadyWindow",
    "WindowEnergy",
    "apply_cascade",
    "attribute_energy",
    "compile_diffusion_run",
    "compile_llm_run",
    "idle_from_meters",
    "readings_from_meters",
    "server_metrics_from_scraper",
    "stable_largest_batch",
    "steady_window",
    "window_energy_from_meters",
    "write_run_artifacts",
]
