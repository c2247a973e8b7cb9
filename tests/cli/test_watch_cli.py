"""``joulelens watch`` errors: one clean line naming the option, exit 2, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

ENTRY = "from joulelens.cli.app import main; main()"


def _watch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, "watch", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--windows", "500ms"], "field 'windows'"),
        (["--gpus", "99"], "GPU 99 is not readable"),
        (["--gpus", "0", "--gpus", "1"], "one --gpus per endpoint"),
        (["--record-every", "soon"], "field 'record_every'"),
    ],
)
def test_bad_options(args: list[str], message: str) -> None:
    result = _watch("--endpoint", "http://127.0.0.1:9", "--port", "0", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _watch("--endpoint", "http://127.0.0.1:9", "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
