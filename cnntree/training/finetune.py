"""Joint fine-tuning of a tree: its trained node networks become one Keras model whose output is
the soft path product (``routing.path_product``, the one soft routing, here on Keras tensors),
trained on the natural class mix of Training.

The loss is ``finetune.loss.path`` times the negative log-likelihood of the path product plus
``finetune.loss.nodes`` times each node's own cross-entropy on its relabelled targets (zero for
faces outside the node) plus, over a shared trunk, ``finetune.loss.flat`` times the cross-entropy of
a flat head on that trunk (started from the flat network's own output layer): NBDT's flat loss,
which keeps the trunk a good flat classifier while the tree trains. The flat head is a training aid
and is not kept; its validation accuracy is logged as ``val_flat_accuracy``. The node networks are layers of the joint model, so training it trains
them in place: the tree predicts as before, through its routers, with the new weights. Trained on
the natural mix, the nodes answer with natural priors: no resampling prior is left to undo.
"""

from __future__ import annotations

import contextlib
import time

import keras
import numpy as np

from ..compose.calibration import calibration_metrics
from ..compose.routing import path_product
from ..data.nodedata import node_targets
from ..nets.schedules import compile_model, make_optimizer, slower_on
from ..nets.train import as_input, set_trunk_trainable
from ..spec.sections import OPTIMIZER

STAGE = "finetune"


class FinetuneStage:
    """The joint fine-tuning as a stage of a training: its MLflow child run's name and params."""

    id = STAGE

    def __init__(self, spec):
        self.spec = spec

    def settings(self) -> dict:
        return {"finetune": self.spec.finetune}


class JointTree(keras.Model):
    """The tree's Keras networks as one model: outputs [path product, each node's probabilities]."""

    def __init__(self, spec, networks: list):
        super().__init__(name="joint_tree")
        self.spec, self.networks = spec, networks

    def call(self, pixels, training=False):
        outputs = {node.id: net(pixels, training=training) for node, net in zip(self.spec.nodes, self.networks)}
        return [path_product(self.spec, outputs, keras.ops), *outputs.values()]


def joint_model(spec, networks: list, flat_head=None) -> keras.Model:
    """The joint model: over a shared trunk, one functional graph (the trunk runs once per face), with
    the flat head's output last when there is one; otherwise a ``JointTree`` calling each network."""
    if not spec.trunk["shared"]:
        return JointTree(spec, networks)
    outputs = {node.id: net.output for node, net in zip(spec.nodes, networks)}
    flat = [] if flat_head is None else [flat_head.output]
    return keras.Model(networks[0].inputs, [path_product(spec, outputs, keras.ops), *outputs.values(), *flat],
                       name="joint_tree")


def compile_joint(model, spec, networks: list, flat: bool) -> list:
    """Compile the joint ``model`` of ``networks`` under ``spec.finetune``: Adam at its rate (the
    shared trunk at ``trunk_lr`` of it), its loss weights, the trunk or BatchNormalization frozen as
    it says. Returns the layers it froze, to unfreeze after training."""
    cfg = spec.finetune
    frozen = [layer for network in networks if cfg["freeze_trunk"] for layer in set_trunk_trainable(network, False)]
    if cfg["batchnorm"] == "frozen":  # inference mode: the moving statistics stay the flat network's
        frozen += [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
                   and layer.trainable]
    for layer in frozen:
        layer.trainable = False
    weights = [cfg["loss"]["path"]] + [cfg["loss"]["nodes"]] * len(spec.nodes) + [cfg["loss"]["flat"]] * flat
    optimizer = make_optimizer(OPTIMIZER.parse({"name": "adam", "lr": cfg["lr"]}, "finetune"))
    compile_model(model, slower_on(optimizer, trunk_weights(networks), cfg["trunk_lr"]),
                  loss=["categorical_crossentropy"] * len(weights), loss_weights=weights)
    return frozen


def all_layers(model) -> list:
    """Every layer of ``model``, nested models' layers included."""
    return [inner for layer in model.layers
            for inner in (all_layers(layer) if isinstance(layer, keras.Model) else [layer])]


