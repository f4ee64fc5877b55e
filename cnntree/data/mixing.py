"""Mixing two faces of a batch and their labels (mixup, CutMix): a regulariser that works on the
targets as well as the pixels, so it runs after augmentation, on a whole batch and its one-hot targets.

Each mixer is one small class with ``mix(x, y, rng)``: float faces (n, 48, 48, 1) and targets
(n, k) in, mixed faces and soft targets (rows still summing to 1) out; ``rng`` is the batch's own
generator, so a batch stays a function of (seed, epoch, batch).
"""

from __future__ import annotations

import numpy as np


class MixUp:
    """Zhang et al. (2018): each face blended with another of the batch, weight ~ Beta(alpha, alpha)."""

    def __init__(self, alpha: float):
        self.alpha = alpha

    def mix(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
        weight = rng.beta(self.alpha, self.alpha, size=len(x)).astype(np.float32)
        partner = rng.permutation(len(x))
        w_x = weight.reshape(-1, *[1] * (x.ndim - 1))
        return w_x * x + (1 - w_x) * x[partner], weight[:, None] * y + (1 - weight[:, None]) * y[partner]


class CutMix:
    """Yun et al. (2019): a box of another face pasted in; its labels weigh by the pasted area."""

    def __init__(self, alpha: float):
        self.alpha = alpha

    def mix(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
        n, height, width = x.shape[:3]
        partner = rng.permutation(n)
        mixed, kept = x.copy(), np.ones(n, np.float32)
        for i, share in enumerate(rng.beta(self.alpha, self.alpha, size=n)):
            box_h, box_w = int(round(height * np.sqrt(1 - share))), int(round(width * np.sqrt(1 - share)))
            top, left = rng.integers(0, height - box_h + 1), rng.integers(0, width - box_w + 1)
            mixed[i, top:top + box_h, left:left + box_w] = x[partner[i], top:top + box_h, left:left + box_w]
            kept[i] = 1 - box_h * box_w / (height * width)
        return mixed, kept[:, None] * y + (1 - kept[:, None]) * y[partner]


class EitherMix:
    """One of several mixers per batch, picked with equal chance (timm's mixup/CutMix switch)."""

    def __init__(self, mixers):
        self.mixers = mixers

    def mix(self, x, y, rng):
        return self.mixers[rng.integers(len(self.mixers))].mix(x, y, rng)


def build_mixer(augment: dict):
    """The spec's mixing (``augment.mixup``, ``augment.cutmix``: Beta alphas, 0 off), or None."""
    mixers = [cls(augment[key]) for key, cls in (("mixup", MixUp), ("cutmix", CutMix)) if augment.get(key)]
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else EitherMix(mixers)
