"""``python -m cnntree.cli``: the same as the ``cnntree`` command."""

import sys

from . import main

sys.exit(main())
