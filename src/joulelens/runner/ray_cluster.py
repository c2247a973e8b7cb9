"""The Ray cluster as the sweep sees it: connecting, its nodes, what a run asks of a node,
and Ray's failures in joulelens's words (:class:`~joulelens.errors.ClusterError`).

Ray is optional (``pip install 'joulelens[ray]'``); nothing here imports it at module load.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from joulelens.errors import ClusterError, InputError
from joulelens.runner.config import RunConfig

GPU_MODEL_RESOURCE = "gpu_model:"  # custom resource prefix: "gpu_model:B200": GPUs of that model
INSTALL_HINT = "pip install 'joulelens[ray]'"
ADDRESS_ENV = "RAY_ADDRESS"


def import_ray() -> Any:
    """The ``ray`` module, or an error that says what to install."""
    try:
        import ray
    except ImportError as exc:
        raise InputError(
            "--executor ray needs Ray, which is not installed: install joulelens with its "
            f"ray extra ({INSTALL_HINT})",
            field="executor",
        ) from exc
    return ray


@contextmanager
def connected(address: str | None) -> Iterator[Any]:
    """Connect this process to a running cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``).

    Never starts a cluster: a sweep that silently ran on a fresh one-node cluster would
    measure the wrong machines.
    """
    ray = import_ray()
    target = address or os.environ.get(ADDRESS_ENV) or "auto"
    _probe(target)
    try:
        ray.init(
            address=target,
            namespace="joulelens",
            logging_level=logging.ERROR,
            log_to_driver=False,  # node logs stay in the nodes' Ray session directories
            include_dashboard=False,
        )
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"cannot connect to the Ray cluster at {target!r} ({_first_line(exc)}); start one "
            "with `ray start --head` or pass --ray-address HOST:PORT or ray://HOST:PORT"
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def _probe(target: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing answers at (Ray's own connect can wait for minutes)."""
    if target in ("auto", "local"):
        return  # Ray finds the local cluster from its session files, quickly
    hostport = target.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(
            f"{target!r} is not auto, HOST:PORT or ray://HOST:PORT", field="ray_address"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(
            f"no Ray cluster answers at {target!r} ({exc.strerror or exc}); check the "
            "head's address and port (ray start --head prints them) and that this machine "
            "can reach it"
        ) from exc


@dataclass(frozen=True)
class Node:
    node_id: str
    ip: str
    hostname: str
    resources: Mapping[str, float]  # totals

    @property
    def label(self) -> str:
        """Short and unique: several nodes may share an address (tests, containers)."""
        gpus = [
            f"{k.removeprefix(GPU_MODEL_RESOURCE)}x{v:g}"
            for k, v in sorted(self.resources.items())
            if k.startswith(GPU_MODEL_RESOURCE)
        ]
        return f"{self.ip} {self.node_id[:8]}" + (f" [{', '.join(gpus)}]" if gpus else "")

    def offers(self, demand: Mapping[str, float]) -> bool:
        return all(self.resources.get(k, 0.0) >= v for k, v in demand.items() if v > 0)


def alive_nodes(ray: Any) -> list[Node]:
    return [
        Node(
            node_id=n["NodeID"],
            ip=n.get("NodeManagerAddress", "?"),
            hostname=n.get("NodeManagerHostname", "?"),
            resources=dict(n.get("Resources", {})),
        )
        for n in ray.nodes()
        if n.get("Alive")
    ]


def demand(config: RunConfig) -> dict[str, float]:
    """What one configuration asks of a node: its CPUs, whole GPUs, and GPUs of its model.

    A CPU-only run still takes one unit of its model's resource, so it lands on that model's
    nodes. Whole GPUs only: Ray never gives two tasks the same GPU.
    """
    wanted: dict[str, float] = {"CPU": float(config.cpu_threads or 1)}
    if config.num_gpus:
        wanted["GPU"] = float(config.num_gpus)
    if config.gpu_model:
        wanted[GPU_MODEL_RESOURCE + config.gpu_model] = float(max(config.num_gpus, 1))
    return wanted


def task_options(config: RunConfig) -> dict[str, Any]:
    """``.options(...)`` for the configuration's task: its resources, and no silent retry
    (a run that died is recorded as failed; rerunning the sweep measures it again)."""
    wanted = demand(config)
    custom = {k: v for k, v in wanted.items() if k not in ("CPU", "GPU")}
    return {
        "num_cpus": wanted["CPU"],
        "num_gpus": wanted.get("GPU", 0),
        "resources": custom,
        "max_retries": 0,
        "retry_exceptions": False,
    }


def why_unplaceable(config: RunConfig, nodes: list[Node]) -> str | None:
    """``None`` if some alive node could run ``config``, else what is missing and what to do."""
    wanted = demand(config)
    if any(n.offers(wanted) for n in nodes):
        return None
    if not nodes:
        return "no node of the Ray cluster is alive"
    gpu_key = GPU_MODEL_RESOURCE + config.gpu_model if config.gpu_model else None
    if gpu_key and not any(gpu_key in n.resources for n in nodes):
        offered = sorted(
            {k for n in nodes for k in n.resources if k.startswith(GPU_MODEL_RESOURCE)}
        )
        return (
            f"no alive node offers {gpu_key} (offered: {', '.join(offered) or 'none'}); start "
            f"its nodes with ray start --resources='{{\"{gpu_key}\": NUM_GPUS}}'"
        )
    candidates = [n for n in nodes if gpu_key is None or gpu_key in n.resources]
    for key, unit in (("GPU", "GPUs"), (gpu_key, f"{config.gpu_model} GPUs"), ("CPU", "CPUs")):
        if key is None:
            continue
        need = wanted[key]
        most = max((n.resources.get(key, 0.0) for n in candidates), default=0.0)
        if most < need:
            return f"needs {need:g} {unit} on one node, but the most any alive node has is {most:g}"
    return f"no alive node has all of {_fmt(wanted)} at once"


def _fmt(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items()))


def failure_reason(exc: BaseException, node: str | None) -> str:
    """Why a task failed, from Ray's exception, for the failed run's record."""
    from ray import exceptions as rx

    where = f" on node {node}" if node else ""
    if isinstance(exc, rx.OutOfMemoryError):
        return (
            f"Ray killed the worker{where} for memory (the node ran low): "
            f"{_first_line(exc)}; give the run more memory or lower the batch"
        )
    if isinstance(exc, rx.NodeDiedError | rx.LocalRayletDiedError):
        return (
            f"the Ray node{f' {node}' if node else ''} died while measuring (crashed, "
            "preempted or lost); rerun the sweep to measure it again"
        )
    if isinstance(exc, rx.WorkerCrashedError):
        return f"the Ray worker process{where} died while measuring (killed or crashed)"
    if isinstance(exc, rx.TaskCancelledError):
        return "cancelled before the run finished"
    if isinstance(exc, rx.RuntimeEnvSetupError):
        return f"Ray could not set up the node's environment{where}: {_first_line(exc)}"
    if isinstance(exc, rx.RayTaskError):
        cause = exc.cause if exc.cause is not None else exc
        if isinstance(cause, ModuleNotFoundError | ImportError):
            return (
                f"the node{where} cannot import what the run needs ({cause}); install "
                f"joulelens with its engines and the ray extra on every node"
            )
        return f"the run failed{where}: {type(cause).__name__}: {_first_line(cause)}"
    return f"Ray failed{where}: {type(exc).__name__}: {_first_line(exc)}"


def as_cluster_error(exc: BaseException, node: str | None) -> ClusterError:
    return ClusterError(failure_reason(exc, node))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
