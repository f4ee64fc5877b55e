"""Models that ship with cnntree, so the mirror, ``predict`` and ``evaluate`` work before you train.

Each is a model folder under this package (``default`` is the one used when no model is named)
with a ``card.json`` of facts (how it was trained, on what data, its test figures) and a
``MODEL_CARD.md`` for people. ``scripts/ship_model.py`` writes them from a training.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CnnTreeError
from ..spec.schema import load_json

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


FIGURES = ("public_accuracy", "private_accuracy", "private_macro_f1")


def read_card(path: Path) -> dict:
    """A card's facts; a damaged card (not JSON, not an object, figures that are not numbers) is
    ``{"card_error": why}`` with whatever facts it still gives, never a crash of ``cnntree models``."""
    if not path.is_file():
        return {"card_error": f"{path}: missing"}
    try:
        card = load_json(path, "model card")
    except CnnTreeError as error:
        return {"card_error": str(error)}
    if not isinstance(card, dict):
        return {"card_error": f"{path}: not a JSON object"}
    recall = card.get("private_recall")
    if any(not isinstance(card.get(k), (int, float)) or isinstance(card.get(k), bool) for k in FIGURES) or \
            not isinstance(recall, dict) or not all(isinstance(v, (int, float)) for v in recall.values()):
        card = {k: v for k, v in card.items() if k not in (*FIGURES, "private_recall")}
        card["card_error"] = f"{path}: its test figures are missing or not numbers"
    return card


def cards() -> list[dict]:
    """Every shipped model's card (kind, networks, size, data, command, test figures)."""
    out = []
    for name in names():
        size = sum(f.stat().st_size for f in (HERE / name).rglob("*") if f.is_file())
        out.append({**read_card(HERE / name / "card.json"), "name": name, "path": str(HERE / name), "bytes": size})
    return out
