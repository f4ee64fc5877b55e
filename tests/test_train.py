import json

import numpy as np
import pytest

from cnntree import CnnTreeClassifier, load_model, save_model, with_overrides
from cnntree.data.augment import TTA_VIEWS, build_augmenter, tta_views
from cnntree.errors import CnnTreeError
from cnntree.nets.schedules import SCHEDULES
from cnntree.nets.train import AugmentedBatches, train_network
from cnntree.spec.sections import AUGMENT, TRAIN

from .helpers import TINY_MODEL, tiny_spec, training_rows


@pytest.mark.parametrize("name,params,epoch,expected", [
    ("constant", {}, 7, 0.1),
    ("exponential", {"gamma": 0.5}, 3, 0.1 * 0.125),
    ("step", {"every": 4, "gamma": 0.1}, 9, 0.1 * 0.01),
    ("cosine", {"min_lr": 0.0}, 5, 0.05),            # half-way through 10 epochs
    ("cosine_restarts", {"first_epochs": 4, "t_mul": 2.0, "m_mul": 0.5, "min_lr": 0.0}, 4, 0.05),  # restart
    ("one_cycle", {"max_lr": 1.0, "pct_start": 0.3}, 3, 1.0),  # peak after 3 of 10 epochs
])
def test_schedules(name, params, epoch, expected):
    assert SCHEDULES[name](0.1, 10, **params).lr(epoch) == pytest.approx(expected)


@pytest.mark.parametrize("engine", ["albumentations", "batch"])
def test_augmenter_is_off_by_default_and_deterministic_for_a_seed(sample, engine):
    assert build_augmenter(AUGMENT.parse({"engine": engine}, "a")) is None
    config = AUGMENT.parse({"rotation": 30, "h_flip": True, "noise": 0.05, "erasing": 0.5, "fog": 0.5,
                            "engine": engine}, "a")
    a = build_augmenter(config).augment(sample.images[:8], 3)
    b = build_augmenter(config).augment(sample.images[:8], 3)
    assert a.shape == (8, 48, 48) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample.images[:8])
    assert not np.array_equal(build_augmenter(config).augment(sample.images[:8], 4), a)


@pytest.mark.parametrize("engine", ["albumentations", "batch"])
def test_batches_depend_on_seed_epoch_and_index_only(sample, engine):
    """Loader processes and resumed trainings build batches in any order: each must come out the same."""
    augment = AUGMENT.parse({"rotation": 20, "h_flip": True, "erasing": 0.5, "engine": engine}, "a")
    faces, targets = sample.images[:256], sample.labels[:256]
    one = AugmentedBatches(faces, targets, 7, 32, augment, seed=5, first_epoch=1)
    many = AugmentedBatches(faces, targets, 7, 32, augment, seed=5, first_epoch=1, workers=4)
    expected = [one[i][0] for i in range(len(one))]
    for i in reversed(range(len(many))):
        np.testing.assert_array_equal(many[i][0], expected[i])
    assert not np.array_equal(expected[0], expected[1])
    one.on_epoch_end()  # the next epoch: another order and other augmentations
    assert not np.array_equal(one[0][0], expected[0])


def test_test_time_views(sample):
    faces = sample.images[:3]
    assert len(tta_views(faces, "none")) == 1
    flip = tta_views(faces, "flip")
    np.testing.assert_array_equal(flip[1][0], faces[0][:, ::-1])
    crops = tta_views(faces, "ten_crop")
    assert len(crops) == 10 and all(v.shape == faces.shape for v in crops)
    assert {mode: len(tta_views(faces, mode)) for mode in TTA_VIEWS} == TTA_VIEWS


