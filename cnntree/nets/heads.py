"""Networks that share one trunk: a tree's nodes as small heads, or branches, on one backbone.

The registry's models end in an output layer (a dense or a convolution with one unit per output)
followed by weightless layers (pooling, the softmax). Every head is a fresh copy of that output
layer on the same trunk, followed by copies of the same weightless layers: so a shared-trunk tree
has the parameters of one network plus a few heads, and training the heads together trains one
backbone for all of them. With ``trunk.branch_at`` each node also owns a copy of the layers above
a branch point (HD-CNN's per-group upper layers). All nodes live in one graph, so ``one_pass``
makes them one model that runs the shared layers once per face.

A head has one output per group of its node, or (``trunk.heads: "classes"``) one per class under
the node, whose logits ``GroupLogSumExp`` turns into group logits: a group's probability is then
the sum of its classes', so heads copied from a flat network's output layer make the tree's path
product exactly that network's softmax before any training (NBDT's soft inference), and joint
training starts from the flat network's accuracy instead of below it.
"""

from __future__ import annotations

import keras

from ..errors import CnnTreeError
from ..spec.schema import did_you_mean
from .models import create_model
from .warmstart import weighted_layers

NODES = "nodes"  # the one-pass model's output layer: every node's probabilities side by side


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


def head_outputs(spec) -> dict[str, int | list[list[int]]]:
    """What ``shared_networks`` gives each node of ``spec``'s shared trunk: its number of groups, or
    (``trunk.heads: "classes"``) its groups as output indices."""
    by_class = spec.trunk["heads"] == "classes"
    return {n.id: class_groups(n.groups) if by_class else len(n.groups) for n in spec.nodes}


def _copy(layer, name: str, outputs: int | None = None):
    config = {**layer.get_config(), "name": name}
    if outputs is not None:
        config["units" if "units" in config else "filters"] = outputs
    return layer.__class__.from_config(config)


def blocks(model) -> list[str]:
    """The names of ``model``'s block ends in order (``block1``, ``block2``, ...: the registry's
    builders name them)."""
    names = {layer.name for layer in model.layers}
    return [f"block{k}" for k in range(1, len(names) + 1) if f"block{k}" in names]


def last_shared(model, branch_at) -> str | None:
    """The name of the last layer a branched trunk shares: for block index ``k`` (negative from the
    end) the end of block ``k - 1`` (the stem's end, or the input's normalisation, for the first
    block); a layer name as it is. None: no branch (the output layer alone is each node's own)."""
    if branch_at is None:
        return None
    ends = blocks(model)
    if isinstance(branch_at, int):
        if not 1 <= abs(branch_at) <= len(ends):
            raise CnnTreeError(f"trunk.branch_at: {branch_at} is not a block of {model.name}, which has "
                               f"{len(ends)} (block1 to block{len(ends)}; -1 is the last)")
        k = branch_at if branch_at > 0 else len(ends) + 1 + branch_at
        names = {layer.name for layer in model.layers}
        return ends[k - 2] if k > 1 else "stem" if "stem" in names else "normalize"
    layers = [layer.name for layer in model.layers]
    if branch_at not in layers:
        raise CnnTreeError(f"trunk.branch_at: {model.name} has no layer \"{branch_at}\"{did_you_mean(branch_at, layers)}"
                           f"; its blocks end at {', '.join(ends) or 'no named block'}")
    if branch_at in layers[layers.index(weighted_layers(model)[-1].name):]:  # the output layer or after it
        raise CnnTreeError(f"trunk.branch_at: \"{branch_at}\" is at or above {model.name}'s output layer; "
                           "branch below it")
    return branch_at


def shared_networks(model: dict, normalize: str, outputs: dict[str, int | list[list[int]]],
                    branch_at=None) -> dict[str, keras.Model]:
    """One Keras model per node id, all on one trunk built from the ``model`` section, in one graph:
    the layers up to ``last_shared(branch_at)`` are shared (the trunk runs once per face in a model
    of all the outputs), each node has its own copy of every layer above (by default the output
    layer and the weightless layers after it). ``outputs`` gives each node its number of groups, or
    its groups as lists of output indices (one output per class, read through ``GroupLogSumExp``
    before the softmax). Copied layers are named ``<node id>_<layer name>``."""
    base = create_model(n_outputs=2, normalize=normalize, **model)
    pixels, shared = keras.Input(shape=base.input_shape[1:], name="pixels"), {}
    networks = {}
    for node_id, out in outputs.items():
        call = _node_call(node_id, out, base, last_shared(base, branch_at), shared)
        clone = keras.models.clone_model(base, input_tensors=pixels, clone_function=lambda layer: layer,
                                         call_function=call)
        networks[node_id] = keras.Model(pixels, clone.output, name=f"{base.name}_{node_id}")
    return networks


def _node_call(node_id: str, out, base, source: str | None, shared: dict):
    """How ``clone_model`` calls each of ``base``'s layers for one node: a layer at or below the
    branch point once for all nodes (``shared`` keeps its output by its inputs), a layer above it
    (reached from the branch point, or the output layer itself) through the node's own copy."""
    head, final, grouped = weighted_layers(base)[-1], base.layers[-1], not isinstance(out, int)
    copies, branched = {}, set()

    def call(layer, *args, **kwargs):
        inputs = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        if layer is head or any(id(t) in branched for t in inputs):
            if layer.name not in copies:
                units = (sum(map(len, out)) if grouped else out) if layer is head else None
                copies[layer.name] = _copy(layer, f"{node_id}_{layer.name}", units)
            if layer is final and grouped:
                args = (GroupLogSumExp(out, name=f"{node_id}_groups")(args[0]), *args[1:])
            y = copies[layer.name](*args, **kwargs)
            branched.update(id(t) for t in keras.tree.flatten(y))
            return y
        key = (layer.name, tuple(id(t) for t in inputs))
        if key not in shared:  # the trunk: one call per layer, whichever node reaches it first
            shared[key] = layer(*args, **kwargs)
        if layer.name == source:
            branched.update(id(t) for t in keras.tree.flatten(shared[key]))
        return shared[key]

    return call


def one_pass(networks: list[keras.Model]) -> keras.Model:
    """The networks of one shared trunk as one model whose output is their probabilities side by side
    (layer ``nodes``): the trunk runs once per face for all of them, in Keras and in every export."""
    outputs = [network.output for network in networks]
    return keras.Model(networks[0].inputs, keras.layers.Concatenate(name=NODES)(outputs), name="tree")


def node_models(model: keras.Model) -> list[keras.Model]:
    """The node networks inside a ``one_pass`` model, in order (sharing its layers)."""
    return [keras.Model(model.inputs, tensor) for tensor in model.get_layer(NODES).input]
