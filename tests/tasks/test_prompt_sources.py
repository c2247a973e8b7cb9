"""Prompt sources: built-in sets, local JSONL/Parquet files, public-dataset row shapes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from joulelens.errors import InputError
from joulelens.tasks import TASKS, builtin_media, get_task, load_prompt_file
from joulelens.tasks.prompts import builtin_prompts, repeat_to
from joulelens.tasks.public_rows import (
    caption_row,
    fim_row,
    gpqa_row,
    llava_video_row,
    lmarena_row,
    vision_arena_row,
)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_task_has_a_builtin_offline_set_of_about_twenty(task) -> None:
    items = builtin_prompts(task.name)
    assert 20 <= len(items) <= 30
    if task.name == "sourcegraph-fim":
        assert all(i.prefix and i.suffix is not None for i in items)
    else:
        assert all(i.text.strip() for i in items)
        assert len({i.text for i in items}) == len(items)
    if task.name == "image-chat":
        assert all(len(i.images) == 1 for i in items)
    if task.name == "video-chat":
        assert all(i.video is not None for i in items)


def test_jsonl_file_with_relative_media_paths(tmp_path: Path) -> None:
    (tmp_path / "pic.png").write_bytes(builtin_media("chart").data)
    path = tmp_path / "prompts.jsonl"
    rows = [
        {"text": "what is this?", "images": ["pic.png"], "system": "be short"},
        {"prompt": "second", "image": "builtin:grid"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = load_prompt_file(path)
    assert [i.text for i in items] == ["what is this?", "second"]
    assert items[0].system == "be short"
    assert items[0].images[0].data == builtin_media("chart").data
    assert items[1].images[0].name == "grid.png"


def test_parquet_file_is_read_with_the_tasks_adapter(tmp_path: Path) -> None:
    path = tmp_path / "fim.parquet"
    table = pa.table(
        {"prefix": ["a = ", "def g():\n    "], "middle": ["1", "pass"], "suffix": ["\n", "\n"]}
    )
    pq.write_table(table, path)
    items = get_task("sourcegraph-fim").load_prompts(path)
    assert [(i.prefix, i.suffix) for i in items] == [("a = ", "\n"), ("def g():\n    ", "\n")]


def test_bad_files_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{not json}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl.*line 2"):
        load_prompt_file(path)
    missing_media = tmp_path / "m.jsonl"
    missing_media.write_text('{"text": "x", "images": ["nope.png"]}\n')
    with pytest.raises(InputError, match=r"nope\.png"):
        load_prompt_file(missing_media)
    with pytest.raises(InputError, match="not found"):
        load_prompt_file(tmp_path / "absent.jsonl")
    (tmp_path / "p.csv").write_text("text\nx\n")
    with pytest.raises(InputError, match=r"jsonl or \.parquet"):
        load_prompt_file(tmp_path / "p.csv")


@pytest.mark.skipif(
    importlib.util.find_spec("datasets") is not None, reason="datasets is installed"
)
def test_public_dataset_without_the_datasets_package_says_what_to_install() -> None:
    with pytest.raises(InputError, match="pip install datasets"):
        get_task("gpqa").load_prompts("public")


def test_repeat_to_cycles_and_refuses_empty() -> None:
    items = builtin_prompts("gpqa")[:3]
    assert repeat_to(items, 7) == [items[i % 3] for i in range(7)]
    with pytest.raises(InputError):
        repeat_to([], 3)


def test_public_row_shapes_become_prompts() -> None:
    arena = {
        "turn": 2,
        "conversation_a": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": "answer 2"},
        ],
    }
    item = lmarena_row(arena, None)
    assert item is not None and item.text == "second" and len(item.history) == 2

    row = {
        "Question": "Which is heavier?",
        "Correct Answer": "lead",
        "Incorrect Answer 1": "feather",
        "Incorrect Answer 2": "air",
        "Incorrect Answer 3": "foam",
    }
    first, again = gpqa_row(row, None), gpqa_row(row, None)
    assert first is not None and again is not None and first.text == again.text  # stable order
    assert first.text.startswith("What is the correct answer to the following question: Which")
    assert all(f"({c})" in first.text for c in "ABCD") and "lead" in first.text

    assert fim_row({"prefix": "x", "middle": "y", "suffix": "z"}, None).suffix == "z"  # type: ignore[union-attr]

    png = builtin_media("shapes").data
    vision = vision_arena_row(
        {
            "conversation": [[{"role": "user", "content": "look"}]],
            "images": [{"bytes": png, "path": "a.png"}],
        },
        None,
    )
    assert vision is not None and vision.images[0].data == png and vision.text == "look"


def test_video_rows_resolve_files_under_the_media_dir(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "c.gif").write_bytes(builtin_media("colour-fade").data)
    row = {
        "video": "clips/c.gif",
        "conversations": [{"value": "<image>\nWhat happens?"}, {"value": "x"}],
    }
    item = llava_video_row(row, tmp_path)
    assert item is not None and item.text == "What happens?" and item.video is not None
    assert caption_row({"prompt": "a cat"}, None).text == "a cat"  # type: ignore[union-attr]
    with pytest.raises(InputError):
        caption_row({"other": 1}, None)
