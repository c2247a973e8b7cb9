"""The diffusers engine on tiny random pipelines: one trace per batch, output shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulelens.engines.diffusers_engine import DiffusersEngine
from joulelens.errors import InputError
from joulelens.tasks import get_task

pytestmark = pytest.mark.engines  # every test here runs torch


def prompts(task: str, n: int = 20) -> list[str]:
    t = get_task(task)
    return t.diffusion_prompts(t.load_prompts(), n)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_text_to_image_batches_are_measured_windows(batch_size: int) -> None:
    seen = []
    with DiffusersEngine("arch:tiny-sd", cpu_threads=1) as engine:
        traces = engine.run_batches(
            prompts("text-to-image"),
            batch_size=batch_size,
            num_batches=2,
            warmup_batches=1,
            on_batch=seen.append,
        )
        assert engine.last_output_shape == (batch_size, 32, 32, 3)
        fields = engine.record_fields()
        described = engine.describe()
    assert [t.index for t in traces] == [0, 1, 2] and seen == traces
    assert [t.warmup for t in traces] == [True, False, False]
    assert all(
        t.error is None and t.batch_size == batch_size and t.end_s > t.start_s for t in traces
    )
    assert traces[1].start_s >= traces[0].end_s  # windows do not overlap
    assert (fields["height"], fields["width"], fields["inference_steps"]) == (32, 32, 2)
    assert fields["model_id"] == "arch:tiny-sd" and "random weights" in fields["nickname"]
    assert (
        described["random_weights"] is True and described["pipeline"] == "StableDiffusionPipeline"
    )


def test_text_to_video_makes_frames_and_takes_settings() -> None:
    with DiffusersEngine("arch:tiny-wan", cpu_threads=1) as engine:
        assert engine.is_video
        traces = engine.run_batches(
            prompts("text-to-video"), batch_size=2, num_batches=1, warmup_batches=0
        )
        assert engine.last_output_shape == (2, 9, 16, 16, 3)
        engine.run_batches(
            prompts("text-to-video"),
            batch_size=1,
            num_batches=1,
            warmup_batches=0,
            steps=1,
            height=32,
            width=16,
            num_frames=5,
        )
        assert engine.last_output_shape == (1, 5, 32, 16, 3)
        fields = engine.record_fields()
    assert len(traces) == 1 and not traces[0].warmup and traces[0].error is None
    assert (fields["num_frames"], fields["height"], fields["width"], fields["inference_steps"]) == (
        5,
        32,
        16,
        1,
    )


def test_image_pipelines_refuse_frames_and_bad_counts() -> None:
    with DiffusersEngine("arch:tiny-sd", cpu_threads=1) as engine:
        with pytest.raises(InputError, match="num_frames"):
            engine.run_batches(["x"], batch_size=1, num_batches=1, num_frames=8)
        with pytest.raises(InputError):
            engine.run_batches(["x"], batch_size=0, num_batches=1)
        with pytest.raises(InputError):
            engine.run_batches([], batch_size=1, num_batches=1)
    with pytest.raises(InputError, match="diffusion architecture"):
        DiffusersEngine("arch:tiny-llama")
    with pytest.raises(InputError):
        DiffusersEngine("not-a-model")


def test_a_saved_pipeline_directory_loads_by_path(tmp_path: Path) -> None:
    with DiffusersEngine("arch:tiny-sd") as built:
        built.pipeline.save_pretrained(tmp_path / "tiny-sd")
    with DiffusersEngine(str(tmp_path / "tiny-sd"), cpu_threads=1) as engine:
        traces = engine.run_batches(
            ["a red square"], batch_size=2, num_batches=1, warmup_batches=0, steps=1
        )
        assert engine.last_output_shape == (2, 32, 32, 3)
        assert engine.describe()["random_weights"] is False
        assert engine.model_id == "tiny-sd"
    assert traces[0].error is None
