"""analysis sits above records and store and below report and cli; it never reads meters."""

from __future__ import annotations

import ast
from pathlib import Path

import joulelens.analysis

FORBIDDEN = (
    "joulelens.meters",
    "joulelens.measure",
    "joulelens.engines",
    "joulelens.report",
    "joulelens.cli",
)


def test_analysis_imports_only_lower_layers() -> None:
    root = Path(joulelens.analysis.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [
                f"{path.relative_to(root)}: {n}" for n in names if n.startswith(FORBIDDEN)
            ]
    assert offenders == []
