"""Multimodal inputs in-process: OpenAI-style content parts -> images, video frames, processor.

Requests carry media as ``data:`` URLs (what servers accept). Here they are decoded with
Pillow; videos are sampled to a fixed number of evenly spaced frames, the way vLLM samples
them (``min(num_frames, total)``). Animated GIFs (the built-in clips) need only Pillow; other
containers (MP4, WebM ...) need PyAV (``pip install av``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from joulelens.errors import EngineError, InputError
from joulelens.tasks.media import Media, media_from_data_url

if TYPE_CHECKING:
    from PIL import Image


@dataclass(slots=True)
class VisionPrompt:
    """One request's messages in Hugging Face chat form plus the media they refer to."""

    messages: list[dict[str, Any]]
    images: list[Image.Image] = field(default_factory=list)
    videos: list[list[Image.Image]] = field(default_factory=list)

    @property
    def has_media(self) -> bool:
        return bool(self.images or self.videos)


def has_media_parts(messages: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(part.get("type") in ("image_url", "video_url") for part in m["content"])
        for m in messages
    )


def vision_prompt(
    messages: Sequence[Mapping[str, Any]], num_frames: int, videos_as_images: bool
) -> VisionPrompt:
    """Decode the media of one request; ``videos_as_images`` turns each frame into an image
    part (for processors without a video path, e.g. without torchvision)."""
    prompt = VisionPrompt(messages=[])
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) or content is None:
            prompt.messages.append({"role": message["role"], "content": content or ""})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image_url":
                prompt.images.append(decode_image(_media_of(part, "image_url")))
                parts.append({"type": "image"})
            elif kind == "video_url":
                frames = sample_video_frames(_media_of(part, "video_url"), num_frames)
                if videos_as_images:
                    prompt.images += frames
                    parts += [{"type": "image"} for _ in frames]
                else:
                    prompt.videos.append(frames)
                    parts.append({"type": "video"})
            else:
                raise InputError(f"unsupported content part type {kind!r}", field="messages")
        prompt.messages.append({"role": message["role"], "content": parts})
    return prompt


def _media_of(part: Mapping[str, Any], key: str) -> Media:
    value = part.get(key)
    url = value.get("url") if isinstance(value, Mapping) else value
    if not isinstance(url, str):
        raise InputError(f"{key} part without a url", field="messages")
    if not url.startswith("data:"):
        raise InputError(
            f"in-process engines take {key} as data: URLs, not {url[:40]!r}", field="messages"
        )
    return media_from_data_url(url)


def decode_image(media: Media) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(media.data)) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot decode image {media.name}: {exc}", field="images") from exc


def frame_indices(total: int, num_frames: int) -> list[int]:
    """Evenly spaced frame indices, first and last included (vLLM's sampling)."""
    count = max(1, min(num_frames, total)) if num_frames > 0 else total
    if count >= total:
        return list(range(total))
    return np.linspace(0, total - 1, count).round().astype(int).tolist()


def sample_video_frames(media: Media, num_frames: int) -> list[Image.Image]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(media.data)) as img:
            total = getattr(img, "n_frames", 1)
            frames = []
            for index in frame_indices(total, num_frames):
                img.seek(index)
                frames.append(img.convert("RGB"))
            return frames
    except (UnidentifiedImageError, OSError):
        pass  # not an image container: try a video decoder
    return _decode_with_av(media, num_frames)


def _decode_with_av(media: Media, num_frames: int) -> list[Image.Image]:
    try:
        import av  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise EngineError(
            f"decoding {media.mime} video needs PyAV (pip install av); "
            "animated GIFs work without it"
        ) from exc
    try:
        with av.open(io.BytesIO(media.data)) as container:
            decoded = [frame.to_image() for frame in container.decode(video=0)]
    except Exception as exc:  # PyAV raises its own error family
        raise InputError(f"cannot decode video {media.name}: {exc}", field="video") from exc
    if not decoded:
        raise InputError(f"video {media.name} has no frames", field="video")
    return [decoded[i].convert("RGB") for i in frame_indices(len(decoded), num_frames)]


class PatchMergeProcessor:
    """A minimal processor for Qwen2-VL-style models: expands each image placeholder into
    one token per merged patch, as ``Qwen2VLProcessor`` does, without needing torchvision
    (which the stock processor's video half requires). Images only; videos arrive as frames.
    """

    supports_video = False

    def __init__(self, tokenizer: Any, image_processor: Any, image_token: str = "<|image_pad|>"):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token = image_token
        self.merge_length = int(image_processor.merge_size) ** 2

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def __call__(
        self,
        *,
        text: list[str],
        images: list[Image.Image] | None = None,
        videos: Any = None,
        padding: bool = True,
        return_tensors: str = "pt",
    ) -> Any:
        from transformers import BatchFeature

        if videos:
            raise EngineError("this processor takes video frames as images only")
        data: dict[str, Any] = {}
        expanded = list(text)
        if images:
            vision = self.image_processor(images=images, return_tensors=return_tensors)
            data.update(vision)
            counts = iter((vision["image_grid_thw"].prod(-1) // self.merge_length).tolist())
            expanded = [self._expand(t, counts) for t in text]
        tokens = self.tokenizer(expanded, padding=padding, return_tensors=return_tensors)
        data.update(tokens)
        return BatchFeature(data=data)

    def _expand(self, text: str, counts: Any) -> str:
        pieces = text.split(self.image_token)
        out = [pieces[0]]
        for piece in pieces[1:]:
            out.append(self.image_token * int(next(counts)) + piece)
        return "".join(out)
