"""Timeline series names: ``<quantity>:<device>``, the unit in the quantity.

``power_watts:gpu:0``, ``energy_joules:cpu-package:0``, ``temperature_c:gpu:1``... Meters
write these names, the compile step and the report read them, and ``timeline.parquet``
stores them, so the spelling lives here once. Device names carry colons themselves
(``gpu:0``), which is why a name splits at its first colon only.
"""

from __future__ import annotations

POWER_WATTS = "power_watts"
ENERGY_JOULES = "energy_joules"  # cumulative, from the sampler's first reading
TEMPERATURE_C = "temperature_c"
GPU_UTILIZATION_PCT = "gpu_utilization_pct"
SM_CLOCK_MHZ = "sm_clock_mhz"
MEMORY_USED_BYTES = "memory_used_bytes"
POWER_LIMIT_WATTS = "power_limit_watts"


def series_name(quantity: str, device: str) -> str:
    return f"{quantity}:{device}"


def power_series(device: str) -> str:
    return series_name(POWER_WATTS, device)


def energy_series(device: str) -> str:
    return series_name(ENERGY_JOULES, device)


def series_device(name: str, quantity: str) -> str | None:
    """The device of ``name`` when it is a ``quantity`` series, else ``None``."""
    head, colon, device = name.partition(":")
    return device if colon and head == quantity else None


def power_device(name: str) -> str | None:
    """The device of a ``power_watts:<device>`` series, ``None`` for any other series."""
    return series_device(name, POWER_WATTS)


def is_power_series(name: str) -> bool:
    return power_device(name) is not None
