"""Images and videos for the multimodal tasks: built-in ones drawn in code, or read from files.

The built-in media are generated (deterministically) at first use rather than shipped or
downloaded: small pictures of shapes, a bar chart, stripes ..., and short animated GIF clips.
A request carries media as ``data:`` URLs, the way OpenAI-compatible servers accept them.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joulelens.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

BUILTIN_PREFIX = "builtin:"
IMAGE_SIZE_PX = (96, 72)  # width, height: small so tiny models stay fast; real VLMs upscale
VIDEO_SIZE_PX = (64, 48)
VIDEO_FRAMES = 16
VIDEO_FRAME_MS = 100  # 10 fps

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<b64>;base64)?,(?P<data>.*)$", re.S)


@dataclass(frozen=True, slots=True)
class Media:
    """One image or video file held in memory."""

    data: bytes
    mime: str  # "image/png", "image/gif", "video/mp4" ...
    name: str

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def media_from_data_url(url: str, name: str = "inline") -> Media:
    match = _DATA_URL.match(url)
    if match is None or match["b64"] is None:
        raise InputError("only base64 data: URLs are accepted in-process", field="url")
    try:
        data = base64.b64decode(match["data"], validate=False)
    except ValueError as exc:
        raise InputError(f"bad base64 in data URL: {exc}", field="url") from exc
    return Media(data, match["mime"] or "application/octet-stream", name)


def load_media(ref: str, base_dir: Path | None = None) -> Media:
    """``builtin:<name>``, a ``data:`` URL, or a file path (relative to ``base_dir``)."""
    if ref.startswith(BUILTIN_PREFIX):
        return builtin_media(ref.removeprefix(BUILTIN_PREFIX))
    if ref.startswith("data:"):
        return media_from_data_url(ref)
    path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise InputError("media file not found", source=path)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Media(path.read_bytes(), mime, path.name)


def builtin_media_names() -> tuple[str, ...]:
    return tuple(sorted(_IMAGES) + sorted(_VIDEOS))


@cache
def builtin_media(name: str) -> Media:
    if name in _IMAGES:
        return Media(_png(_IMAGES[name]()), "image/png", f"{name}.png")
    if name in _VIDEOS:
        return Media(
            _gif([_VIDEOS[name](i) for i in range(VIDEO_FRAMES)]), "image/gif", f"{name}.gif"
        )
    raise InputError(
        f"no built-in media {name!r}; known: {', '.join(builtin_media_names())}", field="media"
    )


def is_video(media: Media) -> bool:
    """GIFs count as video when they have several frames (the built-in clips are GIFs)."""
    if media.mime.startswith("video/"):
        return True
    if media.mime != "image/gif":
        return False
    from PIL import Image

    with Image.open(io.BytesIO(media.data)) as img:
        return getattr(img, "n_frames", 1) > 1


# -- drawing ------------------------------------------------------------------------------


def _canvas(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    from PIL import Image

    return Image.new("RGB", size, colour)


def _draw(img: Image.Image) -> Any:
    from PIL import ImageDraw

    return ImageDraw.Draw(img)


def _shapes() -> Image.Image:
    img = _canvas(IMAGE_SIZE_PX, (240, 236, 220))
    d = _draw(img)
    d.rectangle((8, 10, 34, 36), fill=(200, 40, 40))
    d.ellipse((40, 8, 70, 38), fill=(40, 90, 200))
    d.polygon([(20, 66), (44, 42), (68, 66)], fill=(40, 160, 70))
    d.rectangle((74, 40, 90, 66), fill=(230, 180, 30))
    return img


def _chart() -> Image.Image:
    img = _canvas(IMAGE_SIZE_PX, (255, 255, 255))
    d = _draw(img)
    d.line((6, 66, 92, 66), fill=(0, 0, 0))
    d.line((6, 4, 6, 66), fill=(0, 0, 0))
    for i, height in enumerate((20, 45, 30, 58, 12)):
        x = 12 + i * 16
        d.rectangle((x, 66 - height, x + 10, 65), fill=(60 + 35 * i, 110, 200 - 30 * i))
    return img


def _sunset() -> Image.Image:
    img = _canvas(IMAGE_SIZE_PX, (0, 0, 0))
    d = _draw(img)
    width, height = IMAGE_SIZE_PX
    for y in range(height):
        t = y / (height - 1)
        d.line((0, y, width, y), fill=(int(250 - 120 * t), int(150 - 110 * t), int(60 + 80 * t)))
    d.ellipse((34, 38, 62, 66), fill=(255, 210, 80))
    d.rectangle((0, 56, width, height), fill=(30, 40, 70))
    return img


def _grid() -> Image.Image:
    img = _canvas(IMAGE_SIZE_PX, (255, 255, 255))
    d = _draw(img)
    palette = ((220, 60, 60), (60, 160, 90), (60, 90, 210))
    for row in range(6):
        for col in range(8):
            colour = palette[(row + 2 * col) % 3]
            d.rectangle((col * 12, row * 12, col * 12 + 10, row * 12 + 10), fill=colour)
    return img


def _stripes() -> Image.Image:
    img = _canvas(IMAGE_SIZE_PX, (250, 250, 250))
    d = _draw(img)
    for i in range(0, IMAGE_SIZE_PX[0] + IMAGE_SIZE_PX[1], 12):
        d.line((i, 0, i - IMAGE_SIZE_PX[1], IMAGE_SIZE_PX[1]), fill=(30, 60, 140), width=5)
    return img


def _circles() -> Image.Image:
    img = _canvas(IMAGE_SIZE_PX, (20, 20, 30))
    d = _draw(img)
    for i, (x, y, r) in enumerate(((20, 20, 14), (48, 36, 20), (76, 24, 12), (70, 56, 10))):
        d.ellipse((x - r, y - r, x + r, y + r), outline=(255, 200 - 40 * i, 80 + 40 * i), width=3)
    return img


def _bouncing_ball(i: int) -> Image.Image:
    img = _canvas(VIDEO_SIZE_PX, (235, 235, 245))
    width, height = VIDEO_SIZE_PX
    x = 6 + (i * 7) % (width - 12)
    phase = i % 8
    y = 6 + abs(4 - phase) * (height - 12) // 4
    _draw(img).ellipse((x - 5, y - 5, x + 5, y + 5), fill=(210, 50, 50))
    return img


def _sliding_bars(i: int) -> Image.Image:
    img = _canvas(VIDEO_SIZE_PX, (255, 255, 255))
    d = _draw(img)
    for bar in range(3):
        x = (i * 4 + bar * 22) % VIDEO_SIZE_PX[0]
        d.rectangle(
            (x, 4 + bar * 14, x + 16, 14 + bar * 14), fill=(40 + 80 * bar, 120, 220 - 80 * bar)
        )
    return img


def _colour_fade(i: int) -> Image.Image:
    t = i / (VIDEO_FRAMES - 1)
    return _canvas(VIDEO_SIZE_PX, (int(30 + 200 * t), int(80 + 100 * (1 - t)), int(200 - 150 * t)))


def _growing_square(i: int) -> Image.Image:
    img = _canvas(VIDEO_SIZE_PX, (250, 245, 235))
    half = 2 + i
    cx, cy = VIDEO_SIZE_PX[0] // 2, VIDEO_SIZE_PX[1] // 2
    _draw(img).rectangle((cx - half, cy - half, cx + half, cy + half), fill=(30, 130, 90))
    return img


_IMAGES: dict[str, Callable[[], Image.Image]] = {
    "shapes": _shapes,
    "chart": _chart,
    "sunset": _sunset,
    "grid": _grid,
    "stripes": _stripes,
    "circles": _circles,
}
_VIDEOS: dict[str, Callable[[int], Image.Image]] = {
    "bouncing-ball": _bouncing_ball,
    "sliding-bars": _sliding_bars,
    "colour-fade": _colour_fade,
    "growing-square": _growing_square,
}


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _gif(frames: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    frames[0].save(
        out, format="GIF", save_all=True, append_images=frames[1:], duration=VIDEO_FRAME_MS, loop=0
    )
    return out.getvalue()
