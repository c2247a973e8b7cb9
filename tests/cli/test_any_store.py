"""Every read command works on any store the schema admits: no crash, ever.

Hypothesis builds small stores of random schema-valid records (failed runs, nulls with
reasons, ``num_gpus`` 0, one run, one GPU type, unknown GPUs and tasks, negative or zero
readings from broken sensors) and runs every read command over each, in-process through
the CLI. A command may refuse with a joulelens error that says why (exit 2, no traceback);
anything else is a crash.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joulelens.cli.app import app
from joulelens.errors import JoulelensError
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Provenance,
    RunKind,
    RunRecord,
    RunStatus,
    SourceKind,
    required_metric_fields,
)
from joulelens.records.schema import IMAGE_METRIC_FIELDS, LLM_METRIC_FIELDS, VIDEO_METRIC_FIELDS
from joulelens.store import Store

runner = CliRunner()
command = typer.main.get_command(app)  # built once: Typer would rebuild it on every call
LLM_TASKS = ("lm-arena-chat", "gpqa", "sourcegraph-fim", "image-chat", "video-chat", "my-task")
DIFFUSION_TASKS = ("text-to-image", "text-to-video")
MODELS = ("acme/Chat-8B", "acme/Big-70B-FP8", "x/y")
# Real model ids, so the architecture-aware paths (memory, KV cache) run too.
MODELS += ("Qwen/Qwen3-8B", "Qwen/Qwen3-30B-A3B-Instruct-2507")
GPUS = ("H100", "B200", "cpu", "A100", None, "MI300X")
# Quantities a broken sensor or an odd run can make zero or negative (the schema admits it).
SIGNED = {"energy_per_token_joules", "energy_per_request_joules", "avg_power_watts"}
SIGNED |= {"steady_state_energy_joules", "idle_power_watts", "static_energy_fraction"}
SIGNED |= {"energy_per_image_joules", "energy_per_video_joules"}

values = st.one_of(
    st.none(),
    st.sampled_from([0.0, 1e-9, 0.5, 1.0, 20.0, 300.0, 1e6]),
    st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False),
)
signed_values = st.one_of(values, st.sampled_from([-1.0, -300.0]))


@st.composite
def records(draw: st.DrawFn, index: int) -> RunRecord:
    kind = draw(st.sampled_from([RunKind.LLM, RunKind.MLLM, RunKind.DIFFUSION]))
    task = draw(st.sampled_from(DIFFUSION_TASKS if kind is RunKind.DIFFUSION else LLM_TASKS))
    status = draw(st.sampled_from([RunStatus.COMPLETED, RunStatus.COMPLETED, RunStatus.FAILED]))
    fields: dict[str, Any] = {
        "run_id": f"r{index}",
        "kind": kind,
        "task": task,
        "status": status,
        "model_id": draw(st.sampled_from(MODELS)),
        "gpu_model": draw(st.sampled_from(GPUS)),
        "num_gpus": draw(st.sampled_from([0, 1, 1, 2, 8])),
        "weight_precision": draw(st.sampled_from([None, "bfloat16", "fp8"])),
        "architecture": draw(st.sampled_from([None, "MoE", "Dense Transformer"])),
        "total_params_billions": draw(st.sampled_from([None, 8.0, 70.0])),
        "energy_boundary": draw(st.sampled_from(list(EnergyBoundary))),
        "energy_method": draw(st.sampled_from(list(EnergyMethod))),
        "provenance": Provenance(source=draw(st.sampled_from(list(SourceKind)))),
    }
    batch = draw(st.sampled_from([None, 1, 2, 8, 64, 256]))
    fields["batch_size" if kind is RunKind.DIFFUSION else "max_num_seqs"] = batch
    if status is RunStatus.FAILED:
        fields["failure_reason"] = "server crashed"
        return RunRecord(**fields)
    metric_fields = [
        *LLM_METRIC_FIELDS,
        *IMAGE_METRIC_FIELDS,
        *VIDEO_METRIC_FIELDS,
        "batch_latency_s",
    ]
    for name in dict.fromkeys(metric_fields):
        if (
            kind is RunKind.DIFFUSION
            and name in LLM_METRIC_FIELDS
            and name
            not in (
                "avg_power_watts",
                "idle_power_watts",
                "static_energy_fraction",
            )
        ):
            continue
        fields[name] = draw(signed_values if name in SIGNED else values)
    fields["missing"] = {
        f: "not measured in this test"
        for f in required_metric_fields(kind, task)
        if not fields.get(f) and fields.get(f) != 0
    }
    stable = draw(st.sampled_from([True, False, None]))
    fields["stable"] = stable
    fields["unstable_reasons"] = ["short steady state: 5 s < 20 s"] if stable is False else []
    return RunRecord(**fields)


@st.composite
def stores(draw: st.DrawFn) -> list[RunRecord]:
    count = draw(st.integers(min_value=1, max_value=9))
    return [draw(records(i)) for i in range(count)]


def _commands(runs: list[RunRecord], out: Path) -> list[list[str]]:
    first, last = runs[0], runs[-1]
    task, model = first.task, first.model_id
    gpu = first.gpu_model or "H100"
    return [
        ["runs", "--failed", "--format", "json"],
        ["runs", "--format", "csv"],
        ["summary"],
        ["summary", "--format", "json"],
        ["study"],
        ["study", "--format", "json"],
        ["why", first.run_id],
        ["why", last.run_id, "--format", "json"],
        ["diagnose", first.run_id, last.run_id],
        ["plan", "--task", task, "--deadline-ms", "50"],
        ["frontier", "--task", task],
        ["frontier", "--task", task, "--model", model, "--with-predictions"],
        ["predict", "--model", model, "--task", task, "--gpu", gpu, "--batch", "100"],
        ["predict", "--validate"],
        ["advise", first.run_id, "--deadline-ms", "60"],
        ["advise"],
        [
            "datacenter",
            "--task",
            task,
            "--power-mw",
            "10",
            "--deadline-ms",
            "50",
            "--pue",
            "1.2",
            "--host-watts-per-gpu",
            "200",
        ],
        ["report", "-o", str(out / "report.html")],
        ["store", "info"],
    ]


def _serve(root: Path) -> None:
    """`serve`: the page and the payload over HTTP, from a real server on port 0."""
    from joulelens.report.server import make_server, server_url

    server = make_server(root, port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        for path in ("", "api/version", "api/payload"):
            with urllib.request.urlopen(server_url(server) + path, timeout=30) as response:
                assert response.status == 200
                body = response.read()
                if path.startswith("api/"):
                    json.loads(body)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("JOULELENS_ANY_STORE_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(runs=stores())
def test_every_read_command_survives_any_valid_store(
    runs: list[RunRecord], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("any") / "store"
    for run in runs:  # run files placed by hand: the store indexes them when it opens
        (root / "runs" / run.run_id).mkdir(parents=True)
        (root / "runs" / run.run_id / "run.json").write_text(run.model_dump_json())
    assert len(Store(root).all()) == len(runs)
    crashes = []
    for args in _commands(runs, root.parent):
        result = runner.invoke(command, [*args, "--store", str(root)])
        exc = result.exception
        if exc is None or isinstance(exc, SystemExit | JoulelensError):
            if isinstance(exc, JoulelensError):
                assert str(exc), args  # a refusal says why
            continue
        crashes.append((args, f"{type(exc).__name__}: {exc}"))
    assert crashes == []
    _serve(root)
