"""``python -m cnntree.cli``: the same as the ``cnntree`` command."""

from . import run

run()
