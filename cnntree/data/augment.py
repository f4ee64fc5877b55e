"""Augmentation from a spec's ``augment`` section, and test-time augmentation.

Training augmentation works on grey ``uint8`` 48x48 faces, a batch at a time, with one of two
engines (``augment.engine``): ``albumentations`` (face by face on the CPU) or ``batch`` (the whole
batch in tensor operations, ``batch_augment``). Both take a seed per batch, so a batch depends on
(seed, epoch, batch) only. Test-time augmentation turns one batch into several views whose
predicted probabilities are averaged.
"""

from __future__ import annotations

import cv2
import numpy as np

from .readers import SIZE

GEOMETRIC = ("rotation", "width_shift", "height_shift", "zoom", "shear")
PIXEL = ("h_flip", "noise", "salt_pepper", "blur", "fog", "crop", "erasing")


def engine_for(name: str) -> str:
    """The engine ``augment.engine`` names; ``auto`` is ``batch`` where Keras computes on a GPU (the
    per-face CPU work is what starves it) and ``albumentations`` on a CPU, where both engines train
    equally fast (``bench/throughput.py``: 177 vs 180 faces/s on 2 cores) and albumentations is
    the reference's own library."""
    if name != "auto":
        return name
    from ..backend import accelerator

    return "batch" if accelerator() else "albumentations"


def build_augmenter(config: dict):
    """The spec's augmentation on its engine (``augment(faces, seed)``), or None when nothing is on."""
    if not any(config[k] for k in GEOMETRIC + PIXEL) and config["brightness"] == [1.0, 1.0]:
        return None
    if engine_for(config["engine"]) == "batch":
        from .batch_augment import BatchAugmenter

        return BatchAugmenter(config)
    from .face_augment import AlbumentationsAugmenter  # only this engine needs albumentations

    return AlbumentationsAugmenter(config)


TTA_VIEWS = {"none": 1, "flip": 2, "ten_crop": 10}  # views per face of each test-time mode


def tta_views(images: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views of a batch whose predictions are averaged: itself, its mirror, or ten crops.

    Ten-crop takes the four corners and the centre at 7/8 of the size, and their mirrors, each
    resized back to 48x48.
    """
    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, images[:, :, ::-1]]
    crop = SIZE * 7 // 8
    edge = SIZE - crop
    views = []
    for top, left in ((0, 0), (0, edge), (edge, 0), (edge, edge), (edge // 2, edge // 2)):
        cut = images[:, top:top + crop, left:left + crop]
        resized = np.stack([cv2.resize(face, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for face in cut])
        views += [resized, resized[:, :, ::-1]]
    return views


def preview_grid(augmenter, faces: np.ndarray, columns: int = 8, seed: int = 0) -> np.ndarray:
    """A grey image: each row one face, first column the original, then augmented copies."""
    rows = []
    for k, face in enumerate(faces):
        same = np.repeat(face[None], columns - 1, axis=0)
        copies = [face, *(augmenter.augment(same, seed + k) if augmenter else same)]
        rows.append(np.concatenate([np.pad(c, 2, constant_values=255) for c in copies], axis=1))
    return np.concatenate(rows, axis=0)


def write_preview(spec, node, path, rows: int, columns: int, scale: int, seed: int) -> int:
    """Write ``node``'s augmentation preview for ``rows`` training faces per group as a PNG, the
    albumentations engine's grid above the batch engine's; returns how many faces it shows."""
    from ..files import write_atomically
    from .load import load_for_spec
    from .nodedata import node_targets

    data, splits = load_for_spec(spec)
    index, groups = node_targets(node, data.labels, list(spec.classes), splits.train)
    rng = np.random.default_rng(seed)
    faces = [rng.choice(index[groups == g]) for g in range(len(node.groups)) for _ in range(rows)]
    grids = [preview_grid(build_augmenter({**node.augment, "engine": engine}), data.images[faces], columns, seed)
             for engine in ("albumentations", "batch")]
    grid = np.concatenate([grids[0], np.full((6, grids[0].shape[1]), 128, np.uint8), grids[1]], axis=0)
    grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    _, encoded = cv2.imencode(".png", grid)
    write_atomically(path, lambda tmp: encoded.tofile(tmp))
    return len(faces)
