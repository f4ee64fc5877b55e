"""The model registry: one name, one function; ``create_model(name, **params)`` builds it.

Keras 3 public API only (``keras.layers``), so the same code runs on the TensorFlow, JAX and
PyTorch backends. Each builder names the end of its blocks ``block1``, ``block2``, ... (and of its
stem, ``stem``, where it has one): a shared trunk branches there (``trunk.branch_at``). Every model takes raw grey pixels (0-255, shape (48, 48, 1)) and normalises
them itself, so a saved model needs no preprocessing knowledge outside it.
"""

from __future__ import annotations

import keras
from keras import layers

from ..spec.sections import MODEL

MODELS = {}

NORMALIZERS = {
    "unit": (1 / 255.0, 0.0),       # [0, 1]
    "symmetric": (1 / 127.5, -1.0),  # [-1, 1]
}


def register(builder):
    """Add a model builder to the registry under its function name; its parameters (no defaults
    here) are those of its variant in ``spec.sections.MODEL``."""
    MODELS[builder.__name__] = builder
    return builder


def create_model(name: str, input_shape=(48, 48, 1), n_outputs: int = 7, normalize: str = "unit",
                 **params) -> keras.Model:
    """Build model ``name`` with softmax outputs; ``params`` are the spec's model parameters, the
    ones not given taken from the spec's model table (``spec.sections.MODEL``: the one place a
    model's parameters, defaults and bounds are written)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    params = {k: v for k, v in MODEL.parse({"name": name, **params}, "model").items() if k != "name"}
    inputs = keras.Input(shape=input_shape, name="pixels")
    scale, offset = NORMALIZERS[normalize]
    x = layers.Rescaling(scale, offset, name="normalize")(inputs)
    features = MODELS[name](x, n_outputs=n_outputs, **params)
    outputs = layers.Activation("softmax", name="probabilities", dtype="float32")(features)
    return keras.Model(inputs, outputs, name=name)


def _reg(l2: float):
    return keras.regularizers.L2(l2) if l2 else None


def _scaled(filters: int, width: float) -> int:
    return max(1, int(round(filters * width)))


@register
def lenet(x, n_outputs, filters, dense, dropout, l2):
    """The reference base model: [conv3x3, maxpool] x 3, dense, output. Overfits by design."""
    for block, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", kernel_regularizer=_reg(l2))(x)
        x = layers.MaxPooling2D(2, name=f"block{block}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu", kernel_regularizer=_reg(l2))(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    return layers.Dense(n_outputs, kernel_regularizer=_reg(l2))(x)


@register
def vgg(x, n_outputs, blocks, filters, dense, dropout, dense_dropout, width, l2):
    """The reference VGG-style network: blocks of [conv3x3, BN, conv3x3, BN, maxpool, dropout]."""
    if blocks > len(filters):
        raise ValueError(f"vgg: {blocks} blocks need {blocks} filter counts, got {len(filters)}")
    for block, f in enumerate(filters[:blocks], start=1):
        for _ in range(2):
            x = layers.Conv2D(_scaled(f, width), 3, padding="same", activation="relu",
                              kernel_regularizer=_reg(l2))(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout, name=f"block{block}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(_scaled(dense, width), activation="relu", kernel_regularizer=_reg(l2))(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(dense_dropout)(x)
    return layers.Dense(n_outputs, kernel_regularizer=_reg(l2))(x)


@register
def mini_xception(x, n_outputs, width, l2):
    """Arriaga, Ploger & Valdenegro (2017): depthwise-separable residual modules, no dense layer."""
    reg = _reg(l2)
    for stem in ("stem_1", "stem"):
        x = layers.Conv2D(_scaled(8, width), 3, use_bias=False, kernel_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu", name=stem)(x)
    for block, f in enumerate((16, 32, 64, 128), start=1):
        f = _scaled(f, width)
        shortcut = layers.Conv2D(f, 1, strides=2, padding="same", use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
        x = layers.SeparableConv2D(f, 3, padding="same", use_bias=False, depthwise_regularizer=reg,
                                   pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(f, 3, padding="same", use_bias=False, depthwise_regularizer=reg,
                                   pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add(name=f"block{block}")([x, shortcut])
    x = layers.Conv2D(n_outputs, 3, padding="same")(x)
    return layers.GlobalAveragePooling2D()(x)


def _inverted_residual(x, out_channels, expansion, l2, name):
    """MobileNetV2's block: 1x1 expand, depthwise 3x3, 1x1 linear projection, skip when shapes match."""
    in_channels = x.shape[-1]
    y = layers.Conv2D(in_channels * expansion, 1, use_bias=False, kernel_regularizer=_reg(l2))(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU(6.0)(y)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU(6.0)(y)
    y = layers.Conv2D(out_channels, 1, use_bias=False, kernel_regularizer=_reg(l2))(y)
    if in_channels == out_channels:
        return layers.Add(name=name)([x, layers.BatchNormalization()(y)])
    return layers.BatchNormalization(name=name)(y)


@register
def mobilenet_v2(x, n_outputs, widths, expansion, dense, dropout, l2):
    """The reference MobileNetV2-style model: two plain convs (the second 5x5), then inverted-residual
    stages at ``widths`` with max-pooling between them, global pooling and a dense head."""
    x = layers.Conv2D(32, 3, padding="same", use_bias=False, kernel_regularizer=_reg(l2))(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(64, 5, padding="same", use_bias=False, kernel_regularizer=_reg(l2))(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0, name="stem")(x)
    for block, w in enumerate(widths, start=1):
        x = layers.MaxPooling2D(2)(x)
        x = _inverted_residual(x, w, expansion, l2, f"block{block}")
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(dense, activation="relu", kernel_regularizer=_reg(l2))(x)
    x = layers.Dropout(dropout)(x)
    return layers.Dense(n_outputs)(x)


@register
def vggnet(x, n_outputs, width, dropout, l2):
    """Khaireddin & Chen (2021): 4 stages of 2 [conv3x3, BN, ReLU] blocks with max-pooling, 3 dense layers."""
    for block, f in enumerate((64, 128, 256, 512), start=1):
        for _ in range(2):
            x = layers.Conv2D(_scaled(f, width), 3, padding="same", kernel_regularizer=_reg(l2))(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}")(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(_scaled(4096, width), activation="relu", kernel_regularizer=_reg(l2))(x)
        x = layers.Dropout(dropout)(x)
    return layers.Dense(n_outputs)(x)
