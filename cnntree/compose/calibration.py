"""Calibration: undo the prior shift of a network trained on resampled data.

A network trained on balanced groups answers as if every group were equally likely; the faces
it will see come with the natural priors (fear is 1 face in 7). Each strategy is one small class
with one method; ``balance.calibrate`` in the spec names it.
"""

from __future__ import annotations

import numpy as np


class NoCalibration:
    """The network's probabilities as they are."""

    def __init__(self, train_prior=None, true_prior=None):
        pass

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        return probabilities


class PriorCorrection(NoCalibration):
    """p'(k) proportional to p(k) x true(k) / train(k) (Saerens et al., 2002): the Bayes-optimal
    answer under the natural group frequencies of the network's own training split."""

    def __init__(self, train_prior, true_prior):
        self.weights = np.asarray(true_prior, np.float64) / np.asarray(train_prior, np.float64)

    def apply(self, probabilities):
        weighted = probabilities * self.weights
        return weighted / np.maximum(weighted.sum(axis=1, keepdims=True), 1e-12)


CALIBRATIONS = {"prior": PriorCorrection, "none": NoCalibration}


def make_calibration(name: str, priors: dict | None) -> NoCalibration:
    """The spec's strategy with the priors recorded at fit time (none recorded: no correction)."""
    if priors is None:
        return NoCalibration()
    return CALIBRATIONS[name](priors["train"], priors["true"])


def training_priors(before, after, class_weight=None) -> dict:
    """Group frequencies as trained on (resampled counts, times loss weights) and as they occur."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    effective = after * np.array([class_weight.get(k, 1.0) for k in range(len(after))]) if class_weight else after
    return {"train": (effective / effective.sum()).tolist(), "true": (before / before.sum()).tolist()}
