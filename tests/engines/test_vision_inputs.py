"""Decoding multimodal request parts for in-process vision-language models."""

from __future__ import annotations

import importlib.util

import pytest

from joulelens.engines.vision import (
    frame_indices,
    has_media_parts,
    sample_video_frames,
    vision_prompt,
)
from joulelens.errors import EngineError, InputError
from joulelens.tasks import get_task
from joulelens.tasks.media import Media, builtin_media


@pytest.mark.parametrize(
    "total, wanted, expected",
    [(16, 4, [0, 5, 10, 15]), (16, 32, list(range(16))), (5, 1, [0]), (3, 0, [0, 1, 2])],
)
def test_frames_are_sampled_evenly_with_both_ends(
    total: int, wanted: int, expected: list[int]
) -> None:
    assert frame_indices(total, wanted) == expected


def test_gif_clips_decode_to_rgb_frames() -> None:
    frames = sample_video_frames(builtin_media("bouncing-ball"), 4)
    assert len(frames) == 4 and all(f.mode == "RGB" and f.size == (64, 48) for f in frames)
    assert frames[0].tobytes() != frames[-1].tobytes()


@pytest.mark.skipif(importlib.util.find_spec("av") is not None, reason="PyAV is installed")
def test_other_video_containers_name_the_package_to_install() -> None:
    with pytest.raises(EngineError, match="pip install av"):
        sample_video_frames(Media(b"\x00\x00\x00\x18ftypmp42", "video/mp4", "clip.mp4"), 8)


def test_request_parts_become_hf_messages_and_media() -> None:
    task = get_task("video-chat")
    request = task.build_requests(task.load_prompts(), 1)[0]
    assert has_media_parts(request.messages)
    as_video = vision_prompt(request.messages, 6, videos_as_images=False)
    assert [p["type"] for p in as_video.messages[-1]["content"]] == ["video", "text"]
    assert len(as_video.videos) == 1 and len(as_video.videos[0]) == 6 and not as_video.images
    as_images = vision_prompt(request.messages, 6, videos_as_images=True)
    assert [p["type"] for p in as_images.messages[-1]["content"]] == ["image"] * 6 + ["text"]
    assert len(as_images.images) == 6 and not as_images.videos
    assert not has_media_parts(
        get_task("gpqa").build_requests(get_task("gpqa").load_prompts(), 1)[0].messages
    )


def test_remote_urls_are_refused_in_process() -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
        }
    ]
    with pytest.raises(InputError, match="data: URLs"):
        vision_prompt(messages, 4, videos_as_images=True)
