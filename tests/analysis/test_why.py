from __future__ import annotations

import json

import pytest

from joulelens.analysis import graph as g
from joulelens.analysis.selection import RunIndex
from joulelens.analysis.thresholds import KV_USAGE_MEMORY_BOUND
from joulelens.analysis.why import BatchStop, why
from joulelens.records import RunRecord
from joulelens.store import Store


def test_recorded_high_kv_usage_is_memory_bound(llm_run) -> None:
    small = llm_run("s", 0.3, 64)
    top = llm_run("t", 0.2, 128, fill=0.97, avg_kv_cache_usage=0.92)
    report = why(top, [small, top])
    assert report.batch_stop is BatchStop.MEMORY_BOUND
    assert report.memory is not None and report.memory.source == "kv_cache_usage"
    assert "kv_cache_usage" in report.evidence_used
    assert [g.MODEL, g.MEMORY_FOOTPRINT, g.BATCH] in report.paths


def test_low_kv_usage_with_an_unfilled_cap_is_a_non_gpu_bottleneck(llm_run) -> None:
    top = llm_run("t", 0.2, 64, fill=0.88, avg_kv_cache_usage=0.2)
    bad = llm_run("u", 0.25, 128, fill=0.6, stable=False, unstable_reasons=["batch under 85%"])
    report = why(top, [top, bad])
    assert report.batch_stop is BatchStop.NON_GPU_BOTTLENECK
    assert "60% of its cap filled while memory was free" in report.batch_explanation
    assert report.likely_cause
    used = {"kv_cache_usage", "larger_batches", "batch_fill", "next_batch_run"}
    assert used <= set(report.evidence_used)
    assert report.paths == [[g.NON_GPU, g.BATCH]]


def test_next_batch_with_full_kv_cache_is_memory_bound(llm_run) -> None:
    top = llm_run("t", 0.2, 64, avg_kv_cache_usage=0.4)
    bad = llm_run(
        "u", 0.25, 128, fill=0.7, avg_kv_cache_usage=0.97, stable=False, unstable_reasons=["low"]
    )
    report = why(top, [top, bad])
    assert report.batch_stop is BatchStop.MEMORY_BOUND
    assert "max_num_seqs 128" in report.batch_explanation


def test_next_batch_unstable_for_another_reason_is_inconclusive(llm_run) -> None:
    top = llm_run("t", 0.2, 64, avg_kv_cache_usage=0.2)
    bad = llm_run(
        "u", 0.25, 128, stable=False, unstable_reasons=["short steady state: 12 s < 20 s"]
    )
    report = why(top, [top, bad])
    assert report.batch_stop is BatchStop.INCONCLUSIVE
    assert "short steady state" in report.batch_explanation


def test_published_full_batch_with_free_memory_needs_corroboration(llm_run) -> None:
    from joulelens.records import Provenance, SourceKind

    published = Provenance(source=SourceKind.MLENERGY_LEADERBOARD)
    top = llm_run("t", 0.2, 64, model_id="Qwen/Qwen3-8B", provenance=published)
    report = why(top, [top])
    assert report.batch_stop is BatchStop.INCONCLUSIVE
    assert "memory does not explain it" in report.batch_explanation
    partial = llm_run("p", 0.2, 64, model_id="Qwen/Qwen3-8B", fill=0.9, provenance=published)
    assert why(partial, [partial]).batch_stop is BatchStop.NON_GPU_BOTTLENECK


def test_a_larger_stable_batch_means_the_cap_chose_this_point(llm_run) -> None:
    runs = [llm_run("a", 0.3, 64, avg_kv_cache_usage=0.3), llm_run("b", 0.2, 128)]
    report = why(runs[0], runs)
    assert report.batch_stop is BatchStop.CAP_CHOSEN
    assert report.paths == [[g.RUNTIME, g.BATCH]]


@pytest.mark.parametrize(
    ("usage", "stop"),
    [
        (KV_USAGE_MEMORY_BOUND, BatchStop.MEMORY_BOUND),  # at the threshold: bound
        (0.50, BatchStop.INCONCLUSIVE),  # 0.5 x 96 / 57.6 = 0.83 at the next batch: maybe
        (0.39, BatchStop.NON_GPU_BOTTLENECK),  # 0.65 at the next batch: fits
    ],
)
def test_kv_usage_thresholds(llm_run, usage: float, stop: BatchStop) -> None:
    top = llm_run("t", 0.2, 64, fill=0.9, avg_kv_cache_usage=usage)
    assert why(top, [top]).batch_stop is stop


def test_full_batch_with_nothing_larger_tried_is_inconclusive(llm_run) -> None:
    top = llm_run("t", 0.2, 64, avg_kv_cache_usage=0.1)
    report = why(top, [top])
    assert report.batch_stop is BatchStop.INCONCLUSIVE
    assert "no larger batch was tried" in report.batch_explanation


def test_without_recorded_usage_the_estimate_is_used(llm_run) -> None:
    top = llm_run("t", 0.2, 64, model_id="Qwen/Qwen3-8B", fill=0.9)
    report = why(top, [top])
    assert report.memory is not None and report.memory.source == "memory_estimate"
    assert "memory_estimate" in report.evidence_used
    assert report.batch_stop is BatchStop.NON_GPU_BOTTLENECK  # a few % of an H100: free