@pytest.mark.slow
def test_training_resumes_from_its_last_epoch(tmp_path, sample):
    settings = {"model": TINY_MODEL | {"dropout": 0.0, "l2": 0.0}, "augment": AUGMENT.parse({}, "a"),
                "train": TRAIN.parse({"epochs": 1, "batch_size": 64, "seed": 2}, "t")}
    targets = (sample.labels[:300] == 3).astype(int)
    data, val = (sample.images[:300], targets), (sample.images[300:400], (sample.labels[300:400] == 3).astype(int))
    lines = []
    _, first = train_network(settings, 2, data, val, tmp_path, printer=lines.append)
    assert first["epoch"] == 1 and len(first["history"]["loss"]) == 1
    settings["train"]["epochs"] = 3  # the same folder again: continues at epoch 2
    model, state = train_network(settings, 2, data, val, tmp_path, printer=lines.append)
    assert "resuming after epoch 1" in " ".join(lines)
    assert state["epoch"] == 3 and len(state["history"]["loss"]) == 3
    assert json.loads((tmp_path / "state.json").read_text())["epoch"] == 3
    assert [line.split("]")[1].split()[:2] for line in lines if "] epoch " in line] == \
        [["epoch", "1/1"], ["epoch", "2/3"], ["epoch", "3/3"]]
    uninterrupted, _ = train_network(settings, 2, data, val, tmp_path / "straight", printer=lines.append)
    for resumed, straight in zip(model.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_allclose(resumed, straight, atol=1e-6)  # same batches, same order, same optimiser


@pytest.mark.slow
def test_training_steps_reuse_freed_memory(tmp_path, sample):
    """TensorFlow's generator dataset sets glibc's trim threshold, which pinned malloc's mmap
    threshold at 128 KB: every batch and activation was mapped afresh at each step, page by page
    (this training, the second in its process: about 72,000 minor page faults; about 5,000 with
    freed memory reused)."""
    import resource

    from cnntree.nets.allocator import _glibc

    if _glibc() is None:
        pytest.skip("glibc's malloc only")
    settings = {"model": TINY_MODEL, "augment": AUGMENT.parse({}, "a"),
                "train": TRAIN.parse({"epochs": 2, "batch_size": 64, "seed": 2}, "t")}
    data, val = (sample.images[:300], sample.labels[:300]), (sample.images[300:400], sample.labels[300:400])
    faults = []
    for run in ("first", "second"):  # the first also traces and starts TensorFlow's dataset machinery
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        train_network(settings, 7, data, val, tmp_path / run, printer=lambda line: None)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert faults[1] < 25_000, faults


@pytest.mark.slow
def test_loader_processes_train_on_the_same_batches(tmp_path, sample):
    """workers=2 moves augmentation into loader processes; the training must not change."""
    histories = []
    for workers in (1, 2):
        settings = {"model": TINY_MODEL, "augment": AUGMENT.parse({"rotation": 20, "erasing": 0.5}, "a"),
                    "train": TRAIN.parse({"epochs": 2, "batch_size": 32, "seed": 4, "workers": workers}, "t")}
        _, state = train_network(settings, 7, (sample.images[:192], sample.labels[:192]),
                                 (sample.images[192:256], sample.labels[192:256]), tmp_path / str(workers),
                                 printer=lambda *_: None)
        histories.append(state["history"])
    assert len(histories[1]["loss"]) == 2
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-4)


def _fit(spec, sample, tmp_path, **overrides):
    train = training_rows(sample)
    val = sample.splits == "PublicTest"
    return CnnTreeClassifier(with_overrides(spec, **overrides), work_dir=tmp_path / "work").fit(
        sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))


@pytest.mark.slow
def test_tree_fit_predict_save_load(tmp_path, sample):
    clf = _fit(tiny_spec(), sample, tmp_path)
    test = sample.splits == "PrivateTest"
    x, y = sample.images[test], sample.labels[test]
    proba = clf.predict_proba(x)
    assert proba.shape == (245, 7) and np.allclose(proba.sum(1), 1, atol=1e-5)
    outputs = clf.network_outputs(x)
    assert outputs["root"].shape == (245, 2) and outputs["rest"].shape == (245, 6)
    happy = clf.spec_.classes.index("happy")
    np.testing.assert_allclose(proba[:, happy], outputs["root"][:, 0], rtol=1e-6)
    hard = clf.set_params(mode="hard").predict_proba(x)
    assert set(np.unique(hard)) <= {0.0, 1.0} and (hard.sum(1) == 1).all()
    assert 0.0 <= clf.set_params(mode=None).score(x, y) <= 1.0
    saved = save_model(clf, tmp_path / "model")
    assert sorted(p.name for p in saved.iterdir()) == [".cnntree", "meta.json", "networks", "spec.json"]
    again = load_model(saved)
    np.testing.assert_allclose(again.predict_proba(x), proba, atol=1e-6)
    assert again.val_accuracy_ == pytest.approx(clf.val_accuracy_)
    save_model(clf, saved)  # overwriting replaces the directory whole
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(CnnTreeError, match='mode "weighted" does not apply to a tree'):
        clf.set_params(mode="weighted").predict(x)


