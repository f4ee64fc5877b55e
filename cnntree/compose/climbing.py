"""Answers at the level one is sure of: conformal climbing (Goren, Galil and El-Yaniv, NeurIPS 2024,
"Hierarchical Selective Classification").

From a face's most probable class, climb the path to the root and answer the first node whose
probability (the sum of its classes' probabilities) exceeds a threshold; the root, every class,
when none does. The threshold is calibrated by split conformal prediction on held-out faces, so
that the answered node holds the true class with probability at least 1 - alpha over the
population (a finite-sample guarantee for faces drawn like the calibration faces; not a promise
about any one face).

The rule reads class probabilities only, so it applies to any classifier: a tree with its own
hierarchy, and a flat network or ensemble with any spec's hierarchy. The flat network that
abstains (answers its class or "any of them") is the same rule on the hierarchy of depth one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import CnnTreeError

ROOT = 0  # the root's index in every hierarchy


def group_label(classes) -> str:
    """``angry, sad or neutral``: a node named by its classes."""
    classes = list(classes)
    return classes[0] if len(classes) == 1 else ", ".join(classes[:-1]) + " or " + classes[-1]


@dataclass(frozen=True)
class Node:
    """One node of a hierarchy: its id, its name for people, and the class indices under it."""

    id: str
    label: str
    leaves: tuple[int, ...]
    parent: int | None


class Hierarchy:
    """A tree over a classifier's classes: the root (index 0) holds every class, each class is a
    leaf node. Nodes are kept root first; ``path[k]`` climbs from class k's leaf to the root."""

    def __init__(self, name: str, classes, nodes: list[Node]):
        self.name, self.classes, self.nodes = name, list(classes), nodes
        k = len(self.classes)
        if nodes[ROOT].leaves != tuple(range(k)):
            raise CnnTreeError(f"hierarchy {name}: its root must hold every class of the model")
        self.membership = np.zeros((k, len(nodes)))
        for j, node in enumerate(nodes):
            self.membership[list(node.leaves), j] = 1.0
        self.leaf_of = {}
        for j, node in enumerate(nodes):
            if len(node.leaves) == 1 and j != ROOT:
                self.leaf_of[node.leaves[0]] = j
        if sorted(self.leaf_of) != list(range(k)):
            raise CnnTreeError(f"hierarchy {name}: every class of the model must be a leaf exactly once")
        self.path = [self._climb(self.leaf_of[c]) for c in range(k)]
        depth = max(map(len, self.path))
        self.padded = np.array([p + [ROOT] * (depth - len(p)) for p in self.path])  # (classes, depth)
        self.specificity = np.array([1 - math.log2(len(n.leaves)) / math.log2(k) for n in nodes])
        self.height = np.zeros(len(nodes), int)
        for c in range(k):
            for h, j in enumerate(self.path[c]):
                self.height[j] = max(self.height[j], h)

    def _climb(self, j: int) -> list[int]:
        path = [j]
        while self.nodes[path[-1]].parent is not None:
            path.append(self.nodes[path[-1]].parent)
        return path

    @classmethod
    def flat(cls, classes) -> Hierarchy:
        """The hierarchy of depth one: a class, or any of them (the abstention baseline)."""
        nodes = [Node("any", "any emotion", tuple(range(len(classes))), None)]
        nodes += [Node(c, c, (k,), ROOT) for k, c in enumerate(classes)]
        return cls("abstain", classes, nodes)

    @classmethod
    def from_nodes(cls, name: str, classes, raw_nodes: list[dict]) -> Hierarchy:
        """From spec-like nodes ``{"id", "children": [node ids or class names], "label"?}``; the root
        is the node no other node names."""
        classes = list(classes)
        by_id = {n["id"]: n for n in raw_nodes}
        named = {c for n in raw_nodes for c in n["children"]}
        roots = [n["id"] for n in raw_nodes if n["id"] not in named]
        if len(roots) != 1:
            raise CnnTreeError(f"hierarchy {name}: expected one root node, found {len(roots)}")
        nodes: list[Node] = []

        def leaves_of(child: str) -> list[int]:
            if child in by_id:
                return [c for grandchild in by_id[child]["children"] for c in leaves_of(grandchild)]
            if child not in classes:
                raise CnnTreeError(f"hierarchy {name}: \"{child}\" is not a class of the model ({', '.join(classes)})")
            return [classes.index(child)]

        def add(child: str, parent: int | None) -> None:
            leaves = tuple(sorted(leaves_of(child)))
            if child in by_id:
                label = by_id[child].get("label") or ("any emotion" if parent is None else
                                                      group_label(classes[k] for k in leaves))
                nodes.append(Node(child, label, leaves, parent))
                here = len(nodes) - 1
                for grandchild in by_id[child]["children"]:
                    add(grandchild, here)
            else:
                nodes.append(Node(child, child, leaves, parent))

        add(roots[0], None)
        return cls(name, classes, nodes)

    @classmethod
    def from_spec(cls, spec, classes) -> Hierarchy:
        """A tree spec's hierarchy over ``classes`` (a model's), with the nodes' ``label`` names."""
        if spec.kind != "tree":
            kind = {"single": "single network", "voting": "voting ensemble"}.get(spec.kind, spec.kind)
            raise CnnTreeError(f"{spec.name}: a {kind} has no hierarchy; give a tree spec (--hierarchy trees/X.json)")
        if sorted(spec.classes) != sorted(classes):
            raise CnnTreeError(f"{spec.name}: its classes ({', '.join(spec.classes)}) are not the model's "
                               f"({', '.join(classes)})")
        labels = {raw["id"]: raw.get("label") for raw in spec.raw.get("nodes", [])}
        return cls.from_nodes(spec.name, classes, [{"id": n.id, "children": list(n.children), "label": labels.get(n.id)}
                                                   for n in spec.nodes])

    def as_nodes(self) -> list[dict]:
        """The internal nodes as spec-like dicts, for :meth:`from_nodes` (stored with a model)."""
        out = []
        for j, node in enumerate(self.nodes):
            if len(node.leaves) > 1 or j == ROOT:
                children = [self.nodes[i].id for i, n in enumerate(self.nodes) if n.parent == j]
                out.append({"id": node.id, "label": node.label, "children": children})
        return out

    def node_probabilities(self, proba: np.ndarray) -> np.ndarray:
        """(faces, nodes): each node's probability, the sum of its classes'."""
        return np.asarray(proba, float) @ self.membership

    def lca(self, a: int, b: int) -> int:
        """The lowest common ancestor of classes ``a`` and ``b`` (a node index)."""
        above = set(self.path[b])
        return next(j for j in self.path[a] if j in above)

    def answer(self, proba: np.ndarray, threshold: float) -> np.ndarray:
        """Climbing: per face, the first node on the path from its most probable class up whose
        probability exceeds ``threshold``; the root when none does."""
        on_path = np.take_along_axis(self.node_probabilities(proba), self.padded[np.argmax(proba, axis=1)], axis=1)
        exceeds = on_path > threshold
        first = np.where(exceeds.any(axis=1), exceeds.argmax(axis=1), -1)
        nodes = self.padded[np.argmax(proba, axis=1), np.maximum(first, 0)]
        return np.where(first >= 0, nodes, ROOT)

    def scores(self, proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The conformal score of each calibration face: the largest node probability on the
        climbing path strictly below the lowest common ancestor of prediction and truth (0 when
        the prediction is right). The answer holds the truth exactly when the score <= threshold."""
        probabilities = self.node_probabilities(proba)
        predicted = np.argmax(proba, axis=1)
        out = np.zeros(len(labels))
        for i, (p, t) in enumerate(zip(predicted, labels)):
            if p != t:
                top = self.lca(int(p), int(t))
                below = self.path[p][:self.path[p].index(top)]
                out[i] = probabilities[i, below].max()
        return out

    def contains(self, nodes: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Whether each answered node holds the true class."""
        return self.membership[np.asarray(labels), np.asarray(nodes)] > 0


def conformal_threshold(scores: np.ndarray, alpha: float) -> float:
    """Split conformal: the ceil((n + 1)(1 - alpha))-th smallest score, so that a new face's score
    is at most it with probability >= 1 - alpha; 1.0 (always the root) when n is too small."""
    if not 0 < alpha < 1:
        raise CnnTreeError(f"coverage must lie strictly between 0 and 1, got {1 - alpha:g}")
    n = len(scores)
    rank = math.ceil((n + 1) * (1 - alpha))
    return 1.0 if rank > n else float(np.sort(scores)[rank - 1])


def hierarchical_metrics(hierarchy: Hierarchy, proba: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """The answers' coverage (overall and per true class), mean specificity, hierarchical
    precision, recall and F1 (hiclass's micro average over the nodes below the root), and the
    top-1 mistakes' severity (mean height of the lowest common ancestor)."""
    labels = np.asarray(labels)
    nodes = hierarchy.answer(proba, threshold)
    right = hierarchy.contains(nodes, labels)
    predicted_sets = [set(hierarchy._climb(int(j))[:-1]) for j in nodes]
    true_sets = [set(hierarchy.path[t][:-1]) for t in labels]
    overlap = sum(len(p & t) for p, t in zip(predicted_sets, true_sets))
    precision = overlap / max(1, sum(map(len, predicted_sets)))
    recall = overlap / max(1, sum(map(len, true_sets)))
    predicted = np.argmax(proba, axis=1)
    mistakes = [hierarchy.height[hierarchy.lca(int(p), int(t))] for p, t in zip(predicted, labels) if p != t]
    return {"threshold": float(threshold), "coverage": float(right.mean()),
            "coverage_per_class": {c: float(right[labels == k].mean()) for k, c in enumerate(hierarchy.classes)
                                   if (labels == k).any()},
            "specificity": float(hierarchy.specificity[nodes].mean()),
            "leaf_answers": float(np.isin(nodes, list(hierarchy.leaf_of.values())).mean()),
            "root_answers": float((nodes == ROOT).mean()),
            "h_precision": precision, "h_recall": recall,
            "h_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "mistake_severity": float(np.mean(mistakes)) if mistakes else 0.0}


def risk_specificity_curve(hierarchy: Hierarchy, proba: np.ndarray, labels: np.ndarray, points: int = 200) -> dict:
    """The hierarchical risk-coverage curve: for thresholds from 0 (every answer a class) to 1 (every
    answer the root), the mean specificity of the answers and their risk (the share that miss the
    true class); hAURC is the area under risk over specificity (lower is better)."""
    on_paths = np.unique(np.quantile(hierarchy.node_probabilities(proba), np.linspace(0, 1, points)))
    thresholds = np.unique(np.concatenate([[0.0], on_paths, [1.0]]))
    specificity, risk = [], []
    for threshold in thresholds:
        nodes = hierarchy.answer(proba, threshold)
        specificity.append(float(hierarchy.specificity[nodes].mean()))
        risk.append(float(1 - hierarchy.contains(nodes, labels).mean()))
    order = np.argsort(specificity, kind="stable")
    xs, ys = np.array(specificity)[order], np.array(risk)[order]
    return {"specificity": xs.tolist(), "risk": ys.tolist(), "haurc": float(np.trapezoid(ys, xs))}
