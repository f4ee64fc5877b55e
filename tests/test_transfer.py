"""Transfer to folder data sets made from FER2013 faces: renamed classes, a class the model lacks,
subject-like file names, K-fold cross-validation, head retraining, label suggestions."""

import json

import cv2
import numpy as np
import pytest

from cnntree import CnnTreeClassifier, load_model, save_model
from cnntree.cli import main
from cnntree.data import load_faces
from cnntree.data.labels import align, parse_label_map
from cnntree.data.splits import stratified_folds as folds_of
from cnntree.errors import CnnTreeError
from cnntree.training.retrain import freeze_for, retrain, with_new_output

from .helpers import TINY_MODEL, training_rows

RENAMED = {"angry": "anger", "happy": "happiness", "sad": "sadness", "neutral": "contempt"}  # FER -> target name
LABEL_MAP = "anger=angry,happiness=happy,sadness=sad"
SUBJECTS = 8


def make_target(root, sample, per_class=16, skip=()):
    """A CK+-like folder: one folder per class, names S<subject>_<n>.png, subjects spanning classes."""
    test = np.flatnonzero(sample.splits == "PrivateTest")
    for label, name in enumerate(sample.classes):
        target = RENAMED.get(name, name)
        if target in skip:
            continue
        folder = root / target
        folder.mkdir(parents=True)
        for k, i in enumerate(test[sample.labels[test] == label][:per_class]):
            cv2.imwrite(str(folder / f"S{k % SUBJECTS:03d}_{k:03d}.png"), sample.images[i])
    return root


@pytest.fixture(scope="module")
def target(tmp_path_factory, sample):
    return make_target(tmp_path_factory.mktemp("ckplus"), sample)


@pytest.fixture(scope="module")
def single_model(tmp_path_factory, sample):
    from cnntree.spec import parse_spec

    spec = parse_spec({"name": "tiny_single", "kind": "single",
                       "defaults": {"model": TINY_MODEL, "train": {"epochs": 2, "batch_size": 32, "seed": 1}}})
    root = tmp_path_factory.mktemp("single")
    train, val = training_rows(sample), sample.splits == "PublicTest"
    clf = CnnTreeClassifier(spec, work_dir=root / "work").fit(
        sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))
    return save_model(clf, root / "model")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"


def test_label_maps_parse_and_fail_clearly():
    assert parse_label_map("anger=angry, sadness = sad") == {"anger": "angry", "sadness": "sad"}
    assert parse_label_map(None) == {}
    with pytest.raises(CnnTreeError, match='--label-map: "anger" is not of the form target_class=model_class'):
        parse_label_map("anger")


def test_alignment_reports_what_it_leaves_out(target):
    data = load_faces(target, cache=False)
    classes = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    aligned, alignment = align(data, classes, parse_label_map(LABEL_MAP))
    assert alignment.excluded == ["contempt"] and alignment.missing == ["neutral"]
    assert alignment.mapped["anger"] == "angry" and alignment.mapped["fear"] == "fear"
    assert len(aligned.labels) == 6 * 16 and aligned.classes == classes
    assert np.bincount(aligned.labels, minlength=7).tolist() == [16] * 6 + [0]
    with pytest.raises(CnnTreeError, match='"angr" is not a class of .*did you mean "anger"'):
        align(data, classes, {"angr": "angry"})
    with pytest.raises(CnnTreeError, match='"joy" is not a class of the model'):
        align(data, classes, {"anger": "joy"})


def test_direct_evaluation_on_a_folder(target, tiny_model, capsys):
    assert main(["evaluate", str(tiny_model), "--data", str(target), "--label-map", LABEL_MAP, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "all" and out["result"]["n"] == 96
    assert out["result"]["alignment"]["excluded"] == ["contempt"]
    clf = load_model(tiny_model)
    aligned, _ = align(load_faces(target, cache=False), clf.spec_.classes, parse_label_map(LABEL_MAP))
    assert out["metrics"]["all_accuracy"] == pytest.approx(clf.score(aligned.images, aligned.labels))
    assert main(["evaluate", str(tiny_model), "--data", str(target), "--label-map", LABEL_MAP]) == 0
    text = capsys.readouterr().out
    assert "excluded (no model class): contempt" in text and "never shows: neutral" in text


def test_a_new_output_layer_and_freezing(single_model, sample):
    model = load_model(single_model).keras_models()["net"]
    grown = with_new_output(model, 9)
    assert grown.output_shape == (None, 9)
    weighted = [layer for layer in grown.layers if layer.weights]
    for mode, learning in (("head", 1), ("last_dense", 2), ("full", len(weighted))):
        freeze_for(grown, mode)
        assert sum(layer.trainable for layer in weighted) == learning
    before = [w.copy() for w in weighted[0].get_weights()]
    head = [w.copy() for w in weighted[-1].get_weights()]
    retrain(grown, sample.images[:64], np.arange(64) % 9, 9, "head", epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(before, weighted[0].get_weights()))  # frozen stays
    assert not all(np.array_equal(a, b) for a, b in zip(head, weighted[-1].get_weights()))  # the head learned
    assert np.array_equal(model.get_weights()[0], weighted[0].get_weights()[0])  # features shared, unchanged


def test_grouped_folds_never_share_a_subject(target):
    data = load_faces(target, cache=False)
    folds, groups = folds_of(data.labels, 4, data.names, r"^(S\d+)_")
    assert len(folds) == 4
    seen = [set(groups[test]) for _, test in folds]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])
    assert set().union(*seen) == {f"S{k:03d}" for k in range(SUBJECTS)}
    with pytest.raises(CnnTreeError, match="--folds: 9 folds but only 8 subjects"):
        folds_of(data.labels, 9, data.names, r"^(S\d+)_")
    with pytest.raises(CnnTreeError, match="--folds: 20 folds but a class has only 16 images"):
        folds_of(data.labels, 20)
    with pytest.raises(CnnTreeError, match="does not match this file name"):
        folds_of(data.labels, 4, data.names, r"^(P\d+)_")


