"""Voting: how members' class probabilities become the ensemble's. One small class per rule."""

from __future__ import annotations

import numpy as np

from .routing import one_hot_argmax


class SoftVote:
    """The mean of the members' probabilities."""

    probabilistic = True  # its answers are probabilities (calibration metrics apply)

    def __init__(self, members: list[str], weights: dict[str, float] | None = None):
        self.members = members
        self.weights = np.array([(weights or {}).get(m, 1.0) for m in members], np.float64)

    def combine(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        stacked = np.stack([outputs[m] for m in self.members])
        return np.tensordot(self.weights / self.weights.sum(), stacked, axes=1)


class WeightedVote(SoftVote):
    """The mean weighted by each member's validation accuracy (given as ``weights``)."""


class HardVote(SoftVote):
    """Each member's argmax is one vote; the result is the share of votes per class."""

    probabilistic = False

    def __init__(self, members, weights=None):
        super().__init__(members, None)  # one member, one vote

    def combine(self, outputs):
        return super().combine({m: one_hot_argmax(p) for m, p in outputs.items()})


VOTES = {"soft": SoftVote, "weighted": WeightedVote, "hard": HardVote}