@pytest.mark.slow
def test_voting_uses_validation_accuracy_weights(tmp_path, sample):
    members = [{"id": "a"}, {"id": "b", "train": {"seed": 5}}]
    clf = _fit(tiny_spec("voting", members=members, voting="weighted"), sample, tmp_path)
    assert set(clf.val_accuracy_) == {"a", "b"}
    x = sample.images[sample.splits == "PrivateTest"][:20]
    out = clf.network_outputs(x)
    w = np.array([clf.val_accuracy_["a"], clf.val_accuracy_["b"]])
    expected = (w[0] * out["a"] + w[1] * out["b"]) / w.sum()
    np.testing.assert_allclose(clf.predict_proba(x), expected, rtol=1e-6)
    assert clf.modes() == ("soft", "weighted", "hard")


@pytest.mark.slow
def test_quick_mode_caps_epochs_faces_and_width(tmp_path, sample):
    spec = tiny_spec("single", defaults={"model": {"name": "vgg", "blocks": 1, "filters": [8], "dense": 8},
                                         "train": {"epochs": 5}})
    clf = _fit(spec, sample, tmp_path, quick=True)
    assert len(clf.histories_["net"]["loss"]) == 1
    from cnntree.nets.models import create_model

    full = dict(blocks=1, filters=[8], dense=8, n_outputs=7)
    assert clf.networks_["net"].model.count_params() == create_model("vgg", width=0.25, **full).count_params() == 2409
    assert create_model("vgg", **full).count_params() > 30000


