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
        idle=idle,
    )
    store.put(run.record, write_artifacts=run.write_artifacts)

What engines emit (``RequestTrace``, ``BatchTrace``) and the window and idle types the
meters produce (``WindowEnergy``, ``IdlePower``) are in :mod:`joulelens.core`, below both.
"""

from joulelens.measure.adapters import readings_from_meters, server_metrics_from_scraper
from joulelens.measure.artifacts import REQUESTS_FILE, TIMELINE_FILE, write_run_artifacts
from joulelens.measure.attribution import Attribution, attribute_energy
from joulelens.measure.compile import compile_llm_run
from joulelens.measure.diffusion import compile_diffusion_run
from joulelens.measure.energy import EnergyReadings, EnergySource
from joulelens.measure.series import SampledSeries
from joulelens.measure.server import ServerMetrics
from joulelens.measure.spec import CompiledRun, MeasureOptions, RunSpec
from joulelens.measure.steady import SteadyWindow, steady_window
from joulelens.measure.validate import apply_cascade, stable_largest_batch

__all__ = [
    "REQUESTS_FILE",
    "TIMELINE_FILE",
    "Attribution",
    "CompiledRun",
    "EnergyReadings",
    "EnergySource",
    "MeasureOptions",
    "RunSpec",
    "SampledSeries",
    "ServerMetrics",
    "SteadyWindow",
    "apply_cascade",
    "attribute_energy",
    "compile_diffusion_run",
    "compile_llm_run",
    "readings_from_meters",
    "server_metrics_from_scraper",
    "stable_largest_batch",
    "steady_window",
    "write_run_artifacts",
]
