"""Arguments every command on a trained model shares: the model reference (any form the
resolver takes), test-time views, the hierarchy for ``--coverage``, and ``[MODEL] IMAGE...`` with the
faces found in photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import IMAGE_SUFFIXES, read_grey
from ..errors import CnnTreeError
from ..live.detect import FaceDetector, faces_in_photo
from ..models import check_reference
from ..pretrained import default_model, names
from ..spec import load_spec
from .options import info


def model_argument(p, optional: bool = False) -> None:
    """The model positional argument (a folder or a shipped model's name)."""
    help_text = ("a model directory (runs/models/<spec>, cnntree export --out), a shipped model's name (cnntree "
                 "models), an MLflow run id or runs:/<id>, or models:/<name>/<version>")
    if optional:
        p.add_argument("model_dir", nargs="?", default=default_model(), help=help_text + "; default: the shipped "
                       "default")
    else:
        p.add_argument("model_dir", help=help_text + ", e.g. default")


def test_time_argument(p) -> None:
    """``--test-time``: the views a trained classifier averages over, instead of its spec's."""
    p.add_argument("--test-time", choices=("none", "flip", "ten_crop"), help="average each face's prediction "
                   "over these views: none, flip (with its mirror image), ten_crop (4 corners, centre and their "
                   "mirrors: 10x the work); default: the model's own setting")


def chosen_hierarchy(args):
    """What ``--abstain`` and ``--hierarchy`` name: "abstain", a tree spec, or None (the model's own,
    or a command without them)."""
    if getattr(args, "abstain", False):
        return "abstain"
    return load_spec(args.hierarchy) if getattr(args, "hierarchy", None) else None


def model_and_faces(items: list[str], detect: bool = True):
    """``[MODEL] IMAGE...`` as (model, one row per face: image, box and how it was found, faces):
    the first item is a model when it names a shipped one or a folder. Faces are found in photos
    as the mirror finds them (``live.detect.faces_in_photo``); bad image files fail before any model
    loads."""
    first = Path(items[0])
    looks_like_a_folder = not first.exists() and first.suffix.lower() not in IMAGE_SUFFIXES and len(items) > 1
    is_model = items[0] in names() or first.is_dir() or looks_like_a_folder
    model, images = (items[0], items[1:]) if is_model else (default_model(), items)
    if not images:
        raise CnnTreeError(f"{items[0]}: a model; give the face images after it")
    check_reference(model)
    detector = FaceDetector() if detect else None
    rows, faces = [], []
    for path in images:
        found = faces_in_photo(read_grey(path), detector)
        info(f"{path}: {found.found}")
        for k, box in enumerate(found.boxes.tolist()):
            whole = found.found.startswith("whole")
            rows.append({"image": str(path), "face": k + 1, "box": box, "found": found.found,
                         "where": str(path) if whole else f"{path} face {k + 1} at {box[0]},{box[1]} {box[2]}x{box[3]}"})
        faces.append(found.faces)
    return model, rows, np.concatenate(faces)


def add_model_and_images(p) -> None:
    """The ``[MODEL] IMAGE...`` positional arguments and ``--no-detect``."""
    p.add_argument("items", nargs="+", metavar="[MODEL] IMAGE", help="a model directory or shipped model's "
                   "name (default: the shipped default), then image files: photos (every face found in them, as "
                   "the mirror finds faces) or face crops (an image of at most 96 px a side is one face)")
    p.add_argument("--no-detect", action="store_true", help="take every image whole as one face, without "
                   "looking for faces in it")
