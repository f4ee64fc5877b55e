"""Hierarchical answers (conformal climbing): the threshold, the guarantee, the rule's shape, and
answers that depend on class probabilities only."""

import numpy as np
import pytest

from cnntree.compose import answers
from cnntree.compose.climbing import ROOT, Hierarchy, conformal_threshold, hierarchical_metrics
from cnntree.spec import load_spec

from .helpers import MORAVCIK

CLASSES = ["a", "b", "c"]
SMALL = Hierarchy.from_nodes("small", CLASSES, [{"id": "top", "children": ["ab", "c"]},
                                                 {"id": "ab", "children": ["a", "b"], "label": "a or b"}])


def test_the_threshold_by_hand_on_ten_faces():
    scores = np.array([0, 0, 0.3, 0.5, 0, 0.7, 0.2, 0, 0.9, 0.4])
    assert conformal_threshold(scores, 0.2) == 0.7  # ceil(11 x 0.8) = 9th smallest
    assert conformal_threshold(scores, 0.3) == 0.5  # ceil(11 x 0.7) = 8th
    assert conformal_threshold(scores, 0.05) == 1.0  # ceil(11 x 0.95) = 11 > 10 faces: always the root


def test_scores_and_answers_by_hand():
    proba = np.array([[0.5, 0.3, 0.2]] * 3)
    assert SMALL.scores(proba, np.array([0, 1, 2])).tolist() == [0.0, 0.5, 0.8]  # right; below "ab"; below the root
    names = [[SMALL.nodes[j].label for j in SMALL.answer(proba[:1], t)] for t in (0.4, 0.5, 0.8, 0.95)]
    assert names == [["a"], ["a or b"], ["any emotion"], ["any emotion"]]  # 0.8 does not exceed 0.8: the root


def test_answers_only_coarsen_as_the_threshold_rises():
    hierarchy = Hierarchy.from_spec(load_spec(MORAVCIK), load_spec(MORAVCIK).classes)
    proba = np.random.default_rng(1).dirichlet(np.full(7, 0.5), 500)
    previous = hierarchy.answer(proba, 0.0)
    for threshold in np.linspace(0.01, 1.0, 40):
        now = hierarchy.answer(proba, threshold)
        below = hierarchy.membership[:, previous].T > 0  # the earlier answer's classes ...
        assert np.all(~below | (hierarchy.membership[:, now].T > 0))  # ... all lie in the new one
        previous = now
    assert np.all(previous == ROOT)


def test_the_coverage_guarantee_holds_over_2000_draws():
    """A model whose probabilities are whatever they are (truth drawn from them), calibrated on
    100 faces, answers one new face: over 2,000 draws the answers hold the truth at the promised
    rate, within sampling error (and within conformal's 1 / (n + 1) above it)."""
    rng = np.random.default_rng(0)
    hierarchy = Hierarchy.from_spec(load_spec(MORAVCIK), load_spec(MORAVCIK).classes)
    alpha, n, draws = 0.1, 100, 2000
    proba = rng.dirichlet(np.full(7, 0.4), (draws, n + 1))
    truth = (proba.cumsum(axis=2) > rng.random((draws, n + 1, 1))).argmax(axis=2)
    held = []
    for d in range(draws):
        threshold = conformal_threshold(hierarchy.scores(proba[d, :n], truth[d, :n]), alpha)
        held.append(hierarchy.contains(hierarchy.answer(proba[d, n:], threshold), truth[d, n:])[0])
    error = 3 * np.sqrt(alpha * (1 - alpha) / draws)
    assert 1 - alpha - error <= np.mean(held) <= 1 - alpha + 1 / (n + 1) + error


def test_metrics_by_hand():
    proba = np.array([[0.6, 0.3, 0.1], [0.3, 0.4, 0.3], [0.1, 0.1, 0.8]])
    labels = np.array([1, 1, 2])
    m = hierarchical_metrics(SMALL, proba, labels, threshold=0.65)
    # answers: face 0 climbs a (0.6) -> ab (0.9 > 0.65); face 1: b 0.4 -> ab 0.7; face 2: c 0.8
    assert m["coverage"] == 1.0 and m["leaf_answers"] == pytest.approx(1 / 3)
    assert m["specificity"] == pytest.approx((2 * (1 - np.log2(2) / np.log2(3)) + 1) / 3)
    # hiclass: predicted {ab}, {ab}, {c}; true {b, ab}, {b, ab}, {c}: precision 3/3, recall 3/5
    assert m["h_precision"] == 1.0 and m["h_recall"] == pytest.approx(0.6)
    assert m["mistake_severity"] == 1.0  # face 0: a for b, whose lowest common ancestor is ab, height 1


def test_a_flat_network_and_a_tree_with_the_same_probabilities_answer_alike(tiny_model):
    """The rule reads class probabilities only: a tree with its own hierarchy and a flat model
    told that hierarchy (``--hierarchy``) give the same answers for the same probabilities."""
    from cnntree import load_model
    from cnntree.spec import parse_spec

    tree = load_model(tiny_model)
    faces = np.random.default_rng(0).integers(0, 255, (40, 48, 48)).astype(np.uint8)
    proba, labels = tree.predict_proba(faces), np.arange(40) % 7
    own = answers.hierarchy_for(tree)
    tree.climbing_ = answers.calibrate(None, own, proba, labels, [0.8], {"split": "test"})
    flat = load_model("small")
    told = answers.hierarchy_for(flat, parse_spec(tree.spec_.raw))
    flat.climbing_ = answers.calibrate(None, told, proba, labels, [0.8], {"split": "test"})
    assert [a.label for a in answers.answer(tree, proba, own, 0.8)] == \
        [a.label for a in answers.answer(flat, proba, told, 0.8)]
    with pytest.raises(Exception, match="no threshold for hierarchy"):
        answers.answer(flat, proba, told, 0.9)


def test_a_flat_model_needs_a_hierarchy():
    from cnntree import CnnTreeError, load_model

    with pytest.raises(CnnTreeError, match="has no hierarchy of its own; name one with --hierarchy"):
        answers.hierarchy_for(load_model("small"))


def test_the_shipped_default_answers_with_its_calibrated_hierarchy(sample):
    """A fresh install answers ``predict --coverage``: the shipped model carries the thresholds of
    its hierarchies, calibrated on FER2013's PublicTest."""
    from cnntree import load_model

    clf = load_model("default")
    hierarchy = answers.hierarchy_for(clf)
    assert hierarchy.name == clf.climbing_["default"] and len(hierarchy.nodes) > 8
    found = answers.threshold(clf, hierarchy, 0.9)
    assert found["split"] == "PublicTest" and found["faces"] == 3589 and 0 < found["threshold"] < 1
    faces = sample.images[sample.splits == "PrivateTest"][:80]
    named = clf.predict_node(faces, coverage=0.9)
    labels = {node.label for node in hierarchy.nodes}
    assert set(named) <= labels and any(" or " in n for n in named) and any(n in clf.classes_ for n in named)
    assert set(clf.predict_node(faces, coverage=0.9, hierarchy="abstain")) <= set(clf.classes_) | {"any emotion"}
