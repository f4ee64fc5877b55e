"""What a network costs: parameters and multiply-adds per face at inference, counted layer by layer
from the Keras graph (convolutions, separable and depthwise convolutions, dense layers; the
element-wise rest is negligible beside them), so trees, ensembles and single networks compare at
equal cost."""

from __future__ import annotations

import math

import keras


def parameters(*models) -> int:
    """Every weight of ``models``, trainable or not (BatchNormalization's statistics included), a
    weight that several share (a shared trunk) counted once."""
    unique = {id(w): w for model in models for w in model.weights}
    return int(sum(math.prod(w.shape) for w in unique.values()))


def multiply_adds(model) -> int:
    """Multiply-adds for one face through ``model`` (nested models counted through; a trunk shared
    by several networks counts in each, as each network runs it at inference)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
            continue
        if not layer.weights:
            continue
        in_channels, out_shape = layer.input.shape[-1], layer.output.shape
        positions = math.prod(out_shape[1:-1]) if len(out_shape) > 2 else 1
        if isinstance(layer, keras.layers.SeparableConv2D):
            k = math.prod(layer.kernel_size)
            total += positions * in_channels * (k * layer.depth_multiplier + layer.depth_multiplier * out_shape[-1])
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            total += positions * in_channels * layer.depth_multiplier * math.prod(layer.kernel_size)
        elif isinstance(layer, keras.layers.Conv2D):
            total += positions * math.prod(layer.kernel_size) * in_channels // layer.groups * out_shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += positions * in_channels * out_shape[-1]
    return int(total)
