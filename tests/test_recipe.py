
"""The training recipe's options: mixup and CutMix, warm-up, the weight average (EMA),
training on several splits, and continuing a training to more epochs."""

import gzip
import logging

import keras
import numpy as np
import pytest

from cnntree import CnnTreeClassifier
from cnntree.data import load_faces
from cnntree.data.mixing import CutMix, MixUp, build_mixer
from cnntree.data.splits import make_splits
from cnntree.errors import CnnTreeError
from cnntree.nets.models import create_model
from cnntree.nets.train import AugmentedBatches, train_network
from cnntree.spec import parse_spec
from cnntree.spec.sections import AUGMENT, DATA, TRAIN

from .helpers import TINY_MODEL, tiny_spec, training_rows
from .test_train import _fit


def _constant_faces(n=7):
    """Face i is all i (so a pixel tells which face it came from), labelled class i."""
    x = np.repeat(np.arange(n, dtype=np.float32), 48 * 48).reshape(n, 48, 48, 1)
    return x, np.eye(n, dtype=np.float32)


def _source_shares(mixed_face, n=7):
    """For a face mixed from constant faces: which share of each source's value it holds."""
    return np.array([np.mean(mixed_face == i) for i in range(n)])


def test_cutmix_labels_weigh_by_the_pasted_area():
    x, y = _constant_faces()
    mixed, targets = CutMix(1.0).mix(x, y, np.random.default_rng(0))
    np.testing.assert_allclose(targets.sum(1), 1, atol=1e-6)
    assert (targets.max(1) < 1).any()  # something was pasted
    for face, target in zip(mixed, targets):
        np.testing.assert_allclose(_source_shares(face), target, atol=1e-6)


def test_mixup_labels_weigh_like_the_pixels():
    x, y = _constant_faces()
    mixed, targets = MixUp(0.4).mix(x, y, np.random.default_rng(1))
    np.testing.assert_allclose(targets.sum(1), 1, atol=1e-6)
    # a blend of constant faces is constant, at the label-weighted mean of the sources' values
    np.testing.assert_allclose(mixed[:, 0, 0, 0], targets @ np.arange(7, dtype=np.float32), rtol=1e-5)
    np.testing.assert_allclose(mixed.std(axis=(1, 2, 3)), 0, atol=1e-4)


def test_the_spec_picks_the_mixer():
    assert build_mixer(AUGMENT.parse({}, "augment")) is None
    assert isinstance(build_mixer(AUGMENT.parse({"cutmix": 1.0}, "augment")), CutMix)
    both = build_mixer(AUGMENT.parse({"mixup": 0.2, "cutmix": 1.0}, "augment"))
    picked = {type(m).__name__ for m in both.mixers}
    assert picked == {"MixUp", "CutMix"}
    with pytest.raises(CnnTreeError, match=r"augment\.mixup"):
        AUGMENT.parse({"mixup": -1}, "augment")


def test_mixed_batches_depend_on_seed_epoch_and_index_only(sample):
    augment = AUGMENT.parse({"mixup": 0.4, "cutmix": 1.0, "h_flip": True}, "augment")
    one = AugmentedBatches(sample.images[:96], sample.labels[:96], 7, 32, augment, seed=3, first_epoch=2)
    resumed = AugmentedBatches(sample.images[:96], sample.labels[:96], 7, 32, augment, seed=3, first_epoch=2)
    for index in (0, 2):
        np.testing.assert_array_equal(one[index][0], resumed[index][0])
        np.testing.assert_array_equal(one[index][1], resumed[index][1])
    x, y = one[0]
    assert (y.max(1) < 1).mean() > 0.5  # soft targets (a face may draw itself as partner, or a box of nothing)
    np.testing.assert_allclose(y.sum(1), 1, atol=1e-6)
    plain = AugmentedBatches(sample.images[:96], sample.labels[:96], 7, 32, AUGMENT.parse({"h_flip": True}, "a"),
                             seed=3, first_epoch=2)
    assert set(np.unique(plain[0][1])) == {0.0, 1.0}


