"""One error tree for joulelens; foreign errors are mapped at the boundary (``raise ... from``)."""

from __future__ import annotations

from pathlib import Path


class JoulelensError(Exception):
    """Base of every error joulelens raises on purpose; the CLI prints these without a traceback.

    The message is redacted (:mod:`joulelens.redact`): an error never shows a secret, wherever
    it is printed or stored (failure reasons are ``str(error)``).
    """

    def __str__(self) -> str:
        from joulelens.redact import redact

        return redact(super().__str__())


class InputError(JoulelensError):
    """Bad user input: names the file (or URL) and the field that is wrong."""

    def __init__(self, message: str, *, source: str | Path | None = None, field: str | None = None):
        self.source = str(source) if source is not None else None
        self.field = field
        where = []
        if self.source:
            where.append(self.source)
        if field:
            where.append(f"field '{field}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class StoreError(JoulelensError):
    """The run store cannot be read or written."""


class RunNotFoundError(StoreError):
    """No run with the given id (or prefix) is in the store."""


class MeterError(JoulelensError):
    """An energy or power source failed while measuring."""


class EngineError(JoulelensError):
    """An inference engine or server failed to start, answer or stop."""


class AnalysisError(JoulelensError):
    """An analysis cannot be computed from the runs at hand (e.g. nothing meets a deadline)."""


class ClusterError(JoulelensError):
    """A cluster (Ray) could not be reached, lost a node or worker, or cannot place a run."""
