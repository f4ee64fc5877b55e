"""How fast this machine trains, remembered between trainings, so that ``train`` can say before it
starts how long it will take at most.

The unit of work is one training face through one multiply-add of its network (forward and
backward pass, augmentation and the epoch's validation included): a network's epoch takes about
``faces x multiply_adds x seconds_per_work``. The pace is kept per model family (``vgg``,
``mini_xception``, ...): a multiply-add of a depthwise-separable network costs about ten times one of
a plain convolution, and a tiny network's epoch is mostly batches and augmentation, so one family's
pace says nothing of another's. Each finished training records its family's pace; until this machine
has one, the estimate uses the pace measured on the project's reference machine (a 2-core AMD EPYC,
oneDNN limited to AVX2), and for a family not measured there the slowest of those.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.load import cache_dir
from ..files import write_text_atomically

# seconds per face-multiply-add on the reference machine, rounded up
REFERENCE_SECONDS_PER_WORK = {
    "vgg": 8e-11,  # `cnntree train trees/moravcik.json --epochs 4`: 6.9e-11
    "mini_xception": 1e-9,  # `python bench/allocator.py`: 206 faces/s at 5.5M multiply-adds, 8.8e-10
}


def pace_file() -> Path:
    return cache_dir() / "pace.json"


def measured() -> dict[str, float]:
    """This machine's recorded paces (seconds per face-multiply-add) by model family; a damaged
    record is forgotten."""
    try:
        paces = json.loads(pace_file().read_text())["seconds_per_work"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(paces, dict):  # a record from before paces were kept per family
        return {}
    return {name: float(pace) for name, pace in paces.items()
            if isinstance(pace, (int, float)) and 0 < pace < 1}


def record(model: str, epoch_seconds: float, faces: int, multiply_adds: int) -> None:
    """Remember the pace of an epoch of ``faces`` through a network of family ``model`` with
    ``multiply_adds``. A cache folder that cannot be written only loses the estimate."""
    if epoch_seconds <= 0 or faces <= 0 or multiply_adds <= 0:
        return
    try:
        paces = {**measured(), model: epoch_seconds / faces / multiply_adds}
        os.makedirs(pace_file().parent, exist_ok=True)
        write_text_atomically(pace_file(), json.dumps({"seconds_per_work": paces}))
    except OSError:
        pass


def estimate(work: dict[str, float]) -> tuple[float, bool]:
    """Seconds for ``work`` (face-multiply-adds by model family), and whether every family's pace
    is this machine's own."""
    recorded = measured()
    slowest = max(REFERENCE_SECONDS_PER_WORK.values())
    seconds = sum(amount * recorded.get(name, REFERENCE_SECONDS_PER_WORK.get(name, slowest))
                  for name, amount in work.items())
    return seconds, all(name in recorded for name in work)
