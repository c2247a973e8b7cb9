"""The load generator as it was at an earlier commit, for before/after figures in one run.

``git archive REF src`` is unpacked into a temp dir that a client child puts first on its
``PYTHONPATH``: the old ``joulelens`` package then runs with the same interpreter, server and
workload as the current one. Nothing of it is kept in the repository.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

# The last commit whose load generator framed HTTP by hand (issue 14 moved it to llhttp).
BEFORE_REF = "b8a4550"


def unpack_src(repo: Path, ref: str, dest: Path) -> Path:
    """``src/`` of ``ref`` under ``dest``; raises ``RuntimeError`` if git cannot give it."""
    argv = ["git", "-C", str(repo), "archive", "--format=tar", ref, "src"]
    try:
        out = subprocess.run(argv, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"cannot read src/ of {ref}: {exc}") from exc
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def child_env(src: Path | None) -> dict[str, str] | None:
    """The environment of a client child that imports ``joulelens`` from ``src``."""
    if src is None:
        return None
    rest = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), *([rest] if rest else [])])}
