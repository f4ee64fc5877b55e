"""Networks that share one trunk: a tree's nodes as small heads on one backbone.

The registry's models end in an output layer (a dense or a convolution with one unit per output)
followed by weightless layers (pooling, the softmax). Every head is a fresh copy of that output
layer, sized for its node's groups, on the same trunk, followed by copies of the same weightless
layers: so a shared-trunk tree has the parameters of one network plus a few heads, and training
the heads together trains one backbone for all of them.
"""

from __future__ import annotations

import keras

from .models import create_model
from .warmstart import weighted_layers


def _copy(layer, name: str, outputs: int | None = None):
    config = {**layer.get_config(), "name": name}
    if outputs is not None:
        config["units" if "units" in config else "filters"] = outputs
    return layer.__class__.from_config(config)


def shared_networks(model: dict, normalize: str, outputs: dict[str, int]) -> dict[str, keras.Model]:
    """One Keras model per node id (``outputs``: its number of groups), all on one trunk built from
    the ``model`` section; the trunk is every layer below the registry model's output layer."""
    base = create_model(n_outputs=2, normalize=normalize, **model)
    head = weighted_layers(base)[-1]
    tail = base.layers[base.layers.index(head) + 1:]  # weightless: pooling, the softmax
    networks = {}
    for node_id, n in outputs.items():
        x = _copy(head, f"{node_id}_head", n)(head.input)
        for layer in tail:
            x = _copy(layer, f"{node_id}_{layer.name}")(x)
        networks[node_id] = keras.Model(base.inputs, x, name=f"{base.name}_{node_id}")
    return networks

