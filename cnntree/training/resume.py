"""A work folder resumes only the training it holds: it remembers the spec, the settings that
change the result and the data's class counts; only the number of epochs (and the spec's
description) may differ, so a finished or interrupted training continues to a longer schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import CnnTreeError
from ..files import write_text_atomically
from ..spec.schema import load_json

RECORD = "training.json"


def _resumable(stamp: dict) -> dict:
    """What a work folder's training must share with the one resuming it: the stamp less the number
    of epochs (given or the spec's own, at any level) and the spec's description."""
    def strip(value, key=None):
        if isinstance(value, dict):
            return {k: strip(v, k) for k, v in value.items()
                    if not (k == "description" and key is None) and not (k == "epochs" and key == "train")}
        return [strip(v, key) for v in value] if isinstance(value, list) else value
    return {**stamp, "epochs": None, "spec": strip(stamp["spec"])}


def claim(work: Path, spec, labels: np.ndarray, printer) -> None:
    """Record ``spec``'s training in ``work``, or check that the training recorded there is the
    same one: each network then goes on from its last epoch, under the schedule computed for the
    epochs now asked."""
    given = spec.overrides
    stamp = {"spec": spec.raw, "epochs": given.get("epochs"), "quick": given.get("quick", False),
             "counts": np.bincount(labels, minlength=len(spec.classes)).tolist()}
    changed = {k: v for k, v in given.items() if k in ("seed", "max_samples", "init_from")}  # what changes the result
    if changed:
        stamp["overrides"] = changed
    file = work / RECORD
    if file.exists():
        before = load_json(file, "training record")
        if not isinstance(before, dict) or not {"spec", "epochs", "quick", "counts"} <= set(before) \
                or not isinstance(before["spec"], dict):
            raise CnnTreeError(f"{file}: damaged training record; train without --resume to start afresh")
        if _resumable(before) != _resumable(stamp):
            raise CnnTreeError(f"{work}: holds checkpoints of another training (other spec, settings or data); "
                               "use another work folder or delete this one")
        if before["epochs"] != stamp["epochs"]:
            was, now = (f"{n} epochs" if n else "the spec's epochs" for n in (before["epochs"], stamp["epochs"]))
            printer(f"[work] continuing the checkpoints under {now} (they were trained under {was})")
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomically(file, json.dumps(stamp))
