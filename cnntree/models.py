"""Model references: what names a trained classifier on the command line and in specs, checked
without loading MLflow or a backend (a mistyped name answers at once).

A reference is a model folder, a shipped model's name (``cnntree models``), an MLflow run id,
``runs:/<run id>``, or a registered model ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
``tracking.runs.model_dir_of`` turns the logged ones into a folder.
"""

from __future__ import annotations

import re

from .errors import CnnTreeError
from .pretrained import resolve

RUN_ID = re.compile(r"[0-9a-f]{32}")  # how MLflow names a run
REGISTERED = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))")


def is_logged(reference) -> bool:
    """Whether ``reference`` names a logged classifier (a run id, ``runs:/``, ``models:/``) rather than a path."""
    text = str(reference)
    return bool(RUN_ID.fullmatch(text) or text.startswith("runs:/") or REGISTERED.fullmatch(text))


def check_reference(reference) -> None:
    """One line for a reference that names nothing: not a folder, not a shipped name, not of an
    MLflow form (whether MLflow knows a run is asked when the model loads)."""
    if not resolve(reference).exists() and not is_logged(reference):
        raise CnnTreeError(f"{reference}: no such model directory (nor a shipped model, cnntree models, or an "
                           "MLflow run id, runs:/<id> or models:/<name>/<version>)")
