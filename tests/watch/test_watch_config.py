"""Parsing the watch options: durations, endpoints and their GPUs, idle power."""

from __future__ import annotations

import pytest

from joulelens.errors import InputError
from joulelens.watch import (
    EndpointSpec,
    WatchConfig,
    build_endpoints,
    duration_label,
    parse_duration_s,
    parse_idle_watts,
)


@pytest.mark.parametrize(
    ("text", "seconds", "label"),
    [
        ("10s", 10.0, "10s"),
        ("1m", 60.0, "1m"),
        ("5m", 300.0, "5m"),
        ("500ms", 0.5, "500ms"),
        ("90", 90.0, "90s"),
        ("2h", 7200.0, "2h"),
        ("1.5m", 90.0, "90s"),
    ],
)
def test_durations(text: str, seconds: float, label: str) -> None:
    assert parse_duration_s(text, field_name="w") == seconds
    assert duration_label(seconds) == label


@pytest.mark.parametrize("text", ["", "ten", "0s", "-1s", "5 minutes", "1y"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(InputError, match="windows"):
        parse_duration_s(text, field_name="windows")


def test_endpoint_labels_carry_no_credentials() -> None:
    spec = EndpointSpec.parse("http://user:secret@10.0.0.5:8000/v1")
    assert spec.label == "10.0.0.5:8000"
    assert spec.metrics_url == "http://10.0.0.5:8000/metrics"
    assert "secret" not in repr(spec)


def test_gpus_and_caps_pair_with_endpoints_in_order() -> None:
    specs = build_endpoints(["http://127.0.0.1:8000", "http://127.0.0.1:8001"], ["0,1", "2"], [256])
    assert [s.gpus for s in specs] == [(0, 1), (2,)]
    assert [s.max_num_seqs for s in specs] == [256, None]
    with pytest.raises(InputError, match="one --gpus per endpoint"):
        build_endpoints(["http://127.0.0.1:8000"], ["0", "1"])
    with pytest.raises(InputError, match="GPU indices"):
        build_endpoints(["http://127.0.0.1:8000"], ["zero"])
    with pytest.raises(InputError, match="twice"):
        build_endpoints(["http://127.0.0.1:8000"], ["1,1"])


def test_config_checks() -> None:
    one = (EndpointSpec.parse("http://127.0.0.1:8000"),)
    with pytest.raises(InputError, match="given twice"):
        WatchConfig(one + one)
    with pytest.raises(InputError, match="shorter than two sample periods"):
        WatchConfig(one, windows_s=(1.0,), sample_period_s=1.0)
    with pytest.raises(InputError, match="at least one"):
        WatchConfig(())
    assert WatchConfig(one, record_every_s=600.0).horizon_s == 600.0


def test_idle_watts() -> None:
    assert parse_idle_watts(["gpu:0=62", "gpu:1 = 60.5"]) == {"gpu:0": 62.0, "gpu:1": 60.5}
    for bad in (["gpu:0"], ["gpu:0=lots"], ["=5"]):
        with pytest.raises(InputError, match="idle_watts"):
            parse_idle_watts(bad)
    with pytest.raises(InputError, match="idle_watts"):
        WatchConfig((EndpointSpec.parse("http://127.0.0.1:8000"),), idle_watts={"gpu:0": -1.0})
