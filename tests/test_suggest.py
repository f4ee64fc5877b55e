"""Hierarchies from confusions: the strategies on confusion matrices with a known answer, and the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

from cnntree.cli import main
from cnntree.errors import CnnTreeError
from cnntree.hierarchy.suggest import confusion_affinity, suggest_hierarchy, tree_spec
from cnntree.spec import load_spec, parse_spec

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def blocks():
    """Confusions inside {angry, disgust}, {sad, neutral, fear} and {happy, surprise}, little across."""
    c = np.eye(7) * 100 + 1
    for group, rate in ((("angry", "disgust"), 40), (("sad", "neutral"), 30), (("fear", "sad"), 12),
                        (("fear", "neutral"), 10), (("happy", "surprise"), 20)):
        i, j = CLASSES.index(group[0]), CLASSES.index(group[1])
        c[i, j] = c[j, i] = rate
    return c


def leaves(tree):
    return [tree] if isinstance(tree, str) else [x for child in tree for x in leaves(child)]


def subtrees(tree):
    if isinstance(tree, str):
        return []
    return [sorted(leaves(tree))] + [s for child in tree for s in subtrees(child)]


def test_affinity_is_symmetric_and_row_normalised():
    a = confusion_affinity([[8, 2], [0, 10]])
    np.testing.assert_allclose(a, [[0, 0.1], [0.1, 0]])


@pytest.mark.parametrize("method", ["agglomerative", "spectral"])
def test_confused_classes_share_a_subtree(method):
    tree = suggest_hierarchy(confusion_affinity(blocks()), CLASSES, method, 2)
    assert sorted(leaves(tree)) == sorted(CLASSES)
    groups = subtrees(tree)
    assert ["angry", "disgust"] in groups and ["happy", "surprise"] in groups
    assert ["fear", "neutral", "sad"] in groups
    assert all(len(t) == 2 for t in [tree] + [s for s in _internal(tree)])  # binary


def _internal(tree):
    return [] if isinstance(tree, str) else [c for c in tree if not isinstance(c, str)] + \
        [x for c in tree for x in _internal(c)]


def test_the_most_confused_pair_merges_first():
    tree = suggest_hierarchy(confusion_affinity(blocks()), CLASSES, "agglomerative", 2)
    assert ["angry", "disgust"] in [sorted(t) for t in _internal(tree) if all(isinstance(c, str) for c in t)]


@pytest.mark.parametrize("method", ["agglomerative", "spectral"])
def test_wider_nodes_respect_max_children(method):
    tree = suggest_hierarchy(confusion_affinity(blocks()), CLASSES, method, 3)
    assert sorted(leaves(tree)) == sorted(CLASSES)
    assert all(2 <= len(t) <= 3 for t in [tree] + _internal(tree))
    assert len(tree) == 3  # the three blocks at the root


def test_bad_settings():
    with pytest.raises(CnnTreeError, match='unknown method "kmeans"'):
        suggest_hierarchy(confusion_affinity(blocks()), CLASSES, "kmeans")
    with pytest.raises(CnnTreeError, match="--max-children: 1"):
        suggest_hierarchy(confusion_affinity(blocks()), CLASSES, "agglomerative", 1)


def test_the_written_spec_inherits_the_source_settings_and_validates():
    source = {"name": "flat", "kind": "single", "data": {"path": "sample"},
              "defaults": {"model": {"name": "lenet", "filters": [4, 8], "dense": 8}, "train": {"epochs": 3},
                           "balance": {"strategy": "none"}}}
    raw = tree_spec(suggest_hierarchy(confusion_affinity(blocks()), CLASSES, "agglomerative", 2), "s", source, "d")
    spec = parse_spec(raw)
    assert spec.kind == "tree" and len(spec.nodes) == 6 and spec.nodes[0].id == "NN1"
    assert all(n.model["name"] == "lenet" and n.train["epochs"] == 3 for n in spec.nodes)
    assert all(n.balance["strategy"] == "oversample" for n in spec.nodes)


@pytest.mark.slow
def test_suggest_cli_writes_a_spec_that_validates_and_draws(tmp_path, capsys, sample):
    from cnntree import CnnTreeClassifier, save_model

    from .helpers import TINY_MODEL

    flat = parse_spec({"name": "flat", "kind": "single",
                       "defaults": {"model": TINY_MODEL, "train": {"epochs": 1, "batch_size": 32, "seed": 1}}})
    train, val = sample.splits == "Training", sample.splits == "PublicTest"
    model = save_model(CnnTreeClassifier(flat, work_dir=tmp_path / "work").fit(
        sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val])), tmp_path / "m")
    out = tmp_path / "trees" / "mine.json"
    assert main(["suggest", str(model), "--out", str(out), "--method", "spectral", "--max-children", "3"]) == 0
    text = capsys.readouterr().out
    assert "most confused pairs:" in text and f"wrote {out}" in text
    spec = load_spec(out)
    assert spec.kind == "tree" and sorted(spec.classes) == sorted(CLASSES)
    assert json.loads(out.read_text())["name"] == "mine" and out.with_suffix(".png").exists()
    assert main(["validate", str(out)]) == 0


def test_suggest_refuses_trees_and_unknown_sources(tmp_path, capsys, monkeypatch, tiny_model):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert main(["suggest", str(tiny_model), "--out", str(tmp_path / "x.json")]) == 2
    assert "a tree; suggest reads the confusions of a flat classifier" in capsys.readouterr().err
    assert main(["suggest", "0123abc", "--out", str(tmp_path / "x.json")]) == 2
    assert "0123abc: no such model directory (nor a shipped model, cnntree models, or an MLflow run id" in \
        capsys.readouterr().err
    run_id = "0123456789abcdef0123456789abcdef"
    assert main(["suggest", run_id, "--out", str(tmp_path / "x.json")]) == 2  # a run id, but no such store
    assert f"{run_id}: neither a model directory" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "mlflow.db").exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the local store: looking a name up does not create runs/
    assert main(["suggest", "not-a-model", "--out", str(tmp_path / "x.json")]) == 2
    assert not Path("runs").exists()


def test_weights_induce_the_hierarchy_of_alike_output_vectors(tmp_path, capsys):
    """NBDT's induction: classes whose output-layer weight vectors point the same way share a subtree;
    --init makes the written spec start from the model."""
    from cnntree import CnnTreeClassifier, save_model
    from cnntree.hierarchy.suggest import weight_affinity
    from cnntree.nets.models import create_model
    from cnntree.nets.warmstart import weighted_layers

    from .helpers import TINY_MODEL

    net = create_model(n_outputs=7, **TINY_MODEL)
    head = weighted_layers(net)[-1]
    kernel, bias = head.get_weights()
    rng = np.random.default_rng(0)
    centres = {0: rng.normal(size=kernel.shape[0]), 1: rng.normal(size=kernel.shape[0]),
               2: rng.normal(size=kernel.shape[0])}
    family = {"angry": 0, "disgust": 0, "fear": 1, "sad": 1, "neutral": 1, "happy": 2, "surprise": 2}
    for k, name in enumerate(CLASSES):
        kernel[:, k] = centres[family[name]] + 0.1 * rng.normal(size=kernel.shape[0])
    head.set_weights([kernel, bias])
    flat = parse_spec({"name": "flat", "kind": "single", "defaults": {"model": TINY_MODEL}})
    clf = CnnTreeClassifier.from_networks(flat, {"net": net})
    affinity = weight_affinity(clf)
    assert affinity.shape == (7, 7) and np.allclose(affinity, affinity.T) and np.all(np.diag(affinity) == 0)
    groups = subtrees(suggest_hierarchy(affinity, CLASSES, "weights", 2))
    assert {"angry", "disgust"} in map(set, groups) and {"happy", "surprise"} in map(set, groups)
    assert {"fear", "sad", "neutral"} in map(set, groups)
    model = save_model(clf, tmp_path / "m")
    out = tmp_path / "induced.json"
    assert main(["suggest", str(model), "--method", "weights", "--init", "--out", str(out)]) == 0
    assert "output-layer class weights of flat" in json.loads(out.read_text())["description"]
    assert load_spec(out).init_source() == str(model.resolve())
