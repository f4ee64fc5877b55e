"""Explanations of a composed classifier: what each network looks at for its decision, and a
class's heat map along its path (a tree: each node's map for the branch toward the class) or over
its members (an ensemble: each member's map for the class); the class map is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..nets.gradcam import EXPLAINERS


@dataclass
class Step:
    """One network's part in a decision: its branch toward the class, that branch's probability, its heat map."""

    network: str
    branch: str
    probability: float
    heat: np.ndarray


@dataclass
class Explanation:
    """One face: the class explained (the prediction unless asked otherwise), its probability, the
    networks' steps and the class heat map (the steps' mean)."""

    face: np.ndarray
    label: str
    probability: float
    steps: list[Step] = field(default_factory=list)
    heat: np.ndarray | None = None


def path_of(spec, name: str) -> list[tuple]:
    """(node, branch index) for every network that decides on class ``name``: a tree's nodes from
    the root down to the class, or every member of an ensemble."""
    nodes = {n.id: n for n in spec.nodes}
    if spec.kind != "tree":
        return [(n, next(k for k, g in enumerate(n.groups) if name in g)) for n in spec.nodes if name in n.classes]
    steps, node = [], spec.nodes[0]
    while True:
        k = next(k for k, g in enumerate(node.groups) if name in g)
        steps.append((node, k))
        if node.children[k] not in nodes:
            return steps
        node = nodes[node.children[k]]


def explain(clf, faces: np.ndarray, targets=None, method: str = "gradcam", mode: str | None = None) -> list[Explanation]:
    """Explanations of ``faces`` (n, 48, 48) for class indices ``targets`` (default: the
    prediction in ``mode``), with ``method`` (gradcam or saliency) per network."""
    faces = np.asarray(faces)
    outputs = clf.network_outputs(faces)
    probabilities = clf.combiner(mode).combine(outputs)
    targets = probabilities.argmax(1) if targets is None else np.asarray(targets)
    models = clf.keras_models()
    classes = list(clf.spec_.classes)
    paths = [path_of(clf.spec_, classes[t]) for t in targets]
    heat = {}  # (face, node id) -> map; one batch per network
    for node in clf.spec_.nodes:
        rows = [(i, k) for i, path in enumerate(paths) for n, k in path if n.id == node.id]
        if rows:
            index, branches = map(np.array, zip(*rows))
            maps = EXPLAINERS[method](models[node.id])(faces[index], branches)
            heat.update({(i, node.id): m for i, m in zip(index, maps)})
    found = []
    for i, path in enumerate(paths):
        steps = [Step(n.id, "+".join(n.groups[k]), float(outputs[n.id][i, k]), heat[(i, n.id)]) for n, k in path]
        mean = np.mean([s.heat for s in steps], axis=0)
        found.append(Explanation(faces[i], classes[targets[i]], float(probabilities[i, targets[i]]), steps,
                                 mean / max(float(mean.max()), 1e-12)))
    return found


def confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, per_class: int) -> dict[int, np.ndarray]:
    """For each true class, the indices of its ``per_class`` faces predicted wrong with the highest confidence."""
    predicted, confidence = probabilities.argmax(1), probabilities.max(1)
    out = {}
    for c in range(probabilities.shape[1]):
        wrong = np.flatnonzero((labels == c) & (predicted != c))
        out[c] = wrong[np.argsort(-confidence[wrong], kind="stable")[:per_class]]
    return out
