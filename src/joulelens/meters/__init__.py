"""Energy meters: read-only sources of joules (GPUs, RAPL, a CPU-time estimate).

Typical use::

    with detect_meters() as meters:                # or detect_meters(gpus=selection): by UUID
        idle = measure_idle_power(meters)          # W per boundary, for the static share
        with TimelineSampler(meters) as sampler:   # 10 Hz power/temperature/energy
            meters.begin_window("run")
            ...                                    # the workload
            window = meters.end_window("run")      # a WindowEnergy: J per device and boundary
        timeline = sampler.timeline

The result types (``WindowEnergy``, ``IdlePower``) and the summing rules
(``boundary_totals``) live in :mod:`joulelens.core`, shared with the compile step. Neither
``pynvml`` nor ``psutil`` is imported until a meter needs it. Fakes for tests live
in :mod:`joulelens.meters.fake`. See ``docs/meters.md``.
"""

from joulelens.meters.base import (
    Meter,
    Reading,
    SensorUnavailable,
    SeriesSink,
    UnavailableMeter,
)
from joulelens.meters.cpu_estimate import DEFAULT_WATTS_PER_CORE, CpuTimeMeter
from joulelens.meters.detect import CpuEstimateMode, detect_meters
from joulelens.meters.idle import DEFAULT_IDLE_DURATION_S, measure_idle_power
from joulelens.meters.meterset import MeterSet
from joulelens.meters.nvml import NvmlGpuMeter
from joulelens.meters.nvml_backend import GpuBackend, PowerSource, PynvmlBackend
from joulelens.meters.rapl import RaplZoneMeter
from joulelens.meters.sampler import DEFAULT_PERIOD_S, DEFAULT_STATE_PERIOD_S, TimelineSampler
from joulelens.meters.select import GpuDevice, GpuSelection, GpuUnreadable
from joulelens.meters.timeline import Timeline, energy_between_j, integrate_power_j
from joulelens.meters.windows import WindowHooks

__all__ = [
    "DEFAULT_IDLE_DURATION_S",
    "DEFAULT_PERIOD_S",
    "DEFAULT_STATE_PERIOD_S",
    "DEFAULT_WATTS_PER_CORE",
    "CpuEstimateMode",
    "CpuTimeMeter",
    "GpuBackend",
    "GpuDevice",
    "GpuSelection",
    "GpuUnreadable",
    "Meter",
    "MeterSet",
    "NvmlGpuMeter",
    "PowerSource",
    "PynvmlBackend",
    "RaplZoneMeter",
    "Reading",
    "SensorUnavailable",
    "SeriesSink",
    "Timeline",
    "TimelineSampler",
    "UnavailableMeter",
    "WindowHooks",
    "detect_meters",
    "energy_between_j",
    "integrate_power_j",
    "measure_idle_power",
]
