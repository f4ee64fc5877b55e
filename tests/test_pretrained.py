"""The model that ships with cnntree: it loads in safe mode, labels faces, and its card tells the truth."""

import json
import re

import cv2
import numpy as np
import pytest

from cnntree import CnnTreeClassifier, load_model
from cnntree.cli import main
from cnntree.pretrained import HERE, cards, names


def test_the_default_model_ships_and_labels_faces_far_above_chance(sample):
    assert "default" in names()
    clf = load_model("default")
    test = np.flatnonzero(sample.splits == "PrivateTest")[:120]  # never trained on, never selected on
    proba = clf.predict_proba(sample.images[test])
    assert proba.shape == (120, 7) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    accuracy = (proba.argmax(1) == sample.labels[test]).mean()
    assert accuracy > 0.45 and clf.score(sample.images[test[:20]], sample.labels[test[:20]]) == \
        (proba[:20].argmax(1) == sample.labels[test[:20]]).mean()  # chance is 1/7
    assert list(clf.classes_) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def test_default_is_a_model_name_everywhere(tmp_path, capsys, sample):
    cv2.imwrite(str(tmp_path / "face.png"), sample.images[0])
    assert main(["predict", str(tmp_path / "face.png"), "--json"]) == 0  # no model argument: the default
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and sum(rows[0]["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert main(["predict", "default", str(tmp_path / "face.png")]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'face.png'}: ")
    faces = sample.images[:4]
    np.testing.assert_allclose(load_model("default").predict_proba(faces),
                               load_model("default").predict_proba(faces), atol=1e-6)


def test_models_lists_what_ships_with_its_figures(capsys):
    assert main(["models", "--json"]) == 0
    listed = {card["name"]: card for card in json.loads(capsys.readouterr().out)}
    card = json.loads((HERE / "default" / "card.json").read_text())
    assert listed["default"]["private_accuracy"] == card["private_accuracy"]
    assert listed["default"]["bytes"] <= 15_000_000  # the shipped files stay small
    assert sum(sum(row) for row in card["private_confusion"]) == card["private_faces"] == 3589
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"PrivateTest {card['private_accuracy']:.4f}" in out and "MODEL_CARD.md" in out
    assert cards()[0]["name"] == "default"


def test_two_models_ship_the_default_and_a_small_one_each_within_15_mb(sample):
    assert names() == ["default", "small"]
    listed = {card["name"]: card for card in cards()}
    assert all(card["bytes"] <= 15_000_000 for card in listed.values())
    assert listed["small"]["parameters"] < listed["default"]["parameters"] / 10  # the small one is small
    assert listed["default"]["private_accuracy"] > listed["small"]["private_accuracy"]
    small = load_model("small")
    assert small.predict_proba(sample.images[:3]).shape == (3, 7)


def test_no_shipped_file_holds_a_machine_path():
    """A shipped model is the same on every machine: no file names a folder of the machine it was
    trained or shipped on (which would make evaluate read other data where that path exists)."""
    machine_path = re.compile(r"(?<![\w.~])/(?:work|tmp|home|root|Users|mnt|opt|var|srv|data)/|\b[A-Z]:\\{1,2}[A-Za-z]")
    for path in HERE.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", "") and path.name != "__init__.py":
            found = machine_path.search(path.read_text(errors="replace"))
            assert found is None, f"{path.relative_to(HERE)}: {found.group(0)!r}"


def test_the_mirror_runs_with_no_model_argument(tmp_path, capsys, sample):
    from cnntree.live import scenes

    frame = scenes.render(sample.images[:1], [(250, 170, 144)], scenes.background())
    cv2.imwrite(str(tmp_path / "photo.png"), frame)
    assert main(["mirror", "--source", str(tmp_path / "photo.png"), "--out", str(tmp_path / "labelled.png")]) == 0
    assert cv2.imread(str(tmp_path / "labelled.png")).shape == frame.shape


def test_test_time_views_apply_to_a_shipped_model(tmp_path, capsys, sample):
    """--test-time (and the test_time override) averages a trained model's answers over views: with
    flip (as both shipped models ship), each face's probabilities are the mean of its own and its
    mirror image's (the small network's calibration is the identity: it trained on the natural class
    mix; the default's undoes its oversampling after the views are averaged)."""
    faces = sample.images[:6]
    assert load_model("default").spec_.root.augment["test_time"] == "flip"  # as shipped (the card's first rows)
    clf = load_model("small")
    assert clf.spec_.root.augment["test_time"] == "flip"
    clf.set_params(test_time="none")
    plain, mirrored = clf.predict_proba(faces), clf.predict_proba(faces[:, :, ::-1])
    np.testing.assert_allclose(load_model("small").predict_proba(faces), (plain + mirrored) / 2, atol=1e-5)
    flip = load_model("small")
    flip.set_params(test_time="flip")
    np.testing.assert_allclose(flip.predict_proba(faces), (plain + mirrored) / 2, atol=1e-5)
    assert np.abs(plain - mirrored).max() > 1e-3  # the views do differ
    cv2.imwrite(str(tmp_path / "face.png"), faces[0])
    assert main(["predict", "small", str(tmp_path / "face.png"), "--test-time", "none", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    np.testing.assert_allclose(list(row["probabilities"].values()), plain[0], atol=1e-5)
    ten = load_model("small")
    ten.set_params(test_time="ten_crop")
    assert not np.allclose(ten.predict_proba(faces), plain, atol=1e-4)
    with pytest.raises(SystemExit) as usage:
        main(["predict", str(tmp_path / "face.png"), "--test-time", "twelve"])
    assert usage.value.code == 2 and "invalid choice: 'twelve'" in capsys.readouterr().err


def test_no_command_writes_over_a_shipped_model(tmp_path, capsys):
    """export, train and calibrate refuse a shipped model's folder as --out (it is a cnntree model
    folder, which --out may otherwise replace), and the shipped files stay as they were."""
    from .helpers import MORAVCIK

    before = {p: p.read_bytes() for p in (HERE / "default").rglob("*") if p.is_file()}
    for args in (["export", "default", "--format", "onnx", "--out", str(HERE / "default")],
                 ["train", str(MORAVCIK), "--quick", "--out", str(HERE / "default")],
                 ["calibrate", "default"]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "a shipped model is read-only" in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in (HERE / "default").rglob("*") if p.is_file()} == before


def test_ship_is_the_one_writer_of_shipped_folders(tmp_path, monkeypatch, tiny_model):
    import cnntree.pretrained
    from cnntree.errors import CnnTreeError
    from cnntree.estimator.storage import ship

    monkeypatch.setattr(cnntree.pretrained, "HERE", tmp_path)  # a stand-in package folder
    clf = load_model(tiny_model)
    assert ship(clf, "mine") == tmp_path / "mine" and "mine" in names()
    assert ship(clf, "mine") == tmp_path / "mine"  # a shipped model is replaced by shipping it again
    np.testing.assert_allclose(load_model("mine").predict_proba(np.zeros((2, 48, 48), np.uint8)),
                               clf.predict_proba(np.zeros((2, 48, 48), np.uint8)), atol=1e-6)
    with pytest.raises(CnnTreeError, match="--name: '../x' is not a safe name"):
        ship(clf, "../x")


@pytest.mark.slow  # trains three networks
def test_a_single_networks_work_folder_loads_as_a_classifier(sample, tmp_path):
    """What ``scripts/ship_model.py`` ships from an unfinished training: the checkpoint with the best
    epoch's weights, and how far it trained; a tree's work folder is one line."""
    from cnntree import CnnTreeError
    from cnntree.estimator.storage import load_checkpoint
    from cnntree.spec import parse_spec

    from .helpers import TINY_MODEL, training_rows

    spec = parse_spec({"name": "flat", "kind": "single",
                       "defaults": {"model": TINY_MODEL, "train": {"epochs": 2, "batch_size": 64, "seed": 3}}})
    train, val = sample.splits == "Training", sample.splits == "PublicTest"
    rows = training_rows(sample)
    clf = CnnTreeClassifier(spec, work_dir=tmp_path / "work").fit(
        sample.images[rows], sample.labels[rows], (sample.images[val], sample.labels[val]))
    loaded, facts = load_checkpoint(tmp_path / "work")
    faces = sample.images[val][:20]
    assert facts == {"epochs_trained": 2, "best_epoch": facts["best_epoch"], "epochs_planned": 2, "finished": False}
    assert facts["best_epoch"] in (1, 2)
    assert np.allclose(loaded._raw_output(spec.root, faces), clf._raw_output(spec.root, faces), atol=1e-5)
    tree = parse_spec({"name": "t", "kind": "tree", "defaults": {"model": TINY_MODEL, "train": {"epochs": 1}},
                       "nodes": [{"id": "r", "children": ["happy", "x"]},
                                 {"id": "x", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"]}]})
    CnnTreeClassifier(tree, work_dir=tmp_path / "tree").fit(
        sample.images[train][:300], sample.labels[train][:300], (sample.images[val], sample.labels[val]))
    with pytest.raises(CnnTreeError, match="a tree's work folder; only a single network's checkpoint"):
        load_checkpoint(tmp_path / "tree")
