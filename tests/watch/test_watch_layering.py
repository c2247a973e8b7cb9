"""The exporter sits above runner, store and analysis and below the CLI: nothing lower
imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import joulelens

ROOT = Path(joulelens.__file__).parent


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_only_the_cli_imports_the_exporter() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in ROOT.rglob("*.py")
        if path.parts[len(ROOT.parts)] not in ("watch", "cli")
        for name in _imports(path)
        if name.startswith("joulelens.watch")
    ]
    assert offenders == []


def test_the_exporter_never_imports_the_cli_or_report() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "watch").rglob("*.py")
        for name in _imports(path)
        if name.startswith(("joulelens.cli", "joulelens.report"))
    ]
    assert offenders == []
