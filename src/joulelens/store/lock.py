"""The store's write lock: writers (imports, runs, sweeps, rebuilds) take turns.

An advisory ``flock`` on ``STORE/.lock``: released by the kernel when its holder exits,
however it exits, so a killed writer never leaves the store locked. Waiters poll, and give
up after a timeout with a message naming the holder (pid and command, written into the
lock file). Readers never take it: they read the catalog snapshot (see :mod:`.catalog`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from joulelens.errors import StoreError

LOCK_FILE = ".lock"
LOCK_TIMEOUT_ENV = "JOULELENS_LOCK_TIMEOUT_S"
DEFAULT_LOCK_TIMEOUT_S = 600.0
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class StoreBusyError(StoreError):
    """Another process held the store's write lock for longer than the timeout."""


class StoreReadOnlyError(StoreError):
    """The store's directory cannot be written (read-only file system or permissions)."""


def read_only_error(root: Path, exc: OSError) -> StoreReadOnlyError:
    return StoreReadOnlyError(
        f"store {root} is read-only ({exc.strerror or exc}): reading works, but writing "
        "(import, run, sweep, rebuild) needs a writable store; use --store DIR or "
        "$JOULELENS_STORE to write elsewhere"
    )


def lock_timeout_s() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StoreError(f"${LOCK_TIMEOUT_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


class WriteLock:
    """Re-entrant within one :class:`WriteLock` object (one per Store); exclusive across
    processes and across objects in the same process."""

    def __init__(self, root: Path, timeout_s: float | None = None):
        self.root = root
        self.path = root / LOCK_FILE
        self.timeout_s = timeout_s
        self._mutex = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._depth > 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._mutex:
            if self._depth == 0:
                self._fd = self._acquire(self.timeout_s)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def try_hold(self) -> bool:
        """Take the lock without waiting; False if another holder has it. Pair each True
        with :meth:`release` (in the same thread)."""
        if not self._mutex.acquire(blocking=False):
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            fd = self._open()
        except BaseException:
            self._mutex.release()
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._mutex.release()
            return False
        self._fd = fd
        self._stamp()
        self._depth = 1
        return True

    def release(self) -> None:
        """Undo one successful :meth:`try_hold`."""
        self._depth -= 1
        if self._depth == 0:
            self._release()
        self._mutex.release()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in READ_ONLY_ERRNOS:
                raise read_only_error(self.root, exc) from exc
            raise StoreError(f"cannot open the store's lock {self.path}: {exc}") from exc

    def _acquire(self, timeout_s: float | None) -> int:
        limit = lock_timeout_s() if timeout_s is None else timeout_s
        fd = self._open()
        started = time.monotonic()
        pause = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= limit:
                    holder = self._holder()
                    os.close(fd)
                    raise StoreBusyError(
                        f"store {self.root} is busy: another joulelens process ({holder}) is "
                        f"writing to it; gave up after waiting {waited:.0f} s. Let it finish "
                        f"and retry, or wait longer with ${LOCK_TIMEOUT_ENV}=SECONDS"
                    ) from None
                time.sleep(min(pause, max(limit - waited, 0.0)))
                pause = min(pause * 2, 0.2)
        self._fd = fd
        self._stamp()
        return fd

    def _stamp(self) -> None:
        """Say who holds the lock, for the message of a writer that times out waiting."""
        assert self._fd is not None
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
        info = f"pid {os.getpid()}: {command[:200]}".encode(errors="replace")
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, info, 0)
        except OSError:
            pass  # the lock holds even if the note cannot be written

    def _holder(self) -> str:
        try:
            text = self.path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text or "unknown pid"

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
