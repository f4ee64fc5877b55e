"""How fast this machine trains, remembered between trainings, so that ``train`` can say before it
starts how long it will take at most.

The unit of work is one training face through one multiply-add of its network (forward and
backward pass, augmentation and the epoch's validation included): a network's epoch takes about
``faces x multiply_adds x seconds_per_work``. Each finished training records its own pace; until
this machine has one, the estimate uses the pace measured on the project's reference machine (a
2-core AMD EPYC, oneDNN limited to AVX2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.load import cache_dir
from ..files import write_text_atomically

REFERENCE_SECONDS_PER_WORK = 8e-11  # `cnntree train trees/moravcik.json --epochs 4` there: 6.9e-11, rounded up


def pace_file() -> Path:
    return cache_dir() / "pace.json"


def measured() -> float | None:
    """This machine's last recorded pace (seconds per face-multiply-add), or None."""
    try:
        pace = float(json.loads(pace_file().read_text())["seconds_per_work"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pace if 0 < pace < 1 else None


def record(epoch_seconds: float, faces: int, multiply_adds: int) -> None:
    """Remember the pace of an epoch of ``faces`` through a network of ``multiply_adds``. A cache
    folder that cannot be written only loses the estimate."""
    if epoch_seconds <= 0 or faces <= 0 or multiply_adds <= 0:
        return
    try:
        os.makedirs(pace_file().parent, exist_ok=True)
        write_text_atomically(pace_file(), json.dumps({"seconds_per_work": epoch_seconds / faces / multiply_adds}))
    except OSError:
        pass


def estimate(work: float) -> tuple[float, bool]:
    """Seconds for ``work`` face-multiply-adds, and whether the pace is this machine's own."""
    pace = measured()
    return work * (pace or REFERENCE_SECONDS_PER_WORK), pace is not None
