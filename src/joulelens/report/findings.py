"""The study's findings and the diagnosis graph, as the report shows them.

Both come from the analysis library (``joulelens.analysis``): the report recomputes nothing of
its own here, it only reshapes the library's answer into JSON the page can draw.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from joulelens.analysis.graph import FRAMEWORK
from joulelens.analysis.study import run_study
from joulelens.records import RunRecord
from joulelens.report.numbers import sig

MAX_ROWS_PER_FINDING = 80  # the page shows the headline numbers; `joulelens study` has all


def study_section(records: Sequence[RunRecord]) -> dict[str, Any]:
    """``{"findings": [...], "graph": {...}}`` for the page's Findings tab."""
    return {"findings": findings_view(records), "graph": graph_view()}


def findings_view(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Each study finding with its conclusion and its numbers as ``[dotted.key, value]`` rows."""
    if not records:
        return []
    out = []
    for finding in run_study(records).values():
        data = finding.to_dict()
        rows = list(_flatten(data["numbers"]))
        out.append(
            {
                "id": data["id"],
                "title": data["title"],
                "definition": data["definition"],
                "conclusion": data["conclusion"],
                "status": data["status"],
                "rows": rows[:MAX_ROWS_PER_FINDING],
                "rows_omitted": max(0, len(rows) - MAX_ROWS_PER_FINDING),
            }
        )
    return out


def _flatten(value: Any, prefix: str = "") -> Iterator[list[Any]]:
    """Nested numbers as ``[dotted.key, scalar]`` rows; short scalar lists are joined."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        if all(not isinstance(v, dict | list | tuple) for v in value) and len(value) <= 8:
            yield [prefix, ", ".join(_scalar_text(v) for v in value)]
        else:
            for i, item in enumerate(value):
                yield from _flatten(item, f"{prefix}[{i}]")
    elif isinstance(value, float):
        yield [prefix, sig(value)]
    else:
        yield [prefix, value]


def _scalar_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def graph_view() -> dict[str, Any]:
    """The framework graph with a column (``layer``) and row (``order``) for every node."""
    graph: dict[str, Any] = FRAMEWORK.to_dict()
    layer, order = layered_layout([n["id"] for n in graph["nodes"]], graph["edges"])
    for node in graph["nodes"]:
        node["layer"], node["order"] = layer[node["id"]], order[node["id"]]
    return graph


def layered_layout(
    ids: list[str], edges: list[dict[str, Any]]
) -> tuple[dict[str, int], dict[str, float]]:
    """Column (longest path from a root) and row (barycentre of neighbours) of each node.

    A few barycentre sweeps over a small DAG keep edges short and crossings few; the page only
    draws boxes where this puts them.
    """
    parents: dict[str, list[str]] = {i: [] for i in ids}
    children: dict[str, list[str]] = {i: [] for i in ids}
    for e in edges:
        parents[e["to"]].append(e["from"])
        children[e["from"]].append(e["to"])
    layer: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in layer:
            layer[node] = 1 + max((depth(p) for p in parents[node]), default=-1)
        return layer[node]

    for node in ids:
        depth(node)
    columns: dict[int, list[str]] = {}
    for node in ids:  # declaration order first
        columns.setdefault(layer[node], []).append(node)
    order = {n: float(i) for col in columns.values() for i, n in enumerate(col)}

    def sweep(cols: list[int], neighbours: dict[str, list[str]]) -> None:
        for c in cols:
            col = columns[c]
            centre = {
                n: sum(order[m] for m in neighbours[n]) / len(neighbours[n])
                if neighbours[n]
                else order[n]
                for n in col
            }
            col.sort(key=lambda n: (centre[n], order[n]))
            for i, n in enumerate(col):
                order[n] = float(i)

    levels = sorted(columns)
    for _ in range(3):
        sweep(levels[1:], parents)
        sweep(levels[-2::-1], children)
    sweep(levels[1:], parents)
    return layer, order
