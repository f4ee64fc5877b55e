"""The one exception type users see: a single line naming the file, field or row at fault."""

import unicodedata


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape sequences, NULs, ...) written as ``\\xNN``,
    so a hostile file name or CSV header can never drive the user's terminal."""
    return "".join(c if c in " \t" or unicodedata.category(c) != "Cc" else ascii(c)[1:-1] for c in text)


class CnnTreeError(Exception):
    """A mistake in the user's input (spec, data, model directory, arguments).

    The CLI prints ``str(error)`` as one line and exits with status 2, without a traceback.
    """

    def __init__(self, message: str):
        super().__init__(printable(" ".join(str(message).split())))


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, systemd): handled everywhere as Ctrl-C is, so runs end
    KILLED and checkpoints stay resumable."""
