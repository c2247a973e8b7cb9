"""The leaderboard importer on small snapshots written by the tests, from a directory and
from a real local HTTP server."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from leaderboard_fixtures import HIST_8, T2I, T2V, VLM, snapshot_docs, write_snapshot

from joulelens.errors import InputError
from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.records import RunKind, RunRecord, SourceKind


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "lb")


@pytest.fixture
def served(snapshot: Path) -> Iterator[str]:
    """The snapshot directory behind a real HTTP server on an ephemeral port."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(snapshot))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _by(records: list[RunRecord], task: str) -> list[RunRecord]:
    return [r for r in records if r.task == task]


def test_reads_every_configuration_with_units_and_kinds(snapshot: Path):
    records = read_leaderboard(snapshot)
    assert len(records) == 7
    assert {t: len(_by(records, t)) for t in ("gpqa", "image-chat")} == {"gpqa": 3, "image-chat": 1}
    gpqa8 = next(r for r in _by(records, "gpqa") if r.max_num_seqs == 8 and not r.warnings[1:])
    assert gpqa8.kind is RunKind.LLM
    assert gpqa8.energy_per_token_joules == 0.5
    assert gpqa8.energy_per_unit_joules == 0.5 and gpqa8.energy_unit == "token"
    assert gpqa8.median_itl_ms == 20.0 and gpqa8.latency_ms == 20.0
    assert gpqa8.output_length_distribution is not None
    assert gpqa8.output_length_distribution.model_dump() == HIST_8
    assert gpqa8.mean_ttft_ms is None and "mean_ttft_ms" in gpqa8.missing
    assert gpqa8.stable is True
    assert gpqa8.provenance.source is SourceKind.MLENERGY_LEADERBOARD
    assert gpqa8.provenance.source_version == "snapshot 2026-02-16"
    image = _by(records, "text-to-image")
    assert {r.batch_size for r in image} == {4, 8}
    assert all(r.kind is RunKind.DIFFUSION and r.energy_unit == "image" for r in image)
    assert image[0].energy_per_image_joules == 500.0 and image[0].height == 1024
    video = _by(records, "text-to-video")[0]
    assert video.model_id == T2V and video.energy_per_video_joules == 64000.0
    assert video.energy_per_image_joules is None
    assert (video.height, video.width, video.num_frames) == (480, 832, 81)
    assert video.latency_ms == pytest.approx(80_000.0)
    chat = _by(records, "image-chat")[0]
    assert chat.kind is RunKind.MLLM and chat.model_id == VLM
    # Model metadata missing from the row comes from index.json.
    assert (chat.nickname, chat.architecture) == ("See 4B", "Vision MoE")
    assert chat.output_length_distribution is None
    assert "no histogram" in chat.missing["output_length_distribution"]
    assert {r.model_id for r in image} == {T2I}


def test_repeated_configuration_gets_its_own_stable_id(snapshot: Path):
    first = read_leaderboard(snapshot)
    again = read_leaderboard(snapshot)
    assert [r.run_id for r in first] == [r.run_id for r in again]
    gpqa8 = [r for r in _by(first, "gpqa") if r.max_num_seqs == 8]
    assert len({r.run_id for r in gpqa8}) == 2
    repeat = next(r for r in gpqa8 if len(r.warnings) > 1)
    assert "repeat 2" in repeat.warnings[1] and repeat.avg_power_watts == 310.0
    assert repeat.output_length_distribution is None  # the model file lists batch 8 once
    assert len({r.run_id for r in first}) == len(first)


def test_url_source_matches_directory(snapshot: Path, served: str):
    local = read_leaderboard(snapshot)
    remote = read_leaderboard(served)
    strip = {"recorded_at": True, "provenance": {"source_path"}}
    assert [r.model_dump(exclude=strip) for r in remote] == [
        r.model_dump(exclude=strip) for r in local
    ]
    assert remote[0].provenance.source_path.startswith(served.rstrip("/"))


def test_url_missing_task_file_is_named(snapshot: Path, served: str):
    (snapshot / "tasks" / "gpqa.json").unlink()
    with pytest.raises(InputError, match="404") as err:
        read_leaderboard(served)
    assert err.value.source == served.rstrip("/") + "/tasks/gpqa.json"


@pytest.mark.parametrize(
    ("rel", "mutate", "field", "message"),
    [
        ("tasks/gpqa.json", lambda d: d["configurations"][1].pop("energy_per_token_joules"),
         "configurations[1].energy_per_token_joules", "Field required"),
        ("tasks/gpqa.json", lambda d: d["configurations"][0].update(num_gpus="two"),
         "configurations[0].num_gpus", "valid integer"),
        ("tasks/text-to-image.json",
         lambda d: d["configurations"][0].pop("energy_per_image_joules"),
         "configurations[0]", "energy_per_image_joules is required"),
        ("models/acme__Reason-8B__gpqa.json",
         lambda d: d["configurations"][0]["output_length_distribution"]["counts"].pop(),
         "configurations[0].output_length_distribution", "len(bins) == len(counts) + 1"),
        ("index.json", lambda d: d.pop("tasks"), "tasks", "Field required"),
    ],
)  # fmt: skip
def test_malformed_file_names_file_and_field(tmp_path, rel, mutate, field, message):
    docs = snapshot_docs()
    mutate(docs[rel])
    root = write_snapshot(tmp_path / "lb", docs)
    with pytest.raises(InputError) as err:
        read_leaderboard(root)
    assert err.value.source == str(root / rel)
    assert err.value.field == field
    assert message in str(err.value)


def test_bad_json_names_the_file(tmp_path: Path):
    docs = snapshot_docs()
    docs["tasks/text-to-video.json"] = '{"task": "text-to-video", "configurations": ['
    root = write_snapshot(tmp_path / "lb", docs)
    with pytest.raises(InputError, match="invalid JSON") as err:
        read_leaderboard(root)
    assert err.value.source == str(root / "tasks/text-to-video.json")


def test_task_mismatch_and_unknown_architecture(tmp_path: Path):
    docs = snapshot_docs()
    docs["tasks/gpqa.json"]["task"] = "mmlu"
    with pytest.raises(InputError, match="does not match") as err:
        read_leaderboard(write_snapshot(tmp_path / "a", docs))
    assert err.value.field == "task"
    docs = snapshot_docs()
    docs["index.json"]["architectures"]["llm"] = []
    with pytest.raises(InputError, match="no architecture") as err:
        read_leaderboard(write_snapshot(tmp_path / "b", docs))
    assert err.value.field == "architectures"


def test_not_a_directory(tmp_path: Path):
    with pytest.raises(InputError, match="not a directory"):
        read_leaderboard(tmp_path / "absent")
