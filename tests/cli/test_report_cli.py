"""`joulelens report`, `serve` and `plot` through Typer, on a fresh store per test."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from joulelens.cli import report as report_cli
from joulelens.store import Store


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    report_cli.register(app)
    return app


runner = CliRunner()


def test_report_command_writes_the_file(report_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = runner.invoke(make_app(), ["report", "-o", str(out), "--task", "lm-arena-chat"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "MB" in result.output
    html = out.read_text()
    m = re.search(r'<script id="jl-data" type="application/json">(.*?)</script>', html, re.S)
    assert m
    payload = json.loads(m.group(1))
    assert payload["meta"]["filters"] == {"task": "lm-arena-chat"}
    assert payload["meta"]["runs"] == 9


def test_plot_commands(report_store: Store, tmp_path: Path) -> None:
    app = make_app()
    cases = [
        ["plot", "frontier", "--task", "lm-arena-chat", "--model", "Model A", "-o", "f.svg"],
        ["plot", "energy-vs-batch", "--task", "lm-arena-chat", "--model", "Model A", "-o", "b.png"],
        ["plot", "task-distribution", "-o", "t.png"],
        ["plot", "diffusion", "-o", "d.svg"],
        ["plot", "timeline", "own-measured", "-o", "tl.png"],
    ]
    for args in cases:
        args[-1] = str(tmp_path / args[-1])
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert Path(args[-1]).stat().st_size > 10_000


def test_plot_errors_are_domain_errors(report_store: Store, tmp_path: Path) -> None:
    from joulelens.errors import InputError

    result = runner.invoke(
        make_app(),
        [
            "plot",
            "frontier",
            "--task",
            "lm-arena-chat",
            "--model",
            "zzz",
            "-o",
            str(tmp_path / "x.png"),
        ],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_command_serves_until_interrupted(report_store: Store, tmp_path: Path) -> None:
    port = _free_port()
    code = (
        "import sys; from joulelens.cli import report; import typer\n"
        "app = typer.Typer()\n"
        "app.callback()(lambda: None)\n"
        "report.register(app)\n"
        "app()\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--port",
            str(port),
            "--store",
            str(report_store.root),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert r.json()["runs"] == 12
    finally:
        proc.send_signal(2)  # Ctrl-C: the command closes the socket and exits cleanly
        out, _ = proc.communicate(timeout=10)
    assert f"127.0.0.1:{port}" in out
    assert proc.returncode == 0, out
