"""Hierarchical answers kept with a model: its hierarchies and their conformal thresholds, in
``climbing.json`` beside ``meta.json``. ``calibrate --coverage`` writes them; ``predict``,
``evaluate`` and ``mirror --coverage`` read them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.splits import split_prefix
from ..errors import CnnTreeError
from ..log import say
from .climbing import Hierarchy, conformal_threshold, hierarchical_metrics, risk_specificity_curve

FILE = "climbing.json"
KINDS = {"single": "single network", "voting": "voting ensemble", "tree": "tree"}
GUARANTEE = ("the answered node holds the true emotion for at least {coverage:.0%} of faces like the "
             "{faces} calibration faces ({split} of {data}); a rate over the population, not a promise for one face")


@dataclass
class Answer:
    """One face's hierarchical answer: the node, its name and its probability."""

    node: str
    label: str
    probability: float


@dataclass
class NodeAnswers:
    """A face's probabilities -> the answered node's name and probability (the mirror's labels)."""

    hierarchy: Hierarchy
    threshold: float

    def __call__(self, probabilities: np.ndarray) -> tuple[str, float]:
        row = np.asarray(probabilities, float)[None]
        j = int(self.hierarchy.answer(row, self.threshold)[0])
        return self.hierarchy.nodes[j].label, float(self.hierarchy.node_probabilities(row)[0, j])


def hierarchy_for(clf, spec=None) -> Hierarchy:
    """The hierarchy a model answers with: ``"abstain"`` (a class or any), ``spec``'s (a tree spec,
    ``--hierarchy``), else a tree model's own, else its stored default."""
    classes = list(clf.spec_.classes)
    if isinstance(spec, str) and spec == "abstain":
        return Hierarchy.flat(classes)
    if spec is not None:
        return Hierarchy.from_spec(spec, classes)
    if clf.spec_.kind == "tree":
        return Hierarchy.from_spec(clf.spec_, classes)
    stored = getattr(clf, "climbing_", None) or {}
    name = stored.get("default")
    if name and name in stored.get("hierarchies", {}):
        return Hierarchy.from_nodes(name, classes, stored["hierarchies"][name]["nodes"])
    raise CnnTreeError(f"{clf.spec_.name}: a {KINDS[clf.spec_.kind]} has no hierarchy of its own; name one with "
                       "--hierarchy trees/X.json (a tree spec over the same classes)")


def calibrate(record: dict | None, hierarchy: Hierarchy, proba: np.ndarray, labels: np.ndarray,
              coverages, where: dict) -> dict:
    """``record`` with ``hierarchy`` and the flat abstention baseline calibrated at ``coverages`` on
    these held-out faces (``where``: their split and data, kept beside each threshold)."""
    record = {"hierarchies": {}, **(record or {})}
    record.setdefault("default", hierarchy.name)
    for each in (hierarchy, Hierarchy.flat(hierarchy.classes)):
        scores = each.scores(proba, labels)
        entry = record["hierarchies"].setdefault(each.name, {})
        entry["nodes"] = each.as_nodes()
        thresholds = entry.setdefault("thresholds", {})
        for coverage in coverages:
            thresholds[f"{coverage:g}"] = {"threshold": conformal_threshold(scores, 1 - coverage),
                                           "faces": int(len(labels)), **where}
    return record


def read(folder) -> dict | None:
    """A model folder's stored hierarchies and thresholds, or None; a damaged file is one line."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        for name, entry in record["hierarchies"].items():
            for key, found in entry["thresholds"].items():
                if not 0 < float(key) < 1 or not 0 <= float(found["threshold"]) <= 1:
                    raise ValueError(f"{name}: threshold {key}")
        return record
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CnnTreeError(f"{path}: damaged ({type(error).__name__}: {error}); calibrate --coverage again") from None


def threshold(clf, hierarchy: Hierarchy, coverage: float) -> dict:
    """The stored calibration of ``hierarchy`` at ``coverage``: threshold, faces, split, data."""
    stored = (getattr(clf, "climbing_", None) or {}).get("hierarchies", {}).get(hierarchy.name, {})
    found = stored.get("thresholds", {}).get(f"{coverage:g}")
    if found is None:
        have = ", ".join(sorted(stored.get("thresholds", {}))) or "none"
        raise CnnTreeError(f"{clf.spec_.name}: no threshold for hierarchy {hierarchy.name} at coverage {coverage:g} "
                           f"(calibrated: {have}); run cnntree calibrate MODEL --coverage {coverage:g}"
                           + (" --hierarchy SPEC" if clf.spec_.kind != "tree" else "") + " (--out DIR for a shipped model)")
    return found


def answer(clf, proba: np.ndarray, hierarchy: Hierarchy, coverage: float) -> list[Answer]:
    """Each face's answer at the stored threshold for ``coverage``."""
    found = threshold(clf, hierarchy, coverage)
    nodes = hierarchy.answer(proba, found["threshold"])
    probabilities = hierarchy.node_probabilities(proba)
    return [Answer(hierarchy.nodes[j].id, hierarchy.nodes[j].label, float(probabilities[i, j]))
            for i, j in enumerate(nodes)]


