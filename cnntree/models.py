"""The one model resolver: what names a trained classifier on the command line, in specs and in
Python, turned into its folder or the classifier itself.

A reference is a model folder, a shipped model's name (``cnntree models``), an MLflow run id,
``runs:/<run id>``, or a registered model ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
Folders and shipped names resolve without MLflow; only a logged reference loads it
(``tracking.runs.download_classifier``), so a mistyped name answers at once.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import CnnTreeError
from .files import recover_folder
from .pretrained import names, resolve

RUN_ID = re.compile(r"[0-9a-f]{32}")  # how MLflow names a run
REGISTERED = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))")


def is_logged(reference) -> bool:
    """Whether ``reference`` names a logged classifier (a run id, ``runs:/``, ``models:/``) rather than a path."""
    text = str(reference)
    return bool(RUN_ID.fullmatch(text) or text.startswith("runs:/") or REGISTERED.fullmatch(text))


def check_reference(reference) -> None:
    """One line for a reference that names nothing: not a folder, not a shipped name, not of an
    MLflow form (whether MLflow knows a run is asked when the model loads). A model folder that a
    killed save had set aside is put back first."""
    if is_logged(reference):
        return
    folder = resolve(reference)
    recover_folder(folder)
    if not folder.exists():
        raise CnnTreeError(f"{reference}: no such model directory (nor a shipped model, cnntree models, or an "
                           "MLflow run id, runs:/<id> or models:/<name>/<version>)")


def model_dir(reference) -> Path:
    """The folder of the classifier ``reference`` names; a logged one is downloaded into a temporary
    folder removed when the process ends."""
    if resolve(reference).exists() or not is_logged(reference):
        check_reference(reference)
        return resolve(reference)
    from .tracking.runs import download_classifier  # MLflow loads only for a logged reference (start-up time)

    text = str(reference)
    registered = REGISTERED.fullmatch(text)
    if registered:
        return download_classifier(text, model=(registered["name"], registered["version"], registered["alias"]))
    run_id = text.removeprefix("runs:/").split("/")[0]
    if not RUN_ID.fullmatch(run_id):
        raise CnnTreeError(f"{reference}: runs:/ takes an MLflow run id (32 hex digits)")
    return download_classifier(text, run_id=run_id)


def load_model(reference, test_time: str | None = None):
    """The classifier ``reference`` names; ``test_time`` replaces its test-time views."""
    from .estimator.storage import load

    clf = load(model_dir(reference))
    return clf.set_params(test_time=test_time) if test_time else clf


def lasting(reference, folder: Path) -> str:
    """What a spec's ``init.from`` should say for a model read from ``folder``: the reference itself
    when it outlives this process (a shipped name, a run, a registry entry), else the folder's
    absolute path (a download is temporary)."""
    return str(reference) if str(reference) in names() or is_logged(reference) else str(Path(folder).resolve())
