"""A real Ray cluster of separate ``ray start`` nodes, inside a loopback-only network namespace.

Ray started on 127.0.0.1 in the machine's own namespace rewrites the address into the
machine's outward one and listens on every interface. In a namespace that has only ``lo``
there is nothing else to find: every node, the driver and the test servers talk over
127.0.0.1 and nothing can leave. Everything this module starts runs through
``ip netns exec``; :meth:`NetnsCluster.close` kills every process in the namespace (only
those: they are its own) and deletes it, on failure too.

Needs root and iproute2; :func:`unavailable` says why not where they are missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFIX = "jlray"
GCS_PORT = 6379  # the namespace has its own ports: nothing else listens there
SSE_PORT = 8000
# Notice a dead node in ~2 s, not Ray's default ~30 s.
FAST_FAILURE = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass
class NodeSpec:
    gpu_model: str | None
    gpus: int = 1  # units of gpu_model:MODEL the node offers (the GPUs it stands for)
    num_cpus: int = 2

    def args(self) -> list[str]:
        resources = {f"gpu_model:{self.gpu_model}": self.gpus} if self.gpu_model else {}
        return [f"--num-cpus={self.num_cpus}", f"--resources={json.dumps(resources)}"]


def unavailable() -> str | None:
    """Why this machine cannot run the cluster tests, or ``None``."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'joulelens[ray]')"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (needed for a network namespace)"
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def remove_stale_namespaces() -> None:
    """Namespaces (and their processes) left by a test run that was killed outright."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        match = re.match(rf"^({PREFIX}-(\d+)-\w+)", line)
        if match is None or _alive(int(match[2])):
            continue
        _kill_namespace(match[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids(name: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _kill_namespace(name: str) -> None:
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        for pid in _pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while _pids(name) and time.monotonic() < deadline:
            time.sleep(0.1)
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class NetnsCluster:
    """``with NetnsCluster([NodeSpec("H100"), NodeSpec("B200")]) as cluster: ...``

    The first node is the head. ``cluster.popen([...])``/``run([...])`` start commands
    inside the namespace; ``python_env`` makes this checkout's joulelens importable there.
    """

    nodes: Sequence[NodeSpec]
    name: str = field(default_factory=lambda: f"{PREFIX}-{os.getpid()}-{os.urandom(3).hex()}")
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Short: Ray's socket paths under it must stay below the 107-byte limit.
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{GCS_PORT}"

    @property
    def sse_url(self) -> str:
        return f"http://127.0.0.1:{SSE_PORT}"

    def python_env(self) -> dict[str, str]:
        paths = [str(REPO / "src"), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
        return {
            **os.environ,
            **FAST_FAILURE,
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "RAY_USAGE_STATS_ENABLED": "0",
            # The head's client proxy waits this long for the per-client server it starts
            # (a new Python importing Ray): 30 s by default, which a loaded 2-core machine
            # overran in a fresh-clone run ("Initialization failure from server").
            "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120",
            "HF_HUB_OFFLINE": "1",
            "COLUMNS": "250",
        }

    def argv(self, command: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def popen(self, command: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        kw.setdefault("env", self.python_env())
        return subprocess.Popen(self.argv(command), **kw)  # type: ignore[call-overload, no-any-return]

    def run(self, command: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
        kw.setdefault("env", self.python_env())
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.argv(command), **kw)  # type: ignore[call-overload, no-any-return]

    # -- life cycle ----------------------------------------------------------------------
    def __enter__(self) -> NetnsCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        remove_stale_namespaces()
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        subprocess.run(self.argv(["ip", "link", "set", "lo", "up"]), check=True)
        self.procs = [None] * len(self.nodes)
        self.logs = [self.tmp / f"node{i}.log" for i in range(len(self.nodes))]
        for i in range(len(self.nodes)):
            self.start_node(i, wait=False)
            if i == 0:
                self._wait_started(0)
        for i in range(1, len(self.nodes)):
            self._wait_started(i)
        self.wait_for_nodes(len(self.nodes))

    def start_node(self, index: int, wait: bool = True) -> None:
        ray = str(Path(sys.executable).with_name("ray"))
        common = [
            "--block",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--temp-dir={self.tmp / 'ray'}",
            "--object-store-memory=100000000",
            *self.nodes[index].args(),
        ]
        role = (
            ["--head", f"--port={GCS_PORT}", "--include-dashboard=false"]
            if index == 0
            else [f"--address={self.address}"]
        )
        log = self.logs[index].open("wb")
        # Its own session: killing the group takes the node's raylet down with it.
        self.procs[index] = self.popen(
            [ray, "start", *role, *common],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self._wait_started(index)
            self.wait_for_nodes(sum(p is not None for p in self.procs))

    def kill_node(self, index: int) -> None:
        """SIGKILL a node: its ``ray start``, raylet and agents, as a crashed machine would."""
        proc = self.procs[index]
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self.procs[index] = None

    def _wait_started(self, index: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        proc = self.procs[index]
        assert proc is not None
        while time.monotonic() < deadline:
            text = self.logs[index].read_text(errors="replace")
            if "Ray runtime started" in text:
                return
            if proc.poll() is not None:
                raise RuntimeError(f"ray node {index} exited:\n{text[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"ray node {index} did not start in {timeout_s:g} s")

    def wait_for_nodes(self, count: int, timeout_s: float = 90) -> None:
        script = (
            "import ray, time, sys\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False)\n"
            f"deadline = time.monotonic() + {timeout_s}\n"
            f"while sum(n['Alive'] for n in ray.nodes()) < {count}:\n"
            "    if time.monotonic() > deadline: sys.exit('nodes did not join')\n"
            "    time.sleep(0.2)\n"
        )
        done = self.run([sys.executable, "-c", script], timeout=timeout_s + 60)
        if done.returncode != 0:
            raise RuntimeError(f"ray nodes did not come up: {done.stderr[-3000:]}")

    def start_sse_server(self, *extra: str, port: int = SSE_PORT) -> subprocess.Popen[bytes]:
        """The project's SSE test server, inside the namespace (killed by :meth:`close`)."""
        proc = self.popen(
            [sys.executable, str(REPO / "tests" / "sse_server.py"), "--port", str(port), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = (
            "import httpx, time\n"
            "for _ in range(200):\n"
            "    try:\n"
            f"        httpx.get('http://127.0.0.1:{port}/health', timeout=1); break\n"
            "    except httpx.HTTPError: time.sleep(0.1)\n"
            "else: raise SystemExit('SSE server did not start')\n"
        )
        ok = self.run([sys.executable, "-c", probe], timeout=60)
        if ok.returncode != 0:
            raise RuntimeError(ok.stderr)
        return proc

    def close(self) -> None:
        if subprocess.run(["ip", "netns", "pids", self.name], capture_output=True).returncode == 0:
            _kill_namespace(self.name)
        for proc in self.procs:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)
