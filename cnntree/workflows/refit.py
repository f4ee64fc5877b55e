"""Refitting what a trained model has besides its weights, without retraining: its probabilities'
calibration (on the Validation faces), or its hierarchical answers' thresholds (on held-out faces);
the result written beside the networks (``calibrate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..compose import answers
from ..compose.climbing import Hierarchy
from ..data import load_for_spec
from ..errors import CnnTreeError
from ..estimator.storage import check_model_folder, load, save_calibration, save_climbing
from ..evaluation.metrics import evaluate
from ..pretrained import resolve
from ..spec import with_overrides


def refit_calibration(clf, data, splits, method: str | None, source, out) -> dict:
    """Every network's calibration refitted on the Validation faces, measured before and after on
    Validation and each test split; the model written to ``out``."""
    parts = {"Validation": splits.validation, **splits.tests}
    raw = {split: clf.raw_outputs(data.images[index]) for split, index in parts.items()}  # the networks run once

    def measure() -> dict:
        found = {}
        for split, index in parts.items():
            result = evaluate(clf, clf.calibrated(raw[split]), data.labels[index])
            m = result["modes"][result["default_mode"]]
            found[split] = {k: m[k] for k in ("accuracy", "ece", "nll", "brier") if k in m}
        return found

    before = {"methods": {n.id: clf.calibration(n).name for n in clf.spec_.nodes}, "metrics": measure()}
    fitted = clf.calibrate(data.images[splits.validation], data.labels[splits.validation], method)
    after = {"methods": {k: v["method"] for k, v in fitted.items()}, "metrics": measure()}
    at_bound = [node_id for node_id in fitted if clf.calibrations_[node_id].at_bound]
    return {"splits": list(parts), "before": before, "after": after, "fitted": fitted, "at_bound": at_bound,
            "out": save_calibration(clf, source, out)}


def calibrate_thresholds(clf, data, index: np.ndarray, split: str, hierarchy: Hierarchy, coverages, source,
                         out) -> dict:
    """The conformal thresholds of ``hierarchy`` and of the flat abstention baseline at each
    coverage, on the faces ``index`` of ``split``, kept with the model in ``out``; per threshold, the
    specificity its answers reach on those faces."""
    proba, labels = clf.predict_proba(data.images[index]), data.labels[index]
    where = {"split": split, "data": Path(data.source).name}
    record = answers.calibrate(getattr(clf, "climbing_", None), hierarchy, proba, labels, coverages, where)
    written = save_climbing(record, source, out)
    rows = []
    for each in (hierarchy, Hierarchy.flat(hierarchy.classes)):
        for coverage in coverages:
            found = record["hierarchies"][each.name]["thresholds"][f"{coverage:g}"]
            nodes = each.answer(proba, found["threshold"])
            rows.append({"hierarchy": each.name, "coverage": coverage, **found,
                         "specificity_here": float(each.specificity[nodes].mean())})
    return {"thresholds": rows, "out": written}


def calibrate_model(reference, data=None, method: str = "temperature", out=None, coverages=None,
                    split: str = "PublicTest", hierarchy=None) -> dict:
    """``calibrate`` as one call: the model folder or shipped name ``reference`` recalibrated
    (``method`` for every network, on its Validation faces) or, with ``coverages``, its hierarchical
    answers' thresholds on ``split`` (``hierarchy``: a tree spec, "abstain", or None for the model's
    own), written to ``out`` (default: in place). Returns what was fitted (JSON-able)."""
    source = resolve(reference)
    target = Path(out or source)
    check_model_folder(target, reads=[source], in_place=True)
    clf = load(source)
    data, splits = load_for_spec(with_overrides(clf.spec_, data=data))
    if not coverages:
        found = refit_calibration(clf, data, splits, method, source, target)
        return {"data": data.source, "split": "Validation", "faces": int(len(splits.validation)),
                "method": method, "splits": found["splits"],
                **{k: found[k] for k in ("before", "after", "fitted", "at_bound")}, "out": str(found["out"])}
    index = splits.validation if split == "Validation" else splits.tests.get(split)
    if index is None:
        raise CnnTreeError(f"--split: no split \"{split}\"; use Validation or one of {', '.join(splits.tests)}")
    tree = answers.hierarchy_for(clf, hierarchy)
    found = calibrate_thresholds(clf, data, index, split, tree, coverages, source, target)
    return {"data": data.source, "split": split, "faces": int(len(index)), "hierarchy": tree.name,
            "thresholds": found["thresholds"], "out": str(found["out"] / answers.FILE)}
