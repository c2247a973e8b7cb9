"""Raw ML.ENERGY Benchmark results -> run records, with hand-computed expected metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_fixtures import (
    llm_results,
    prometheus_doc,
    write_configs,
    write_diffusion_run,
    write_json,
    write_llm_run,
)

from joulelens.errors import InputError
from joulelens.ingest.mlenergy_benchmark import read_benchmark_results, smoothed_itl_s
from joulelens.ingest.stability import restabilize
from joulelens.records import RunKind, RunRecord, RunStatus, SourceKind


def _only(root: Path, **kw) -> RunRecord:
    result = read_benchmark_results(root, **kw)
    assert len(result.records) == 1
    return result.records[0]


def test_llm_metrics_match_hand_computation(tmp_path: Path):
    path = write_llm_run(tmp_path)
    r = _only(tmp_path)
    assert r.kind is RunKind.LLM and r.task == "lm-arena-chat"
    assert (r.model_id, r.gpu_model, r.num_gpus, r.max_num_seqs) == ("acme/Chat-8B", "H100", 1, 8)
    assert r.energy_per_token_joules == 0.5
    assert r.steady_state_energy_joules == 6000.0
    assert r.steady_state_duration_s == 30.0
    assert r.avg_power_watts == pytest.approx(200.0)  # 6000 J / 30 s
    assert r.output_throughput_tokens_per_sec == pytest.approx(400.0)  # 12000 tokens / 30 s
    assert r.avg_output_len == pytest.approx(250.0)  # 1000 tokens / 4 requests
    assert r.energy_per_request_joules == pytest.approx(125.0)  # 0.5 J x 250
    # Smoothed gaps (ms): 10, 10, 10, 30 and 20, 20, 20.
    assert r.mean_itl_ms == pytest.approx(120 / 7)
    assert r.median_itl_ms == pytest.approx(20.0)
    assert r.p90_itl_ms == pytest.approx(24.0)
    assert r.p95_itl_ms == pytest.approx(27.0)
    assert r.p99_itl_ms == pytest.approx(29.4)
    assert r.mean_ttft_ms == 250.0 and r.p90_ttft_ms == pytest.approx(475.0)
    assert r.median_e2e_latency_ms == 2500.0
    assert r.avg_batch_size == 7.5
    assert r.avg_kv_cache_usage == 0.4
    assert r.max_kv_cache_usage == pytest.approx(0.7)
    assert r.stable is True and r.unstable_reasons == []
    assert (r.num_completed_requests, r.num_failed_requests, r.num_truncated_requests) == (4, 0, 1)
    assert r.arrival == "saturation" and r.max_output_tokens == 400 and r.num_requests == 4
    assert r.output_length_distribution is not None
    assert r.output_length_distribution.total == 4
    assert [c.name for c in r.energy_components] == ["gpu:0"]
    assert r.idle_power_watts is None and "idle_power_watts" in r.missing
    assert r.provenance.source is SourceKind.MLENERGY_BENCHMARK
    assert r.provenance.source_path == str(path.absolute())
    assert r.provenance.engine == "vllm"
    assert r.run_id.startswith("mlb-")
    assert r.started_at is not None and r.started_at.year == 2025


def test_smoothing_spreads_chunks_and_drops_leading_zeros():
    assert smoothed_itl_s([0.0, 0.0, 0.06, 0.0, 0.0, 0.01]) == pytest.approx(
        [0.02, 0.02, 0.02, 0.01]
    )
    assert smoothed_itl_s([]) == []


def test_kv_from_timeline_and_older_gauge_name(tmp_path: Path):
    prom = prometheus_doc(avg_running=None, avg_kv=None)
    for snap in prom["timeline"]:
        snap["metrics"] = snap["metrics"].replace("kv_cache_usage_perc", "gpu_cache_usage_perc")
    write_llm_run(tmp_path, prometheus=prom)
    r = _only(tmp_path)
    assert r.avg_batch_size == pytest.approx((7 + 8) / 2)  # summed over two engines
    assert r.avg_kv_cache_usage == pytest.approx((0.4 + 0.7) / 2)
    assert r.max_kv_cache_usage == pytest.approx(0.7)


def test_missing_prometheus_is_null_with_reason_and_fails_the_gauge_check(tmp_path: Path):
    write_llm_run(tmp_path, with_prometheus=False)
    r = _only(tmp_path)
    for name in ("avg_batch_size", "avg_kv_cache_usage", "max_kv_cache_usage"):
        assert getattr(r, name) is None
        assert "prometheus.json" in r.missing[name]
    # The harness rejects a run without the running-batch gauge; so does the import.
    (reason,) = r.unstable_reasons
    assert "no running-batch gauge" in reason and reason.endswith("[ML.ENERGY harness: error]")


def test_mllm_kind_from_task(tmp_path: Path):
    write_llm_run(tmp_path, task="image-chat", family="mllm")
    assert _only(tmp_path).kind is RunKind.MLLM


def test_diffusion_metrics(tmp_path: Path):
    write_diffusion_run(tmp_path)
    r = _only(tmp_path)
    assert r.kind is RunKind.DIFFUSION and r.task == "text-to-image"
    assert r.gpu_model == "H100"  # from the .../diffusion/h100/... directory
    assert r.num_gpus == 2 and (r.ulysses_degree, r.ring_degree) == (2, 1)
    assert r.batch_latency_s == pytest.approx(2.5)  # mean of 2 s and 3 s; 0 s ignored
    assert r.avg_power_watts == pytest.approx(400.0)  # 1000 J / 2.5 s
    assert r.energy_per_image_joules == pytest.approx(250.0)  # 1000 J / 4 images
    assert r.throughput_images_per_sec == pytest.approx(1.6)
    assert r.energy_per_video_joules is None
    assert {c.name: c.joules for c in r.energy_components} == {"gpu:0": 550.0, "gpu:1": 450.0}
    assert (r.height, r.width, r.inference_steps) == (1024, 1024, 28)
    assert r.provenance.engine == "xdit"


def test_diffusion_video_and_gpu_option(tmp_path: Path):
    write_diffusion_run(tmp_path, task="text-to-video", gpu_dir=None, num_frames=81)
    r = _only(tmp_path, gpu_model="b200")
    assert r.task == "text-to-video" and r.gpu_model == "B200"
    assert r.energy_per_video_joules == pytest.approx(250.0)
    assert r.throughput_videos_per_sec == pytest.approx(1.6)
    assert (r.num_frames, r.fps) == (81, 16)


def test_configs_give_model_metadata_and_parallelism(tmp_path: Path):
    write_llm_run(tmp_path, num_gpus=4, max_num_seqs=64)
    configs = write_configs(tmp_path)
    r = _only(tmp_path)  # configs/ is found above the run tree
    assert (r.nickname, r.architecture, r.weight_precision) == ("Chat 8B", "MoE", "bfloat16")
    assert (r.total_params_billions, r.activated_params_billions) == (30.0, 3.0)
    # EP on and data-parallel-size 0: the leaderboard reports TP 1, EP 4, DP 4.
    assert (r.tensor_parallel, r.expert_parallel, r.data_parallel) == (1, 4, 4)
    assert _only(tmp_path / "run", configs=configs).tensor_parallel == 1


def test_without_configs_multi_gpu_parallelism_is_unknown(tmp_path: Path):
    write_llm_run(tmp_path, num_gpus=2)
    r = _only(tmp_path)
    assert r.tensor_parallel is None and r.total_params_billions is None
    assert any("parallelism unknown" in w for w in r.warnings)


def test_run_ids_are_stable_across_reads_and_roots(tmp_path: Path):
    write_llm_run(tmp_path)
    a = _only(tmp_path)
    b = _only(tmp_path / "run" / "llm")
    assert a.run_id == b.run_id


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"steady_state_duration": 10.0, "steady_state_energy": 2000.0}, "short steady state"),
        ({"steady_state_energy": 0.0, "steady_state_energy_per_token": 0.0}, "not positive"),
    ],
)
def test_unstable_runs(tmp_path: Path, kw: dict, reason: str):
    write_llm_run(tmp_path, **kw)
    r = _only(tmp_path)
    assert r.stable is False
    assert any(reason in u for u in r.unstable_reasons)
    if "steady_state_energy_per_token" in kw:
        assert r.energy_per_token_joules is None  # a counter that did not move is not 0 J
        assert "energy_per_token_joules" in r.missing


def test_low_batch_utilization_cascades_to_larger_batches(tmp_path: Path):
    # Batch 8: 7.5 running (94%) stable; 16: 12 running (75%) unstable; 32: 31 running (97%)
    # stable by itself but cascaded; the same model on B200 is unaffected.
    for batch, running in ((8, 7.5), (16, 12.0), (32, 31.0)):
        write_llm_run(tmp_path, max_num_seqs=batch, prometheus=prometheus_doc(avg_running=running))
    write_llm_run(tmp_path, gpu="B200", max_num_seqs=32, prometheus=prometheus_doc(avg_running=31))
    by_key = {(r.gpu_model, r.max_num_seqs): r for r in read_benchmark_results(tmp_path).records}
    assert by_key[("H100", 8)].stable is True
    assert by_key[("H100", 16)].stable is False
    assert "low batch utilization" in by_key[("H100", 16)].unstable_reasons[0]
    assert by_key[("H100", 32)].stable is False
    assert by_key[("H100", 32)].unstable_reasons[0].startswith("cascade:")
    assert by_key[("B200", 32)].stable is True


def test_cascade_reaches_runs_imported_earlier(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_llm_run(first, max_num_seqs=32, prometheus=prometheus_doc(avg_running=31.0))
    write_llm_run(second, max_num_seqs=16, prometheus=prometheus_doc(avg_running=8.0))
    earlier = read_benchmark_results(first).records
    assert earlier[0].stable is True
    new = read_benchmark_results(second).records
    written = restabilize(new, earlier)
    assert [r.max_num_seqs for r in written] == [16, 32]
    assert written[1].stable is False and written[1].unstable_reasons[0].startswith("cascade:")
    # Judged again without the bad batch, the earlier run is stable again.
    assert restabilize(earlier, written[:0])[0].stable is True


# -- malformed input -------------------------------------------------------------------------
def _bad_results(tmp_path: Path, mutate) -> Path:
    good = write_llm_run(tmp_path / "tree", max_num_seqs=8)
    bad_doc = llm_results(max_num_seqs=16)
    mutate(bad_doc)
    bad = good.parent.parent / "num_gpus+1+max_num_seqs+16" / "results.json"
    write_json(bad, bad_doc)
    write_json(bad.with_name("prometheus.json"), prometheus_doc())
    return bad


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("steady_state_energy"), "steady_state_energy"),
        (lambda d: d.update(steady_state_duration="thirty"), "steady_state_duration"),
        (lambda d: d["results"][2].update(itl="fast"), "results[2].itl"),
        (lambda d: d.update(num_gpus=0), "num_gpus"),
        (lambda d: d.update(p90_ttft_ms=[1, 2]), "p90_ttft_ms"),
    ],
)
def test_malformed_results_name_file_and_field(tmp_path: Path, mutate, field: str):
    bad = _bad_results(tmp_path, mutate)
    with pytest.raises(InputError) as err:
        read_benchmark_results(tmp_path / "tree")
    assert err.value.source == str(bad)
    assert err.value.field == field
    assert str(bad) in str(err.value) and field in str(err.value)
    # With skip_invalid the good run still imports and the bad one is reported, not imported.
    result = read_benchmark_results(tmp_path / "tree", skip_invalid=True)
    assert [r.max_num_seqs for r in result.records] == [8]
    assert [e.source for e in result.skipped] == [str(bad)]


def test_bad_json_and_bad_prometheus(tmp_path: Path):
    path = write_llm_run(tmp_path)
    prom = path.with_name("prometheus.json")
    prom.write_text(json.dumps({"steady_state_start_time": 1.0, "timeline": []}))
    with pytest.raises(InputError) as err:
        read_benchmark_results(tmp_path)
    assert (err.value.source, err.value.field) == (str(prom), "steady_state_end_time")
    path.write_text('{"model_id": "acme/Chat-8B", ')
    with pytest.raises(InputError, match="invalid JSON") as err:
        read_benchmark_results(tmp_path)
    assert err.value.source == str(path)


def test_unknown_results_file_and_empty_tree(tmp_path: Path):
    write_json(tmp_path / "x" / "results.json", {"accuracy": 0.9})
    with pytest.raises(InputError, match=r"not an ML\.ENERGY Benchmark results file"):
        read_benchmark_results(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no results\.json"):
        read_benchmark_results(tmp_path / "empty")
    with pytest.raises(InputError, match="no such file"):
        read_benchmark_results(tmp_path / "absent")


def test_diffusion_without_timed_iterations_is_rejected(tmp_path: Path):
    path = write_diffusion_run(tmp_path)
    doc = json.loads(path.read_text())
    for it in doc["iteration_energy_measurements"]:
        it["time"] = 0.0
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        read_benchmark_results(tmp_path)
    assert err.value.field == "iteration_energy_measurements"


def test_all_requests_failed_is_a_failed_run(tmp_path: Path):
    doc = llm_results()
    doc["completed"] = 0
    for r in doc["results"]:
        r["success"] = False
    path = write_llm_run(tmp_path)
    path.write_text(json.dumps(doc))
    r = _only(tmp_path)
    assert r.status is RunStatus.FAILED and r.failure_reason == "no request completed"


def test_bad_configs_are_named(tmp_path: Path):
    write_llm_run(tmp_path)
    with pytest.raises(InputError, match=r"not an ML\.ENERGY Benchmark configs directory") as err:
        read_benchmark_results(tmp_path, configs=tmp_path / "run")
    assert err.value.field == "--configs"
    configs = write_configs(tmp_path)
    info = configs / "vllm" / "lm-arena-chat" / "acme" / "Chat-8B" / "model_info.json"
    info.write_text(json.dumps({"total_parameters_billion": "lots"}))
    with pytest.raises(InputError) as err:
        read_benchmark_results(tmp_path)
    assert (err.value.source, err.value.field) == (str(info), "total_parameters_billion")
