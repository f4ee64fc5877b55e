"""Validation at the estimator's edges: what ``fit`` and ``predict`` take, or one line saying what
is expected."""

from __future__ import annotations

import numpy as np

from ..errors import CnnTreeError

SIDE = 48  # faces are SIDE x SIDE grey images; a row of SIDE * SIDE pixels is one too


class InputError(CnnTreeError, ValueError):
    """Arrays the estimator cannot take: one line for people, a ValueError for scikit-learn."""


def as_faces(images, what: str = "images") -> np.ndarray:
    """An (n, 48, 48) array of grey faces, 0-255, from such an array or from n rows of 2,304
    pixels (scikit-learn's 2-D input). Anything else (photos of other sizes, colour images, one
    face without its batch axis) is one line saying what is expected and how to get it."""
    if hasattr(images, "tocsr") or hasattr(images, "todense"):
        raise InputError(f"{what}: sparse input is not supported: faces are dense (n, 48, 48) arrays")
    try:
        faces = np.asarray(images)
    except ValueError:  # a ragged list: photos of different sizes
        faces = None
    if faces is not None and faces.dtype != object and faces.ndim == 2 and faces.shape[1] == SIDE * SIDE:
        faces = faces.reshape(len(faces), SIDE, SIDE)
    if faces is None or faces.dtype == object or faces.ndim != 3 or faces.shape[1:] != (SIDE, SIDE):
        shape = "a list of arrays of different shapes" if faces is None or faces.dtype == object else \
            f"an array of shape {faces.shape}"
        raise InputError(f"{what}: expected (n, 48, 48) grey faces of 0-255 (or n rows of 2304 pixels), got "
                         f"{shape}: crop and resize photos first (cnntree.data.read_face reads a face image "
                         "file; the mirror finds faces in a photo)")
    if faces.dtype.kind not in "uif" or not np.isfinite(faces).all():
        raise InputError(f"{what}: pixels must be finite numbers of 0-255, got {faces.dtype} values")
    return faces


def as_labels(labels, classes: list[str], what: str = "labels") -> np.ndarray:
    """Class indices from class names of ``classes`` or from indices into them."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"{what}: expected one label per face, got an array of shape {labels.shape}")
    if labels.dtype.kind in "iu":
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise InputError(f"{what}: labels must be class indices 0..{len(classes) - 1} or names of "
                             f"{', '.join(classes)}")
        return labels.astype(np.int64, copy=False)
    unknown = sorted({str(v) for v in labels} - set(classes))
    if unknown:
        raise InputError(f"{what}: {', '.join(unknown[:3])} {'is not a class' if len(unknown) == 1 else 'are not classes'} "
                         f"of the spec ({', '.join(classes)})")
    return np.array([classes.index(str(v)) for v in labels], np.int64)


def check_faces(images, labels, classes: list[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Labelled training faces: ``as_faces`` and ``as_labels``, as many of each, at least one,
    pixels clipped into 0-255 as the networks read them."""
    faces, labels = as_faces(images, what), as_labels(labels, classes, what)
    if len(faces) != len(labels) or not len(faces):
        raise InputError(f"{what}: expected (n, 48, 48) grey faces and n labels, got images {faces.shape} and "
                         f"labels {labels.shape}")
    return np.clip(faces, 0, 255).astype(np.uint8, copy=False), labels
