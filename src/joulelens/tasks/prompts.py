"""Prompt sources for the tasks: built-in sets, local JSONL/Parquet files, the public datasets.

Every source yields :class:`PromptItem` rows. A local file may hold either the simple row
format below or rows shaped like the task's public dataset (the same adapter reads both), so a
dataset exported to Parquet elsewhere works here offline.

Simple row format (JSONL, one object per line; Parquet, one column per field)::

    {"text": "...", "system": "...", "images": ["pic.png"], "video": "clip.gif"}
    {"prefix": "def f(x):\\n    ", "suffix": "\\n    return y\\n"}        # code completion

Media references are ``builtin:<name>``, ``data:`` URLs, or paths relative to the file.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from joulelens.errors import InputError
from joulelens.tasks.media import Media, load_media


@dataclass(frozen=True, slots=True)
class PromptItem:
    """One prompt, before it becomes a request for a particular API and model."""

    text: str = ""  # user message, question, or diffusion prompt
    system: str | None = None
    history: tuple[Mapping[str, str], ...] = ()  # earlier turns (role/content), oldest first
    prefix: str | None = None  # code completion: text before the hole
    suffix: str | None = None  # code completion: text after the hole
    images: tuple[Media, ...] = ()
    video: Media | None = None


@dataclass(frozen=True, slots=True)
class PublicDataset:
    """Where the paper's prompts come from on the Hugging Face Hub."""

    repo_id: str
    split: str
    config: str | None = None
    needs_media_dir: bool = False  # rows name media files distributed separately (videos)


RowAdapter = Callable[[Mapping[str, Any], Path | None], PromptItem | None]


def builtin_prompts(task: str) -> list[PromptItem]:
    """The project's own offline prompt set for ``task`` (about 20 prompts)."""
    resource = resources.files("joulelens.tasks").joinpath("data", f"{task}.jsonl")
    if not resource.is_file():
        raise InputError(f"no built-in prompts for task {task!r}", field="task")
    return _parse_jsonl(resource.read_text(), f"built-in:{task}", None, simple_row)


def load_prompt_file(path: Path, adapter: RowAdapter | None = None) -> list[PromptItem]:
    """Rows of a ``.jsonl``/``.json`` or ``.parquet`` file; media paths are relative to it."""
    if not path.is_file():
        raise InputError("prompt file not found", source=path)
    row_adapter = adapter or simple_row
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _parse_jsonl(path.read_text(), str(path), path.parent, row_adapter)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise InputError(f"cannot read Parquet: {exc}", source=path) from exc
        return _adapt_rows(rows, str(path), path.parent, row_adapter)
    raise InputError("prompt files must be .jsonl or .parquet", source=path)


def load_public_dataset(
    dataset: PublicDataset,
    adapter: RowAdapter,
    limit: int,
    *,
    seed: int = 0,
    media_dir: Path | None = None,
) -> list[PromptItem]:
    """Up to ``limit`` prompts from the public dataset through the ``datasets`` package.

    Works offline when the dataset is already in the local Hugging Face cache; joulelens never
    downloads it by itself in tests (``HF_HUB_OFFLINE=1``).
    """
    try:
        import datasets  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise InputError(
            f"reading {dataset.repo_id} needs the 'datasets' package (pip install datasets); "
            "or pass a local JSONL/Parquet file, or use the built-in prompts",
            field="prompts",
        ) from exc
    if dataset.needs_media_dir and media_dir is None:
        raise InputError(
            f"{dataset.repo_id} names video files distributed separately: pass their directory",
            field="media_dir",
        )
    try:
        rows = datasets.load_dataset(
            dataset.repo_id, dataset.config, split=dataset.split, streaming=True
        )
        rows = rows.shuffle(seed=seed)
    except Exception as exc:  # datasets raises many types (offline, missing, auth)
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1 and it is not cached)" if offline else ""
        raise InputError(f"cannot load {dataset.repo_id}{hint}: {exc}", field="prompts") from exc
    items: list[PromptItem] = []
    for row in rows:
        item = adapter(row, media_dir)
        if item is not None:
            items.append(item)
        if len(items) >= limit:
            break
    if not items:
        raise InputError(f"no usable rows in {dataset.repo_id}", field="prompts")
    return items


def repeat_to(items: Sequence[PromptItem], n: int, seed: int | None = None) -> list[PromptItem]:
    """``n`` prompts, cycling through ``items`` (the paper repeats prompts when N exceeds them).

    With a ``seed`` the order is shuffled first, reproducibly.
    """
    if not items:
        raise InputError("no prompts to build requests from", field="prompts")
    order = list(items)
    if seed is not None:
        random.Random(seed).shuffle(order)
    return [order[i % len(order)] for i in range(n)]


# -- row adapters -------------------------------------------------------------------------


def simple_row(row: Mapping[str, Any], base_dir: Path | None) -> PromptItem | None:
    """The simple format (see module docstring)."""
    text = row.get("text", row.get("prompt", row.get("question")))
    prefix, suffix = row.get("prefix"), row.get("suffix")
    if text is None and prefix is None:
        raise InputError("a row needs 'text' (or 'prompt') or 'prefix'/'suffix'", field="text")
    images = row.get("images") or ([row["image"]] if row.get("image") else [])
    if isinstance(images, str):
        images = [images]
    video = row.get("video")
    history = tuple(
        {"role": str(m["role"]), "content": str(m["content"])} for m in row.get("history") or ()
    )
    return PromptItem(
        text=str(text or ""),
        system=row.get("system"),
        history=history,
        prefix=None if prefix is None else str(prefix),
        suffix=None if suffix is None and prefix is None else str(suffix or ""),
        images=tuple(load_media(str(ref), base_dir) for ref in images),
        video=load_media(str(video), base_dir) if video else None,
    )


def _parse_jsonl(
    text: str, source: str, base_dir: Path | None, adapter: RowAdapter
) -> list[PromptItem]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a JSON array is accepted too
        try:
            rows = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"bad JSON: {exc}", source=source) from exc
        return _adapt_rows(rows, source, base_dir, adapter)
    parsed = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"line {lineno}: bad JSON: {exc}", source=source) from exc
    return _adapt_rows(parsed, source, base_dir, adapter)


def _adapt_rows(
    rows: Sequence[Any], source: str, base_dir: Path | None, adapter: RowAdapter
) -> list[PromptItem]:
    items: list[PromptItem] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InputError(f"row {index + 1} is not an object", source=source)
        try:
            item = adapter(row, base_dir)
        except InputError as exc:
            raise InputError(f"row {index + 1}: {exc}", source=source, field=exc.field) from exc
        except (KeyError, IndexError, TypeError) as exc:
            raise InputError(f"row {index + 1}: unexpected shape ({exc!r})", source=source) from exc
        if item is not None:
            items.append(item)
    if not items:
        raise InputError("no prompts in file", source=source)
    return items
