"""Diagnosis commands: ``graph``, ``why``, ``diagnose`` and ``study``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from joulelens.cli.common import (
    DocFormat,
    GraphFormat,
    OutputFormat,
    StoreOpt,
    emit_json,
    open_store,
)


def _write(text: str, output: Path | None = None) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    from joulelens.cli.common import err_console
    from joulelens.core.files import atomic_write_text

    atomic_write_text(output, text)
    err_console.print(f"wrote {output}")


def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f")] = OutputFormat.text,
) -> None:
    """The diagnostic framework (knobs -> latent variables -> energy): text, JSON, Mermaid, DOT."""
    from joulelens.analysis.graph import FRAMEWORK

    if fmt is OutputFormat.json:
        emit_json(FRAMEWORK.to_dict())
    elif fmt is OutputFormat.mermaid:
        _write(FRAMEWORK.to_mermaid())
    elif fmt is OutputFormat.dot:
        _write(FRAMEWORK.to_dot())
    elif fmt is OutputFormat.markdown:
        _write("```mermaid\n" + FRAMEWORK.to_mermaid() + "```\n")
    else:
        _write(FRAMEWORK.to_text())


def why(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    fmt: Annotated[DocFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    store: StoreOpt = None,
) -> None:
    """Why one run costs what it does: where its batch stopped and why, power vs TDP, static
    share, and the same model at other batch sizes and GPU counts."""
    from joulelens.analysis.related import related_runs
    from joulelens.analysis.render import why_text
    from joulelens.analysis.why import why as explain_run

    st = open_store(store)
    record = st.get(run)
    report = explain_run(record, related_runs(st, [record]))
    if fmt is OutputFormat.json:
        emit_json(report.to_dict())
    elif fmt is OutputFormat.markdown:
        _write(f"# Why: {report.run}\n\n```\n{why_text(report)}```\n")
    else:
        _write(why_text(report))


def diagnose(
    run_a: Annotated[str, typer.Argument(help="Baseline run A (id or prefix).")],
    run_b: Annotated[str, typer.Argument(help="Run B, compared against A.")],
    per_token: Annotated[
        bool, typer.Option("--per-token", help="Decompose energy per token, not per response.")
    ] = False,
    fmt: Annotated[DocFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    store: StoreOpt = None,
) -> None:
    """Decompose B's energy over A's into factors that multiply to the observed ratio."""
    from joulelens.analysis.diagnose import diagnose as decompose
    from joulelens.analysis.related import related_runs
    from joulelens.analysis.render import diagnosis_dict, diagnosis_summary, diagnosis_text

    st = open_store(store)
    a, b = st.get(run_a), st.get(run_b)
    result = decompose(a, b, related_runs(st, [a, b]), per_token=per_token)
    if fmt is OutputFormat.json:
        emit_json(diagnosis_dict(result))
    elif fmt is OutputFormat.markdown:
        _write(f"# Diagnose\n\n{diagnosis_summary(result)}\n\n```\n{diagnosis_text(result)}```\n")
    else:
        _write(diagnosis_text(result))


def study(
    fmt: Annotated[DocFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    finding: Annotated[
        list[str] | None, typer.Option("--finding", help="Only these findings (repeatable).")
    ] = None,
    explain: Annotated[
        str | None, typer.Option("--explain", help="List every number of FINDING with its run ids.")
    ] = None,
    gpu: Annotated[str, typer.Option(help="GPU type for per-GPU findings.")] = "B200",
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    store: StoreOpt = None,
) -> None:
    """The paper's analyses recomputed from the store, one named finding each."""
    from joulelens.analysis.study import explain as explain_finding
    from joulelens.analysis.study import run_study, study_dict, study_markdown, study_text

    records = open_store(store).all()
    only = [explain] if explain else finding
    findings = run_study(records, only=only, gpu=gpu)
    if explain:
        f = findings[explain]
        if fmt is OutputFormat.json:
            _write(
                json.dumps({"id": f.id, "numbers": f.numbers, "sources": f.sources}, indent=2)
                + "\n",
                output,
            )
        else:
            _write(explain_finding(f), output)
        return
    if fmt is OutputFormat.json:
        _write(json.dumps(study_dict(findings), indent=2, default=str) + "\n", output)
    elif fmt is OutputFormat.markdown:
        _write(study_markdown(findings), output)
    else:
        _write(study_text(findings), output)


def register(app: typer.Typer) -> None:
    app.command("graph")(graph)
    app.command("why")(why)
    app.command("diagnose")(diagnose)
    app.command("study")(study)
