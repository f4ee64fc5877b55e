"""Networks that share one trunk: a tree's nodes as small heads on one backbone.

The registry's models end in an output layer (a dense or a convolution with one unit per output)
followed by weightless layers (pooling, the softmax). Every head is a fresh copy of that output
layer on the same trunk, followed by copies of the same weightless layers: so a shared-trunk tree
has the parameters of one network plus a few heads, and training the heads together trains one
backbone for all of them.

A head has one output per group of its node, or (``trunk.heads: "classes"``) one per class under
the node, whose logits ``GroupLogSumExp`` turns into group logits: a group's probability is then
the sum of its classes', so heads copied from a flat network's output layer make the tree's path
product exactly that network's softmax before any training (NBDT's soft inference), and joint
training starts from the flat network's accuracy instead of below it.
"""

from __future__ import annotations

import keras

from .models import create_model
from .warmstart import weighted_layers


@keras.saving.register_keras_serializable(package="cnntree")
class GroupLogSumExp(keras.layers.Layer):
    """Class logits in, group logits out: group ``k``'s logit is the log-sum-exp of its classes'."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = [list(map(int, g)) for g in groups]

    def call(self, logits):
        return keras.ops.stack([keras.ops.logsumexp(keras.ops.take(logits, g, axis=-1), axis=-1)
                                for g in self.groups], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.groups))

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


CUSTOM_OBJECTS = {"GroupLogSumExp": GroupLogSumExp}  # what a saved head needs to load in safe mode


def class_groups(groups) -> list[list[int]]:
    """A class-read head's groups as output indices: its outputs are the groups' classes in order."""
    out, start = [], 0
    for group in groups:
        out.append(list(range(start, start + len(group))))
        start += len(group)
    return out


def _copy(layer, name: str, outputs: int | None = None):
    config = {**layer.get_config(), "name": name}
    if outputs is not None:
        config["units" if "units" in config else "filters"] = outputs
    return layer.__class__.from_config(config)


def shared_networks(model: dict, normalize: str, outputs: dict[str, int | list[list[int]]]) -> dict[str, keras.Model]:
    """One Keras model per node id, all on one trunk built from the ``model`` section; the trunk is
    every layer below the registry model's output layer. ``outputs`` gives each node its number of
    groups, or its groups as lists of output indices (one output per class, read through
    ``GroupLogSumExp`` before the softmax)."""
    base = create_model(n_outputs=2, normalize=normalize, **model)
    head = weighted_layers(base)[-1]
    tail = base.layers[base.layers.index(head) + 1:]  # weightless: pooling, the softmax
    networks = {}
    for node_id, out in outputs.items():
        grouped = not isinstance(out, int)
        x = _copy(head, f"{node_id}_head", sum(map(len, out)) if grouped else out)(head.input)
        for layer in tail[:-1]:
            x = _copy(layer, f"{node_id}_{layer.name}")(x)
        if grouped:
            x = GroupLogSumExp(out, name=f"{node_id}_groups")(x)
        x = _copy(tail[-1], f"{node_id}_{tail[-1].name}")(x)
        networks[node_id] = keras.Model(base.inputs, x, name=f"{base.name}_{node_id}")
    return networks
