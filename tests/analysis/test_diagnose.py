from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joulelens.analysis import graph as g
from joulelens.analysis.diagnose import diagnose
from joulelens.analysis.render import diagnosis_dict, diagnosis_summary, diagnosis_text
from joulelens.analysis.selection import RunIndex
from joulelens.errors import AnalysisError
from joulelens.records import RunRecord
from joulelens.store import Store

positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
gap = st.floats(0.5, 2.0)
# e_tok, power, out_len, running batch, itl_ms, resp_gap, tok_gap, cap
llm_numbers = st.tuples(
    positive, positive, positive, positive, positive, gap, gap, st.integers(1, 4096)
)
# energy, power, latency, batch, steps, size, frames, params
diffusion_numbers = st.tuples(
    positive,
    positive,
    positive,
    st.integers(1, 32),
    st.integers(1, 100),
    st.sampled_from([256, 512, 1024]),
    st.one_of(st.none(), st.integers(2, 129)),
    st.floats(0.1, 20.0),
)
# make_record is a stateless factory, safe to share across hypothesis examples.
shared_fixture = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _llm(make_record: Callable[..., RunRecord], run_id: str, numbers: tuple) -> RunRecord:
    """A run whose identities are off by the given gaps: E_resp = E_tok x L x resp_gap,
    E_tok = P / X x tok_gap, and X unrelated to b / ITL."""
    e_tok, power, out_len, batch, itl_ms, resp_gap, tok_gap, cap = numbers
    return make_record(
        run_id=run_id,
        max_num_seqs=cap,
        energy_per_token_joules=e_tok,
        energy_per_request_joules=e_tok * out_len * resp_gap,
        avg_power_watts=power,
        output_throughput_tokens_per_sec=power / e_tok * tok_gap,
        avg_batch_size=batch,
        median_itl_ms=itl_ms,
        avg_output_len=out_len,
    )


def _diffusion(make_record: Callable[..., RunRecord], run_id: str, numbers: tuple) -> RunRecord:
    energy, power, latency, batch, steps, size, frames, params = numbers
    unit = "image" if frames is None else "video"
    return make_record(
        run_id=run_id,
        kind="diffusion",
        task=f"text-to-{unit}",
        batch_size=batch,
        avg_power_watts=power,
        batch_latency_s=latency,
        inference_steps=steps,
        height=size,
        width=size,
        num_frames=frames,
        activated_params_billions=params,
        **{f"energy_per_{unit}_joules": energy, f"throughput_{unit}s_per_sec": batch / latency},
    )


@shared_fixture
@given(a=llm_numbers, b=llm_numbers, per_token=st.booleans())
def test_llm_factors_multiply_to_the_observed_ratio(
    make_record: Callable[..., RunRecord], a: tuple, b: tuple, per_token: bool
) -> None:
    d = diagnose(_llm(make_record, "a", a), _llm(make_record, "b", b), per_token=per_token)
    assert math.prod(f.ratio for f in d.factors) == pytest.approx(d.observed_ratio, rel=1e-9)
    assert abs(d.residual) < 1e-9
    assert d.observed_ratio == pytest.approx(d.b_value / d.a_value)
    ids = [f.id for f in d.factors]
    assert ("output_length" in ids) is (not per_token)
    assert {"power", "running_batch", "step_latency", "throughput_identity"} <= set(ids)


@shared_fixture
@given(a=diffusion_numbers, b=diffusion_numbers)
def test_diffusion_factors_multiply_to_the_observed_ratio(
    make_record: Callable[..., RunRecord], a: tuple, b: tuple
) -> None:
    d = diagnose(_diffusion(make_record, "a", a), _diffusion(make_record, "b", b))
    assert math.prod(f.ratio for f in d.factors) == pytest.approx(d.observed_ratio, rel=1e-9)
    parts = {"power", "steps", "latent_tokens", "params", "time_per_compute"}
    assert parts <= {f.id for f in d.factors}


