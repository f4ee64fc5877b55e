"""Transfer to another data set: align its classes, retrain heads on frozen features, cross-validate.

``align`` is where a target data set's classes meet a model's (a label map renames target
classes to model classes; the rest are reported, never dropped silently). ``retrain`` freezes a
network up to its head and fits it on target data; trees keep their routing and retrain every
node's head on the node's relabelled target data. ``cross_validate`` runs K stratified folds,
subject-independent when a group regex names each image's subject.
"""

from __future__ import annotations

import numpy as np

from ..data import FaceData
from ..data.labels import align, target_classes
from ..data.nodedata import node_targets
from ..data.splits import stratified_folds
from ..errors import CnnTreeError
from ..nets.warmstart import weighted_layers
from ..spec import parse_spec
from .classifier import CnnTreeClassifier
from .storage import load

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

    from ..nets.train import as_input, set_batchnorm_momentum

    keras.utils.set_random_seed(seed)
    freeze_for(model, mode)
    set_batchnorm_momentum(model, -(-len(images) // batch_size))
    model.compile(optimizer=keras.optimizers.Adam(lr * (FULL_LR_FACTOR if mode == "full" else 1.0)),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    if len(images):
        model.fit(as_input(images), keras.utils.to_categorical(targets, n_outputs), epochs=epochs,
                  batch_size=batch_size, verbose=0, shuffle=True)
    return model


def transferred(source_dir, data: FaceData, index: np.ndarray, label_map: dict, mode: str, epochs: int,
                seed: int = 0) -> CnnTreeClassifier:
    """A fresh copy of the classifier in ``source_dir`` with its heads retrained on ``data[index]``.

    Single networks (and voting members) learn the target's own classes (a new output layer when
    they differ); trees keep their leaves and routing, and each node learns from the target images
    of its own classes, relabelled to its groups.
    """
    clf = load(source_dir)
    models = clf.keras_models()
    raw = dict(clf.spec.raw)
    if clf.spec.kind == "tree":
        aligned, alignment = align(data.subset(index), clf.spec.classes, label_map)
        if alignment.excluded:
            raise CnnTreeError(f"{data.source}: class(es) {', '.join(alignment.excluded)} are not leaves of the tree "
                               f"\"{clf.spec.name}\"; a tree keeps its hierarchy: map them (--label-map) or leave "
                               "them out of the folder")
        classes = list(clf.spec.classes)
        for node in clf.spec.nodes:
            rows, targets = node_targets(node, aligned.labels, classes, np.arange(len(aligned.labels)))
            models[node.id] = retrain(models[node.id], aligned.images[rows], targets, len(node.groups), mode, epochs,
                                      seed=seed)
        spec = clf.spec
    else:
        classes, labels = target_classes(data, label_map)
        raw["classes"] = classes
        raw.pop("data", None)
        spec = parse_spec(raw, source=f"{source_dir}/spec.json (transferred)")
        for node in spec.nodes:
            model = models[node.id]
            if list(clf.spec.classes) != classes:
                model = with_new_output(model, len(classes))
            models[node.id] = retrain(model, data.images[index], labels[index], len(classes), mode, epochs, seed=seed)
    # retrained heads saw the target's own frequencies: no prior to undo
    return CnnTreeClassifier.from_networks(spec, models, clf.val_accuracy_)


# ---------------------------------------------------------------------------- cross-validation


def problem(clf: CnnTreeClassifier, data: FaceData, label_map: dict) -> tuple[FaceData, list, np.ndarray]:
    """The transfer task: (data to retrain on, the classes predicted afterwards, truth per image).

    A tree keeps its leaves, so every target class must map to one; a single network or an
    ensemble learns the target's own classes.
    """
    if clf.spec.kind != "tree":
        classes, labels = target_classes(data, label_map)
        return data, classes, labels
    aligned, alignment = align(data, clf.spec.classes, label_map)
    if alignment.excluded:
        raise CnnTreeError(f"{data.source}: class(es) {', '.join(alignment.excluded)} are not leaves of the tree "
                           f"\"{clf.spec.name}\"; a tree keeps its hierarchy: map them with --label-map or leave "
                           "them out of the folder")
    return aligned, list(clf.spec.classes), aligned.labels


def cross_validate(model_dir, data: FaceData, label_map: dict, mode: str, k: int, epochs: int,
                   group_regex: str | None = None, seed: int = 0, printer=print, fold_run=None) -> dict:
    """K folds of (retrain on K-1, test on 1); per-fold and mean +- std accuracy and macro-F1.

    ``fold_run(i)`` may return a context manager around a fold (the MLflow child run) that
    receives the fold's metrics through its ``log`` method.
    """
    import contextlib

    from .metrics import flat_metrics

    source = load(model_dir)
    train_data, classes, labels = problem(source, data, label_map)
    folds, groups = stratified_folds(labels, k, train_data.names, group_regex, seed)
    confusion = np.zeros((len(classes), len(classes)), int)
    rows = []
    for i, (train, test) in enumerate(folds):
        printer(f"[fold {i + 1}/{k}] retraining ({mode}) on {len(train)} faces, testing on {len(test)}"
                + (f" ({len(set(groups[test]))} subjects)" if groups is not None else ""))
        with (fold_run(i) if fold_run else contextlib.nullcontext()) as run:
            clf = transferred(model_dir, train_data, train, {} if source.spec.kind == "tree" else label_map, mode,
                              epochs, seed)
            predicted = clf.predict_proba(train_data.images[test]).argmax(axis=1)
            metrics = flat_metrics(labels[test], predicted, classes)
            confusion += np.asarray(metrics["confusion"])
            row = {"fold": i + 1, "train": int(len(train)), "test": int(len(test)), "accuracy": metrics["accuracy"],
                   "macro_f1": metrics["macro_f1"]}
            if groups is not None:
                row["subjects"] = sorted(set(groups[test].tolist()))
            if run is not None:
                run.log(row)
        printer(f"[fold {i + 1}/{k}] accuracy {row['accuracy']:.4f}  macro-F1 {row['macro_f1']:.4f}")
        rows.append(row)
    accuracy = np.array([r["accuracy"] for r in rows])
    f1 = np.array([r["macro_f1"] for r in rows])
    return {"classes": classes, "mode": mode, "folds": rows, "accuracy_mean": float(accuracy.mean()),
            "accuracy_std": float(accuracy.std()), "macro_f1_mean": float(f1.mean()), "macro_f1_std": float(f1.std()),
            "confusion": confusion.tolist(), "grouped": groups is not None}


def suggest_labels(clf: CnnTreeClassifier, target: FaceData, source: FaceData) -> list[dict]:
    """For every target class, the model class it resembles: by the model's mean predicted
    distribution, and by the nearest class "mass centre" (mean face) in pixels and in histograms."""
    proba = clf.predict_proba(target.images)
    model_classes = list(clf.spec.classes)

    def centres(data):
        faces = data.images.reshape(len(data.images), -1).astype(np.float64) / 255.0
        hist = np.stack([np.bincount(f, minlength=256) for f in data.images.reshape(len(data.images), -1)]) / faces.shape[1]
        return ({c: faces[data.labels == k].mean(0) for k, c in enumerate(data.classes) if (data.labels == k).any()},
                {c: hist[data.labels == k].mean(0) for k, c in enumerate(data.classes) if (data.labels == k).any()})

    source_pixels, source_hist = centres(source)
    target_pixels, target_hist = centres(target)
    rows = []
    for k, name in enumerate(target.classes):
        members = target.labels == k
        if not members.any():
            continue
        mean = proba[members].mean(0)
        by_pixels = {c: float(np.linalg.norm(target_pixels[name] - v) / np.sqrt(v.size)) for c, v in source_pixels.items()}
        by_hist = {c: float(np.abs(target_hist[name] - v).sum()) for c, v in source_hist.items()}
        rows.append({"target": name, "images": int(members.sum()),
                     "model": model_classes[int(mean.argmax())], "model_share": float(mean.max()),
                     "pixels": min(by_pixels, key=by_pixels.get), "pixels_distance": min(by_pixels.values()),
                     "histogram": min(by_hist, key=by_hist.get), "histogram_distance": min(by_hist.values())})
    return rows
