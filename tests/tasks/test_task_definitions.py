"""The seven task definitions and the requests they build (no model involved)."""

from __future__ import annotations

import pytest

from joulelens.errors import InputError
from joulelens.records import RunKind
from joulelens.tasks import (
    DEFAULT_FIM,
    FIM_FORMATS,
    TASKS,
    PromptItem,
    fim_format_for_vocab,
    get_task,
    task_names,
)
from joulelens.tasks.media import is_video, media_from_data_url

EXPECTED = {
    # name: (kind, api, cap, unit)
    "lm-arena-chat": (RunKind.LLM, "chat", 4096, "token"),
    "gpqa": (RunKind.LLM, "chat", 32768, "token"),
    "sourcegraph-fim": (RunKind.LLM, "completions", 2048, "token"),
    "image-chat": (RunKind.MLLM, "chat", 4096, "token"),
    "video-chat": (RunKind.MLLM, "chat", 4096, "token"),
    "text-to-image": (RunKind.DIFFUSION, None, None, "image"),
    "text-to-video": (RunKind.DIFFUSION, None, None, "video"),
}


def test_the_seven_mlenergy_tasks_are_defined() -> None:
    assert set(task_names()) == set(EXPECTED)
    for task in TASKS:
        kind, api, cap, unit = EXPECTED[task.name]
        assert (task.kind, task.api, task.output_cap_tokens, task.energy_unit) == (
            kind,
            api,
            cap,
            unit,
        )
        assert (task.temperature, task.top_p) == (0.8, 0.95)


def test_problem_solving_turns_thinking_on_and_others_do_not() -> None:
    assert get_task("gpqa").sampling_body() == {
        "temperature": 0.8,
        "top_p": 0.95,
        "chat_template_kwargs": {"enable_thinking": True},
    }
    assert "chat_template_kwargs" not in get_task("lm-arena-chat").sampling_body()


def test_unknown_task_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="lm-arena-chat"):
        get_task("chat")


@pytest.mark.parametrize("name", [t.name for t in TASKS if not t.is_diffusion])
def test_requests_cycle_through_builtin_prompts_with_the_task_cap(name: str) -> None:
    task = get_task(name)
    items = task.load_prompts()
    n = 2 * len(items) + 3
    requests = task.build_requests(items, n)
    assert len(requests) == n
    assert len({r.request_id for r in requests}) == n
    assert all(r.api == task.api and r.max_tokens == task.output_cap_tokens for r in requests)
    assert all(r.extra_body == task.sampling_body() for r in requests)
    # Prompts repeat in order when N exceeds the set (the paper's rule for large batches).
    assert requests[len(items)].messages == requests[0].messages
    assert requests[len(items)].prompt == requests[0].prompt


def test_max_tokens_lowers_the_cap_but_never_raises_it() -> None:
    task = get_task("sourcegraph-fim")
    items = task.load_prompts()
    assert task.build_requests(items, 1, max_tokens=16)[0].max_tokens == 16
    assert task.build_requests(items, 1, max_tokens=10**6)[0].max_tokens == 2048
    with pytest.raises(InputError):
        task.build_requests(items, 1, max_tokens=0)


def test_seeded_shuffle_is_reproducible_and_differs_from_file_order() -> None:
    task = get_task("lm-arena-chat")
    items = task.load_prompts()
    a = task.build_requests(items, len(items), seed=7)
    b = task.build_requests(items, len(items), seed=7)
    plain = task.build_requests(items, len(items))
    assert [r.messages for r in a] == [r.messages for r in b]
    assert [r.messages for r in a] != [r.messages for r in plain]


def test_code_completion_uses_the_fim_markers_it_is_given() -> None:
    task = get_task("sourcegraph-fim")
    item = PromptItem(prefix="def f(x):\n    ", suffix="\n    return y\n")
    default = task.build_requests([item], 1)[0]
    assert (
        default.prompt
        == "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y\n<|fim_middle|>"
    )
    starcoder = next(f for f in FIM_FORMATS if f.name == "starcoder")
    custom = task.build_requests([item], 1, fim_format=starcoder)[0]
    assert custom.prompt == "<fim_prefix>def f(x):\n    <fim_suffix>\n    return y\n<fim_middle>"
    with pytest.raises(InputError, match="prefix"):
        task.build_requests([PromptItem(text="no hole here")], 1)


def test_fim_format_is_detected_from_a_vocabulary() -> None:
    assert (
        fim_format_for_vocab({"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "a"})
        is DEFAULT_FIM
    )
    assert (
        fim_format_for_vocab({"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}).name == "starcoder"
    )
    assert fim_format_for_vocab({"<|fim_prefix|>", "a", "b"}) is None


def test_chat_requests_keep_system_and_history_before_the_user_turn() -> None:
    item = PromptItem(
        text="and now?",
        system="be brief",
        history=({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}),
    )
    messages = get_task("lm-arena-chat").build_requests([item], 1)[0].messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "and now?"


def test_image_chat_requests_carry_the_image_as_a_data_url() -> None:
    task = get_task("image-chat")
    request = task.build_requests(task.load_prompts(), 1)[0]
    parts = request.messages[-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"]
    media = media_from_data_url(parts[0]["image_url"]["url"])
    assert media.mime == "image/png" and media.data.startswith(b"\x89PNG")


def test_video_chat_requests_carry_a_multi_frame_clip() -> None:
    task = get_task("video-chat")
    assert task.video_frames == 32
    request = task.build_requests(task.load_prompts(), 1)[0]
    parts = request.messages[-1]["content"]
    assert [p["type"] for p in parts] == ["video_url", "text"]
    assert is_video(media_from_data_url(parts[0]["video_url"]["url"]))


def test_multimodal_tasks_reject_prompts_without_media() -> None:
    with pytest.raises(InputError, match="image or a video"):
        get_task("image-chat").build_requests([PromptItem(text="describe")], 1)


def test_diffusion_tasks_give_prompt_strings_not_requests() -> None:
    task = get_task("text-to-video")
    prompts = task.diffusion_prompts(task.load_prompts(), 45)
    assert len(prompts) == 45 and all(isinstance(p, str) and p for p in prompts)
    with pytest.raises(InputError, match="diffusion"):
        task.build_requests(task.load_prompts(), 1)
    with pytest.raises(InputError):
        get_task("gpqa").diffusion_prompts(get_task("gpqa").load_prompts(), 1)
    with pytest.raises(InputError):
        task.output_lengths()