class _LearningRates(keras.callbacks.Callback):
    """The learning rate each step trains with."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def _settings(**train):
    return {"model": TINY_MODEL | {"dropout": 0.0, "l2": 0.0}, "augment": AUGMENT.parse({}, "a"),
            "train": TRAIN.parse({"epochs": 2, "batch_size": 32, "seed": 2, **train}, "t")}


def _data(sample, n=128):
    targets = (sample.labels == 3).astype(int)
    return (sample.images[:n], targets[:n]), (sample.images[300:364], targets[300:364])


@pytest.mark.slow
def test_warmup_rises_step_by_step_to_the_scheduled_rate(tmp_path, sample):
    rates = _LearningRates()
    _, state = train_network(_settings(optimizer={"name": "sgd", "lr": 0.02}, warmup_epochs=1.5), 2,
                             *_data(sample), tmp_path, callbacks=[rates])
    # 4 steps per epoch, warm-up over 6 of them, then the constant rate
    np.testing.assert_allclose(rates.rates, [0.02 * s / 6 for s in range(1, 7)] + [0.02, 0.02], rtol=1e-5)
    np.testing.assert_allclose(state["history"]["lr"], [0.02, 0.02], rtol=1e-6)  # the schedule's own rate


@pytest.mark.slow
def test_warmup_scales_what_the_schedule_sets(tmp_path, sample):
    rates = _LearningRates()
    train_network(_settings(optimizer={"name": "adam", "lr": 0.01}, schedule={"name": "step", "every": 1,
                                                                              "gamma": 0.5}, warmup_epochs=2),
                  2, *_data(sample), tmp_path, callbacks=[rates])
    expected = [0.01 * s / 8 for s in range(1, 5)] + [0.005 * s / 8 for s in range(5, 9)]
    np.testing.assert_allclose(rates.rates, expected, rtol=1e-5)


def _initial_weights(settings):
    keras.utils.set_random_seed(settings["train"]["seed"])
    return create_model(n_outputs=2, normalize="unit", **settings["model"]).get_weights()


@pytest.mark.slow
def test_the_weight_average_is_what_training_returns(tmp_path, sample):
    """A very slow average (momentum 0.9999 over 8 steps) stays where Keras starts it, at the weights
    after the first step (an Adam step moves a weight by at most the rate, 0.01), while the raw weights
    go on: the returned model (its best weights) is the average."""
    settings = _settings(optimizer={"name": "adam", "lr": 0.01}, ema=0.9999)
    start = _initial_weights(settings)
    model, _ = train_network(settings, 2, *_data(sample), tmp_path)
    raw = keras.saving.load_model(tmp_path / "last.keras").get_weights()
    moved = max(np.abs(r - s).max() for r, s in zip(raw, start) if r.ndim > 1)
    averaged = max(np.abs(m - s).max() for m, s in zip(model.get_weights(), start) if m.ndim > 1)
    assert averaged < 0.0101
    assert moved > 0.04
    plain, _ = train_network(_settings(optimizer={"name": "adam", "lr": 0.01}), 2, *_data(sample), tmp_path / "raw",
                             printer=lambda *_: None)
    np.testing.assert_allclose(plain.get_weights()[0], raw[0], atol=1e-6)  # the raw path is the plain training


@pytest.mark.slow
def test_a_training_with_a_weight_average_resumes_exactly(tmp_path, sample):
    settings = _settings(ema=0.9, epochs=1)
    train_network(settings, 2, *_data(sample), tmp_path / "resumed")
    settings["train"]["epochs"] = 3
    resumed, _ = train_network(settings, 2, *_data(sample), tmp_path / "resumed")
    straight, _ = train_network(settings, 2, *_data(sample), tmp_path / "straight")
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    again, _ = train_network({**settings, "train": {**settings["train"], "restore_best": False}}, 2, *_data(sample),
                             tmp_path / "straight")  # finished: the average, not last.keras
    raw = keras.saving.load_model(tmp_path / "straight" / "last.keras").get_weights()
    assert max(np.abs(a - r).max() for a, r in zip(again.get_weights(), raw)) > 1e-4


def _usage_csv(path):
    rows = ["emotion,pixels,Usage"]
    rng = np.random.default_rng(0)
    for usage, n in (("Training", 70), ("PublicTest", 14), ("PrivateTest", 14)):
        for i in range(n):
            rows.append(f"{i % 7},{' '.join(map(str, rng.integers(0, 256, 48 * 48)))},{usage}")
    path.write_bytes(gzip.compress("\n".join(rows).encode()))
    return path


def test_training_on_training_and_public_test(tmp_path):
    data = load_faces(str(_usage_csv(tmp_path / "faces.csv.gz")), cache=False)
    cfg = DATA.parse({"split": {"scheme": "usage", "train": ["Training", "PublicTest"], "test": ["PrivateTest"]}},
                     "data")
    splits = make_splits(data, cfg["split"], cfg["validation"])
    assert splits.train_name == "Training+PublicTest"
    assert set(splits.tests) == {"PrivateTest"}
    assert len(splits.validation) == 7  # the validation slice still comes from Training only
    assert set(data.splits[splits.validation]) == {"Training"}
    assert sorted(set(data.splits[splits.train])) == ["PublicTest", "Training"]
    assert len(splits.train) == 63 + 14
    assert not set(splits.train) & set(splits.tests["PrivateTest"]) | set(splits.validation) & set(splits.train)
    overlap = DATA.parse({"split": {"scheme": "usage", "train": ["Training", "PublicTest"]}}, "data")
    with pytest.raises(CnnTreeError, match='trains and tests on split "PublicTest"'):
        make_splits(data, overlap["split"], overlap["validation"])
    with pytest.raises(CnnTreeError, match=r"data\.split\.train"):
        DATA.parse({"split": {"scheme": "usage", "train": []}}, "data")


@pytest.mark.slow
def test_a_training_continues_to_more_epochs(tmp_path, sample, caplog):
    spec = tiny_spec("single")
    first = _fit(spec, sample, tmp_path, epochs=1)
    assert len(first.histories_["net"]["loss"]) == 1
    train, val = training_rows(sample), sample.splits == "PublicTest"
    with caplog.at_level(logging.INFO, logger="cnntree"):
        longer = CnnTreeClassifier(spec, epochs=3, work_dir=tmp_path / "work", verbose=1).fit(
            sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))
    lines = [r.getMessage() for r in caplog.records]
    assert len(longer.histories_["net"]["loss"]) == 3
    assert any("continuing the checkpoints under 3 epochs (they were trained under 1 epochs)" in line
               for line in lines)
    assert any("resuming after epoch 1" in line for line in lines)


def test_the_spec_accepts_the_recipe_options():
    spec = parse_spec({"name": "recipe", "kind": "single",
                       "defaults": {"train": {"ema": 0.999, "warmup_epochs": 2},
                                    "augment": {"mixup": 0.2, "cutmix": 1.0}}})
    node = spec.nodes[0]
    assert (node.train["ema"], node.train["warmup_epochs"]) == (0.999, 2.0)
    assert (node.augment["mixup"], node.augment["cutmix"]) == (0.2, 1.0)
    with pytest.raises(CnnTreeError, match=r"train\.ema"):
        parse_spec({"name": "recipe", "kind": "single", "defaults": {"train": {"ema": 1.0}}})
