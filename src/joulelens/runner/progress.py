"""Progress reports from engines that do not call back themselves (the load generator)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from joulelens.runner.protocol import RunContext


def poll_progress(
    read: Callable[[], tuple[int, int, int]],
    ctx: RunContext,
    stop: threading.Event,
    period_s: float = 0.5,
) -> threading.Thread:
    """A thread that reports (done, total, tokens) to the observer until ``stop`` is set."""

    def loop() -> None:
        while not stop.wait(period_s):
            ctx.progress(*read())

    thread = threading.Thread(target=loop, name="joulelens-progress", daemon=True)
    thread.start()
    return thread
