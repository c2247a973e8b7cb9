"""Runs against an OpenAI-compatible server: one joulelens starts (vLLM) or one it attaches to."""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from joulelens.engines.vllm_server import VllmConfig, VllmServer
from joulelens.errors import EngineError
from joulelens.measure.events import RequestTrace
from joulelens.records import Provenance
from joulelens.runner.config import RunConfig
from joulelens.runner.execute import (
    SERVER_LOG,
    arrival_config,
    llm_requests,
    measure_options,
    poll_progress,
    provenance_for,
)


@contextmanager
def served_engine(config: RunConfig, log_dir: Path) -> Iterator[ServedRun]:
    if config.engine == "endpoint":
        assert config.endpoint is not None
        _require_reachable(config.endpoint)
        yield ServedRun(config, config.endpoint, None)
        return
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
    )
    with VllmServer(vllm, log_dir / SERVER_LOG) as server:
        yield ServedRun(config, server.base_url, server)


class ServedRun:
    def __init__(self, config: RunConfig, base_url: str, server: VllmServer | None):
        from joulelens.workloads import Endpoint

        self.config = config
        self.base_url = base_url
        self.server = server
        self.server_url = Endpoint.parse(base_url).server_url

    def drive(self, ctx: Any) -> tuple[list[RequestTrace], Any]:
        from joulelens.measure import server_metrics_from_scraper
        from joulelens.workloads import (
            LoadConfig,
            LoadInterrupted,
            LoadProgress,
            MetricsScraper,
            run_load_sync,
        )

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
        stop = threading.Event()
        with MetricsScraper(self.server_url, headers=headers) as scraper:
            poller = poll_progress(
                lambda: (progress.done, progress.total, progress.output_tokens()), ctx, stop
            )
            try:
                traces = run_load_sync(requests, load, progress=progress)
            except LoadInterrupted as exc:
                raise KeyboardInterrupt from exc
            finally:
                stop.set()
                poller.join()
        self._check_server_alive(traces)
        server = server_metrics_from_scraper(scraper) if scraper.available else None
        return traces, server

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

    def record_fields(self) -> dict[str, Any]:
        precision = self.config.quantization or self.config.dtype
        return {"model_id": self.config.model, "weight_precision": precision}

    def provenance(self) -> Provenance:
        if self.server is not None:
            try:
                version: str | None = importlib.metadata.version("vllm")
            except importlib.metadata.PackageNotFoundError:
                version = None
            return provenance_for("vllm", version)
        version = _server_version(self.server_url, self.config.auth_headers())
        return provenance_for("openai-compatible", version)

    def compile(
        self, events: Any, readings: Any, spec: Any, server: Any, idle: Any, config: RunConfig
    ) -> Any:
        from joulelens.measure import compile_llm_run

        return compile_llm_run(
            events,
            readings,
            spec=spec,
            server_metrics=server,
            idle=idle,
            options=measure_options(config),
        )


def _require_reachable(base_url: str, timeout_s: float = 10.0) -> None:
    """Fail at once, before any request is prepared, when nothing listens at the endpoint."""
    import socket

    from joulelens.workloads import Endpoint

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


def _server_version(server_url: str, headers: dict[str, str]) -> str | None:
    """vLLM answers GET /version; other servers may not (then the version is unknown)."""
    import httpx

    try:
        response = httpx.get(f"{server_url}/version", headers=headers, timeout=5.0)
        if response.status_code == 200:
            return str(response.json().get("version")) or None
    except (httpx.HTTPError, ValueError, AttributeError):
        pass
    return None
