"""Where a node gets its data: its classes' samples, relabelled to its output groups, balanced."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CnnTreeError
from ..spec import NodeSpec
from .balance import make_balancer


@dataclass(frozen=True)
class NodeData:
    """One node's samples from one split: ``index`` into the data, ``targets`` the group of each."""

    node: str
    groups: tuple[tuple[str, ...], ...]
    index: np.ndarray
    targets: np.ndarray
    before: tuple[int, ...]  # per group, before balancing
    class_weight: dict[int, float] | None = None

    @property
    def after(self) -> tuple[int, ...]:
        """Samples per group after balancing."""
        return tuple(int(n) for n in np.bincount(self.targets, minlength=len(self.groups)))


def node_targets(node: NodeSpec, labels: np.ndarray, classes, split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``split`` whose class is under ``node``, and the group each falls in."""
    group_of_class = np.full(len(classes), -1, np.int64)
    for g, group in enumerate(node.groups):
        for cls in group:
            group_of_class[classes.index(cls)] = g
    groups = group_of_class[labels[split]]
    inside = groups >= 0
    return split[inside], groups[inside]


def node_dataset(node: NodeSpec, labels: np.ndarray, classes, split: np.ndarray, seed: int | None = None,
                 balance: bool = True) -> NodeData:
    """A node's training (``balance=True``) or evaluation set from the samples in ``split``."""
    index, targets = node_targets(node, labels, list(classes), split)
    before = tuple(int(n) for n in np.bincount(targets, minlength=len(node.groups)))
    for group, count in zip(node.groups, before):
        if count == 0:
            raise CnnTreeError(f"node {node.id}: no samples of {'+'.join(group)} in this split")
    if not balance:
        return NodeData(node.id, node.groups, index, targets, before)
    rng = np.random.default_rng(node.train["seed"] if seed is None else seed)
    picked = make_balancer(node.balance).resample(targets, rng)
    return NodeData(node.id, node.groups, index[picked.index], targets[picked.index], before, picked.class_weight)