def trunk_weights(networks: list) -> list:
    """The trainable weights of the layers every network shares (a shared trunk; none otherwise)."""
    shared = set.intersection(*({id(layer) for layer in all_layers(n)} for n in networks))
    layers = {id(layer): layer for layer in all_layers(networks[0]) if id(layer) in shared}
    return [w for layer in layers.values() for w in layer.trainable_weights]


def joint_targets(spec, labels: np.ndarray, flat: bool = False) -> list[np.ndarray]:
    """One-hot targets: the class for the path, each node's group for the faces under it (zeros
    elsewhere), and the class again for the flat head when there is one."""
    classes, targets = list(spec.classes), [keras.utils.to_categorical(labels, len(spec.classes))]
    for node in spec.nodes:
        index, groups = node_targets(node, labels, classes, np.arange(len(labels)))
        y = np.zeros((len(labels), len(node.groups)), np.float32)
        y[index, groups] = 1.0
        targets.append(y)
    return targets + targets[:1] * flat


class BestPath(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest validation NLL of the path product (and logs
    it, with the path's validation accuracy, as ``val_path_nll`` and ``val_accuracy``; with a flat
    head, its accuracy as ``val_flat_accuracy``)."""

    def __init__(self, images, labels, flat: bool = False):
        super().__init__()
        self.images, self.labels, self.flat = images, labels, flat
        self.best, self.weights = np.inf, None

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self.images, batch_size=256, verbose=0)
        p = np.asarray(outputs[0], np.float64)
        nll = calibration_metrics(p, self.labels)["nll"]
        if logs is not None:
            logs.update(val_path_nll=nll, val_accuracy=float((p.argmax(1) == self.labels).mean()))
            if self.flat:
                logs.update(val_flat_accuracy=float((np.asarray(outputs[-1]).argmax(1) == self.labels).mean()))
        if nll < self.best:
            self.best, self.weights = nll, self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


def finetune(spec, networks: list, images, labels, validation, network_run=None, printer=print,
             flat_head=None) -> dict:
    """Train the tree of ``spec`` jointly (its ``finetune`` section): ``networks`` are its nodes'
    Keras models in spec order, ``flat_head`` a 7-way head on the shared trunk when the loss weighs
    one. Returns what to record: epochs, the loss weights, per-epoch history, faces seen, seconds."""
    from ..nets.train import Progress

    cfg = spec.finetune
    started = time.perf_counter()
    seed, cap = spec.root.train["seed"], spec.root.train["max_samples"]
    if cap and len(labels) > cap:  # the networks' face budget (--quick) holds here too
        keep = np.random.default_rng(seed).permutation(len(labels))[:cap]
        images, labels = images[keep], labels[keep]
    flat = flat_head is not None
    model = joint_model(spec, networks, flat_head)
    frozen = compile_joint(model, spec, networks, flat)
    printer(f"[{STAGE}] the {len(spec.nodes)} networks as one model (path product), {len(labels)} training faces "
            f"in their natural mix, loss {cfg['loss']['path']} x path NLL + {cfg['loss']['nodes']} x node CE"
            + (f" + {cfg['loss']['flat']} x flat-head CE" if flat else ""))
    keras.utils.set_random_seed(seed)
    best = BestPath(as_input(validation[0]), validation[1], flat)
    callbacks = [best, Progress(STAGE, cfg["epochs"], printer)]
    tracking = network_run(FinetuneStage(spec)) if network_run else contextlib.nullcontext([])
    try:
        with tracking as extra:  # the stage's MLflow child run: FINISHED, or FAILED / KILLED
            history = model.fit(as_input(images), joint_targets(spec, labels, flat), batch_size=cfg["batch_size"],
                                epochs=cfg["epochs"], shuffle=True, verbose=0, callbacks=callbacks + list(extra))
    finally:
        for layer in frozen:
            layer.trainable = True
    return {"epochs": cfg["epochs"], "loss": cfg["loss"], "freeze_trunk": cfg["freeze_trunk"],
            "trunk_lr": cfg["trunk_lr"], "batchnorm": cfg["batchnorm"],
            "best_val_path_nll": best.best, "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "images_seen": len(labels) * cfg["epochs"], "seconds": time.perf_counter() - started,
            "priors": "natural (trained jointly on the natural class mix; no prior correction)"}