def test_longer_outputs_and_a_smaller_batch_are_named(llm_run) -> None:
    a = llm_run("a", 0.1, 256, avg_output_len=500.0, task="lm-arena-chat")
    b = llm_run("b", 0.2, 64, avg_output_len=5000.0, task="gpqa", fill=0.9, avg_kv_cache_usage=0.95)
    d = diagnose(a, b, [a, b])
    assert d.observed_ratio == pytest.approx(20.0)
    factors = {f.id: f for f in d.factors}
    assert factors["output_length"].ratio == pytest.approx(10.0)
    assert d.main_causes[:2] == ["output_length", "running_batch"]
    assert factors["output_length"].knobs == ["task"]
    assert [g.WORKLOAD, g.COMPUTE_VOLUME, g.ENERGY] in factors["output_length"].paths
    assert d.batch_reasons["b"]["stop"] == "memory_bound"
    assert any(g.MEMORY_FOOTPRINT in p for p in factors["running_batch"].paths)
    summary = diagnosis_summary(d)
    assert "10x from longer outputs" in summary
    assert "capped at 64 by KV-cache memory" in summary
    assert [k.field for k in d.differing_knobs] == ["task", "max_num_seqs"]


def test_equal_runs_decompose_to_ones(llm_run) -> None:
    a = llm_run("a", 0.1, 64)
    d = diagnose(a, a.model_copy(update={"run_id": "b"}))
    assert d.observed_ratio == 1 and d.main_causes == []
    assert all(f.ratio == pytest.approx(1) for f in d.factors)
    assert "no factor moved" in diagnosis_summary(d)


def test_llm_against_diffusion_is_refused(llm_run, diffusion_run) -> None:
    with pytest.raises(AnalysisError, match="cannot decompose"):
        diagnose(llm_run("a", 0.1, 64), diffusion_run("b", 100.0, 1))


def test_json_shape(llm_run) -> None:
    a, b = llm_run("a", 0.1, 64), llm_run("b", 0.3, 16, avg_power_watts=400.0)
    data = json.loads(json.dumps(diagnosis_dict(diagnose(a, b, [a, b]))))
    assert set(data) >= {
        "a_id",
        "b_id",
        "metric",
        "unit",
        "observed_ratio",
        "factors",
        "product",
        "residual",
        "identity_residuals",
        "differing_knobs",
        "main_causes",
        "batch_reasons",
        "summary",
    }
    for f in data["factors"]:
        assert set(f) >= {
            "id",
            "label",
            "ratio",
            "latent",
            "paths",
            "path_labels",
            "knobs",
            "is_residual",
        }


def _largest(records: list[RunRecord], model: str, task: str) -> RunRecord:
    runs = [
        r
        for r in records
        if r.model_id == model and r.task == task and r.gpu_model == "B200" and r.num_gpus == 1
    ]
    return max(runs, key=lambda r: r.batch or 0)


def test_acceptance_qwen3_32b_conversation_vs_problem_solving(public_store: Store) -> None:
    records = public_store.all()
    a = _largest(records, "Qwen/Qwen3-32B", "lm-arena-chat")
    b = _largest(records, "Qwen/Qwen3-32B", "gpqa")
    d = diagnose(a, b, RunIndex(records))
    assert abs(d.product / d.observed_ratio - 1) < 0.01
    assert 20 < d.observed_ratio < 27
    assert d.main_causes == ["output_length", "running_batch"]
    assert d.batch_reasons["b"]["stop"] == "memory_bound"
    summary = diagnosis_summary(d)
    assert "longer outputs" in summary and "by KV-cache memory" in summary
    assert "throughput identity" in summary  # A's gap (-19%) is stated
    assert "B:" in diagnosis_text(d)


def test_acceptance_diffusion_video_vs_image(public_store: Store) -> None:
    records = public_store.all()
    image = next(
        r
        for r in records
        if r.model_id == "black-forest-labs/FLUX.1-dev"
        and r.gpu_model == "B200"
        and r.num_gpus == 1
        and r.batch == 1
    )
    video = next(
        r
        for r in records
        if r.model_id == "Wan-AI/Wan2.1-T2V-14B-Diffusers"
        and r.gpu_model == "B200"
        and r.num_gpus == 1
        and r.batch == 1
    )
    d = diagnose(image, video, records)
    assert abs(d.residual) < 0.01
    assert d.main_causes[0] == "latent_tokens"