@pytest.mark.slow
def test_transfer_a_single_network_with_subject_independent_folds(tmp_path, target, single_model, store, capsys):
    out = tmp_path / "transferred"
    code = main(["transfer", str(single_model), "--data", str(target), "--label-map", LABEL_MAP, "--folds", "5",
                 "--group-regex", r"^(S\d+)_", "--epochs", "1", "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["folds"]) == 5 and result["grouped"]
    assert sum(row["test"] for row in result["folds"]) == 7 * 16  # every image tested once
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("transfer")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 5
    assert {r.info.status for r in runs} == {"FINISHED"}
    subjects = [set(r.data.params["subjects"].split(",")) for r in children]
    assert all(not (a & b) for i, a in enumerate(subjects) for b in subjects[i + 1:])
    metrics = parents[0].data.metrics
    accuracies = [r.data.metrics["accuracy"] for r in children]
    assert metrics["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert metrics["accuracy_std"] == pytest.approx(np.std(accuracies))
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "evaluation")}
    assert "evaluation/confusion.png" in artifacts
    final = load_model(out)  # trained on all folds, over the target's classes after the label map
    assert final.spec_.classes == ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
    assert final.predict_proba(np.zeros((3, 48, 48), np.uint8)).shape == (3, 7)


@pytest.mark.slow
def test_transfer_prints_per_fold_and_mean(target, single_model, store, capsys):
    code = main(["transfer", str(single_model), "--data", str(target), "--folds", "2", "--epochs", "1",
                 "--mode", "last_dense"])
    text = capsys.readouterr().out
    assert code == 0
    assert text.count("fold 1:") == 1 and "fold 2:" in text
    assert "last_dense: accuracy" in text and "+-" in text and "over 2 folds" in text


@pytest.mark.slow
def test_transfer_a_tree_keeps_its_routing(tmp_path, sample, tiny_model, store, capsys):
    with_contempt = make_target(tmp_path / "all", sample)
    code = main(["transfer", str(tiny_model), "--data", str(with_contempt), "--label-map", LABEL_MAP, "--folds", "2"])
    assert code == 2
    assert "contempt are not leaves of the tree" in capsys.readouterr().err
    folder = make_target(tmp_path / "six", sample, skip={"contempt"})
    out = tmp_path / "tree"
    assert main(["transfer", str(tiny_model), "--data", str(folder), "--label-map", LABEL_MAP, "--folds", "2",
                 "--epochs", "1", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == list(load_model(tiny_model).spec.classes)
    original, moved = load_model(tiny_model), load_model(out)
    assert moved.spec_.raw == original.spec_.raw and moved.spec_.classes == original.spec_.classes
    x = sample.images[:20]
    def first_conv(clf):
        return next(layer for layer in clf.keras_models()["root"].layers if layer.weights).get_weights()[0]

    assert np.array_equal(first_conv(original), first_conv(moved))  # frozen features
    assert not np.allclose(original.network_outputs(x)["rest"], moved.network_outputs(x)["rest"])  # new heads


def test_transfer_errors(tmp_path, sample, single_model, store, capsys):
    folder = make_target(tmp_path / "t", sample, per_class=4)
    assert main(["transfer", str(single_model), "--data", str(folder), "--folds", "5"]) == 2
    assert "--folds: 5 folds but a class has only 4 images" in capsys.readouterr().err
    assert main(["transfer", str(single_model), "--data", str(folder), "--folds", "2", "--group-regex", "("]) == 2
    assert "group regex '(': invalid" in capsys.readouterr().err
    (folder / "anger" / "notes.txt").write_text("hi")
    assert main(["transfer", str(single_model), "--data", str(folder), "--folds", "2"]) == 2
    assert "notes.txt" in capsys.readouterr().err


def test_suggest_labels_finds_a_class_from_its_own_faces(tmp_path, sample, tiny_model, capsys):
    from .helpers import write_folder

    folder = write_folder(tmp_path / "same", sample, per_class=1000)  # every sample face, by its own class name
    assert main(["suggest-labels", str(tiny_model), "--data", str(folder), "--json"]) == 0
    rows = {r["target"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(sample.classes)
    for name, row in rows.items():  # a class's mean face and histogram are nearest to themselves
        assert row["pixels"] == name and row["pixels_distance"] == pytest.approx(0, abs=1e-9)
        assert row["histogram"] == name
        assert row["model"] in sample.classes and 0 < row["model_share"] <= 1
    assert main(["suggest-labels", str(tiny_model), "--data", str(folder)]) == 0
    assert "nothing is applied" in capsys.readouterr().out
