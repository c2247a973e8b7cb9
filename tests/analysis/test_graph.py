from __future__ import annotations

import json

import pytest

from joulelens.analysis import graph as g
from joulelens.analysis.graph import FRAMEWORK, Edge, Graph, Node, NodeKind


def test_framework_is_a_dag_whose_causes_reach_energy() -> None:
    for node in FRAMEWORK.nodes:
        if node.id in (g.ENERGY, g.THROUGHPUT_PER_WATT):
            continue
        assert FRAMEWORK.paths(node.id, g.ENERGY), f"{node.id} does not reach energy"
    # A DAG: no node reaches itself.
    for node in FRAMEWORK.nodes:
        for child in FRAMEWORK.children(node.id):
            assert not FRAMEWORK.paths(child, node.id)


def test_knobs_have_no_parents_and_metrics_no_children_but_the_reciprocal() -> None:
    for node in FRAMEWORK.nodes:
        if node.kind is NodeKind.KNOB:
            assert FRAMEWORK.parents(node.id) == []
    assert FRAMEWORK.children(g.ENERGY) == [g.THROUGHPUT_PER_WATT]
    assert FRAMEWORK.children(g.THROUGHPUT_PER_WATT) == []


def test_paper_edges_are_present() -> None:
    paper = {(e.source_node, e.target_node) for e in FRAMEWORK.edges if e.source == "paper"}
    for edge in [
        (g.GPU, g.MEMORY_AVAILABILITY),
        (g.GPU_COUNT, g.MEMORY_AVAILABILITY),
        (g.MODEL, g.MEMORY_FOOTPRINT),
        (g.QUANTIZATION, g.COMPUTE_VOLUME),
        (g.NON_GPU, g.BATCH),
        (g.APP_CONSTRAINTS, g.BATCH),
        (g.BATCH, g.UTILIZATION),
        (g.UTILIZATION, g.ENERGY),
        (g.ENERGY, g.THROUGHPUT_PER_WATT),
    ]:
        assert edge in paper


def test_roots_of_batch_are_the_knobs_above_it() -> None:
    roots = FRAMEWORK.roots_of(g.BATCH)
    assert {g.GPU, g.GPU_COUNT, g.MODEL, g.QUANTIZATION, g.NON_GPU, g.APP_CONSTRAINTS} <= set(roots)
    assert g.BATCH not in roots


def test_exports_name_every_node_and_edge() -> None:
    mermaid, dot, text = FRAMEWORK.to_mermaid(), FRAMEWORK.to_dot(), FRAMEWORK.to_text()
    data = json.loads(json.dumps(FRAMEWORK.to_dict()))
    assert {n["id"] for n in data["nodes"]} == {n.id for n in FRAMEWORK.nodes}
    assert len(data["edges"]) == len(FRAMEWORK.edges)
    for n in FRAMEWORK.nodes:
        assert n.id in mermaid and n.id in dot and n.id in text
    assert mermaid.count("-->") + mermaid.count("-.->") == len(FRAMEWORK.edges)
    assert dot.count("->") == len(FRAMEWORK.edges)


def test_unknown_edge_end_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown node"):
        Graph(nodes=(Node("a", "A", NodeKind.KNOB, "a"),), edges=(Edge("a", "b"),))


def test_path_text_reads_left_to_right() -> None:
    assert g.path_text([g.WORKLOAD, g.COMPUTE_VOLUME, g.ENERGY]) == (
        "Workload -> Compute volume -> Energy"
    )
