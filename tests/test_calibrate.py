"""Prior correction undoes the resampling: exact numbers, and the classifier applies what the spec says."""

import json

import numpy as np
import pytest

from cnntree import load_model
from cnntree.compose.calibration import NoCalibration, PriorCorrection, make_calibration, training_priors


def test_prior_correction_numbers():
    priors = training_priors([1, 6], [1, 1])  # fear 1 in 7, trained 50/50
    assert priors == {"train": [0.5, 0.5], "true": pytest.approx([1 / 7, 6 / 7])}
    corrected = PriorCorrection(priors["train"], priors["true"]).apply(np.array([[0.6, 0.4], [0.5, 0.5]]))
    np.testing.assert_allclose(corrected[0], [0.6 * 1 / (0.6 * 1 + 0.4 * 6), 0.4 * 6 / (0.6 * 1 + 0.4 * 6)])
    np.testing.assert_allclose(corrected[1], [1 / 7, 6 / 7])  # an undecided network falls back to the prior
    np.testing.assert_allclose(corrected.sum(1), 1)


def test_class_weights_count_as_training_frequencies():
    priors = training_priors([10, 30], [10, 30], {0: 2.0, 1: 2 / 3})  # balanced weights: uniform training prior
    assert priors["train"] == pytest.approx([0.5, 0.5]) and priors["true"] == pytest.approx([0.25, 0.75])


def test_no_priors_or_none_means_no_correction():
    p = np.array([[0.3, 0.7]])
    assert make_calibration("prior", None).apply(p) is p
    assert isinstance(make_calibration("none", {"train": [0.5, 0.5], "true": [0.1, 0.9]}), NoCalibration)


def test_the_classifier_records_applies_and_saves_priors(tmp_path, tiny_model, sample):
    clf = load_model(tiny_model)
    root = clf.priors_["root"]  # happy vs the other six, oversampled to equal groups
    assert root["train"] == pytest.approx([0.5, 0.5]) and root["true"][0] == pytest.approx(1 / 7, abs=0.01)
    x = sample.images[:30]
    raw = clf.networks_["root"](x.astype(np.float32)[..., None])
    np.testing.assert_allclose(clf.network_outputs(x)["root"],
                               PriorCorrection(root["train"], root["true"]).apply(raw), rtol=1e-5)
    meta = json.loads((tiny_model / "meta.json").read_text())
    assert [e["priors"] is not None for e in meta["networks"]] == [True, True]
