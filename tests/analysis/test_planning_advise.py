"""``advise``: each change only where the framework says it helps; the savings report."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from planning_helpers import llm_itl_ms, llm_run, llm_sweep

from joulelens.analysis import graph as g
from joulelens.analysis.planning import Change, advise, deadline_savings
from joulelens.analysis.planning.advise import diagnosis_paths
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord
from joulelens.store import RunFilter, Store

MakeRecord = Callable[..., RunRecord]


def _memory_bound_world(make_record: MakeRecord) -> list[RunRecord]:
    """org/m on 1x H100 fills its KV cache at max_num_seqs 64; other setups exist around it."""
    one_gpu = llm_sweep(make_record, [8, 32])
    one_gpu.append(llm_run(make_record, 64, run_id="full", avg_kv_cache_usage=0.95))
    two_gpus = llm_sweep(make_record, [64, 256, 512], num_gpus=2)
    # FP8: pricier than BF16 at batch 8, cheaper at batch 64 (the paper's caveat).
    fp8 = [
        llm_run(make_record, 8, model_id="org/m-FP8", precision="fp8", power_watts=400.0),
        llm_run(make_record, 64, model_id="org/m-FP8", precision="fp8", power_watts=380.0),
        llm_run(make_record, 128, model_id="org/m-FP8", precision="fp8", power_watts=420.0),
    ]
    b200 = llm_sweep(make_record, [64, 256], gpu="B200", power_watts=650.0, itl_ms=12.0)
    return [
        *(r.model_copy(update={"model_id": "org/m"}) for r in one_gpu + two_gpus + b200),
        *fp8,
    ]


def _by_id(runs: list[RunRecord], run_id: str) -> RunRecord:
    return next(r for r in runs if r.run_id == run_id)


def test_memory_bound_run_gets_every_kind_of_change(make_record: MakeRecord) -> None:
    runs = _memory_bound_world(make_record)
    run = _by_id(runs, "full")
    advice = advise(run, runs, deadline_ms=40.0)
    assert advice.batch_stop == "memory_bound"
    changes = {o.change: o for o in advice.options}
    assert set(changes) == {Change.GPU_COUNT, Change.PRECISION, Change.GPU_GENERATION}
    more_gpus = changes[Change.GPU_COUNT].target
    assert more_gpus.num_gpus == 2 and more_gpus.latency_ms <= 40.0
    fp8 = changes[Change.PRECISION].target
    assert fp8.precision == "fp8" and fp8.batch == 64 and fp8.source == "measured"
    assert changes[Change.PRECISION].saving_fraction == pytest.approx(
        1 - 380.0 / run.avg_power_watts
    )
    # Options are cheapest first; savings are against the run's own energy per token.
    energies = [o.target.energy_per_unit_joules for o in advice.options]
    assert energies == sorted(energies)
    best = advice.best
    assert best is not None
    assert best.saving_fraction == pytest.approx(
        1 - best.target.energy_per_unit_joules / run.energy_per_token_joules
    )
    assert "GPU count -> Memory availability -> Batch size" in " ".join(
        changes[Change.GPU_COUNT].paths
    )
    reasons = {n.change: n.reason for n in advice.not_advised}
    assert Change.BATCH in reasons  # no larger batch fits this setup


def test_more_gpus_only_when_memory_bound(make_record: MakeRecord) -> None:
    runs = _memory_bound_world(make_record)
    small = _by_id(runs, "test-model-H100-1-lm-arena-chat-32")
    advice = advise(small, runs, deadline_ms=40.0)
    assert Change.GPU_COUNT not in {o.change for o in advice.options}
    reason = next(n.reason for n in advice.not_advised if n.change is Change.GPU_COUNT)
    assert "not memory-bound" in reason
    assert Change.BATCH in {o.change for o in advice.options}  # batch 64 is cheaper and on time


def test_precision_only_where_it_wins_at_that_batch(make_record: MakeRecord) -> None:
    runs = _memory_bound_world(make_record)
    at_8 = advise(_by_id(runs, "test-model-H100-1-lm-arena-chat-8"), runs, deadline_ms=40.0)
    assert Change.PRECISION not in {o.change for o in at_8.options}
    reason = next(n.reason for n in at_8.not_advised if n.change is Change.PRECISION)
    assert "more energy" in reason
    # Between FP8's measured batches, the comparison uses a (marked) prediction at that batch.
    at_32 = advise(_by_id(runs, "test-model-H100-1-lm-arena-chat-32"), runs, deadline_ms=40.0)
    fp8 = next(o for o in at_32.options if o.change is Change.PRECISION)
    assert fp8.target.batch == 32 and fp8.target.source == "predicted"


def test_default_deadline_never_makes_a_run_slower(make_record: MakeRecord) -> None:
    runs = _memory_bound_world(make_record)
    run = _by_id(runs, "full")
    advice = advise(run, runs)
    assert advice.deadline_source == "the run's own latency"
    assert advice.deadline_ms == pytest.approx(llm_itl_ms(64))
    assert all(o.target.latency_ms <= run.median_itl_ms for o in advice.options)


def test_run_that_misses_the_deadline_is_flagged(make_record: MakeRecord) -> None:
    runs = llm_sweep(make_record, [8, 64, 512])
    advice = advise(runs[2], runs, deadline_ms=15.0)
    assert not advice.current_meets_deadline
    (batch,) = [o for o in advice.options if o.change is Change.BATCH]
    assert batch.target.latency_ms <= 15.0 and batch.saving_fraction < 0  # meeting it costs energy


def test_unusable_run_is_refused(make_record: MakeRecord) -> None:
    bad = llm_run(make_record, 8, stable=False, unstable_reasons=["batch under 85%"])
    with pytest.raises(AnalysisError, match="not usable"):
        advise(bad, [bad])


def test_diagnosis_paths_come_from_the_framework() -> None:
    for change in Change:
        paths = diagnosis_paths(change)
        assert paths and all(p.endswith(g.FRAMEWORK.node(g.ENERGY).label) for p in paths)
    assert all("Batch size" in p for p in diagnosis_paths(Change.BATCH))


def test_savings_against_the_default_cap_by_hand(make_record: MakeRecord) -> None:
    runs = llm_sweep(make_record, [64, 128, 256, 512])
    short = llm_sweep(make_record, [8, 128], gpu="B200")  # largest stable below 256 is 128
    e = {r.batch: r.energy_per_token_joules for r in runs}
    itl = {r.batch: r.median_itl_ms for r in runs}
    assert all(v is not None for v in [*e.values(), *itl.values()])
    deadlines = {"lm-arena-chat": [None, itl[256] + 1e-6, itl[128] + 1e-6, 1.0]}
    none, at_256, at_128, impossible = deadline_savings(runs + short, deadlines)
    assert none.setups == 2 and none.default_on_time == 2
    # H100: 512 beats the default 256; B200: the default 128 is already the cheapest.
    assert none.saving_max_pct == pytest.approx((1 - e[512] / e[256]) * 100)
    assert none.saving_median_pct == pytest.approx((1 - e[512] / e[256]) * 50)
    assert none.setups_saving == 1 and none.example is not None and "512" in none.example
    assert at_256.saving_max_pct == pytest.approx(0.0)
    # H100's default misses a deadline just above 128's latency; B200's default meets it.
    assert at_128.default_too_slow == 1 and at_128.default_on_time == 1
    assert at_128.too_slow_cost_median_pct == pytest.approx((e[128] / e[256] - 1) * 100)
    assert impossible.nothing_on_time == 2 and impossible.saving_median_pct is None


def test_public_snapshot_advice_and_savings(public_store: Store) -> None:
    runs = public_store.query(RunFilter(task="lm-arena-chat"))
    run = next(
        r
        for r in runs
        if r.model_id == "Qwen/Qwen3-235B-A22B-Instruct-2507"
        and r.gpu_model == "B200"
        and r.num_gpus == 4
        and r.batch == 64
    )
    advice = advise(run, runs, deadline_ms=60.0)
    assert advice.best is not None and advice.best.saving_fraction > 0.3
    assert {o.change for o in advice.options} >= {Change.BATCH, Change.PRECISION}
    assert advice.to_dict()["best"]["paths"]
    rows = deadline_savings(public_store.all())
    tasks = {r.task for r in rows}
    assert tasks == {
        "gpqa",
        "lm-arena-chat",
        "sourcegraph-fim",
        "image-chat",
        "video-chat",
        "text-to-image",
        "text-to-video",
    }
    for row in rows:
        assert row.default_on_time + row.default_too_slow + row.nothing_on_time == row.setups
        if row.deadline_ms is None:
            assert row.default_on_time == row.setups
            assert row.saving_mean_pct is not None and row.saving_mean_pct >= 0
