"""The paper's diagnostic framework as data: knobs -> latent variables -> end metrics.

Every explanation joulelens gives is a path through :data:`FRAMEWORK`. Nodes name the run
fields that measure them (``measured_by``) or stand in for them (``proxied_by``). Edges
marked ``source="joulelens"`` are additions to the paper's table (the workload's input and
output lengths, which the paper discusses but does not draw).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NodeKind(StrEnum):
    KNOB = "knob"  # set by the operator or the algorithm/software/hardware choice
    LATENT = "latent"  # not set directly; determined by knobs
    METRIC = "metric"  # the end metrics the paper reports


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    label: str
    kind: NodeKind
    description: str
    measured_by: tuple[str, ...] = ()  # run fields that measure the node
    proxied_by: tuple[str, ...] = ()  # run fields that stand in for it


@dataclass(frozen=True, slots=True)
class Edge:
    source_node: str
    target_node: str
    source: str = "paper"  # "paper" or "joulelens"


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    _by_id: dict[str, Node] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {n.id: n for n in self.nodes}
        for e in self.edges:
            for end in (e.source_node, e.target_node):
                if end not in by_id:
                    raise ValueError(f"edge names unknown node {end!r}")
        object.__setattr__(self, "_by_id", by_id)

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    def parents(self, node_id: str) -> list[str]:
        return [e.source_node for e in self.edges if e.target_node == node_id]

    def children(self, node_id: str) -> list[str]:
        return [e.target_node for e in self.edges if e.source_node == node_id]

    def paths(self, start: str, end: str) -> list[list[str]]:
        """All directed paths from ``start`` to ``end`` (the graph is a DAG)."""
        out: list[list[str]] = []

        def walk(node: str, trail: list[str]) -> None:
            if node == end:
                out.append(trail)
                return
            for child in self.children(node):
                walk(child, [*trail, child])

        walk(start, [start])
        return out

    def roots_of(self, node_id: str) -> list[str]:
        """Knobs upstream of a node."""
        seen: set[str] = set()

        def up(n: str) -> Iterator[str]:
            for p in self.parents(n):
                if p in seen:
                    continue
                seen.add(p)
                if self.node(p).kind is NodeKind.KNOB:
                    yield p
                yield from up(p)

        return sorted(set(up(node_id)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "id": n.id,
                    "label": n.label,
                    "kind": n.kind.value,
                    "description": n.description,
                    "measured_by": list(n.measured_by),
                    "proxied_by": list(n.proxied_by),
                }
                for n in self.nodes
            ],
            "edges": [
                {"from": e.source_node, "to": e.target_node, "source": e.source} for e in self.edges
            ],
        }

    def to_mermaid(self) -> str:
        lines = ["flowchart LR"]
        shapes = {
            NodeKind.KNOB: ("[", "]"),
            NodeKind.LATENT: ("(", ")"),
            NodeKind.METRIC: ("[[", "]]"),
        }
        for n in self.nodes:
            left, right = shapes[n.kind]
            lines.append(f'    {n.id}{left}"{n.label}"{right}')
        for e in self.edges:
            arrow = "-->" if e.source == "paper" else "-.->"
            lines.append(f"    {e.source_node} {arrow} {e.target_node}")
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        shapes = {
            NodeKind.KNOB: "box",
            NodeKind.LATENT: "ellipse",
            NodeKind.METRIC: "doubleoctagon",
        }
        lines = ["digraph joulelens {", "    rankdir=LR;"]
        for n in self.nodes:
            lines.append(f'    {n.id} [label="{n.label}", shape={shapes[n.kind]}];')
        for e in self.edges:
            style = "" if e.source == "paper" else " [style=dashed]"
            lines.append(f"    {e.source_node} -> {e.target_node}{style};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        lines = []
        for kind in NodeKind:
            lines.append(f"{kind.value}s:")
            for n in (n for n in self.nodes if n.kind is kind):
                fields = ", ".join(n.measured_by) or "—"
                proxies = f"; proxies: {', '.join(n.proxied_by)}" if n.proxied_by else ""
                lines.append(f"  {n.id:<22} {n.label} — measured by: {fields}{proxies}")
        lines.append("edges:")
        for e in self.edges:
            tag = "" if e.source == "paper" else "  (joulelens)"
            lines.append(f"  {e.source_node} -> {e.target_node}{tag}")
        return "\n".join(lines) + "\n"


# Node ids, importable so code never spells them twice.
GPU = "gpu_hardware"
GPU_COUNT = "gpu_count"
MODEL = "model"
QUANTIZATION = "quantization"
RUNTIME = "runtime_parameters"
WORKLOAD = "workload"
APP_CONSTRAINTS = "application_constraints"
NON_GPU = "non_gpu_bottlenecks"
MEMORY_AVAILABILITY = "memory_availability"
MEMORY_FOOTPRINT = "memory_footprint"
COMPUTE_VOLUME = "compute_volume"
BATCH = "batch_size"
UTILIZATION = "gpu_utilization"
ENERGY = "energy"
THROUGHPUT_PER_WATT = "throughput_per_watt"

FRAMEWORK = Graph(
    nodes=(
        Node(GPU, "GPU generation", NodeKind.KNOB, "GPU model (H100, B200 ...)", ("gpu_model",)),
        Node(
            GPU_COUNT,
            "GPU count",
            NodeKind.KNOB,
            "GPUs serving one replica",
            ("num_gpus", "tensor_parallel", "expert_parallel"),
        ),
        Node(
            MODEL,
            "Model",
            NodeKind.KNOB,
            "architecture and size: total parameters set the footprint, active ones the compute",
            ("model_id", "total_params_billions", "activated_params_billions", "architecture"),
        ),
        Node(
            QUANTIZATION, "Quantization", NodeKind.KNOB, "weight precision", ("weight_precision",)
        ),
        Node(
            RUNTIME,
            "Runtime parameters",
            NodeKind.KNOB,
            "max_num_seqs; diffusion batch, steps, resolution, frames",
            ("max_num_seqs", "batch_size", "inference_steps", "height", "width", "num_frames"),
        ),
        Node(
            WORKLOAD,
            "Workload",
            NodeKind.KNOB,
            "the task's input and output lengths and modality (the model decides when to stop)",
            ("task", "avg_output_len"),
            ("output_length_distribution",),
        ),
        Node(
            APP_CONSTRAINTS,
            "Application constraints",
            NodeKind.KNOB,
            "latency deadline, energy or power budget",
            (),
            ("median_itl_ms", "batch_latency_s"),
        ),
        Node(
            NON_GPU,
            "Non-GPU bottlenecks",
            NodeKind.KNOB,
            "CPU preprocessing (image/video decoding), stragglers, network",
            (),
            ("avg_batch_size", "avg_kv_cache_usage"),
        ),
        Node(
            MEMORY_AVAILABILITY,
            "Memory availability",
            NodeKind.LATENT,
            "device memory across the replica's GPUs",
            (),
            ("gpu_model", "num_gpus"),
        ),
        Node(
            MEMORY_FOOTPRINT,
            "Memory footprint",
            NodeKind.LATENT,
            "weights plus KV cache per sequence",
            ("avg_kv_cache_usage", "max_kv_cache_usage"),
            ("total_params_billions", "avg_output_len"),
        ),
        Node(
            COMPUTE_VOLUME,
            "Compute volume",
            NodeKind.LATENT,
            "work per output: tokens x active params; diffusion: steps x latent tokens x params",
            (),
            ("avg_output_len", "activated_params_billions", "inference_steps", "num_frames"),
        ),
        Node(
            BATCH,
            "Batch size",
            NodeKind.LATENT,
            "requests the GPUs work on at once",
            ("avg_batch_size",),
            ("max_num_seqs", "batch_size"),
        ),
        Node(
            UTILIZATION,
            "GPU utilization",
            NodeKind.LATENT,
            "how much of the GPUs' capacity the work keeps busy",
            ("avg_power_watts",),
            ("median_itl_ms", "output_throughput_tokens_per_sec", "static_energy_fraction"),
        ),
        Node(
            ENERGY,
            "Energy",
            NodeKind.METRIC,
            "J per token, per response, per image or per video",
            (
                "energy_per_token_joules",
                "energy_per_request_joules",
                "energy_per_image_joules",
                "energy_per_video_joules",
            ),
        ),
        Node(
            THROUGHPUT_PER_WATT,
            "Throughput per watt",
            NodeKind.METRIC,
            "work / energy: a reciprocal of energy, not a cause",
            (),
            ("output_throughput_tokens_per_sec", "avg_power_watts"),
        ),
    ),
    edges=(
        Edge(GPU, MEMORY_AVAILABILITY),
        Edge(GPU_COUNT, MEMORY_AVAILABILITY),
        Edge(MODEL, MEMORY_AVAILABILITY),
        Edge(MODEL, MEMORY_FOOTPRINT),
        Edge(MODEL, COMPUTE_VOLUME),
        Edge(QUANTIZATION, MEMORY_FOOTPRINT),
        Edge(QUANTIZATION, COMPUTE_VOLUME),
        Edge(RUNTIME, COMPUTE_VOLUME),
        Edge(WORKLOAD, COMPUTE_VOLUME, "joulelens"),
        Edge(WORKLOAD, MEMORY_FOOTPRINT, "joulelens"),
        Edge(MEMORY_AVAILABILITY, BATCH),
        Edge(MEMORY_FOOTPRINT, BATCH),
        Edge(APP_CONSTRAINTS, BATCH),
        Edge(NON_GPU, BATCH),
        Edge(RUNTIME, BATCH, "joulelens"),
        Edge(BATCH, UTILIZATION),
        Edge(COMPUTE_VOLUME, UTILIZATION),
        Edge(GPU, UTILIZATION, "joulelens"),
        Edge(GPU_COUNT, UTILIZATION, "joulelens"),
        Edge(UTILIZATION, ENERGY),
        Edge(COMPUTE_VOLUME, ENERGY),
        Edge(ENERGY, THROUGHPUT_PER_WATT),
    ),
)


def path_text(path: list[str], graph: Graph = FRAMEWORK) -> str:
    return " -> ".join(graph.node(n).label for n in path)
