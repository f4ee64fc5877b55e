"""Progress lines for people go to the ``cnntree`` logger, so an application routes or silences
them with :mod:`logging`; an estimator's ``verbose`` picks their level, and the command line shows
them on standard error."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("cnntree")


class _StandardError(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (a redirected or captured stream)."""

    def __init__(self):
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def to_standard_error() -> None:
    """Show the logger's INFO lines on standard error, once (the command line's progress)."""
    if not any(isinstance(h, _StandardError) for h in logger.handlers):
        logger.addHandler(_StandardError())
    logger.setLevel(logging.INFO)


def say(line: str) -> None:
    """A progress line people asked for (``verbose``): INFO, on standard error unless the
    application configured logging itself."""
    if not logger.handlers and not logging.getLogger().handlers:
        to_standard_error()
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    logger.info(line)


def note(line: str) -> None:
    """A progress line nobody asked for: DEBUG, shown only where logging is set to show it."""
    logger.debug(line)


def progress(verbose) -> callable:
    """The printer of an estimator's progress lines (module functions, so worker processes and Ray
    tasks can take them)."""
    return say if verbose else note
