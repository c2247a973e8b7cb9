"""Stability checks with reasons, and the cascade over batch sizes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from measure_helpers import trace

from joulelens.measure.series import SampledSeries
from joulelens.measure.validate import (
    CASCADE_PREFIX,
    DeviceSeries,
    apply_cascade,
    batch_reasons,
    device_range_checks,
    energy_per_unit_reasons,
    request_reasons,
    stable_largest_batch,
    steady_state_reasons,
)
from joulelens.records.schema import RunRecord


def test_steady_state_duration() -> None:
    assert steady_state_reasons(20.0) == []
    assert steady_state_reasons(19.9) == [
        "short steady state: 19.9 s < 20 s [ML.ENERGY harness: error below 30 s]"
    ]
    assert steady_state_reasons(None, why_none="N <= B") == [
        "no steady state: N <= B [ML.ENERGY harness: error]"
    ]
    assert steady_state_reasons(5.0, min_duration_s=5.0) == []


def test_energy_per_unit_must_be_positive() -> None:
    assert energy_per_unit_reasons(0.1, "token") == []
    assert energy_per_unit_reasons(0.0, "token") == [
        "energy per token is not positive: 0.0 J [ML.ENERGY harness: error]"
    ]
    assert energy_per_unit_reasons(None, "image") == [
        "energy per image is not positive: None J [ML.ENERGY harness: error]"
    ]


@pytest.mark.parametrize(("avg", "ok"), [(85.0, True), (84.9, False), (100.0, True), (None, True)])
def test_batch_at_85_percent(avg: float | None, ok: bool) -> None:
    reasons = batch_reasons(avg, 100)
    assert (reasons == []) is ok
    if not ok:
        assert reasons[0].startswith("low batch utilization: average running batch 84.9")


def test_request_checks() -> None:
    good = [trace(f"g{i}", 0.0, [(1.0, 1)]) for i in range(7)]
    capped = [trace(f"c{i}", 0.0, [(1.0, 1)], finish_reason="length") for i in range(3)]
    # 3 of 10 truncated = 30%: not under the limit.
    reasons = request_reasons(good + capped, 10)
    assert reasons == [
        "3 of 10 outputs (30%) hit the output token cap (limit < 30%) [ML.ENERGY harness: warning]"
    ]
    assert request_reasons(good + capped[:2], 9) == []
    failed = trace("f", 0.0, [(1.0, 1)], error="HTTP 500: boom")
    hung = trace("h", 0.0, [(1.0, 1)])
    hung.finished_s = None
    reasons = request_reasons([*good, failed, hung], 12)
    assert reasons == [
        "only 9 of 12 requests were sent [ML.ENERGY harness: error]",
        "1 of 9 requests failed (HTTP 500: boom) [ML.ENERGY harness: error]",
        "1 of 9 requests never finished [ML.ENERGY harness: error]",
    ]


def series(values: list[float]) -> SampledSeries:
    return SampledSeries.of([float(i) for i in range(len(values))], values)


def test_temperature_range() -> None:
    ok = DeviceSeries("gpu:0", temperature_c=series([20.0] + [60.0] * 19), power_limit_w=700)
    assert device_range_checks([ok], 0, 19) == ([], [])
    hot = DeviceSeries("gpu:1", temperature_c=series([96.0] + [60.0] * 19), power_limit_w=700)
    reasons, _ = device_range_checks([hot], 0, 19)
    assert reasons == [
        "gpu:1: 1 of 20 temperature readings outside 20-95 C (range 60-96 C) "
        "[ML.ENERGY harness: error]"
    ]
    # Out of range before the window does not count.
    assert device_range_checks([hot], 1, 19)[0] == []
    blind = DeviceSeries("gpu:2", power_limit_w=700)
    assert device_range_checks([blind], 0, 1) == (
        [],
        ["gpu:2: temperature not checked (no readings in the window)"],
    )


def test_power_range() -> None:
    temps = series([50.0] * 5)
    spike = DeviceSeries(
        "gpu:0",
        power_w=series([300, 1150, 300, 300, 300]),
        temperature_c=temps,
        power_limit_w=700,
        mean_power_w=480,
    )
    assert device_range_checks([spike], 0, 4)[0] == []  # 1150 W < 1.7 x 700 W = 1190 W
    over = DeviceSeries(
        "gpu:0",
        power_w=series([300, 1300, 300, 300, 300]),
        temperature_c=temps,
        power_limit_w=700,
        mean_power_w=780,
    )
    reasons, _ = device_range_checks([over], 0, 4)
    assert reasons == [
        "gpu:0: 1 power readings above 1190 W (1.7x its 700 W limit) [ML.ENERGY harness: warning]",
        "gpu:0: mean power 780 W exceeds its 700 W limit by more than 10% "
        "[ML.ENERGY harness: warning]",
    ]
    dead = DeviceSeries("gpu:0", power_w=series([0.0] * 5), temperature_c=temps, power_limit_w=700)
    assert "broken sensor" in device_range_checks([dead], 0, 4)[0][0]
    unknown = DeviceSeries("gpu:0", power_w=series([300.0] * 5), temperature_c=temps)
    assert device_range_checks([unknown], 0, 4) == (
        [],
        ["gpu:0: power range not checked (no power limit reading)"],
    )


def sweep(make_record: Callable[..., RunRecord], **group: object) -> list[RunRecord]:
    def run(batch: int, *reasons: str) -> RunRecord:
        return make_record(
            run_id=f"r{batch}-{group.get('gpu_model', 'H100')}",
            max_num_seqs=batch,
            stable=not reasons,
            unstable_reasons=list(reasons),
            **group,
        )

    return [run(8), run(16), run(32, "low batch utilization"), run(64), run(128, "x")]


def test_cascade_marks_every_larger_batch(make_record: Callable[..., RunRecord]) -> None:
    runs = sweep(make_record) + sweep(make_record, gpu_model="B200")[:2]
    judged = apply_cascade(runs)
    by_id = {r.run_id: r for r in judged}
    assert [by_id[f"r{b}-H100"].stable for b in (8, 16, 32, 64, 128)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert by_id["r64-H100"].unstable_reasons[0].startswith(CASCADE_PREFIX)
    assert by_id["r128-H100"].unstable_reasons == ["x"]  # its own reason stands alone
    assert by_id["r32-H100"].unstable_reasons == ["low batch utilization"]
    assert by_id["r8-B200"].stable and by_id["r16-B200"].stable  # another group
    assert runs[3].stable is True  # inputs untouched
    assert apply_cascade(judged) == judged  # idempotent
    assert stable_largest_batch(runs) == {
        ("test/model", "lm-arena-chat", "H100", 1): 16,
        ("test/model", "lm-arena-chat", "B200", 1): 16,
    }


def test_cascade_is_recomputed_when_the_cause_goes(make_record: Callable[..., RunRecord]) -> None:
    judged = apply_cascade(sweep(make_record))
    # The 32 run is re-measured and now stable: 64 is freed, 128 keeps its own reason.
    fixed = [
        r.model_copy(update={"stable": True, "unstable_reasons": []}) if r.max_num_seqs == 32 else r
        for r in judged
    ]
    again = {r.max_num_seqs: r for r in apply_cascade(fixed)}
    assert again[64].stable is True and again[64].unstable_reasons == []
    assert again[128].stable is False


def test_cascade_leaves_diffusion_alone(make_record: Callable[..., RunRecord]) -> None:
    image = make_record(kind="diffusion", batch_size=4)
    assert apply_cascade([image]) == [image]
