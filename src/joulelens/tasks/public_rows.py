"""Adapters from rows of the paper's public datasets to :class:`PromptItem`.

Each mirrors how the ML.ENERGY benchmark turns a dataset row into a request (which fields,
which turn, how GPQA's choices are laid out), so the same rows give the same prompts here
whether they come through ``datasets`` or from a local Parquet/JSONL export.
"""

from __future__ import annotations

import hashlib
import mimetypes
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from joulelens.errors import InputError
from joulelens.tasks.media import Media, load_media
from joulelens.tasks.prompts import PromptItem, simple_row


def _is_simple(row: Mapping[str, Any]) -> bool:
    return any(key in row for key in ("text", "prefix")) or (
        "prompt" in row and isinstance(row["prompt"], str) and "conversation_a" not in row
    )


def lmarena_row(row: Mapping[str, Any], base_dir: Path | None) -> PromptItem | None:
    """arena-human-preference: the conversation up to its last user turn."""
    if _is_simple(row):
        return simple_row(row, base_dir)
    conversation = list(row["conversation_a"])
    while conversation and conversation[-1]["role"] != "user":
        conversation.pop()
    if not conversation:
        return None
    history = tuple({"role": m["role"], "content": str(m["content"])} for m in conversation[:-1])
    return PromptItem(text=str(conversation[-1]["content"]), history=history)


def gpqa_prompt(question: str, choices: list[str]) -> str:
    lines = [f"What is the correct answer to the following question: {question}", "", "Choices:"]
    lines += [f"({letter}) {choice}" for letter, choice in zip("ABCD", choices, strict=True)]
    return "\n".join(lines)


def gpqa_row(row: Mapping[str, Any], base_dir: Path | None) -> PromptItem | None:
    """GPQA: the question with its four answers in an order fixed by the question's hash."""
    if _is_simple(row):
        return simple_row(row, base_dir)
    question = str(row["Question"]).strip()
    choices = [str(row[f"Incorrect Answer {i}"]).strip() for i in (1, 2, 3)]
    choices.append(str(row["Correct Answer"]).strip())
    seed = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big")
    random.Random(seed).shuffle(choices)
    return PromptItem(text=gpqa_prompt(question, choices))


def fim_row(row: Mapping[str, Any], base_dir: Path | None) -> PromptItem | None:
    """Sourcegraph FIM: prefix and suffix (the reference middle is not sent)."""
    if "prefix" not in row:
        raise InputError("a code-completion row needs 'prefix' and 'suffix'", field="prefix")
    return PromptItem(prefix=str(row["prefix"]), suffix=str(row.get("suffix") or ""))


def _media_from_cell(cell: Any, base_dir: Path | None) -> Media:
    if isinstance(cell, Mapping) and cell.get("bytes"):
        name = str(cell.get("path") or "image")
        mime = mimetypes.guess_type(name)[0] or "image/png"
        return Media(bytes(cell["bytes"]), mime, name)
    if isinstance(cell, Mapping) and cell.get("path"):
        return load_media(str(cell["path"]), base_dir)
    if isinstance(cell, str):
        return load_media(cell, base_dir)
    raise InputError("an image cell needs bytes or a path", field="images")


def vision_arena_row(row: Mapping[str, Any], base_dir: Path | None) -> PromptItem | None:
    """VisionArena-Chat: the first user message and the first image."""
    if _is_simple(row):
        return simple_row(row, base_dir)
    first = row["conversation"][0]
    message = first[0] if isinstance(first, list) else first
    images = row.get("images") or []
    if not images:
        return None
    return PromptItem(text=str(message["content"]), images=(_media_from_cell(images[0], base_dir),))


def llava_video_row(row: Mapping[str, Any], base_dir: Path | None) -> PromptItem | None:
    """LLaVA-Video-178K: the first human turn and the named video file."""
    if _is_simple(row):
        return simple_row(row, base_dir)
    video = row.get("video")
    if not video:
        return None
    text = str(row["conversations"][0]["value"]).replace("<image>", "").strip()
    return PromptItem(text=text, video=load_media(str(video), base_dir))


def caption_row(row: Mapping[str, Any], base_dir: Path | None) -> PromptItem | None:
    """Diffusion prompt sets: a 'prompt' (or 'caption'/'text') column."""
    for key in ("text", "prompt", "caption"):
        if row.get(key):
            return PromptItem(text=str(row[key]))
    raise InputError("a diffusion row needs 'prompt', 'caption' or 'text'", field="prompt")
