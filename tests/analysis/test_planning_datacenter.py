"""Throughput per watt and facility sizing, with the arithmetic done by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from planning_helpers import llm_run

from joulelens.analysis.planning import (
    Facility,
    PowerBasis,
    datacenter,
    deploy,
    throughput_per_watt,
)
from joulelens.analysis.planning.candidates import candidate
from joulelens.errors import AnalysisError, InputError
from joulelens.records import RunRecord
from joulelens.store import RunFilter, Store


def test_throughput_per_watt_is_work_per_joule(make_record: Callable[..., RunRecord]) -> None:
    # 700 W, ITL 10 ms at batch 70 -> 7,000 tokens/s -> 10 tokens/s/W = 1 / (0.1 J/token).
    run = llm_run(make_record, 70, power_watts=700.0, itl_ms=10.0)
    assert run.output_throughput_tokens_per_sec == pytest.approx(7000.0)
    assert throughput_per_watt(run) == pytest.approx(10.0)
    assert throughput_per_watt(run) == pytest.approx(1 / run.energy_per_token_joules)
    no_power = make_record(kind="llm", energy_per_token_joules=0.25, max_num_seqs=8)
    assert throughput_per_watt(no_power) == pytest.approx(4.0)
    assert throughput_per_watt(make_record(kind="llm", max_num_seqs=8)) is None


def test_one_configuration_by_hand(make_record: Callable[..., RunRecord]) -> None:
    run = llm_run(make_record, 70, power_watts=700.0, itl_ms=10.0)  # 7,000 tokens/s
    c = candidate(run)
    assert c is not None
    d = deploy(c, Facility(power_mw=1.0, pue=1.25, host_watts_per_gpu=100.0))
    assert d is not None
    # (700 W + 100 W x 1 GPU) x 1.25 = 1,000 W per replica -> 1,000 replicas in 1 MW.
    assert d.replica_facility_watts == pytest.approx(1000.0)
    assert d.replicas == 1000 and d.gpus == 1000
    assert d.throughput_units_per_sec == pytest.approx(7_000_000.0)
    # 1 MW for 24 h = 24 MWh; 7e6 tokens/s x 86,400 s.
    assert d.energy_per_day_mwh == pytest.approx(24.0)
    assert d.units_per_day == pytest.approx(7e6 * 86_400)
    assert d.facility_joules_per_unit == pytest.approx(1000.0 / 7000.0)
    assert d.units_per_sec_per_facility_watt == pytest.approx(7.0)


def test_whole_replicas_and_leftover_power(make_record: Callable[..., RunRecord]) -> None:
    # 2 GPUs drawing 1,300 W, host 150 W/GPU, PUE 1.1: (1,300 + 300) x 1.1 = 1,760 W.
    run = llm_run(make_record, 64, num_gpus=2, power_watts=1300.0, itl_ms=20.0)
    c = candidate(run)
    assert c is not None
    d = deploy(c, Facility(power_mw=0.01, pue=1.1, host_watts_per_gpu=150.0))
    assert d is not None
    assert d.replica_facility_watts == pytest.approx(1760.0)
    assert d.replicas == 5  # 10,000 / 1,760 = 5.68
    assert d.gpus == 10
    assert d.facility_watts_used == pytest.approx(8800.0)
    assert d.energy_per_day_mwh == pytest.approx(8800.0 * 86_400 / 3.6e9)
    assert d.throughput_units_per_sec == pytest.approx(5 * 64 / 0.020)


def test_tdp_basis_uses_board_power(make_record: Callable[..., RunRecord]) -> None:
    run = llm_run(make_record, 64, gpu="B200", num_gpus=2, power_watts=1300.0, itl_ms=20.0)
    c = candidate(run)
    assert c is not None
    d = deploy(c, Facility(1.0, 1.0, 0.0, PowerBasis.TDP))
    assert d is not None
    assert d.gpu_watts_per_replica == pytest.approx(2 * 1000.0)  # B200 TDP 1,000 W
    assert d.replicas == 500


def test_facility_inputs_are_checked() -> None:
    with pytest.raises(InputError, match="PUE"):
        Facility(1.0, 0.9, 0.0)
    with pytest.raises(InputError):
        Facility(0.0, 1.2, 0.0)
    with pytest.raises(InputError):
        Facility(1.0, 1.2, -5.0)


def test_best_per_gpu_generation_side_by_side(make_record: Callable[..., RunRecord]) -> None:
    runs = [
        llm_run(make_record, 64, run_id="h-64", gpu="H100", power_watts=600.0, itl_ms=20.0),
        llm_run(make_record, 256, run_id="h-256", gpu="H100", power_watts=700.0, itl_ms=40.0),
        llm_run(make_record, 256, run_id="b-256", gpu="B200", power_watts=900.0, itl_ms=25.0),
        llm_run(make_record, 1024, run_id="b-1024", gpu="B200", power_watts=1000.0, itl_ms=80.0),
    ]
    facility = Facility(power_mw=1.0, pue=1.0, host_watts_per_gpu=100.0)
    result = datacenter(runs, "lm-arena-chat", 50.0, facility)
    # Under 50 ms: H100 b256 = 6,400 tok/s per 800 W -> 1,250 replicas -> 8.0M tok/s;
    # B200 b256 = 10,240 tok/s per 1,000 W -> 1,000 replicas -> 10.24M tok/s (b1024 too slow).
    assert [d.candidate.run_id for d in result.per_gpu] == ["b-256", "h-256"]
    assert result.best.candidate.run_id == "b-256"
    assert result.best.throughput_units_per_sec == pytest.approx(10_240_000.0)
    assert result.per_gpu[1].throughput_units_per_sec == pytest.approx(8_000_000.0)
    text = " ".join(result.assumptions)
    for needle in ("1 MW", "PUE 1", "100 W per GPU", "measured steady-state average (not TDP)"):
        assert needle in text
    only_h100 = datacenter(runs, "lm-arena-chat", 50.0, facility, gpus=["h100"])
    assert [d.candidate.gpu for d in only_h100.per_gpu] == ["H100"]
    with pytest.raises(AnalysisError, match="no configuration meets 5 ms"):
        datacenter(runs, "lm-arena-chat", 5.0, facility)


def test_public_snapshot_datacenter(public_store: Store) -> None:
    runs = public_store.query(RunFilter(task="gpqa"))
    facility = Facility(power_mw=20.0, pue=1.2, host_watts_per_gpu=250.0)
    result = datacenter(runs, "gpqa", 50.0, facility, model="Qwen3-32B")
    assert {d.candidate.gpu for d in result.per_gpu} == {"H100", "B200"}
    for d in result.per_gpu:
        assert d.candidate.latency_ms <= 50.0
        assert d.facility_watts_used <= facility.power_watts
        assert d.facility_watts_used + d.replica_facility_watts > facility.power_watts
    assert result.to_dict()["assumptions"] == result.assumptions
