"""Voting: how members' class probabilities become the ensemble's. One small class per rule."""

from __future__ import annotations

import numpy as np

from .routing import one_hot_argmax


class SoftVote:
    """The mean of the members' probabilities, one member one weight (validation accuracies ignored)."""

    probabilistic = True  # its answers are probabilities (calibration metrics apply)

    def __init__(self, members: list[str], weights: dict[str, float] | None = None):
        self.members = members
        self.weights = self.member_weights(members, weights or {})

    @staticmethod
    def member_weights(members: list[str], weights: dict[str, float]) -> np.ndarray:
        return np.ones(len(members))

    def combine(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        stacked = np.stack([outputs[m] for m in self.members])
        return np.tensordot(self.weights / self.weights.sum(), stacked, axes=1)


class WeightedVote(SoftVote):
    """The mean weighted by each member's validation accuracy (given as ``weights``)."""

    @staticmethod
    def member_weights(members, weights):
        """Validation accuracies; all zero (no member better than nothing) weighs them equally,
        the limit of equal small accuracies, instead of dividing by zero."""
        given = np.array([weights.get(m, 1.0) for m in members], np.float64)
        return given if given.sum() > 0 else np.ones(len(members))


class HardVote(SoftVote):
    """Each member's argmax is one vote; the result is the share of votes per class."""

    probabilistic = False

    def combine(self, outputs):
        return super().combine({m: one_hot_argmax(p) for m, p in outputs.items()})


VOTES = {"soft": SoftVote, "weighted": WeightedVote, "hard": HardVote}
