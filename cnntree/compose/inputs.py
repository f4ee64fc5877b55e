"""Validation at the estimator's edges: what ``fit`` and ``predict`` take, or one line saying what
is expected."""

from __future__ import annotations

import numpy as np

from ..errors import CnnTreeError


def check_faces(images, labels, n_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validation at the edge: (n, 48, 48) faces of 0-255 and n labels in 0..n_classes-1."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (48, 48) or len(images) != len(labels) or not len(images):
        raise CnnTreeError(f"{what}: expected (n, 48, 48) grey faces and n labels, got images {images.shape} and "
                           f"labels {labels.shape}")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= n_classes:
        raise CnnTreeError(f"{what}: labels must be class indices 0..{n_classes - 1}")
    return images.astype(np.uint8, copy=False), labels.astype(np.int64, copy=False)


def as_faces(images) -> np.ndarray:
    """Validation at the edge of prediction: an (n, 48, 48) array of grey faces, 0-255. Anything
    else (a list of photos of other sizes, colour images, one face without its batch axis) is one
    line saying what is expected and how to get it."""
    try:
        faces = np.asarray(images)
    except ValueError:  # a ragged list: photos of different sizes
        faces = None
    if faces is None or faces.dtype == object or faces.ndim != 3 or faces.shape[1:] != (48, 48):
        shape = "a list of arrays of different shapes" if faces is None or faces.dtype == object else \
            f"an array of shape {faces.shape}"
        raise CnnTreeError(f"expected (n, 48, 48) grey faces of 0-255, got {shape}: crop and resize photos "
                           "first (cnntree.data.read_face reads a face image file; the mirror finds faces in a "
                           "photo)")
    return faces