def test_power_against_tdp_and_static_share(llm_run) -> None:
    low = why(r := llm_run("p", 0.2, 64, avg_power_watts=300.0, idle_power_watts=90.0), [r])
    assert low.tdp_watts_total == 700
    assert low.power_fraction_of_tdp == pytest.approx(300 / 700)
    assert "underused" in low.power_note
    assert low.static_fraction == pytest.approx(90 / 300)
    busy = why(r := llm_run("q", 0.2, 64, avg_power_watts=1200.0, num_gpus=2), [r])
    assert busy.power_fraction_of_tdp == pytest.approx(1200 / 1400)
    assert "busy" in busy.power_note
    assert busy.static_fraction is None and "synthetic test run" in busy.static_note
    measured = why(r := llm_run("s", 0.2, 64, static_energy_fraction=0.35), [r])
    assert measured.static_fraction == 0.35


def test_neighbors_list_the_same_model_and_task(llm_run) -> None:
    runs = [llm_run("a", 0.3, 64), llm_run("b", 0.2, 128), llm_run("c", 0.25, 128, num_gpus=2)]
    report = why(runs[1], runs)
    assert [n["run_id"] for n in report.neighbors] == ["a", "b", "c"]
    assert [n["this_run"] for n in report.neighbors] == [False, True, False]


def test_diffusion_batches_are_a_direct_knob(diffusion_run) -> None:
    runs = [diffusion_run("a", 100.0, 1), diffusion_run("b", 90.0, 4)]
    assert why(runs[0], runs).batch_stop is BatchStop.CAP_CHOSEN
    last = why(runs[1], runs)
    assert last.batch_stop is BatchStop.SWEEP_END and last.memory is None


def test_report_is_json_ready(llm_run) -> None:
    r = llm_run("t", 0.2, 64, model_id="Qwen/Qwen3-8B")
    data = json.loads(json.dumps(why(r, [r]).to_dict()))
    assert data["batch_stop"] in {s.value for s in BatchStop}
    assert data["memory"]["estimate"]["kv_capacity_gib"] > 0
    assert data["path_labels"] == [g.path_text(p) for p in data["paths"]]


def _largest(records: list[RunRecord], model: str, task: str, gpu: str, n: int) -> RunRecord:
    runs = [
        r
        for r in records
        if r.model_id == model and r.task == task and r.gpu_model == gpu and r.num_gpus == n
    ]
    return max(runs, key=lambda r: r.batch or 0)


def test_acceptance_video_chat_batch_is_held_by_a_non_gpu_bottleneck(public_store: Store) -> None:
    records = public_store.all()
    run = _largest(records, "Qwen/Qwen3-VL-8B-Instruct", "video-chat", "B200", 1)
    report = why(run, RunIndex(records))
    assert run.batch == 64
    assert report.batch_stop is BatchStop.NON_GPU_BOTTLENECK
    assert "memory does not explain" in report.batch_explanation
    assert {"memory_estimate", "family_text_batch"} <= set(report.evidence_used)
    assert report.memory is not None and report.memory.usage_at_next is not None
    assert report.memory.usage_at_next < KV_USAGE_MEMORY_BOUND
    assert "video preprocessing" in (report.likely_cause or "")


def test_acceptance_reasoning_batch_is_memory_bound(public_store: Store) -> None:
    records = public_store.all()
    run = _largest(records, "Qwen/Qwen3-32B", "gpqa", "B200", 1)
    report = why(run, RunIndex(records))
    assert run.batch == 128
    assert report.batch_stop is BatchStop.MEMORY_BOUND
    assert "absent from the published data" in report.batch_explanation


def test_own_sweep_end_says_the_next_batch_was_not_measured(llm_run) -> None:
    """The largest batch of a measured (not published) sweep: no claim that a larger one
    ran and failed when none was measured."""
    truncated = {"stable": False, "unstable_reasons": ["95% of outputs hit the token cap"]}
    small = llm_run("s", 0.3, 4, **truncated)
    top = llm_run("t", 0.2, 16, **truncated)
    report = why(top, [small, top])
    first = report.batch_explanation.split(";")[0]
    assert "no larger batch was tried" in first or "has not been measured" in first
    assert "was unstable" not in first


def test_a_batch_of_one_was_set_to_one(llm_run) -> None:
    """B = 1 is the setting, not an unclear limit, even when every larger batch is unstable."""
    one = llm_run("b1", 0.7, 1, stable=False, unstable_reasons=["outputs truncated"])
    four = llm_run("b4", 0.4, 4, stable=False, unstable_reasons=["outputs truncated"])
    report = why(one, [one, four])
    assert report.batch_stop is BatchStop.CAP_CHOSEN
    assert "set to 1" in report.batch_explanation
    from joulelens.analysis.render import batch_phrase

    assert batch_phrase(report.batch_stop.value, 1) == "was set to 1 by max_num_seqs"


def test_own_largest_batch_that_filled_its_cap_is_the_sweep_end(llm_run) -> None:
    """The demo's batch 16: the sweep stopped there, not an unclear limit."""
    truncated = {"stable": False, "unstable_reasons": ["95% of outputs hit the token cap"]}
    small = llm_run("s", 0.3, 4, **truncated)
    top = llm_run("t", 0.2, 16, fill=0.9, **truncated)
    report = why(top, [small, top])
    assert report.batch_stop is BatchStop.SWEEP_END
    assert "filled 90% of it" in report.batch_explanation
