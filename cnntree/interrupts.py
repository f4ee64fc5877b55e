"""Ctrl-C and SIGTERM as exceptions, held back while a write to the MLflow store runs.

An interrupt raised inside SQLAlchemy leaves the interrupted SQLite connection holding the
database's lock for as long as the exception lives; ending the runs KILLED then waits 20 s and
fails with "database is locked". Store writes run in :func:`held`: an interrupt that arrives
there is raised as soon as the write is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from .errors import Terminated

_depth = 0  # held() blocks the main thread is inside
_pending: list[int] = []  # the first signal that arrived inside them


def _raise(signum: int) -> None:
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handle(signum, frame) -> None:
    if _depth:
        _pending[:] = _pending[:1] or [signum]
        return
    _raise(signum)


@contextlib.contextmanager
def handled():
    """Inside the block SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated` (SIGTERM,
    from ``timeout``, ``docker stop`` or systemd, ends runs as Ctrl-C does), both held back by
    :func:`held`. Main thread only, as Python's signal handlers are."""
    previous = {signum: signal.signal(signum, _handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _pending.clear()


@contextlib.contextmanager
def held():
    """An interrupt arriving inside the block is raised when it ends (in the main thread; other
    threads receive no signals)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending:
            signum = _pending.pop()
            _raise(signum)
