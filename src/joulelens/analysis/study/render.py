"""Study output: JSON (keyed by finding id), markdown, plain text, and ``--explain``."""

from __future__ import annotations

import json
from typing import Any

from joulelens.analysis.study.base import Finding, pointer


def study_json(findings: dict[str, Finding]) -> str:
    return (
        json.dumps({fid: f.to_dict() for fid, f in findings.items()}, indent=2, default=str) + "\n"
    )


def study_text(findings: dict[str, Finding]) -> str:
    lines = []
    for f in findings.values():
        lines.append(f"{f.id}: {f.conclusion}")
    return "\n".join(lines) + "\n"


def study_markdown(findings: dict[str, Finding]) -> str:
    lines = ["# Study", ""]
    for f in findings.values():
        lines += [
            f"## {f.title} (`{f.id}`)",
            "",
            f"**{f.conclusion}**",
            "",
            f"_Definition:_ {f.definition}",
            "",
        ]
        rows = list(_leaves(f.numbers, ()))
        if rows:
            lines += ["| number | value |", "|---|---|"]
            lines += [f"| {' / '.join(path)} | {_fmt(value)} |" for path, value in rows]
            lines.append("")
        for note in f.notes:
            lines.append(f"> {note}")
        if f.notes:
            lines.append("")
    return "\n".join(lines)


def explain(f: Finding) -> str:
    """Every number of a finding with the run ids it came from."""
    lines = [f"{f.id}: {f.conclusion}", f"definition: {f.definition}", ""]
    for path, value in _leaves(f.numbers, ()):
        ids = _ids_for(f, path)
        lines.append(f"{' / '.join(path)} = {_fmt(value)}")
        lines.append(f"    runs: {', '.join(ids) if ids else '— (not computed from runs)'}")
    return "\n".join(lines) + "\n"


def _ids_for(f: Finding, path: tuple[str, ...]) -> list[str]:
    """Run ids of the number at ``path``, or of its nearest ancestor that has them."""
    for cut in range(len(path), 0, -1):
        ids = f.sources.get(pointer(path[:cut]))
        if ids:
            return ids
    return []


def _leaves(node: Any, path: tuple[str, ...]):
    if isinstance(node, dict) and not _is_stats(node):
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    else:
        yield path, node


def _is_stats(node: dict) -> bool:
    return {"n", "median"} <= set(node)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value) if value else "none"
    return str(value)
