"""The ``batch`` augmentation engine: the spec's augmentation applied to a whole batch at once with
the Keras 3 public API (``keras.ops``), so the pixel work runs where the backend runs (the GPU
under JAX) instead of face by face in Python.

Random parameters (angles, shifts, masks) are drawn per face with NumPy from the batch's seed, so
a batch depends on (seed, epoch, batch) only, exactly as with the albumentations engine; the pixel
operations (one affine warp for rotation, shifts, zoom, shear and flip; blur; noise; erasing; the
cloud overlay) are batched tensor operations. The meaning of every ``augment`` key is the same as
albumentations' (``docs/spec.md``), up to interpolation details.
"""

from __future__ import annotations

import math

import numpy as np

SIZE = 48


class BatchAugmenter:
    """The ``augment`` section as one batched pipeline; ``augment(faces, seed)`` on uint8 (n, 48, 48)."""

    def __init__(self, config: dict):
        self.config = config
        c = config
        self.geometric = any((c["rotation"], c["width_shift"], c["height_shift"], c["zoom"], c["shear"], c["h_flip"]))

    def augment(self, faces: np.ndarray, seed: int) -> np.ndarray:
        """The batch augmented, as uint8 faces; the same seed gives the same batch."""
        import keras

        c, rng, n = self.config, np.random.default_rng(seed), len(faces)
        x = keras.ops.convert_to_tensor(faces.astype(np.float32)[..., None])
        if c["crop"]:
            x = _warp(x, _crop_transforms(rng, n, c["crop"]))
        if self.geometric:
            x = _warp(x, _affine_transforms(rng, n, c))
        if c["brightness"] != [1.0, 1.0]:
            x = x * rng.uniform(*c["brightness"], size=(n, 1, 1, 1)).astype(np.float32)
        if c["noise"]:
            x = x + rng.normal(0.0, c["noise"] * 255.0, size=(n, SIZE, SIZE, 1)).astype(np.float32)
        if c["salt_pepper"]:
            hit = rng.random((n, SIZE, SIZE, 1)) < c["salt_pepper"]
            value = np.where(rng.random((n, SIZE, SIZE, 1)) < 0.5, 0.0, 255.0).astype(np.float32)
            x = keras.ops.where(hit, value, x)
        if c["blur"]:
            x = keras.ops.conv(x, _gaussian_kernel(c["blur"]), padding="same")
        if c["fog"]:
            x = _fog(x, rng, n, c["fog"])
        if c["erasing"]:
            mask, fill = _erasing(rng, n, c["erasing"])
            x = keras.ops.where(mask, fill, x)
        return np.asarray(keras.ops.convert_to_numpy(keras.ops.clip(keras.ops.round(x), 0, 255)), np.uint8)[..., 0]


def _warp(x, transforms: np.ndarray):
    import keras

    return keras.ops.image.affine_transform(x, transforms.astype(np.float32), interpolation="bilinear",
                                            fill_mode="nearest")


def _as_transform(inverse: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Keras's (a0, a1, a2, b0, b1, b2, 0, 0) rows: output pixel (x, y) reads input (a.x + a2, b.x + b2)."""
    n = len(inverse)
    return np.concatenate([inverse[:, 0, :], offset[:, :1], inverse[:, 1, :], offset[:, 1:], np.zeros((n, 2))], axis=1)


def _affine_transforms(rng, n: int, c: dict) -> np.ndarray:
    """Rotation, shear, zoom, shifts (with probability ``p``) and a horizontal flip (probability 0.5),
    about the image centre, as Keras transforms (output to input coordinates)."""
    angle = np.radians(rng.uniform(-c["rotation"], c["rotation"], n))
    shear = np.radians(rng.uniform(-c["shear"], c["shear"], n))
    scale = rng.uniform(1 - c["zoom"], 1 + c["zoom"], n)
    shift = np.stack([rng.uniform(-c["width_shift"], c["width_shift"], n),
                      rng.uniform(-c["height_shift"], c["height_shift"], n)], axis=1) * SIZE
    on = rng.random(n) < c["p"]
    flip = np.where(rng.random(n) < 0.5, -1.0, 1.0) if c["h_flip"] else np.ones(n)
    cos, sin = np.cos(angle), np.sin(angle)
    # forward map (input to output) about the centre: rotation . shear . scale, then the flip
    forward = np.empty((n, 2, 2))
    forward[:, 0, 0], forward[:, 0, 1] = scale * cos, scale * (-sin + cos * np.tan(shear))
    forward[:, 1, 0], forward[:, 1, 1] = scale * sin, scale * (cos + sin * np.tan(shear))
    forward[~on] = np.eye(2)
    shift[~on] = 0.0
    forward[:, 0, :] *= flip[:, None]
    inverse = np.linalg.inv(forward)
    centre = np.full(2, (SIZE - 1) / 2)
    offset = centre - np.einsum("nij,nj->ni", inverse, centre + shift)  # input = inverse . (out - c - t) + c
    return _as_transform(inverse, offset)


def _crop_transforms(rng, n: int, size: int) -> np.ndarray:
    """A random ``size`` crop resized back to 48: output pixel x reads top-left + x * size / 48."""
    ratio = size / SIZE
    inverse = np.tile(np.eye(2) * ratio, (n, 1, 1))
    corner = rng.integers(0, SIZE - size + 1, size=(n, 2)).astype(np.float64)
    return _as_transform(inverse, corner + (ratio - 1) / 2)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = np.outer(taps, taps)
    return (kernel / kernel.sum()).astype(np.float32)[..., None, None]


def _fog(x, rng, n: int, p: float):
    """The cloud overlay: smooth noise (coarse noise resized up) blended towards white, per face with probability p."""
    import keras

    coarse = rng.random((n, SIZE // 8, SIZE // 8, 1)).astype(np.float32)
    cloud = keras.ops.clip(keras.ops.image.resize(coarse, (SIZE, SIZE), interpolation="bicubic"), 0.0, 1.0)
    alpha = (rng.uniform(0.2, 0.5, n) * (rng.random(n) < p)).astype(np.float32)[:, None, None, None]
    return x * (1 - alpha * cloud) + 255.0 * alpha * cloud


def _erasing(rng, n: int, p: float):
    """Random erasing: with probability p, one rectangle (10-40% of each side) of random grey values."""
    rows, cols = np.arange(SIZE)[None, :, None], np.arange(SIZE)[None, None, :]
    h = (rng.uniform(0.1, 0.4, n) * SIZE).astype(int)
    w = (rng.uniform(0.1, 0.4, n) * SIZE).astype(int)
    top, left = rng.integers(0, SIZE - h + 1), rng.integers(0, SIZE - w + 1)
    inside = ((rows >= top[:, None, None]) & (rows < (top + h)[:, None, None]) & (cols >= left[:, None, None])
              & (cols < (left + w)[:, None, None]) & (rng.random(n) < p)[:, None, None])
    return inside[..., None], rng.uniform(0, 255, (n, SIZE, SIZE, 1)).astype(np.float32)
