"""Atomic file and directory writes: a crash never leaves a half-written run."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode(), fsync=fsync)


def write_new_file(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Create ``path`` (which must not exist) inside a private staging directory.

    No temporary name is needed there: nobody sees the file until the directory is renamed.
    """
    with open(path, "xb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; on success it replaces ``final`` whole.

    Readers see either the old directory or the new one, never a mix. On error (or Ctrl-C)
    the staging directory is removed and ``final`` is left as it was. Staging and trash
    names carry the writer's pid, so a store opened meanwhile by another process leaves a
    live writer's directories alone (see :func:`remove_stale_staging`).
    """
    pid = os.getpid()
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{final.name}.{pid}.", suffix=".staging", dir=final.parent)
        )
    except FileNotFoundError:  # first write under a new parent; checked lazily (imports)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{final.name}.{pid}.", suffix=".staging", dir=final.parent)
        )
    try:
        yield staging
        if final.exists():
            trash = final.with_name(f".{final.name}.old-{pid}-{secrets.token_hex(4)}")
            os.replace(final, trash)
            os.replace(staging, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


_STAGING = re.compile(r"^\.(?P<final>.+?)\.(?:(?P<pid>\d+)\.)?[^.]+\.staging$")
_TRASH = re.compile(r"^\.(?P<final>.+)\.old-(?P<pid>\d+)(?:-[0-9a-f]+)?$")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale_staging(root: Path) -> int:
    """Clean up after interrupted writes of processes that are gone; returns how many.

    Staging directories are deleted. A trash directory (the old version, moved aside just
    before the new one moved in) is deleted if the new version arrived, and moved back if
    the writer died between the two renames, so the old run is never lost.
    """
    removed = 0
    if not root.is_dir():
        return 0
    for entry in root.iterdir():
        name = entry.name
        if not name.startswith("."):
            continue
        if (match := _STAGING.match(name)) is not None:
            if match["pid"] is not None and pid_alive(int(match["pid"])):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        elif (match := _TRASH.match(name)) is not None:
            if pid_alive(int(match["pid"])):
                continue
            final = root / match["final"]
            if final.exists():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                os.replace(entry, final)
            removed += 1
        elif name.endswith(".tmp"):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed
