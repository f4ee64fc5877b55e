"""Transfer a trained classifier to another data set: align its classes, and retrain every
network's head (``training.retrain``) on the target faces; trees keep their routing and retrain
each node's head on the node's relabelled target data.

``align`` is where a target data set's classes meet a model's (a label map renames target
classes to model classes; the rest are reported, never dropped silently).
"""

from __future__ import annotations

import numpy as np

from ..data import FaceData
from ..data.labels import align, target_classes
from ..data.nodedata import node_targets
from ..errors import CnnTreeError
from ..spec import parse_spec
from ..training.retrain import retrain, with_new_output
from .classifier import CnnTreeClassifier
from .storage import load


def transferred(source_dir, data: FaceData, index: np.ndarray, label_map: dict, mode: str, epochs: int,
                seed: int = 0) -> CnnTreeClassifier:
    """A fresh copy of the classifier in ``source_dir`` with its heads retrained on ``data[index]``.

    Single networks (and voting members) learn the target's own classes (a new output layer when
    they differ); trees keep their leaves and routing, and each node learns from the target images
    of its own classes, relabelled to its groups.
    """
    clf = load(source_dir)
    models = clf.keras_models()
    raw = dict(clf.spec_.raw)
    if clf.spec_.kind == "tree":
        aligned, alignment = align(data.subset(index), clf.spec_.classes, label_map)
        if alignment.excluded:
            raise CnnTreeError(f"{data.source}: class(es) {', '.join(alignment.excluded)} are not leaves of the tree "
                               f"\"{clf.spec_.name}\"; a tree keeps its hierarchy: map them (--label-map) or leave "
                               "them out of the folder")
        classes = list(clf.spec_.classes)
        for node in clf.spec_.nodes:
            rows, targets = node_targets(node, aligned.labels, classes, np.arange(len(aligned.labels)))
            models[node.id] = retrain(models[node.id], aligned.images[rows], targets, len(node.groups), mode, epochs,
                                      seed=seed)
        spec = clf.spec_
    else:
        classes, labels = target_classes(data, label_map)
        raw["classes"] = classes
        raw.pop("data", None)
        spec = parse_spec(raw, source=f"{source_dir}/spec.json (transferred)")
        for node in spec.nodes:
            model = models[node.id]
            if list(clf.spec_.classes) != classes:
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
    if clf.spec_.kind != "tree":
        classes, labels = target_classes(data, label_map)
        return data, classes, labels
    aligned, alignment = align(data, clf.spec_.classes, label_map)
    if alignment.excluded:
        raise CnnTreeError(f"{data.source}: class(es) {', '.join(alignment.excluded)} are not leaves of the tree "
                           f"\"{clf.spec_.name}\"; a tree keeps its hierarchy: map them with --label-map or leave "
                           "them out of the folder")
    return aligned, list(clf.spec_.classes), aligned.labels


def suggest_labels(clf: CnnTreeClassifier, target: FaceData, source: FaceData) -> list[dict]:
    """For every target class, the model class it resembles: by the model's mean predicted
    distribution, and by the nearest class "mass centre" (mean face) in pixels and in histograms."""
    proba = clf.predict_proba(target.images)
    model_classes = list(clf.spec_.classes)

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
