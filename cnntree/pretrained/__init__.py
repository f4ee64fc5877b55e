"""Models that ship with cnntree, so the mirror, ``predict`` and ``evaluate`` work before you train.

Each is a model folder under this package (``default`` is the one used when no model is named)
with a ``card.json`` of facts (how it was trained, on what data, its test figures) and a
``MODEL_CARD.md`` for people. ``scripts/ship_model.py`` writes them from a training.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = "default"


def default_model() -> Path:
    """The shipped default's folder: what a command uses when no model is named (a folder called
    ``default`` where the user stands is not it)."""
    return HERE / DEFAULT


def names() -> list[str]:
    """The shipped models' names."""
    return sorted(p.name for p in HERE.iterdir() if (p / "meta.json").is_file())


def resolve(reference) -> Path:
    """A model folder for ``reference``: an existing path as it is, else a shipped model's name."""
    path = Path(reference)
    if path.exists() or str(reference) not in names():
        return path
    return HERE / str(reference)


def public_note(card: dict) -> str:
    """What follows a card's PublicTest figure: " (trained on)" for a model fitted on PublicTest."""
    return " (trained on)" if "PublicTest" in card.get("train_splits", []) else ""


def cards() -> list[dict]:
    """Every shipped model's card (kind, networks, size, data, command, test figures)."""
    out = []
    for name in names():
        card = json.loads((HERE / name / "card.json").read_text()) if (HERE / name / "card.json").is_file() else {}
        size = sum(f.stat().st_size for f in (HERE / name).rglob("*") if f.is_file())
        out.append({"name": name, "path": str(HERE / name), "bytes": size, **card})
    return out
