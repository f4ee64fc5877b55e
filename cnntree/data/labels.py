"""Classes: renaming, merging and dropping a data set's classes to meet a spec's or a model's."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import CnnTreeError
from ..spec.schema import did_you_mean
from .faces import FaceData


def relabel(data: FaceData, classes, drop=(), label_map=None) -> FaceData:
    """Rename or merge source classes (``label_map``), drop some, then index by ``classes``.

    Every remaining source class must be one of ``classes`` and every class must keep at
    least one image: nothing is dropped silently.
    """
    label_map = label_map or {}
    for source_name in list(label_map) + list(drop):
        if source_name not in data.classes and source_name not in label_map.values():
            raise CnnTreeError(f"{data.source}: label map or drop names \"{source_name}\", which is not a class "
                               f"of the data{did_you_mean(source_name, data.classes)}; "
                               f"data classes: {', '.join(data.classes)}")
    mapped = [label_map.get(c, c) for c in data.classes]
    index = {name: i for i, name in enumerate(classes)}
    keep_source = [m not in drop for m in mapped]
    for m, keep in zip(mapped, keep_source):
        if keep and m not in index:
            raise CnnTreeError(f"{data.source}: data class \"{m}\" is not in the spec's classes "
                               f"({', '.join(classes)}); drop it (data.drop) or map it (data.label_map)")
    lookup = np.array([index[m] if k else -1 for m, k in zip(mapped, keep_source)], np.int64)
    new_labels = lookup[data.labels]
    kept = data.subset(new_labels >= 0)
    out = replace(kept, labels=new_labels[new_labels >= 0], classes=tuple(classes))
    empty = [c for c, n in out.counts().items() if n == 0]
    if empty:
        raise CnnTreeError(f"{data.source}: class{'es' if len(empty) > 1 else ''} {', '.join(empty)} "
                           "ha{} no images after the label map and drops".format("ve" if len(empty) > 1 else "s"))
    return out


def parse_label_map(text: str | None) -> dict[str, str]:
    """``"anger=angry,sadness=sad"`` -> ``{"anger": "angry", "sadness": "sad"}`` (target=model)."""
    out = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise CnnTreeError(f"--label-map: \"{item}\" is not of the form target_class=model_class")
        out[source.strip()] = target.strip()
    return out


@dataclass
class Alignment:
    """How a target data set's classes meet a model's."""

    mapped: dict  # target class -> model class
    excluded: list  # target classes with no model class (left out of direct evaluation)
    missing: list  # model classes the target never shows

    def as_dict(self) -> dict:
        """The alignment as JSON-ready lists."""
        return {"mapped": self.mapped, "excluded": self.excluded, "missing": self.missing}


def _check_targets(data: FaceData, label_map: dict) -> None:
    for name in label_map:
        if name not in data.classes:
            raise CnnTreeError(f"--label-map: \"{name}\" is not a class of {data.source}"
                               f"{did_you_mean(name, data.classes)}; its classes: {', '.join(data.classes)}")


def align(data: FaceData, model_classes, label_map: dict) -> tuple[FaceData, Alignment]:
    """The target images whose class maps to a model class, labelled by model class index."""
    _check_targets(data, label_map)
    for name in label_map.values():
        if name not in model_classes:
            raise CnnTreeError(f"--label-map: \"{name}\" is not a class of the model"
                               f"{did_you_mean(name, model_classes)}; its classes: {', '.join(model_classes)}")
    mapped = {c: label_map.get(c, c) for c in data.classes if label_map.get(c, c) in model_classes}
    excluded = [c for c in data.classes if c not in mapped]
    if not mapped:
        raise CnnTreeError(f"{data.source}: none of its classes ({', '.join(data.classes)}) is a class of the model "
                           f"({', '.join(model_classes)}); give --label-map target=model,...")
    lookup = np.array([list(model_classes).index(mapped[c]) if c in mapped else -1 for c in data.classes])
    labels = lookup[data.labels]
    kept = data.subset(labels >= 0)
    kept = FaceData(kept.images, labels[labels >= 0], tuple(model_classes), kept.splits, kept.names, kept.source)
    present = set(mapped.values())
    return kept, Alignment(mapped, excluded, [c for c in model_classes if c not in present])


def target_classes(data: FaceData, label_map: dict) -> tuple[list[str], np.ndarray]:
    """The target's own classes after renaming (merges allowed), and every image's index into them."""
    _check_targets(data, label_map)
    names = [label_map.get(c, c) for c in data.classes]
    classes = list(dict.fromkeys(names))
    return classes, np.array([classes.index(n) for n in names])[data.labels]
