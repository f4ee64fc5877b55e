"""CnnTreeClassifier keeps scikit-learn's estimator contract: scikit-learn's own checks where they
apply to face images, the same promises checked on faces where they do not, and a grid search."""

import logging
import pickle
import tempfile

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from cnntree import CnnTreeClassifier, load_model
from cnntree.data.splits import stratified_fraction
from cnntree.errors import CnnTreeError
from cnntree.pretrained import default_model
from cnntree.spec import load_spec

from .helpers import TINY_MODEL, tiny_spec, training_rows

TINY = tiny_spec("single", defaults={"model": TINY_MODEL, "train": {"epochs": 1, "batch_size": 32, "seed": 1}})

# scikit-learn's checks fit on a few columns of random numbers; this estimator takes 48x48 faces
# (or rows of their 2,304 pixels), so these never reach what they test. test_the_contract_on_faces
# checks the same promises on faces: fit returns self and leaves the parameters as given, pickling,
# predictions that do not depend on the other faces in the batch or their order, 2-D rows.
ON_FACES = "fits on random columns, not 48x48 faces: checked on faces in test_the_contract_on_faces"
NOT_FACES = [
    "check_classifier_data_not_an_array", "check_dict_unchanged", "check_dont_overwrite_parameters",
    "check_dtype_object", "check_estimators_dtypes", "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_fit2d_predict1d", "check_fit_check_is_fitted", "check_fit_idempotent", "check_fit_score_takes_y",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input", "check_supervised_y_2d", "check_classifiers_train",
]
# classes_ are the spec's classes (a tree's nodes name them), not np.unique(y) of whatever was fitted
SPEC_CLASSES = "classes_ are the spec's, not the labels' unique values: a tree's hierarchy names them"
# bad input is refused with the project's one line (the argument, the shape expected), which
# does not use the wording these checks look for
OWN_WORDS = "refused with one line naming the argument and the faces expected, not scikit-learn's wording"
EXPECTED_FAILURES = {**dict.fromkeys(NOT_FACES, ON_FACES),
                     "check_classifiers_classes": SPEC_CLASSES, "check_classifiers_one_label": SPEC_CLASSES,
                     **dict.fromkeys(["check_classifiers_regression_target", "check_complex_data",
                                      "check_estimators_empty_data_messages", "check_estimators_nan_inf",
                                      "check_fit2d_1feature", "check_fit2d_1sample", "check_requires_y_none"],
                                     OWN_WORDS)}


@parametrize_with_checks([CnnTreeClassifier(TINY)], expected_failed_checks=lambda _: EXPECTED_FAILURES)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def test_every_parameter_has_a_default_and_none_means_the_shipped_default():
    clf = CnnTreeClassifier()
    assert clf.get_params() == {"spec": None, "epochs": None, "random_state": None, "mode": None, "test_time": None,
                                "validation_fraction": 0.1, "work_dir": None, "jobs": 1, "ray": None, "verbose": 0}
    assert clf._resolved_spec().raw == load_spec(default_model() / "spec.json").raw
    again = CnnTreeClassifier(epochs=3, random_state=5)._resolved_spec()
    assert again.root.train["epochs"] == 3 and again.root.train["seed"] == 5
    with pytest.raises(CnnTreeError, match="spec: expected a Spec, a spec file or None, got int"):
        CnnTreeClassifier(spec=3)._resolved_spec()


@pytest.mark.slow
def test_the_contract_on_faces(sample, tmp_path, monkeypatch, caplog):
    """fit(X, y) with class names and no validation holds out validation_fraction of each class,
    leaves its parameters and no temporary folder behind; predictions are names, per face, the
    same from 2-D rows and after pickling."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    faces, names = sample.images[:600], np.array(sample.classes)[sample.labels[:600]]
    clf = CnnTreeClassifier(TINY, validation_fraction=0.2, verbose=1)
    params = clf.get_params()
    with caplog.at_level(logging.INFO, logger="cnntree"):
        assert clf.fit(faces, names) is clf
    assert clf.get_params() == params and clf.spec is TINY and clf.spec_.name == "tiny"
    assert list(tmp_path.iterdir()) == []  # the temporary work folder is gone
    rest, held_out = stratified_fraction(sample.labels[:600], np.arange(600), 0.2, 1, "")
    counts = np.bincount(sample.labels[rest], minlength=7).tolist()
    assert f"{counts} -> " in caplog.text and f", {len(held_out)} validation" in caplog.text
    predicted = clf.predict(faces[:50])
    assert set(predicted) <= set(clf.classes_) and predicted.dtype.kind == "U"
    proba = clf.predict_proba(faces[:50])
    np.testing.assert_allclose(clf.predict_proba(faces[:50].reshape(50, -1)), proba, rtol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(faces[:50][::-1]), proba[::-1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(clf.predict_proba(faces[10:20]), proba[10:20], rtol=1e-5, atol=1e-7)
    assert clf.score(faces[:50], names[:50]) == clf.score(faces[:50], sample.labels[:50])
    np.testing.assert_allclose(pickle.loads(pickle.dumps(clf)).predict_proba(faces[:50]), proba, rtol=1e-6)
    caplog.clear()
    CnnTreeClassifier(TINY).fit(faces, names)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # verbose=0: quiet
    with pytest.raises(CnnTreeError, match="validation_fraction: expected a share between 0 and 1, got 1.5"):
        CnnTreeClassifier(TINY, validation_fraction=1.5).fit(faces, names)
    with pytest.raises(CnnTreeError, match=r"images: calm is not a class of the spec \(angry, disgust"):
        CnnTreeClassifier(TINY).fit(faces[:2], ["happy", "calm"])


def test_mode_and_test_time_are_parameters(tiny_model, sample):
    clf = load_model(tiny_model)
    faces = sample.images[:20]
    soft = clf.predict_proba(faces)
    hard = clf.set_params(mode="hard").predict_proba(faces)
    np.testing.assert_allclose(hard, clf.combiner("hard").combine(clf.network_outputs(faces)))
    assert not np.allclose(hard, soft)
    own = clf.set_params(mode=None, test_time="none").raw_outputs(faces)
    mirrored = clf.raw_outputs(faces[:, :, ::-1])
    flipped = clf.set_params(test_time="flip").raw_outputs(faces)
    for node in ("root", "rest"):  # each network averages a face and its mirror image
        np.testing.assert_allclose(flipped[node], (own[node] + mirrored[node]) / 2, atol=1e-6)
    assert not np.allclose(clf.predict_proba(faces), soft, atol=1e-6)


@pytest.mark.slow
def test_grid_search_over_epochs_on_the_sample(sample):
    """clone and GridSearchCV work: two epoch budgets, two folds, refitted on everything."""
    train = training_rows(sample)
    search = GridSearchCV(CnnTreeClassifier(TINY), {"epochs": [1, 2]}, cv=2).fit(sample.images[train],
                                                                              sample.labels[train])
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2 and all(1 / 7 - 0.05 < s < 1 for s in scores)
    best = search.best_estimator_
    assert best.epochs == search.best_params_["epochs"] and best is not search.estimator
    assert len(best.histories_["net"]["loss"]) == best.epochs
    assert clone(best).get_params()["epochs"] == best.epochs and not hasattr(clone(best), "networks_")
