"""Warm starts: a network begins from a trained flat network's trunk (every layer below its output
layer) instead of random weights, and its output layer from the flat network's class weights.

Output ``k`` of a node predicts "one of ``groups[k]``"; its weights start as the mean of the flat
output layer's weights of those classes (NBDT's induced-hierarchy initialisation) and its bias
gains ``log len(groups[k])``: a group's probability is the sum of its classes', whose logit is
exactly the mean logit plus log(size) when its classes score alike; without it a big group starts
underrated (measured on the sample's PrivateTest with the shipped default's trunk: the moravcik tree
starts at 35.9% instead of 20.0%, the induced tree at 50.6% instead of 44.9%). So a node answers
sensibly before it trains at all.
"""

from __future__ import annotations

import numpy as np

from ..errors import CnnTreeError


def weighted_layers(model) -> list:
    """The layers that hold weights, in graph order; the last one is the output layer (the head)."""
    return [layer for layer in model.layers if layer.weights]


def trunk_mismatch(model, flat) -> str | None:
    """Why ``model``'s trunk cannot take ``flat``'s weights (None when it can)."""
    mine, theirs = weighted_layers(model)[:-1], weighted_layers(flat)[:-1]
    if len(mine) != len(theirs):
        return f"{len(theirs)} layers with weights below the output layer, the network here has {len(mine)}"
    for a, b in zip(mine, theirs):
        shapes = [tuple(w.shape) for w in a.weights], [tuple(w.shape) for w in b.weights]
        if shapes[0] != shapes[1]:
            return f"its layer {b.name} has weights {shapes[1]}, the network here {shapes[0]} at {a.name}"
    return None


def warm_start(model, flat, groups: list[list[int]] | None) -> None:
    """Copy ``flat``'s trunk into ``model``; when ``groups`` (flat class indices per output) is
    given, start output ``k`` as the mean of those classes' output weights, its bias raised by
    log(group size)."""
    why = trunk_mismatch(model, flat)
    if why:
        raise CnnTreeError(f"the flat network does not match: {why}")
    mine, theirs = weighted_layers(model), weighted_layers(flat)
    for a, b in zip(mine[:-1], theirs[:-1]):
        a.set_weights(b.get_weights())
    if groups is not None:
        head = mine[-1].get_weights()
        flat_head = theirs[-1].get_weights()
        if [w.shape[:-1] for w in head] != [w.shape[:-1] for w in flat_head]:
            return  # another kind of output layer: the head keeps its random start
        means = [np.stack([w[..., g].mean(axis=-1) for g in groups], axis=-1) for w in flat_head]
        if len(means) == 2:  # kernel and bias
            means[1] = means[1] + np.log([len(g) for g in groups]).astype(means[1].dtype)
        mine[-1].set_weights(means)
