"""Stores a user plausibly has: a failed vLLM run, a CPU run, one run. Nothing crashes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from joulelens.cli.app import app
from joulelens.records import RunRecord
from joulelens.store import Store

runner = CliRunner()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_failed_vllm_run_without_precision_does_not_break_study(
    tmp_store: Store, llm_run: Callable[..., RunRecord], make_record: Callable[..., RunRecord]
) -> None:
    """Failure 7a: study sorted precisions with a None among strings (TypeError)."""
    runs = [
        llm_run(f"{gpu}-{i}", 0.5 / i, 8 * i, gpu_model=gpu, weight_precision="bfloat16")
        for i in (1, 2)
        for gpu in ("H100", "B200")
    ]
    failed = make_record(
        run_id="failed-vllm",
        status="failed",
        failure_reason="vllm serve exited with code 1",
        gpu_model="B200",
        weight_precision=None,
        max_num_seqs=64,
    )
    tmp_store.put_many([*runs, failed])
    tmp_store.put(llm_run("noprec", 0.3, 16, gpu_model="H100", weight_precision=None))
    assert "gpu_generation" in _ok("study")
    _ok("study", "--format", "json")


def test_cpu_run_with_zero_gpus_explains_and_reports(
    tmp_store: Store, llm_run: Callable[..., RunRecord], tmp_path: Path
) -> None:
    """Failure 7b: num_gpus 0 divided by zero in why (via study and report): a CPU run, and
    one with a GPU model but no GPUs counted (the schema admits both)."""
    cpu = llm_run("cpu-run", 0.7, 4, gpu_model="cpu", num_gpus=0)
    odd = llm_run("zero-h100", 0.5, 8, gpu_model="H100", num_gpus=0)
    tmp_store.put_many([cpu, odd, llm_run("gpu-run", 0.2, 64, gpu_model="H100")])
    _ok("why", "zero-h100")
    out = _ok("why", "cpu-run")
    assert "cpu-run" in out
    _ok("study")
    _ok("report", "-o", str(tmp_path / "r.html"))
    assert (tmp_path / "r.html").stat().st_size > 0


def test_single_run_store_says_what_is_missing(
    tmp_store: Store, llm_run: Callable[..., RunRecord]
) -> None:
    tmp_store.put(llm_run("only", 0.4, 8))
    study = _ok("study")
    assert "not enough" in study.lower() or "no " in study.lower()
    _ok("why", "only")
