"""The Findings tab's data: the study's findings and the framework graph, reshaped."""

from __future__ import annotations

from joulelens.analysis.graph import FRAMEWORK, NodeKind
from joulelens.analysis.study import FINDING_IDS, run_study
from joulelens.records import RunRecord
from joulelens.report.findings import (
    MAX_ROWS_PER_FINDING,
    findings_view,
    graph_view,
    layered_layout,
)


def test_findings_match_the_study(public_records: list[RunRecord]) -> None:
    view = findings_view(public_records)
    study = run_study(public_records)
    assert [f["id"] for f in view] == list(FINDING_IDS)
    for f in view:
        assert f["conclusion"] == study[f["id"]].conclusion
        assert len(f["rows"]) <= MAX_ROWS_PER_FINDING
        assert all(isinstance(k, str) and not isinstance(v, dict | list) for k, v in f["rows"])
    task_energy = next(f for f in view if f["id"] == "task_energy")
    rows = dict(task_energy["rows"])
    expected = study["task_energy"].numbers["per_task"]["gpqa"]["mean_output_tokens"]
    assert rows["per_task.gpqa.mean_output_tokens"] == float(f"{expected:.5g}")


def test_no_runs_no_findings() -> None:
    assert findings_view([]) == []


def test_graph_layout_runs_left_to_right() -> None:
    graph = graph_view()
    layer = {n["id"]: n["layer"] for n in graph["nodes"]}
    assert len(layer) == len(FRAMEWORK.nodes)
    assert all(layer[e["from"]] < layer[e["to"]] for e in graph["edges"])
    roots = {n.id for n in FRAMEWORK.nodes if not FRAMEWORK.parents(n.id)}
    assert {i for i, d in layer.items() if d == 0} == roots
    metrics = [n.id for n in FRAMEWORK.nodes if n.kind is NodeKind.METRIC]
    assert min(layer[m] for m in metrics) > max(
        layer[n.id] for n in FRAMEWORK.nodes if n.kind is NodeKind.KNOB
    )
    # Rows within a column are a permutation of 0..k-1.
    columns: dict[int, list[float]] = {}
    for n in graph["nodes"]:
        columns.setdefault(n["layer"], []).append(n["order"])
    assert all(sorted(rows) == list(range(len(rows))) for rows in columns.values())


def test_layout_orders_by_neighbours() -> None:
    edges = [{"from": "a", "to": "y"}, {"from": "b", "to": "x"}]
    layer, order = layered_layout(["a", "b", "x", "y"], edges)
    assert layer == {"a": 0, "b": 0, "x": 1, "y": 1}
    assert order["y"] < order["x"]  # y follows a, which is above b: no crossing
