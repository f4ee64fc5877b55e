"""Prior correction undoes the resampling: exact numbers, and the classifier applies what the spec says."""

import json

import numpy as np
import pytest

from cnntree import load_model
from cnntree.compose.calibration import NoCalibration, PriorCorrection, make_calibration, training_priors


def test_prior_correction_numbers():
    priors = training_priors([1, 6], [1, 1])  # fear 1 in 7, trained 50/50
    assert priors == {"train": [0.5, 0.5], "true": pytest.approx([1 / 7, 6 / 7])}
    corrected = PriorCorrection(priors).apply(np.array([[0.6, 0.4], [0.5, 0.5]]))
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
                               PriorCorrection(root).apply(raw), rtol=1e-5)
    meta = json.loads((tiny_model / "meta.json").read_text())
    assert [e["priors"] is not None for e in meta["networks"]] == [True, True]


# ---------------------------------------------------------------------------- fitted calibration and its measures

from cnntree.compose.calibration import (  # noqa: E402
    IsotonicCalibration,
    TemperatureScaling,
    VectorScaling,
    calibration_metrics,  # noqa: E402
    softmax,
)


def _calibrated_problem(n=6000, k=4, seed=0):
    """Logits whose softmax is the true class distribution each label is drawn from."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, k))
    truth = softmax(logits)
    labels = np.array([rng.choice(k, p=p) for p in truth])
    return logits, truth, labels


def test_temperature_scaling_undoes_over_confidence_and_keeps_the_argmax():
    logits, truth, labels = _calibrated_problem()
    over = softmax(3.0 * logits)  # three times too sharp
    scaling = TemperatureScaling().fit(over[:3000], labels[:3000])
    assert scaling.state["temperature"] == pytest.approx(3.0, rel=0.15)
    fixed = scaling.apply(over[3000:])
    before, after = calibration_metrics(over[3000:], labels[3000:]), calibration_metrics(fixed, labels[3000:])
    assert after["nll"] < before["nll"] - 0.2 and after["ece"] < before["ece"] / 2
    np.testing.assert_array_equal(fixed.argmax(1), over[3000:].argmax(1))
    np.testing.assert_allclose(fixed.sum(1), 1)


def test_vector_scaling_also_fixes_a_shifted_prior_that_temperature_cannot():
    logits, truth, labels = _calibrated_problem(seed=1)
    shifted = softmax(logits + np.array([2.0, 0, 0, 0]))  # class 0 far too likely
    temperature = TemperatureScaling().fit(shifted[:3000], labels[:3000]).apply(shifted[3000:])
    vector = VectorScaling().fit(shifted[:3000], labels[:3000]).apply(shifted[3000:])
    nll = {name: calibration_metrics(p, labels[3000:])["nll"] for name, p in
           (("raw", shifted[3000:]), ("temperature", temperature), ("vector", vector), ("truth", truth[3000:]))}
    assert nll["vector"] < nll["temperature"] - 0.05 and nll["vector"] < nll["truth"] + 0.02


def test_isotonic_maps_a_two_group_node_monotonically():
    rng = np.random.default_rng(2)
    true_p = rng.uniform(0, 1, 4000)
    labels = (rng.uniform(0, 1, 4000) < true_p).astype(int)
    said = np.sqrt(true_p)  # under-states group 0, over-states group 1
    probabilities = np.stack([1 - said, said], 1)
    iso = IsotonicCalibration().fit(probabilities[:2000], labels[:2000])
    fixed = iso.apply(probabilities[2000:])
    np.testing.assert_allclose(fixed.sum(1), 1)
    order = np.argsort(said[2000:])
    assert (np.diff(fixed[order, 1]) >= -1e-12).all()  # monotone in the network's own score
    assert calibration_metrics(fixed, labels[2000:])["ece"] < calibration_metrics(probabilities[2000:], labels[2000:])["ece"] / 2


def test_ece_nll_and_brier_by_hand():
    # 4 faces at confidence 0.95 (3 right), 2 at 0.55 (none right): bins 15 and 9
    p = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 2)
    labels = np.array([0, 0, 0, 1, 1, 1])
    m = calibration_metrics(p, labels)
    assert m["ece"] == pytest.approx((4 * abs(0.75 - 0.95) + 2 * abs(0.0 - 0.55)) / 6)
    assert m["nll"] == pytest.approx(-(3 * np.log(0.95) + np.log(0.05) + 2 * np.log(0.45)) / 6)
    assert m["brier"] == pytest.approx((3 * 2 * 0.05**2 + 2 * 0.95**2 + 2 * 2 * 0.55**2) / 6)
    assert m["reliability"]["counts"][14] == 4 and m["reliability"]["counts"][8] == 2
    assert m["reliability"]["accuracy"][14] == pytest.approx(0.75)


def test_a_calibrated_predictor_has_ece_near_zero():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.5, 1, 100_000)
    right = rng.uniform(0, 1, 100_000) < confidence
    p = np.stack([confidence, 1 - confidence], 1)
    labels = np.where(right, 0, 1)
    assert calibration_metrics(p, labels)["ece"] < 0.01
    assert calibration_metrics(np.stack([np.full_like(confidence, 0.99), np.full_like(confidence, 0.01)], 1),
                               labels)["ece"] > 0.2


def test_fitted_calibration_survives_save_load_and_export(tmp_path, tiny_model, sample):
    from cnntree import export_model, save_model

    clf = load_model(tiny_model)
    val = sample.splits == "PublicTest"
    fitted = clf.calibrate(sample.images[val], sample.labels[val], "temperature")
    assert {r["method"] for r in fitted.values()} == {"temperature"}
    x = sample.images[:40]
    expected = clf.predict_proba(x)
    assert not np.allclose(expected, load_model(tiny_model).predict_proba(x), atol=1e-4)  # it changed something
    for folder in (save_model(clf, tmp_path / "saved"), export_model(clf, tmp_path / "onnx", "onnx")):
        again = load_model(folder)
        assert again.calibration(again.spec_.nodes[0]).state == fitted["root"]["state"]
        np.testing.assert_allclose(again.predict_proba(x), expected, atol=1e-4)


def test_damaged_calibration_state_is_a_one_line_error(tmp_path, tiny_model):
    import shutil

    from cnntree.errors import CnnTreeError

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    meta = json.loads((broken / "meta.json").read_text())
    meta["networks"][0]["calibration"] = {"method": "vector", "state": {"weights": [1.0], "biases": [0.0]}}
    (broken / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CnnTreeError, match=r"meta.json: networks\[root\].calibration.state: vector scaling for"):
        load_model(broken)
    meta["networks"][0]["calibration"] = {"method": "temperature", "state": {"temperature": -1}}
    (broken / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CnnTreeError, match="temperature"):
        load_model(broken)


@pytest.mark.slow  # subprocesses
def test_calibrate_cli_refits_in_place_and_reports_before_and_after(tmp_path, tiny_model):
    import shutil

    from .helpers import run_cli

    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    code, out, err = run_cli("calibrate", copy, "--method", "temperature", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report["before"]["methods"].values()) == {"prior"} and set(report["after"]["methods"].values()) == {"temperature"}
    validation = report["after"]["metrics"]["Validation"]
    assert validation["nll"] <= report["before"]["metrics"]["Validation"]["nll"] + 1e-6  # fitted there
    meta = json.loads((copy / "meta.json").read_text())
    assert [e["calibration"]["method"] for e in meta["networks"]] == ["temperature", "temperature"]
    assert (copy / ".cnntree").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    code, out, err = run_cli("calibrate", "default")
    assert code != 0 and "shipped model is read-only" in err and len(err.strip().splitlines()) == 1
