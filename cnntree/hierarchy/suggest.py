"""Hierarchies from confusions: which classes a flat model mixes up should share a subtree.

The affinity of two classes is how often the model confuses them (the row-normalised confusion
matrix, symmetrised). Two small strategy classes turn it into a hierarchy: ``Agglomerative``
merges the most confused groups first (average linkage); ``Spectral`` splits the classes top-down
into the groups that are least confused with each other. Either gives nested lists of class names,
which ``tree_spec`` writes as a spec.
"""

from __future__ import annotations

import numpy as np

from ..errors import CnnTreeError


def weight_affinity(clf) -> np.ndarray:
    """Symmetric, zero-diagonal affinity in [0, 1] from a single network's output layer (NBDT's
    induction): the cosine similarity of two classes' weight vectors, mapped from [-1, 1]."""
    from ..nets.warmstart import weighted_layers

    network = clf.networks_[clf.spec_.root.id]
    if clf.spec_.kind != "single" or not hasattr(network, "model"):
        raise CnnTreeError(f"{clf.spec_.name}: --method weights reads a single network's output layer (a saved "
                           f"Keras model); this is a {clf.spec_.kind} ({network.name})")
    kernel = weighted_layers(network.model)[-1].get_weights()[0]
    vectors = kernel.reshape(-1, kernel.shape[-1]).T  # one row per class
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    affinity = (vectors @ vectors.T + 1) / 2
    np.fill_diagonal(affinity, 0.0)
    return affinity


def confusion_affinity(confusion) -> np.ndarray:
    """Symmetric, zero-diagonal affinity in [0, 1]: the mean of the two confusion rates."""
    matrix = np.asarray(confusion, float)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    affinity = (rates + rates.T) / 2
    np.fill_diagonal(affinity, 0.0)
    return affinity


class Agglomerative:
    """Bottom-up: merge the two groups with the highest mean affinity, until one is left; then
    a node with fewer than ``max_children`` children absorbs the children of its most confused
    (latest-merged) sub-node."""

    def __init__(self, max_children: int = 2):
        self.max_children = max_children

    def build(self, affinity: np.ndarray, classes: list[str]):
        """The hierarchy for ``classes`` as nested lists of class names."""
        groups = [(name, [i], 0.0) for i, name in enumerate(classes)]  # (tree, members, merge affinity)
        while len(groups) > 1:
            pairs = [(affinity[np.ix_(a[1], b[1])].mean(), i, j)
                     for i, a in enumerate(groups) for j, b in enumerate(groups) if i < j]
            score, i, j = max(pairs)
            merged = ([groups[i], groups[j]], groups[i][1] + groups[j][1], score)
            groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [merged]
        return self._widen(groups[0])

    def _widen(self, group):
        tree, members, score = group
        if isinstance(tree, str):
            return tree
        children = list(tree)
        while len(children) < self.max_children:
            inner = [c for c in children if not isinstance(c[0], str)]
            if not inner:
                break
            closest = max(inner, key=lambda c: c[2])  # the sub-node whose classes are most confused
            if len(children) - 1 + len(closest[0]) > self.max_children:
                break
            children.remove(closest)
            children.extend(closest[0])
        return [self._widen(c) for c in children]


class Spectral:
    """Top-down: split the classes into ``max_children`` groups by spectral clustering of the
    affinity (the least confused groups apart), then split each group the same way."""

    def __init__(self, max_children: int = 2, seed: int = 0):
        self.max_children = max_children
        self.seed = seed

    def build(self, affinity: np.ndarray, classes: list[str]):
        """The hierarchy for ``classes`` as nested lists of class names."""
        return self._split(affinity, list(range(len(classes))), classes)

    def _split(self, affinity, members, classes):
        if len(members) == 1:
            return classes[members[0]]
        if len(members) <= self.max_children:
            return [classes[m] for m in members]
        from sklearn.cluster import SpectralClustering

        sub = affinity[np.ix_(members, members)] + 1e-6  # connected, so the embedding is defined
        np.fill_diagonal(sub, 1.0)
        labels = SpectralClustering(n_clusters=self.max_children, affinity="precomputed",
                                    random_state=self.seed).fit_predict(sub)
        parts = [[m for m, label in zip(members, labels) if label == k] for k in range(self.max_children)]
        parts = [p for p in parts if p]
        if len(parts) == 1:  # a degenerate split: peel off the least confused class
            weakest = min(members, key=lambda m: affinity[m, members].sum())
            parts = [[weakest], [m for m in members if m != weakest]]
        return [self._split(affinity, p, classes) for p in parts]


