"""CUDA_VISIBLE_DEVICES -> NVML indices, the way the CUDA runtime reads it."""

from __future__ import annotations

import pytest

from joulelens.errors import MeterError
from joulelens.meters.visible import parse_entries, visible_gpus

UUIDS = (
    "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
    "GPU-8932aaaa-0000-0000-0000-000000000001",
    "GPU-5f0c1b2a-1111-2222-3333-444455556666",
    "GPU-77777777-aaaa-bbbb-cccc-dddddddddddd",
)


@pytest.mark.parametrize(
    ("value", "expected", "warns"),
    [
        pytest.param(None, (0, 1, 2, 3), False, id="unset-all"),
        pytest.param("0,2", (0, 2), False, id="indices"),
        pytest.param("2,0", (2, 0), False, id="order-is-cuda-order"),
        pytest.param(" 1 , 3 ", (1, 3), False, id="spaces"),
        pytest.param("GPU-5f0c1b2a-1111-2222-3333-444455556666", (2,), False, id="full-uuid"),
        pytest.param("GPU-5f0c", (2,), False, id="uuid-prefix"),
        pytest.param("gpu-5F0C", (2,), False, id="uuid-case"),
        pytest.param("GPU-7777,0", (3, 0), False, id="uuid-then-index"),
        pytest.param("", (), False, id="empty-hides-all"),
        pytest.param("   ", (), False, id="blank-hides-all"),
        pytest.param("-1", (), True, id="minus-one-hides-all"),
        pytest.param("0,-1,2", (0,), True, id="stops-at-minus-one"),
        pytest.param("1,abc,2", (1,), True, id="stops-at-garbage"),
        pytest.param("0,7,1", (0,), True, id="stops-at-out-of-range"),
        pytest.param("0,0,1", (0,), True, id="stops-at-repeat"),
        pytest.param("GPU-8932", (), True, id="ambiguous-prefix"),
        pytest.param("GPU-ffff,1", (), True, id="unknown-uuid"),
        pytest.param("0,,1", (0,), True, id="empty-entry"),
        pytest.param("1.0", (), True, id="not-an-integer"),
    ],
)
def test_visible_gpus(value, expected, warns):
    result = visible_gpus(value, UUIDS)
    assert result.positions == expected
    assert bool(result.warnings) is warns
    if warns:
        assert "CUDA stops" in result.warnings[0]


def test_ignored_tail_is_reported():
    result = visible_gpus("0,x,1,2", UUIDS)
    assert result.positions == (0,)
    assert "2 entries after it" in result.warnings[0]


def test_mig_slices_are_refused():
    with pytest.raises(MeterError, match="MIG"):
        visible_gpus("MIG-GPU-8932f937/1/0", UUIDS)


def test_parse_entries_unset_vs_empty():
    assert parse_entries(None) is None
    assert parse_entries("") == ()
    assert parse_entries("0, GPU-1") == ("0", "GPU-1")


@pytest.mark.parametrize(
    ("value", "names", "order", "warns"),
    [
        ("0,1", ["H100", "A100"], None, True),
        ("0,1", ["H100", "A100"], "FASTEST_FIRST", True),
        ("0,1", ["H100", "A100"], "PCI_BUS_ID", False),
        ("0,1", ["H100", "H100"], None, False),
        ("GPU-8932f937,GPU-8932aaaa", ["H100", "A100"], None, False),
    ],
)
def test_index_order_warning_on_mixed_nodes(value, names, order, warns):
    result = visible_gpus(value, UUIDS[:2], names, order)
    assert any("CUDA_DEVICE_ORDER" in w for w in result.warnings) is warns