def test_loading_errors(tmp_path):
    with pytest.raises(CnnTreeError, match="not a cnntree model directory"):
        load_model(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"networks": [{"id": "net", "file": "networks/net.keras"}]}))
    (tmp_path / "spec.json").write_text(json.dumps({"name": "x", "kind": "single"}))
    with pytest.raises(CnnTreeError, match=r"damaged model directory \(meta.json.networks\[0\].groups: is required\)"):
        load_model(tmp_path)
    groups = [[c] for c in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")]
    (tmp_path / "meta.json").write_text(json.dumps({"networks": [{"id": "net", "file": "networks/net.keras",
                                                                  "groups": groups}]}))
    (tmp_path / "spec.json").write_text(json.dumps({"name": "x", "kind": "single"}))
    (tmp_path / "networks").mkdir()
    (tmp_path / "networks" / "net.keras").write_bytes(b"PK\x03\x04 not a keras file")
    with pytest.raises(CnnTreeError, match=r"net\.keras: cannot load network"):
        load_model(tmp_path)
    with pytest.raises(CnnTreeError, match="not trained yet"):
        CnnTreeClassifier(tiny_spec()).predict(np.zeros((1, 48, 48), np.uint8))


@pytest.mark.slow
def test_a_work_folder_only_resumes_the_same_training(tmp_path, sample):
    spec = tiny_spec("single")
    _fit(spec, sample, tmp_path)
    again = _fit(spec, sample, tmp_path)  # same training: resumes, nothing left to train
    assert len(again.histories_["net"]["loss"]) == 2
    longer = tiny_spec("single", description="the same, to a longer budget",
                       defaults={"model": TINY_MODEL, "train": {"epochs": 3, "batch_size": 32, "seed": 1}})
    assert len(_fit(longer, sample, tmp_path).histories_["net"]["loss"]) == 3  # continues: one more epoch
    other = tiny_spec("single", defaults={"model": TINY_MODEL, "train": {"epochs": 3, "batch_size": 16}})
    with pytest.raises(CnnTreeError, match="holds checkpoints of another training"):
        _fit(other, sample, tmp_path)


@pytest.mark.parametrize("outputs", [1, 2])
def test_compiling_makes_every_variable_the_first_step_would(outputs):
    """Nothing is left for the traced first step to create (TensorFlow would trace it twice), and
    the trackers built on the zero batch start the training reset."""
    import keras

    from cnntree.nets.schedules import compile_model

    faces = keras.Input((4,))
    heads = [keras.layers.Dense(3, activation="softmax")(faces) for _ in range(outputs)]
    model = keras.Model(faces, heads if outputs > 1 else heads[0])
    compile_model(model, keras.optimizers.Adam(), loss=["categorical_crossentropy"] * outputs,
                  metrics=[["accuracy"]] * outputs)
    made = {v.path for v in [*model.optimizer.variables, *(v for m in model.metrics for v in m.variables)]}
    assert any("accuracy" in path for path in made) and any("adam" in path for path in made)
    assert all(float(np.sum(v)) == 0 for m in model.metrics for v in m.variables)
    targets = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    model.train_on_batch(np.ones((4, 4), "float32"), [targets] * outputs if outputs > 1 else targets)
    after = {v.path for v in [*model.optimizer.variables, *(v for m in model.metrics for v in m.variables)]}
    assert after == made


def test_batchnorm_momentum_follows_the_steps_per_epoch():
    from cnntree.nets.train import batchnorm_momentum

    assert batchnorm_momentum(5) == pytest.approx(0.01 ** 0.2)  # the start forgotten within an epoch
    assert batchnorm_momentum(800) == 0.99  # Keras's own on the full FER2013 at batch 32
    assert batchnorm_momentum(0) == pytest.approx(0.01)


def test_the_classifier_is_a_scikit_learn_estimator(sample):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    clf = CnnTreeClassifier(tiny_spec(), jobs=2)
    copy = clone(clf)
    assert copy is not clf and copy.get_params()["jobs"] == 2 and copy.spec.name == clf.spec.name
    assert set(clf.get_params()) == {"spec", "epochs", "random_state", "mode", "test_time", "validation_fraction",
                                     "work_dir", "jobs", "ray", "verbose"}
    with pytest.raises(NotFittedError):
        clf.predict_proba(sample.images[:2])
    with pytest.raises(NotFittedError):
        clf.classes_  # noqa: B018
    with pytest.raises(CnnTreeError, match=r"expected \(n, 48, 48\) grey faces"):
        clf.fit(sample.images[:4, :10], sample.labels[:4], (sample.images[:4], sample.labels[:4]))


def test_fitted_classes_and_from_networks(tiny_model, sample):
    clf = load_model(tiny_model)
    assert list(clf.classes_) == list(clf.spec_.classes)
    rebuilt = CnnTreeClassifier.from_networks(clf.spec_, clf.keras_models(), clf.val_accuracy_, clf.priors_)
    faces = sample.images[:8]
    np.testing.assert_allclose(rebuilt.predict_proba(faces), clf.predict_proba(faces), atol=1e-6)


def test_the_auto_engine_is_batch_on_a_gpu_and_albumentations_on_a_cpu(monkeypatch):
    from cnntree import backend
    from cnntree.data import batch_augment
    from cnntree.data.augment import engine_for
    from cnntree.data.face_augment import AlbumentationsAugmenter

    config = AUGMENT.parse({"h_flip": True}, "a")
    assert config["engine"] == "auto" and engine_for("albumentations") == "albumentations"
    monkeypatch.setattr(backend, "accelerator", lambda: None)
    assert isinstance(build_augmenter(config), AlbumentationsAugmenter)
    monkeypatch.setattr(backend, "accelerator", lambda: "NVIDIA H200 (jax)")
    assert isinstance(build_augmenter(config), batch_augment.BatchAugmenter)
    assert engine_for("albumentations") == "albumentations"  # a named engine is kept on any machine
