"""``joulelens watch``: a Prometheus exporter of the live energy of running servers."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from typing import Annotated

import typer

from joulelens.cli.common import StoreOpt, err_console, open_store


def _log_to_stderr() -> None:
    logger = logging.getLogger("joulelens.watch")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def watch(
    endpoint: Annotated[
        list[str],
        typer.Option(
            "--endpoint",
            help="Server to watch (http://host:port); repeat for several servers.",
            show_default=False,
        ),
    ],
    gpus: Annotated[
        list[str] | None,
        typer.Option(
            "--gpus",
            help="GPU indices one server runs on, e.g. 0,1; one per --endpoint, in order.",
            show_default=False,
        ),
    ] = None,
    max_num_seqs: Annotated[
        list[int] | None,
        typer.Option(
            "--max-num-seqs",
            help="A server's batch cap, one per --endpoint, in order (sharpens the reading).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port to serve /metrics on (0: any free one).")] = 9464,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    windows: Annotated[str, typer.Option(help="Rolling windows, comma-separated.")] = "10s,1m,5m",
    sample_period: Annotated[
        str, typer.Option(help="How often meters are read and servers scraped.")
    ] = "1s",
    record_every: Annotated[
        str | None,
        typer.Option(help="Write each window of this length into the store as an observed run."),
    ] = None,
    task: Annotated[str, typer.Option(help="Task label of observed runs.")] = "observed",
    idle_watts: Annotated[
        list[str] | None,
        typer.Option(
            "--idle-watts",
            help="Known idle power of a device, e.g. gpu:0=62 (repeatable); for the static share.",
            show_default=False,
        ),
    ] = None,
    idle_baseline: Annotated[
        str | None,
        typer.Option(help="Measure idle power this long before watching (servers idle), e.g. 10s."),
    ] = None,
    no_gpus: Annotated[bool, typer.Option("--no-gpus", help="Do not read NVIDIA GPUs.")] = False,
    cpu_estimate: Annotated[
        str, typer.Option(help="CPU-time estimate: auto (when no RAPL), system, process, off.")
    ] = "auto",
    watts_per_core: Annotated[float, typer.Option(help="W per busy CPU for the estimate.")] = 10.0,
    duration: Annotated[
        str | None, typer.Option(help="Stop after this long (default: until Ctrl-C).")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Serve Prometheus metrics of the live energy of running servers: joules per token,
    power, batch, KV cache and what limits the batch, over rolling windows."""
    from joulelens.errors import InputError
    from joulelens.watch import WatchConfig, build_endpoints, parse_duration_s, parse_idle_watts
    from joulelens.watch.session import MeterChoice, WatchSession

    if cpu_estimate not in ("auto", "system", "process", "off"):
        raise InputError(
            f"--cpu-estimate must be auto, system, process or off, not {cpu_estimate!r}",
            field="cpu_estimate",
        )
    config = WatchConfig(
        endpoints=build_endpoints(endpoint, gpus or (), max_num_seqs or ()),
        windows_s=tuple(
            parse_duration_s(w, field_name="windows") for w in windows.split(",") if w.strip()
        ),
        sample_period_s=parse_duration_s(sample_period, field_name="sample_period"),
        record_every_s=(
            parse_duration_s(record_every, field_name="record_every") if record_every else None
        ),
        task=task,
        idle_watts=parse_idle_watts(idle_watts or ()),
    )
    choice = MeterChoice(
        gpus=not no_gpus,
        cpu_estimate=cpu_estimate,  # type: ignore[arg-type]  # checked above
        watts_per_core=watts_per_core,
        idle_baseline_s=(
            parse_duration_s(idle_baseline, field_name="idle_baseline") if idle_baseline else 0.0
        ),
    )
    stop_after_s = parse_duration_s(duration, field_name="duration") if duration else None
    _log_to_stderr()
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())  # as Ctrl-C: stop cleanly
    try:
        session = WatchSession(
            config,
            host,
            port,
            store=open_store(store) if config.record_every_s is not None else None,
            choice=choice,
        )
        with session, contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
            stopped.wait(stop_after_s)
        err_console.print("watch stopped", highlight=False)
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
