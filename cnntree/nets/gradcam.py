"""Where a network looks: Grad-CAM (Selvaraju et al., 2017) and gradient saliency, for any network
of the registry.

Grad-CAM weights the last feature map's channels by the mean gradient of the class score (the
logit before the softmax) and keeps the positive part; saliency is the gradient's magnitude at
each pixel. Keras 3 has no backend-neutral gradient call, so :func:`gradient` is the one place
that asks the backend (a tape on TensorFlow, ``jax.grad`` on JAX, autograd on PyTorch); the rest
is ``keras.ops``.
"""

from __future__ import annotations

import cv2
import keras
import numpy as np

from ..errors import CnnTreeError


def gradient(function, inputs: np.ndarray) -> np.ndarray:
    """d sum(function(inputs)) / d inputs, as numpy: per-example gradients when ``function``
    treats examples independently (a network in inference mode)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = keras.ops.sum(function(x))
        return np.asarray(tape.gradient(total, x))
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda x: keras.ops.sum(function(x)))(keras.ops.convert_to_tensor(inputs)))
    if backend == "torch":
        x = keras.ops.convert_to_tensor(inputs).detach().requires_grad_(True)
        keras.ops.sum(function(x)).backward()
        return x.grad.detach().cpu().numpy()
    raise CnnTreeError(f"explanations need gradients, which cnntree takes on tensorflow, jax or torch, not {backend}")


class GradCam:
    """A network split at its last feature map: ``features`` (a Keras model up to it) and ``head``
    (the chain of layers after it, up to the logits), so the class score's gradient can be taken
    with respect to the feature map on every backend."""

    def __init__(self, model: keras.Model):
        self.model = model
        layers = model.layers
        k = len(layers) - 1
        head = []
        while len(layers[k].output.shape) != 4:  # walk back along a chain to the last feature map
            if k == 0 or layers[k].input is not layers[k - 1].output:
                raise CnnTreeError(f"{model.name}: no feature map feeds the output through a chain of layers; "
                                   "Grad-CAM needs one")
            head.insert(0, layers[k])
            k -= 1
        if head and head[-1].name == "probabilities":  # the registry's final softmax: score the logits
            head = head[:-1]
        self.layer = layers[k]
        self.features = keras.Model(_single(model.inputs), self.layer.output)
        self.head = head

    def _score(self, feature_map, onehot):
        x = feature_map
        for layer in self.head:
            x = layer(x, training=False)
        return keras.ops.sum(x * onehot, axis=-1)

    def __call__(self, faces: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Heat maps in [0, 1], (n, 48, 48), of output ``outputs[i]`` for ``faces[i]`` (raw grey)."""
        faces = np.asarray(faces, np.float32).reshape(len(faces), *self.model.input_shape[1:])
        feature_map = np.asarray(self.features(faces, training=False), np.float32)
        onehot = np.eye(int(self.model.output_shape[-1]), dtype=np.float32)[np.asarray(outputs)]
        grads = gradient(lambda a: self._score(a, onehot), feature_map)
        weights = grads.mean(axis=(1, 2), keepdims=True)
        maps = np.maximum((weights * feature_map).sum(axis=-1), 0)
        return _normalised(np.stack([cv2.resize(m, faces.shape[2:0:-1], interpolation=cv2.INTER_LINEAR)
                                     for m in maps]))


class Saliency:
    """|d score / d pixel| (Simonyan et al., 2014): the pixels whose change moves the class score most."""

    def __init__(self, model: keras.Model):
        self.model = model
        logits = model.layers[-1].name == "probabilities"  # the registry's final softmax: score the logits
        self.scores = keras.Model(_single(model.inputs), model.layers[-1].input) if logits else model

    def __call__(self, faces, outputs):
        faces = np.asarray(faces, np.float32).reshape(len(faces), *self.model.input_shape[1:])
        onehot = np.eye(int(self.model.output_shape[-1]), dtype=np.float32)[np.asarray(outputs)]
        grads = gradient(lambda x: keras.ops.sum(self.scores(x, training=False) * onehot, axis=-1), faces)
        return _normalised(np.abs(grads).max(axis=-1))


def _single(inputs):
    return inputs[0] if len(inputs) == 1 else inputs


def _normalised(maps: np.ndarray) -> np.ndarray:
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, maps / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


EXPLAINERS = {"gradcam": GradCam, "saliency": Saliency}