def guarantee(clf, hierarchy: Hierarchy, coverage: float) -> str:
    """What the coverage promises, in one sentence."""
    found = threshold(clf, hierarchy, coverage)
    return GUARANTEE.format(coverage=coverage, faces=found["faces"], split=found.get("split", "held-out faces"),
                            data=found.get("data", "its data"))


def evaluate_answers(clf, proba: np.ndarray, labels: np.ndarray, coverage: float, hierarchy=None) -> dict:
    """Per hierarchy (the chosen one, and the flat abstention baseline beside it) the answers'
    metrics at the threshold calibrated for ``coverage``, and the risk-specificity curve's area."""
    out = {}
    chosen = hierarchy_for(clf, hierarchy)
    for each in [chosen] + ([Hierarchy.flat(chosen.classes)] if chosen.name != "abstain" else []):
        found = threshold(clf, each, coverage)
        metrics = hierarchical_metrics(each, proba, labels, found["threshold"])
        curve = risk_specificity_curve(each, proba, labels)
        out[each.name] = {**metrics, "target": coverage, "calibrated_on": {k: v for k, v in found.items()
                                                                           if k != "threshold"},
                          "haurc": curve["haurc"], "curve": curve}
    return out


def answer_metrics(clf, calibration: tuple, test: tuple, coverage: float = 0.9) -> dict:
    """What a hierarchy is for, as metrics every training logs: a classifier's answers at
    ``coverage``, calibrated on ``calibration`` (its probabilities and the labels of PublicTest) and
    measured on ``test`` (PrivateTest's): their coverage, mean specificity, and the curve's hAURC. A
    tree answers with its own hierarchy; a flat model abstains (its class, or any emotion)."""
    classes = list(clf.spec_.classes)
    hierarchy = Hierarchy.from_spec(clf.spec_, classes) if clf.spec_.kind == "tree" else Hierarchy.flat(classes)
    scores = hierarchy.scores(*calibration)
    proba, labels = test
    found = hierarchical_metrics(hierarchy, proba, labels, conformal_threshold(scores, 1 - coverage))
    level = f"{round(coverage * 100):d}"
    return {f"private_answers_coverage_{level}": found["coverage"],
            f"private_answers_specificity_{level}": found["specificity"],
            "private_answers_haurc": risk_specificity_curve(hierarchy, proba, labels)["haurc"]}


def answer_headline(found: dict, split: str) -> dict:
    """``evaluate --coverage``'s metrics under the one vocabulary: ``private_answers_coverage_90``,
    ``private_answers_specificity_90``, ``private_answers_haurc`` (the abstention baseline's as
    ``private_abstain_*``)."""
    out = {}
    for name, m in found.items():
        stem = f"{split_prefix(split)}_{'abstain' if name == 'abstain' else 'answers'}"
        level = f"{round(m['target'] * 100):d}"
        out.update({f"{stem}_coverage_{level}": m["coverage"], f"{stem}_specificity_{level}": m["specificity"],
                    f"{stem}_haurc": m["haurc"]})
    return out


def announced_hierarchy(clf, coverage: float, spec=None) -> Hierarchy:
    """The hierarchy ``clf`` answers with (``spec``, "abstain", or the model's own), its guarantee at
    ``coverage`` said once on the cnntree logger."""
    hierarchy = hierarchy_for(clf, spec)
    say(f"hierarchy {hierarchy.name}, coverage {coverage:g}: " + guarantee(clf, hierarchy, coverage))
    return hierarchy


def node_answers(clf, coverage: float, spec=None) -> NodeAnswers:
    """The mirror's labels at ``coverage``: the node of the hierarchy (``spec``, "abstain", or the
    model's own) its calibrated threshold answers; the guarantee is said once."""
    hierarchy = announced_hierarchy(clf, coverage, spec)
    return NodeAnswers(hierarchy, threshold(clf, hierarchy, coverage)["threshold"])
