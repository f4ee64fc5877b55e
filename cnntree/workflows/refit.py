"""Refitting what a trained model has besides its weights, without retraining: its probabilities'
calibration (on the Validation faces), or its hierarchical answers' thresholds (on held-out faces);
the result written beside the networks (``calibrate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..compose import answers
from ..compose.climbing import Hierarchy
from ..estimator.storage import save_calibration, save_climbing
from ..evaluation.metrics import evaluate


def refit_calibration(clf, data, splits, method: str | None, source, out) -> dict:
    """Every network's calibration refitted on the Validation faces, measured before and after on
    Validation and each test split; the model written to ``out``."""
    parts = {"Validation": splits.validation, **splits.tests}

    def measure() -> dict:
        found = {}
        for split, index in parts.items():
            result = evaluate(clf, data.images[index], data.labels[index])
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
