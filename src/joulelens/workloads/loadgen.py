"""Drives streamed requests against an OpenAI-compatible server and records their timing.

One event loop, one raw HTTP/1.1 connection per in-flight request (:mod:`.http1`), one
:class:`~joulelens.core.events.RequestTrace` per sent request. The send schedule comes
from :func:`~joulelens.workloads.arrival.arrival_offsets`; an optional cap bounds the
requests in flight (a due request then waits for a free slot and is stamped when sent).

Token accounting asks for continuous usage stats and steps down (continuous -> final
usage -> no ``stream_options``) when the server answers 400/422: the request is retried with
the weaker mode and, once a weaker mode gets through, later requests use it directly.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from joulelens.core.clock import now_s
from joulelens.core.events import RequestTrace
from joulelens.errors import InputError, JoulelensError
from joulelens.workloads.arrival import arrival_offsets
from joulelens.workloads.config import LoadConfig, LoadRequest, UsageMode
from joulelens.workloads.http1 import ConnectionPool, ResponseProtocol, encode_post
from joulelens.workloads.stream import StreamParser, excerpt, parse_unstreamed

CANCELLED = "cancelled"
REJECTED_FIELD_STATUSES = (400, 422)
WATCHDOG_MAX_PERIOD_S = 1.0

RequestDoneCallback = Callable[[RequestTrace], None]


class LoadInterrupted(JoulelensError):
    """The run was interrupted (Ctrl-C); ``traces`` holds every request that was sent,
    finished ones intact and in-flight ones with error ``"cancelled"``."""

    def __init__(self, traces: list[RequestTrace], total: int):
        self.traces = traces
        done = sum(1 for trace in traces if trace.ok)
        super().__init__(f"load interrupted: {done} of {total} requests finished")


class LoadProgress:
    """Counters for observers (progress bars), read from any thread at any time.

    The load generator only bumps integers when a request starts or ends; token counts of
    requests still streaming are summed when an observer asks, so observing costs the
    observer, never the timing path.
    """

    def __init__(self, total: int = 0) -> None:
        self.total = total
        self.sent = 0
        self.done = 0
        self.failed = 0
        self._finished_tokens = 0
        self._streaming: dict[int, RequestTrace] = {}  # by id(); traces are not hashable

    @property
    def in_flight(self) -> int:
        return len(self._streaming)

    def output_tokens(self) -> int:
        """Output tokens received so far, including requests still streaming."""
        streaming = list(self._streaming.values())  # one C-level copy, safe across threads
        return self._finished_tokens + sum(trace.output_tokens for trace in streaming)

    def _started(self, trace: RequestTrace) -> None:
        self.sent += 1
        self._streaming[id(trace)] = trace

    def _ended(self, trace: RequestTrace) -> None:
        self._streaming.pop(id(trace), None)
        self._finished_tokens += trace.output_tokens
        self.done += 1
        if trace.error is not None:
            self.failed += 1


@dataclass(frozen=True, slots=True)
class ClientCpu:
    """The load generator's thread over a run: seconds of wall time, on a CPU, and runnable
    but waiting for one (the kernel's schedstat)."""

    wall_s: float
    run_s: float
    wait_s: float

    @property
    def wait_fraction(self) -> float:
        return self.wait_s / self.wall_s if self.wall_s > 0 else 0.0


def read_schedstat(path: str = "/proc/thread-self/schedstat") -> tuple[float, float] | None:
    """(seconds on a CPU, seconds waiting for one) of a thread (default: the calling one)
    from the kernel's schedstat file; None if unknown."""
    try:
        with open(path) as f:
            run_ns, wait_ns, _ = f.read().split()
        return int(run_ns) / 1e9, int(wait_ns) / 1e9
    except (OSError, ValueError):
        return None


@dataclass(slots=True)
class _InFlight:
    trace: RequestTrace
    proto: ResponseProtocol


class LoadRun:
    """One load run; ``traces`` stays readable even if :meth:`run` is cancelled.

    After the run ``usage_mode`` is the ``stream_options`` level the server accepted and
    ``continuous_usage`` whether every successful stream carried per-chunk usage (token
    counts per chunk are then exact rather than one per non-empty delta). ``cpu`` says how
    long the event loop's thread ran and waited for a CPU during the run (Linux): a client
    that waits reads late, and every latency it stamps includes the wait.
    """

    def __init__(
        self,
        requests: Sequence[LoadRequest],
        config: LoadConfig,
        *,
        progress: LoadProgress | None = None,
        on_request_done: RequestDoneCallback | None = None,
    ) -> None:
        self.requests = requests
        self.config = config
        self.endpoint = config.endpoint
        self.progress = progress if progress is not None else LoadProgress()
        self.progress.total = len(requests)
        self.on_request_done = on_request_done
        self.usage_mode = config.usage
        self.continuous_usage = True
        self._traces: dict[int, RequestTrace] = {}  # by request index, as they are sent
        self._in_flight: dict[int, _InFlight] = {}
        self._headers = dict(config.headers)
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"
        self._extra = dict(config.extra_body)
        self.cpu: ClientCpu | None = None

    @property
    def traces(self) -> list[RequestTrace]:
        """Traces of every request sent so far, in request order."""
        return [self._traces[i] for i in sorted(self._traces)]

    async def run(self) -> list[RequestTrace]:
        count = len(self.requests)
        ensure_open_files(min(count, self.config.max_concurrency or count) + 64)
        offsets = arrival_offsets(self.config.arrival, count)
        slots = (
            asyncio.Semaphore(self.config.max_concurrency) if self.config.max_concurrency else None
        )
        pool = ConnectionPool(self.endpoint, connect_timeout_s=self.config.connect_timeout_s)
        tasks: list[asyncio.Task[None]] = []
        watchdog = asyncio.create_task(self._watch())
        start_s = now_s()
        cpu_before = read_schedstat()
        try:
            for index, (request, offset_s) in enumerate(zip(self.requests, offsets, strict=True)):
                delay_s = start_s + offset_s - now_s()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                if slots is not None:
                    await slots.acquire()
                tasks.append(asyncio.create_task(self._send(index, request, pool, slots)))
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            watchdog.cancel()
            pool.close()
            cpu_after = read_schedstat()
            if cpu_before is not None and cpu_after is not None:
                self.cpu = ClientCpu(
                    wall_s=now_s() - start_s,
                    run_s=cpu_after[0] - cpu_before[0],
                    wait_s=cpu_after[1] - cpu_before[1],
                )
        return self.traces

    async def _send(
        self,
        index: int,
        request: LoadRequest,
        pool: ConnectionPool,
        slots: asyncio.Semaphore | None,
    ) -> None:
        request_id = request.request_id or str(index)
        trace: RequestTrace | None = None
        try:
            mode = self.usage_mode
            stale_retries = 1
            while True:
                path = self.endpoint.path_for(request.api)
                body = json.dumps(
                    request.body(self.config.model, self._extra, mode), separators=(",", ":")
                ).encode()
                message = encode_post(self.endpoint, path, body, self._headers)
                try:
                    proto, reused = await pool.acquire()
                except (OSError, TimeoutError) as exc:
                    trace = self._new_trace(index, request_id, request)
                    trace.error = f"connection failed: {exc or type(exc).__name__}"
                    return
                if trace is None:
                    trace = self._new_trace(index, request_id, request)
                else:
                    _reset(trace)
                    trace.sent_s = now_s()
                parser = StreamParser(trace)
                self._in_flight[index] = _InFlight(trace, proto)
                try:
                    await proto.start(message, parser.feed)
                finally:
                    del self._in_flight[index]
                if reused and proto.lost_before_response and stale_retries:
                    stale_retries -= 1  # the server closed an idle connection under us
                    continue
                weaker = mode.weaker()
                if proto.status in REJECTED_FIELD_STATUSES and weaker is not None:
                    pool.release(proto)
                    mode = weaker
                    continue
                self._settle(trace, proto, parser)
                if proto.status == 200 and mode is not self.usage_mode:
                    self.usage_mode = _weakest(self.usage_mode, mode)
                if proto.status == 200 and trace.error is None and not parser.continuous_usage:
                    self.continuous_usage = False
                pool.release(proto)
                return
        except asyncio.CancelledError:
            entry = self._in_flight.pop(index, None)
            if entry is not None:
                entry.proto.abort(CANCELLED)
            if trace is not None and trace.error is None and trace.finished_s is None:
                trace.error = CANCELLED
            raise
        finally:
            if trace is not None:
                self.progress._ended(trace)
                if self.on_request_done is not None:
                    self.on_request_done(trace)
            if slots is not None:
                slots.release()

    def run_sync(self) -> list[RequestTrace]:
        """:meth:`run` on a fresh event loop; Ctrl-C raises :class:`LoadInterrupted`."""
        try:
            return asyncio.run(self.run())
        except (KeyboardInterrupt, asyncio.CancelledError) as exc:
            raise LoadInterrupted(self.traces, len(self.requests)) from exc

    def _new_trace(self, index: int, request_id: str, request: LoadRequest) -> RequestTrace:
        trace = RequestTrace(request_id, sent_s=now_s(), max_output_tokens=request.max_tokens)
        self._traces[index] = trace
        self.progress._started(trace)
        return trace

    def _settle(self, trace: RequestTrace, proto: ResponseProtocol, parser: StreamParser) -> None:
        """Final fields of a request whose response ended (completely or not)."""
        end_s = proto.last_rx_s
        if proto.status not in (0, 200):
            trace.error = f"HTTP {proto.status}: {excerpt(proto.body)}"
            return
        if proto.buffered and proto.error is None:
            # A JSON answer: the server ignored ``stream: true``.
            error = parse_unstreamed(trace, proto.body, end_s)
            if error is None:
                trace.finished_s = end_s
            else:
                trace.error = error
            return
        parser.finish(end_s)
        if parser.error is not None:
            trace.error = parser.error
        elif proto.error is not None:
            trace.error = proto.error
        else:
            trace.finished_s = parser.done_s if parser.done_s is not None else end_s

    async def _watch(self) -> None:
        """Applies the idle and whole-request timeouts to everything in flight."""
        idle_s = self.config.idle_timeout_s
        total_s = self.config.request_timeout_s
        limits = [limit for limit in (idle_s, total_s) if limit is not None]
        if not limits:
            return
        period_s = min(WATCHDOG_MAX_PERIOD_S, min(limits) / 10)
        while True:
            await asyncio.sleep(period_s)
            t_s = now_s()
            for entry in list(self._in_flight.values()):
                if idle_s is not None and t_s - entry.proto.last_rx_s > idle_s:
                    entry.proto.abort(f"timeout: no data for {idle_s:g} s")
                elif total_s is not None and t_s - entry.trace.sent_s > total_s:
                    entry.proto.abort(f"timeout: request exceeded {total_s:g} s")


def _reset(trace: RequestTrace) -> None:
    trace.first_token_s = None
    trace.finished_s = None
    del trace.chunk_times_s[:]
    del trace.chunk_tokens[:]
    trace.input_tokens = None
    trace.output_tokens = 0
    trace.finish_reason = None
    trace.error = None


def _weakest(a: UsageMode, b: UsageMode) -> UsageMode:
    order = [UsageMode.CONTINUOUS, UsageMode.FINAL, UsageMode.NONE]
    return a if order.index(a) >= order.index(b) else b


def ensure_open_files(needed: int) -> None:
    """Raise the soft open-files limit so ``needed`` connections can be open at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            raise InputError(
                f"{needed} connections need {needed} open files but the hard limit is {hard}; "
                "set max_concurrency or raise the limit (ulimit -n)",
                field="max_concurrency",
            )


async def run_load(
    requests: Sequence[LoadRequest],
    config: LoadConfig,
    *,
    progress: LoadProgress | None = None,
    on_request_done: RequestDoneCallback | None = None,
) -> list[RequestTrace]:
    """Send ``requests`` as ``config`` says; one trace per sent request, in request order.

    On cancellation in-flight requests are aborted and marked ``"cancelled"`` before the
    ``CancelledError`` propagates; hold a :class:`LoadRun` to read them afterwards.
    """
    load = LoadRun(requests, config, progress=progress, on_request_done=on_request_done)
    return await load.run()


def run_load_sync(
    requests: Sequence[LoadRequest],
    config: LoadConfig,
    *,
    progress: LoadProgress | None = None,
    on_request_done: RequestDoneCallback | None = None,
) -> list[RequestTrace]:
    """:func:`run_load` on a fresh event loop; Ctrl-C raises :class:`LoadInterrupted`."""
    load = LoadRun(requests, config, progress=progress, on_request_done=on_request_done)
    return load.run_sync()
