"""Routing: how a tree's node probabilities become class probabilities.

Each router is one small class with one method. A single network is a one-node tree, so the
same routers serve it (soft routing is then the network's own output).
"""

from __future__ import annotations

import numpy as np

from ..spec import Spec


def one_hot_argmax(probabilities: np.ndarray) -> np.ndarray:
    """Each row's argmax as a one-hot row."""
    return np.eye(probabilities.shape[1], dtype=probabilities.dtype)[probabilities.argmax(axis=1)]


def path_product(spec: Spec, outputs: dict, ops=np):
    """P(class) = product of the branch probabilities on the path from the root, for NumPy arrays
    or, with ``ops=keras.ops``, Keras tensors (joint fine-tuning trains through it)."""
    root = spec.nodes[0]
    mass = {root.id: ops.ones_like(outputs[root.id][:, :1])}
    for node in spec.nodes:  # root first, so a parent's mass is known before its children
        for k, child in enumerate(node.children):
            mass[child] = mass[node.id] * outputs[node.id][:, k:k + 1]
    return ops.concatenate([mass[c] for c in spec.classes], axis=1)


class SoftRouting:
    """P(class) = product of the branch probabilities on the path from the root: sums to 1."""

    probabilistic = True  # its answers are probabilities (calibration metrics apply)

    def __init__(self, spec: Spec):
        self.spec = spec

    def combine(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return path_product(self.spec, outputs)


class HardRouting(SoftRouting):
    """The reference's routing: follow the argmax at every node (a one-hot result)."""

    probabilistic = False

    def combine(self, outputs):
        return super().combine({node: one_hot_argmax(p) for node, p in outputs.items()})


ROUTERS = {"soft": SoftRouting, "hard": HardRouting}
