"""The one exception type users see: a single line naming the file, field or row at fault."""


class CnnTreeError(Exception):
    """A mistake in the user's input (spec, data, model directory, arguments).

    The CLI prints ``str(error)`` as one line and exits with status 2, without a traceback.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