METHODS = {"agglomerative": Agglomerative, "spectral": Spectral, "weights": Agglomerative}


def suggest_hierarchy(affinity, classes, method: str = "agglomerative", max_children: int = 2):
    """Nested lists of class names (a class name is a leaf) from a class affinity."""
    if method not in METHODS:
        raise CnnTreeError(f"--method: unknown method \"{method}\"; use one of {', '.join(METHODS)}")
    if max_children < 2:
        raise CnnTreeError(f"--max-children: {max_children}; a node needs at least 2 children")
    return METHODS[method](max_children).build(np.asarray(affinity, float), list(classes))


def tree_spec(hierarchy, name: str, source_raw: dict, description: str) -> dict:
    """A tree spec whose nodes follow ``hierarchy`` and whose node defaults are the source model's
    (model, augmentation, training); balancing is left to the spec default (oversampling), since a
    node such as angry-vs-disgust is far more skewed than the flat problem was."""
    nodes, queue, count = [], [hierarchy], 0
    ids = {}
    while queue:  # breadth first: NN1 is the root, then each level left to right
        group = queue.pop(0)
        count += 1
        ids[id(group)] = f"NN{count}"
        nodes.append(group)
        queue.extend(child for child in group if not isinstance(child, str))
    spec = {"name": name, "kind": "tree", "description": description}
    for key in ("classes", "data"):
        if key in source_raw:
            spec[key] = source_raw[key]
    spec["defaults"] = {k: v for k, v in source_raw.get("defaults", {}).items() if k != "balance"}
    spec["nodes"] = [{"id": ids[id(group)], "children": [c if isinstance(c, str) else ids[id(c)] for c in group]}
                     for group in nodes]
    return spec


def suggest_spec(clf, spec, split: str, method: str, max_children: int, out, init_from=None) -> dict:
    """Count ``clf``'s confusions on ``split`` of ``spec``'s data (Validation or a test split), build
    a hierarchy from them (or, with ``weights``, from its output layer) and write it as a validated
    spec at ``out`` (a picture beside it); ``init_from`` becomes the spec's ``init.from``. Returns the
    spec, the written files and the most confused pairs."""
    if init_from and clf.spec_.kind != "single":
        raise CnnTreeError(f"--init: {init_from} is a {clf.spec_.kind}; init.from starts a tree's networks from a "
                           "single network's trunk (suggest from it without --init, or from one of its networks)")
    import json
    import re
    from pathlib import Path

    from sklearn.metrics import confusion_matrix

    from ..data import load_for_spec
    from ..files import write_text_atomically
    from ..plots import draw_hierarchy
    from ..spec import parse_spec

    if clf.spec_.kind == "tree":
        raise CnnTreeError(f"{clf.spec_.name}: a tree; suggest reads the confusions of a flat classifier "
                           "(a single network or a voting ensemble)")
    data, splits = load_for_spec(spec)
    index = splits.validation if split == "Validation" else splits.tests.get(split)
    if index is None:
        raise CnnTreeError(f"--split: no split \"{split}\"; use Validation or one of {', '.join(splits.tests)}")
    classes = list(clf.spec_.classes)
    confusion = confusion_matrix(data.labels[index], clf.predict_proba(data.images[index]).argmax(axis=1),
                                 labels=range(len(classes)))
    out = Path(out)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", out.stem).strip("._-")[:64] or "suggested"
    affinity = weight_affinity(clf) if method == "weights" else confusion_affinity(confusion)
    what = (f"the output-layer class weights of {clf.spec_.name}" if method == "weights" else
            f"the confusions of {clf.spec_.name} on {split} ({len(index)} faces of {Path(data.source).name})")
    raw = tree_spec(suggest_hierarchy(affinity, classes, method, max_children), name, clf.spec_.raw,
                    f"Suggested by cnntree suggest ({method}, at most {max_children} children) from {what}.")
    if init_from:
        raw["init"] = {"from": str(init_from)}
    suggested = parse_spec(raw, source=str(out), base_dir=out.parent)  # what is written must validate
    write_text_atomically(out, json.dumps(raw, indent=2) + "\n")
    picture = draw_hierarchy(suggested, out.with_suffix(".png"))
    affinity = confusion_affinity(confusion)
    pairs = sorted(((float(affinity[i, j]), classes[i], classes[j]) for i in range(len(classes))
                    for j in range(i + 1, len(classes))), reverse=True)[:5]
    return {"spec": suggested, "files": [out, picture], "pairs": pairs, "data": data.source, "split": split,
            "faces": int(len(index))}
