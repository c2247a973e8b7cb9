"""Series names round-trip through their parser, device names with colons included."""

from __future__ import annotations

import pytest

from joulelens.core.series import (
    ENERGY_JOULES,
    TEMPERATURE_C,
    energy_series,
    is_power_series,
    power_device,
    power_series,
    series_device,
    series_name,
)


@pytest.mark.parametrize("device", ["gpu:0", "cpu-package:0", "dram", "cpu-estimate:system@10W"])
def test_names_round_trip(device: str) -> None:
    assert power_series(device) == f"power_watts:{device}"
    assert energy_series(device) == f"energy_joules:{device}"
    assert power_device(power_series(device)) == device
    assert series_device(energy_series(device), ENERGY_JOULES) == device
    assert series_device(series_name(TEMPERATURE_C, device), TEMPERATURE_C) == device


@pytest.mark.parametrize(
    "name",
    [
        "energy_joules:gpu:0",
        "power_limit_watts:gpu:0",  # power_watts is not a prefix match
        "power_watts",  # no device part
        "running_batch:server",
    ],
)
def test_other_series_are_not_power(name: str) -> None:
    assert power_device(name) is None
    assert not is_power_series(name)
