"""Balancing strategies: how a node's training set is resampled across its output groups.

Each strategy is one small class with one method, named in the spec's ``balance.strategy``.
``resample`` takes the group index of every candidate sample and returns which samples to
train on (with repeats when oversampling) and, for ``class_weight``, the loss weights.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Resampled:
    """Which candidates to train on (repeats allowed) and, for class weighting, the loss weights."""

    index: np.ndarray  # positions into the candidate samples, repeats allowed
    class_weight: dict[int, float] | None = None


class Balancer(abc.ABC):
    """A balancing strategy: one method, ``resample``, and ``rule``, what it does in words."""

    rule = ""

    @abc.abstractmethod
    def resample(self, groups: np.ndarray, rng: np.random.Generator) -> Resampled:
        """Which candidates to train on, given each candidate's output group."""


def _draw(members: np.ndarray, size: int, rng) -> np.ndarray:
    """``size`` of ``members``: without replacement when there are enough, else with."""
    if size <= len(members):
        return rng.choice(members, size=size, replace=False)
    return np.concatenate([rng.permutation(members), rng.choice(members, size=size - len(members), replace=True)])


def _per_group(groups: np.ndarray, sizes, rng) -> np.ndarray:
    parts = [_draw(np.flatnonzero(groups == g), int(n), rng) for g, n in enumerate(sizes)]
    return rng.permutation(np.concatenate(parts))


class Oversample(Balancer):
    """Every group resampled to M = ratio x the largest group (the reference rule, ratio 0.8)."""

    def __init__(self, ratio: float = 0.8):
        self.ratio = ratio

    @property
    def rule(self) -> str:
        return f"each group resampled to {self.ratio:g} x the largest"

    def resample(self, groups, rng):
        counts = np.bincount(groups)
        m = max(1, int(round(self.ratio * counts.max())))
        return Resampled(_per_group(groups, [m] * len(counts), rng))


class OneVsRest(Balancer):
    """All of the smallest group, and as many drawn from each other group (the fear node)."""

    rule = "each group drawn down to the smallest"

    def resample(self, groups, rng):
        counts = np.bincount(groups)
        return Resampled(_per_group(groups, [counts.min()] * len(counts), rng))


class ClassWeight(Balancer):
    """No resampling; loss weights n / (k * n_group), as scikit-learn's "balanced"."""

    rule = "every face once, loss weighted per group"

    def resample(self, groups, rng):
        counts = np.bincount(groups)
        weights = len(groups) / (len(counts) * counts)
        return Resampled(rng.permutation(len(groups)), {g: float(w) for g, w in enumerate(weights)})


class NoBalance(Balancer):
    """Every sample once, shuffled."""

    rule = "every face once"

    def resample(self, groups, rng):
        return Resampled(rng.permutation(len(groups)))


BALANCERS = {"oversample": Oversample, "one_vs_rest": OneVsRest, "class_weight": ClassWeight, "none": NoBalance}


def make_balancer(config: dict) -> Balancer:
    """The strategy a spec's ``balance`` section names, with its parameters."""
    params = {k: v for k, v in config.items() if k not in ("strategy", "calibrate")}  # calibrate: at prediction
    return BALANCERS[config["strategy"]](**params)
