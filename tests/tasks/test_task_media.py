"""Built-in images and clips are drawn in code, deterministic, and decodable."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from joulelens.errors import InputError
from joulelens.tasks.media import (
    IMAGE_SIZE_PX,
    VIDEO_FRAMES,
    VIDEO_SIZE_PX,
    builtin_media,
    builtin_media_names,
    is_video,
    load_media,
    media_from_data_url,
)


def test_builtin_images_are_small_pngs() -> None:
    names = [n for n in builtin_media_names() if builtin_media(n).mime == "image/png"]
    assert len(names) >= 5
    for name in names:
        with Image.open(io.BytesIO(builtin_media(name).data)) as img:
            assert img.format == "PNG" and img.size == IMAGE_SIZE_PX
        assert not is_video(builtin_media(name))


def test_builtin_clips_are_animated_gifs_with_distinct_frames() -> None:
    clips = [n for n in builtin_media_names() if builtin_media(n).mime == "image/gif"]
    assert len(clips) >= 4
    for name in clips:
        media = builtin_media(name)
        assert is_video(media)
        with Image.open(io.BytesIO(media.data)) as img:
            assert img.n_frames == VIDEO_FRAMES and img.size == VIDEO_SIZE_PX


def test_media_are_deterministic_and_round_trip_through_data_urls() -> None:
    first = builtin_media("sunset")
    builtin_media.cache_clear()
    again = builtin_media("sunset")
    assert first.data == again.data
    back = media_from_data_url(first.data_url())
    assert (back.data, back.mime) == (first.data, first.mime)
    assert load_media(first.data_url()).data == first.data


def test_bad_references_are_input_errors() -> None:
    with pytest.raises(InputError, match="known"):
        builtin_media("nothing")
    with pytest.raises(InputError):
        media_from_data_url("data:image/png,not-base64-marked")
