"""A store survives its own files: broken run files, a broken catalog, records from other
schema versions, a read-only directory (issue 12, failures 1, 4 and 9)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joulelens.cli.app import app
from joulelens.records import RunRecord
from joulelens.records.migrations import MIGRATIONS, Migrations, Step
from joulelens.store import Store

runner = CliRunner()
READ_COMMANDS = (
    ["runs", "--format", "json"],
    ["summary"],
    ["store", "info"],
    ["study"],
    ["store", "rebuild"],
)


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def three_runs(tmp_store: Store, make_record: Callable[..., RunRecord]) -> Store:
    tmp_store.put_many(
        [
            make_record(run_id=f"r{i}", max_num_seqs=8 * i, energy_per_token_joules=0.1 * i)
            for i in (1, 2, 3)
        ]
    )
    return tmp_store


def _every_command_works(expected_runs: int) -> None:
    for args in READ_COMMANDS:
        code, out = _cli(*args)
        assert code == 0, (args, out)
    code, out = _cli("runs", "--format", "json")
    assert len(json.loads(out[out.index("[") :])) == expected_runs


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_text(p.read_text()[:200]), id="truncated"),
        pytest.param(lambda p: p.write_bytes(os.urandom(300)), id="random-bytes"),
        pytest.param(lambda p: p.write_text("[]"), id="not-an-object"),
        pytest.param(
            lambda p: p.write_text(
                json.dumps({**json.loads(p.read_text()), "energy_per_token_joules": None})
            ),
            id="null-without-reason",  # what a NaN import used to leave behind (failure 1)
        ),
    ],
)
def test_a_bad_run_file_is_set_aside_and_everything_else_works(
    three_runs: Store, damage: Callable[[Path], object]
) -> None:
    """Failure 4: one truncated run.json made every command fail, rebuild included."""
    bad = three_runs.runs_dir / "r2" / "run.json"
    damage(bad)
    os.utime(bad, ns=(1, 1))
    _every_command_works(expected_runs=2)
    assert not bad.exists()
    code, out = _cli("store", "doctor")
    assert code == 1 and "quarantine/r2." in out and "runs/r2/run.json" in out
    (folder,) = (three_runs.root / "quarantine").iterdir()
    assert (folder / "run.json").is_file() and (folder / "reason.txt").read_text().strip()
    # Fixed and moved back, the run returns.
    shutil.rmtree(folder)
    assert "problems" not in _cli("store", "info")[1]


def test_a_missing_or_garbage_catalog_is_rebuilt(three_runs: Store) -> None:
    """Failure 4: a garbage catalog.duckdb was not rebuilt."""
    catalog = three_runs.root / "catalog.duckdb"
    target = Path(os.path.realpath(catalog))
    target.write_bytes(b"this is not a database" * 100)
    _every_command_works(expected_runs=3)
    catalog.unlink()
    _every_command_works(expected_runs=3)
    catalog.unlink()
    catalog.write_bytes(os.urandom(5000))  # a plain garbage file where the link was
    _every_command_works(expected_runs=3)
    assert catalog.is_symlink()


def test_a_run_file_from_a_newer_joulelens_is_left_alone_and_named(three_runs: Store) -> None:
    """Failure 4: a run.json with schema_version 2 made every command fail."""
    path = three_runs.runs_dir / "r3" / "run.json"
    doc = json.loads(path.read_text())
    doc.update(schema_version=MIGRATIONS.current + 1, some_new_field=[1, 2])
    path.write_text(json.dumps(doc))
    _every_command_works(expected_runs=2)
    assert path.is_file()  # not ours to move
    code, out = _cli("store", "doctor")
    assert code == 1 and "newer:" in out and "upgrade" in out
    assert "1 run files not indexed" in _cli("store", "info")[1]


def test_todays_records_need_no_migration() -> None:
    assert MIGRATIONS.current == 1 and dict(MIGRATIONS.steps) == {}
    with pytest.raises(ValueError, match="no migration step"):
        Migrations(3, {1: Step("x", dict)})


def test_migrations_upgrade_todays_files_to_a_synthetic_next_version(
    three_runs: Store,
) -> None:
    """A version 2 that names the GPU in lower case: today's (version 1) files are
    upgraded on open, rewritten on disk, indexed and read back as version 2."""

    def lower_gpu(doc: dict) -> dict:
        doc["gpu_model"] = (doc.get("gpu_model") or "").lower() or None
        return doc

    v2 = Migrations(2, {1: Step("GPU names in lower case", lower_gpu)})
    store = Store(three_runs.root, migrations=v2)
    assert {r.gpu_model for r in store.all()} == {"h100"}
    for i in (1, 2, 3):
        on_disk = json.loads((store.runs_dir / f"r{i}" / "run.json").read_text())
        assert on_disk["schema_version"] == 2 and on_disk["gpu_model"] == "h100"
    assert store.get("r1").schema_version == 2
    assert store.catalog.sql("SELECT schema_version FROM meta") == [(2,)]
    # Today's joulelens meets those files: newer, left alone, reported.
    today = Store(three_runs.root)
    assert today.all() == [] and {p.kind for p in today.info().problems} == {"newer"}


def _read_only_runner(store: Path) -> list[str]:
    """A command prefix under which ``store`` cannot be written: for root (who writes
    anywhere) a private read-only bind mount; for anyone else, permissions do it."""
    if os.geteuid() != 0:
        for path in [store, *store.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        return []
    mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", mount, str(store), "true"])
    if probe.returncode != 0:
        pytest.skip("cannot make a read-only mount here (needs unshare and mount)")
    return ["unshare", "--mount", "sh", "-c", mount, str(store)]


def _joulelens(prefix: list[str], args: list[str], store: Path) -> subprocess.CompletedProcess[str]:
    code = "from joulelens.cli.app import main; main()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [*prefix, sys.executable, "-c", code, *args, "--store", str(store)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_read_only_store_serves_reads_and_refuses_writes_clearly(
    tmp_path: Path, make_record: Callable[..., RunRecord]
) -> None:
    """Failure 9: an import into a read-only store ended in an OSError traceback."""
    from ingest.leaderboard_fixtures import write_snapshot

    root = tmp_path / "store"
    store = Store(root)
    store.put_many([make_record(run_id="a"), make_record(run_id="b", max_num_seqs=4)])
    os.utime(root / "runs" / "b" / "run.json", ns=(5, 5))  # stale catalog: indexed privately
    snapshot = write_snapshot(tmp_path / "lb")
    prefix = _read_only_runner(root)
    try:
        listing = _joulelens(prefix, ["runs", "--format", "json"], root)
        assert listing.returncode == 0, listing.stderr
        assert sorted(r["run_id"] for r in json.loads(listing.stdout)) == ["a", "b"]
        assert _joulelens(prefix, ["summary"], root).returncode == 0
        info = _joulelens(prefix, ["store", "info"], root)
        assert info.returncode == 0 and "read-only" in info.stdout, info.stderr
        imported = _joulelens(prefix, ["import", "mlenergy", str(snapshot)], root)
        assert imported.returncode == 1, imported.stderr  # a runtime (store) failure
        assert "read-only" in imported.stderr and "Traceback" not in imported.stderr
        assert sorted(p.name for p in (root / "runs").iterdir()) == ["a", "b"]
    finally:
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
