"""Explanations: Grad-CAM and saliency point where a network looks, a tree's steps follow its path,
and the explain, evaluate --explain and mirror --explain commands write their pictures."""

import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from cnntree import load_model
from cnntree.evaluation.explain import explain, path_of
from cnntree.nets.gradcam import GradCam, Saliency
from cnntree.spec import load_spec

from .helpers import MORAVCIK, run_cli


def _corner_network():
    """A network that sees only the top-right 16x16 corner (no biases, so the rest stays zero),
    whose output 1 grows with every feature."""
    mask = np.zeros((48, 48, 1), np.float32)
    mask[:16, -16:] = 1
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t * mask)(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, activation="relu",
                            kernel_initializer=keras.initializers.RandomUniform(0.0, 0.1, seed=1))(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[-1.0, 1.0]] * 6))(x)
    outputs = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs)


def test_gradcam_and_saliency_of_a_corner_network_put_their_mass_in_that_corner():
    model = _corner_network()
    faces = np.random.default_rng(0).uniform(0, 255, (3, 48, 48)).astype(np.float32)
    for explainer, margin in ((GradCam(model), 2), (Saliency(model), 0)):
        maps = explainer(faces, [1, 1, 1])
        assert maps.shape == (3, 48, 48) and maps.max() == pytest.approx(1.0)
        inside = maps[:, :16 + margin, -16 - margin:].sum()
        assert inside / maps.sum() > 0.97, type(explainer).__name__  # a transposed map would sit bottom-left
    assert GradCam(model).layer.name.startswith("max_pooling2d")  # the last feature map, before pooling away space


def test_the_path_of_a_class_in_the_moravcik_tree():
    spec = load_spec(MORAVCIK)
    assert [(n.id, k) for n, k in path_of(spec, "happy")] == [("NN1", 1), ("NN2", 1), ("NN4", 1)]
    assert [(n.id, k) for n, k in path_of(spec, "fear")] == [("NN1", 0)]


def test_a_tree_explanation_follows_the_soft_path(tiny_model, sample):
    clf = load_model(tiny_model)
    faces = sample.images[:6]
    found = explain(clf, faces)
    probabilities = clf.predict_proba(faces)
    for e, p in zip(found, probabilities):
        assert e.label == clf.spec_.classes[int(p.argmax())] and e.probability == pytest.approx(p.max())
        assert e.probability == pytest.approx(np.prod([s.probability for s in e.steps]), rel=1e-6)  # path product
        assert e.steps[0].network == "root" and e.heat.shape == (48, 48) and e.heat.max() <= 1
    happy = explain(clf, faces, [clf.spec_.classes.index("happy")] * 6)
    assert all([s.network for s in e.steps] == ["root"] and e.label == "happy" for e in happy)


@pytest.mark.slow  # subprocesses
def test_explain_cli_writes_one_picture_per_face(tmp_path, tiny_model, sample):
    images = []
    for i in range(2):
        images.append(tmp_path / f"face{i}.png")
        cv2.imwrite(str(images[-1]), sample.images[i])
    code, out, err = run_cli("explain", tiny_model, *images, "--out", tmp_path / "pictures", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["picture"] for r in rows] == [str(tmp_path / "pictures" / f"face{i}.explained.png") for i in range(2)]
    assert all(cv2.imread(r["picture"]).shape[1] > 300 for r in rows)
    assert rows[0]["steps"][0]["network"] == "root"
    code, out, err = run_cli("explain", tiny_model, images[0], "--out", tmp_path / "p2", "--class", "joy")
    assert code == 2 and "--class joy: not a class" in err


@pytest.mark.slow  # subprocesses
def test_evaluate_explain_adds_a_mistakes_grid_and_an_mlflow_run(tmp_path, tiny_model):
    import mlflow

    code, out, err = run_cli("evaluate", tiny_model, "--explain", "2", "--report", tmp_path / "report", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert "ece" in result["result"]["modes"]["soft"] and "ece" not in result["result"]["modes"]["hard"]
    assert {"private_ece", "private_nll", "private_brier", "private_node_root_ece"} <= set(result["metrics"])
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"PrivateTest_mistakes.png", "PrivateTest_reliability.png"} <= names
    mlflow.set_tracking_uri(f"sqlite:///{Path.cwd()}/runs/mlflow.db")
    run = mlflow.search_runs(experiment_names=["evaluate"], output_format="list")[0]
    assert run.data.metrics["private_accuracy"] == pytest.approx(result["metrics"]["private_accuracy"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/PrivateTest_mistakes.png" in artifacts


def test_mirror_explain_overlays_the_main_face(tmp_path, tiny_model, sample):
    from cnntree.live import scenes
    from cnntree.live.detect import FaceDetector
    from cnntree.live.mirror import Mirror

    found = scenes.detectable(sample.images[:40], FaceDetector())
    frame = scenes.render(sample.images[found[:1]], scenes.grid_boxes(1), scenes.background())
    clf = load_model(tiny_model)
    plain, explained = Mirror(clf), Mirror(clf, explain="gradcam")
    result = explained.process(frame)
    assert result.heat is not None and result.heat.shape == (48, 48)
    x, y, w, h = (int(v) for v in result.main.box)
    inside = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))
    assert (explained.annotate(frame, result)[inside] != plain.annotate(frame, plain.process(frame))[inside]).any()
    assert plain.process(frame).heat is None
