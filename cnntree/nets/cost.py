"""What a network costs: parameters and multiply-adds per face at inference, counted layer by layer
from the Keras graph (convolutions, separable and depthwise convolutions, dense layers; the
element-wise rest is negligible beside them), so trees, ensembles and single networks compare at
equal cost."""

from __future__ import annotations

import functools
import json
import math

import keras


def parameters(*models) -> int:
    """Every weight of ``models``, trainable or not (BatchNormalization's statistics included), a
    weight that several share (a shared trunk) counted once."""
    unique = {id(w): w for model in models for w in model.weights}
    return int(sum(math.prod(w.shape) for w in unique.values()))


def multiply_adds(*models) -> int:
    """Multiply-adds for one face through ``models`` together, each layer counted once (nested
    models counted through): a trunk shared by several networks counts once, as cnntree runs it
    once per face (``nets.heads.one_pass``), and separate networks add up."""
    layers = {}

    def collect(model):
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                collect(layer)
            elif layer.weights:
                layers[id(layer)] = layer

    for model in models:
        collect(model)
    return int(sum(map(_layer_multiply_adds, layers.values())))


def network_multiply_adds(model: dict, n_outputs: int = 7, normalize: str = "unit") -> int:
    """:func:`multiply_adds` of the network ``create_model`` builds from a spec's ``model`` section,
    built once per process for each setting (a plan, a control's width search and a comparison over
    seeds ask for the same networks again)."""
    return _built_multiply_adds(json.dumps(model, sort_keys=True), n_outputs, normalize)


@functools.lru_cache(maxsize=256)
def _built_multiply_adds(model: str, n_outputs: int, normalize: str) -> int:
    from .models import create_model

    return multiply_adds(create_model(n_outputs=n_outputs, normalize=normalize, **json.loads(model)))


def _layer_multiply_adds(layer) -> int:
    in_channels, out_shape = layer.input.shape[-1], layer.output.shape
    positions = math.prod(out_shape[1:-1]) if len(out_shape) > 2 else 1
    if isinstance(layer, keras.layers.SeparableConv2D):
        k = math.prod(layer.kernel_size)
        return positions * in_channels * (k * layer.depth_multiplier + layer.depth_multiplier * out_shape[-1])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return positions * in_channels * layer.depth_multiplier * math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.Conv2D):
        return positions * math.prod(layer.kernel_size) * in_channels // layer.groups * out_shape[-1]
    if isinstance(layer, keras.layers.Dense):
        return positions * in_channels * out_shape[-1]
    return 0
