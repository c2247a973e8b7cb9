from __future__ import annotations

import pytest

from joulelens.analysis.hardware import GPU_SPECS, canonical_gpu_name, gpu_spec, is_newer


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("H100", "H100"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100-PCIE"),
        ("B200", "B200"),
        ("NVIDIA B200", "B200"),
        ("NVIDIA GB200", "GB200"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("cpu", None),
        (None, None),
        ("", None),
    ],
)
def test_canonical_gpu_names(name: str | None, canonical: str | None) -> None:
    assert canonical_gpu_name(name) == canonical


def test_specs_have_positive_memory_and_tdp() -> None:
    for spec in GPU_SPECS.values():
        assert spec.memory_gib > 0 and spec.tdp_watts > 0


def test_h100_and_b200_figures() -> None:
    h100, b200 = gpu_spec("H100"), gpu_spec("B200")
    assert h100 is not None and b200 is not None
    assert h100.tdp_watts == 700 and b200.tdp_watts == 1000
    assert 79 < h100.memory_gib < 81 and 178 < b200.memory_gib < 181


def test_generation_order() -> None:
    assert is_newer("B200", "H100") is True
    assert is_newer("H100", "B200") is False
    assert is_newer("H200", "H100") is True
    assert is_newer("B200", "cpu") is None
