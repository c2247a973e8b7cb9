"""Runs against an OpenAI-compatible server: one joulelens starts (vLLM) or one it attaches to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from joulelens.core.events import RequestTrace
from joulelens.engines.vllm_server import VllmConfig, VllmServer, launch_command
from joulelens.errors import EngineError
from joulelens.measure.adapters import server_metrics_from_scraper
from joulelens.runner.config import RunConfig
from joulelens.runner.cpu_scope import endpoint_pids
from joulelens.runner.progress import poll_progress
from joulelens.runner.protocol import Contribution, EngineSetup, LlmOutput, RunContext
from joulelens.runner.provenance import provenance_for
from joulelens.runner.requests import arrival_config, llm_requests
from joulelens.workloads import (
    ClientCpu,
    Endpoint,
    LoadConfig,
    LoadInterrupted,
    LoadProgress,
    LoadRun,
    MetricsScraper,
)

# Above this share of the run spent waiting for a CPU, the client's timestamps are late.
MAX_CLIENT_CPU_WAIT_FRACTION = 0.2


@contextmanager
def endpoint_engine(config: RunConfig, setup: EngineSetup) -> Iterator[ServedRun]:
    """A server somebody else runs: checked reachable, then driven as it is."""
    assert config.endpoint is not None
    _require_reachable(config.endpoint)
    yield ServedRun(config, config.endpoint, None)


@contextmanager
def vllm_engine(config: RunConfig, setup: EngineSetup) -> Iterator[ServedRun]:
    """``vllm serve`` started for the run, in ``setup.server_env`` (the GPUs it is handed,
    by UUID; default ours), logging to ``setup.server_log``; stopped at the end."""
    env = dict(setup.server_env) if setup.server_env is not None else None
    vllm = VllmConfig(
        model=config.model,
        max_num_seqs=config.batch,
        tensor_parallel=config.tensor_parallel_size,
        data_parallel=config.data_parallel,
        expert_parallel=config.expert_parallel,
        dtype=config.dtype,
        quantization=config.quantization,
        max_model_len=config.max_model_len,
        config_yaml=config.vllm_config,
        extra_args=list(config.vllm_args),
        command=launch_command(config.vllm_command),
    )
    with VllmServer(vllm, setup.server_log, env=env) as server:
        yield ServedRun(config, server.base_url, server)


class ServedRun:
    """The run on a server: the load generator drives it, the scraper reads its gauges."""

    def __init__(self, config: RunConfig, base_url: str, server: VllmServer | None):
        self.config = config
        self.base_url = base_url
        self.server = server
        self.server_url = Endpoint.parse(base_url).server_url
        self.version: str | None = None
        self.client_cpu: ClientCpu | None = None
        self.traces: list[RequestTrace] = []

    def inference_pids(self) -> tuple[list[int], str | None]:
        if self.server is not None and self.server.process is not None:
            return [self.server.process.pid], None
        return endpoint_pids(self.base_url)

    def placed_gpus(self) -> list[tuple[int, str]]:
        return []  # chosen before the server starts (runner.gpus)

    def drive(self, ctx: RunContext) -> LlmOutput:
        requests = llm_requests(self.config)
        headers = self.config.auth_headers()
        load = LoadConfig(
            self.base_url,
            model=self.config.served_model or self.config.model,
            arrival=arrival_config(self.config),
            max_concurrency=self.config.max_concurrency,
            headers=headers,
        )
        progress = LoadProgress(len(requests))
        load_run = LoadRun(requests, load, progress=progress)
        self.version = server_version(self.server_url, headers)  # while it surely runs
        stop = threading.Event()
        with MetricsScraper(self.server_url, headers=headers) as scraper:
            poller = poll_progress(
                lambda: (progress.done, progress.total, progress.output_tokens()), ctx, stop
            )
            try:
                traces = load_run.run_sync()
            except LoadInterrupted as exc:
                raise KeyboardInterrupt from exc
            finally:
                stop.set()
                poller.join()
        self.client_cpu = load_run.cpu
        self.traces = traces
        self._check_server_alive(traces)
        server = server_metrics_from_scraper(scraper) if scraper.available else None
        return LlmOutput(traces, server)

    def _check_server_alive(self, traces: list[RequestTrace]) -> None:
        """A server that died mid-run fails the run (its partial numbers would mislead)."""
        failed = [t for t in traces if t.error is not None]
        if self.server is not None and not self.server.alive():
            code = self.server.process.returncode if self.server.process else None
            raise EngineError(
                f"vllm serve exited (code {code}) during the run; {len(failed)} of "
                f"{len(traces)} requests failed; last log lines:\n{self.server.log_tail()}"
            )
        if failed and not _healthy(self.server_url, self.config.auth_headers()):
            raise EngineError(
                f"server at {self.server_url} stopped answering during the run: {len(failed)} "
                f"of {len(traces)} requests failed (first error: {failed[0].error})"
            )

    def contribution(self) -> Contribution:
        """The engine's version as the server reports it (vLLM's GET /version), the weight
        precision asked for, and notes on how far the client's timestamps can be trusted."""
        version = self.version or server_version(self.server_url, self.config.auth_headers())
        engine = "vllm" if self.server is not None else "openai-compatible"
        return Contribution(
            provenance=provenance_for(engine, version),
            fields={
                "model_id": self.config.model,
                "weight_precision": self.config.quantization or self.config.dtype,
            },
            warnings=self._client_warnings(self.traces),
        )

    def _client_warnings(self, traces: list[RequestTrace]) -> list[str]:
        notes = []
        cpu = self.client_cpu
        if cpu is not None and cpu.wait_fraction > MAX_CLIENT_CPU_WAIT_FRACTION:
            notes.append(
                f"the load generator waited {cpu.wait_s:.2f} s for a CPU during the "
                f"{cpu.wall_s:.2f} s run ({cpu.wait_fraction:.0%}): it read late, so latencies "
                "include that wait; leave it a core (or lower the server's priority)"
            )
        if self.config.ignore_eos:
            done = [t for t in traces if t.ok]
            short = sum(t.finish_reason != "length" for t in done)
            if short:
                notes.append(
                    f"ignore_eos was asked but {short} of {len(done)} outputs stopped before "
                    "the output cap: the server may not support ignore_eos"
                )
        return notes


def _require_reachable(base_url: str, timeout_s: float = 10.0) -> None:
    """Fail at once, before any request is prepared, when nothing listens at the endpoint."""
    import socket

    endpoint = Endpoint.parse(base_url)
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=timeout_s).close()
    except OSError as exc:
        raise EngineError(
            f"cannot reach the endpoint {endpoint.server_url}: {exc.strerror or exc}; "
            "is the server running?"
        ) from exc


def _healthy(server_url: str, headers: dict[str, str]) -> bool:
    import httpx

    for path in ("/health", "/v1/models"):
        try:
            if httpx.get(f"{server_url}{path}", headers=headers, timeout=5.0).status_code == 200:
                return True
        except httpx.HTTPError:
            continue
    return False


def server_version(server_url: str, headers: dict[str, str]) -> str | None:
    """vLLM answers GET /version; other servers may not (then the version is unknown)."""
    import httpx

    try:
        response = httpx.get(f"{server_url}/version", headers=headers, timeout=5.0)
        if response.status_code == 200:
            version = response.json().get("version")
            return str(version) if version else None
    except (httpx.HTTPError, ValueError, AttributeError):
        pass
    return None
