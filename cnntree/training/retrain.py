"""Transfer's retraining stage: a trained network with a fresh output layer, frozen up to its
head (or its last two weighted layers, or nothing), fitted on a new data set's faces."""

from __future__ import annotations

from ..errors import CnnTreeError
from ..nets.warmstart import weighted_layers

MODES = ("head", "last_dense", "full")
FULL_LR_FACTOR = 0.1  # ``full`` fine-tunes every layer at a tenth of the head's learning rate


# ---------------------------------------------------------------------------- retraining


def with_new_output(model, n_outputs: int):
    """The same network with a fresh output layer of ``n_outputs`` (the last weighted layer,
    re-created from its config; the weightless layers after it, e.g. pooling and softmax, reused)."""
    import keras

    layers = model.layers
    last = layers.index(weighted_layers(model)[-1])
    config = dict(layers[last].get_config())
    config.update({"name": f"{config['name']}_transfer"})
    config["units" if "units" in config else "filters"] = n_outputs
    x = type(layers[last]).from_config(config)(layers[last].input)
    for layer in layers[last + 1:]:
        x = layer(x)
    return keras.Model(model.inputs, x, name=model.name)


def freeze_for(model, mode: str) -> None:
    """head: only the output layer learns; last_dense: also the layer before it; full: all."""
    if mode not in MODES:
        raise CnnTreeError(f"--mode: unknown mode \"{mode}\"; use one of {', '.join(MODES)}")
    trainable = {"head": 1, "last_dense": 2, "full": None}[mode]
    weighted = weighted_layers(model)
    learn = set(map(id, weighted if trainable is None else weighted[-trainable:]))
    for layer in model.layers:
        layer.trainable = id(layer) in learn


def retrain(model, images, targets, n_outputs, mode: str, epochs: int, lr: float = 1e-3, batch_size: int = 32,
            seed: int = 0):
    """Fit ``model`` (frozen for ``mode``) on target faces; returns the model."""
    import keras

    from ..nets.schedules import compile_model
    from ..nets.train import as_input, set_batchnorm_momentum

    keras.utils.set_random_seed(seed)
    freeze_for(model, mode)
    set_batchnorm_momentum(model, -(-len(images) // batch_size))
    compile_model(model, keras.optimizers.Adam(lr * (FULL_LR_FACTOR if mode == "full" else 1.0)),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    if len(images):
        model.fit(as_input(images), keras.utils.to_categorical(targets, n_outputs), epochs=epochs,
                  batch_size=batch_size, verbose=0, shuffle=True)
    return model
