"""Evaluation on one labelled split: flat metrics (scikit-learn), calibration metrics, hierarchical
metrics for trees, and each network's report on its own relabelled test data."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support

from ..compose.calibration import calibration_metrics
from ..data.nodedata import node_targets
from ..data.splits import split_prefix


def flat_metrics(y_true, y_pred, classes) -> dict:
    """Accuracy, macro and weighted precision/recall/F1, the per-class report and the confusion matrix."""
    labels = list(range(len(classes)))
    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average, zero_division=0)
        out.update({f"{average}_precision": float(p), f"{average}_recall": float(r), f"{average}_f1": float(f)})
    out["report"] = classification_report(y_true, y_pred, labels=labels, target_names=list(classes),
                                          output_dict=True, zero_division=0)
    out["confusion"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return out


def hierarchical_metrics(spec, y_true, y_pred) -> dict:
    """Hierarchical precision/recall/F1 (Kiritchenko et al.): overlap of the predicted and true
    classes' ancestor sets (each class with every node above it, the root excluded)."""
    import networkx as nx

    root = spec.graph.graph.get("root")
    paths = [set(nx.ancestors(spec.graph, c)) - {root} | {c} for c in spec.classes]
    overlap = sum(len(paths[t] & paths[p]) for t, p in zip(y_true, y_pred))
    predicted = sum(len(paths[p]) for p in y_pred)
    true = sum(len(paths[t]) for t in y_true)
    hp, hr = overlap / max(predicted, 1), overlap / max(true, 1)
    return {"hierarchical_precision": hp, "hierarchical_recall": hr,
            "hierarchical_f1": 2 * hp * hr / (hp + hr) if hp + hr else 0.0}


def node_reports(clf, outputs: dict, labels) -> dict:
    """Each network on its own relabelled test data (its classes only, grouped as it predicts)."""
    reports = {}
    for node in clf.spec_.nodes:
        index, targets = node_targets(node, labels, list(clf.spec_.classes), np.arange(len(labels)))
        names = ["+".join(g) for g in node.groups]
        probabilities = outputs[node.id][index]
        reports[node.id] = {"groups": names, **flat_metrics(targets, probabilities.argmax(1), names),
                            **calibration_metrics(probabilities, targets)}
    return reports


def evaluate(clf, outputs: dict, labels) -> dict:
    """Every combining mode's flat metrics (and calibration metrics where the mode answers with
    probabilities, not votes or one-hot paths), hierarchical metrics for trees, per-network reports,
    from the networks' ``outputs`` on the faces (``clf.network_outputs``: the caller runs the networks
    once for everything it measures)."""
    result = {"n": int(len(labels)), "kind": clf.spec_.kind, "default_mode": clf.default_mode(), "modes": {}}
    for mode in clf.modes():
        combiner = clf.combiner(mode)
        probabilities = combiner.combine(outputs)
        predicted = probabilities.argmax(1)
        metrics = flat_metrics(labels, predicted, clf.spec_.classes)
        if combiner.probabilistic:
            metrics.update(calibration_metrics(probabilities, labels))
        if clf.spec_.kind == "tree":
            metrics.update(hierarchical_metrics(clf.spec_, labels, predicted))
        result["modes"][mode] = metrics
    result["nodes"] = node_reports(clf, outputs, labels)
    return result


def headline(result: dict, split: str) -> dict[str, float]:
    """The metric names every run logs, whatever its kind: ``private_accuracy``,
    ``private_macro_f1``, ``private_ece``, ``private_nll``, ... (default mode),
    ``private_accuracy_<mode>`` for every mode, ``private_node_<network>_accuracy|ece|nll`` (after the
    classifier's own figures in MLflow's alphabetical lists)."""
    prefix = split_prefix(split)
    main = result["modes"][result["default_mode"]]
    keys = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision", "weighted_recall",
            "weighted_f1", "hierarchical_precision", "hierarchical_recall", "hierarchical_f1", "ece", "nll", "brier")
    out = {f"{prefix}_{k}": main[k] for k in keys if k in main}
    out.update({f"{prefix}_accuracy_{mode}": m["accuracy"] for mode, m in result["modes"].items()})
    out.update({f"{prefix}_node_{node}_{k}": r[k] for node, r in result["nodes"].items() for k in ("accuracy", "ece", "nll")})
    return out


def evaluate_split(clf, spec, data_path=None, split: str = "PrivateTest", label_map: dict | None = None,
                   explain: int = 0, coverage: float | None = None, hierarchy=None) -> dict:
    """``clf`` on one test split of its spec's data (``spec`` carries the data overrides), or on
    another data set (``data_path``) whose classes meet the model's through ``label_map``; a data set
    without that split is evaluated whole. Returns {"data", "split", "faces", "result"} (with "alignment"
    for another data set), and with ``explain`` the "mistakes": per true class, explanations of its
    ``explain`` most confident wrong predictions; with ``coverage``, "hierarchical": the answers of
    the hierarchy (``hierarchy``: see ``CnnTreeClassifier.predict_node``) and of the flat
    abstention baseline at their calibrated thresholds."""
    from ..data import load_faces, load_for_spec
    from ..data.labels import align
    from ..errors import CnnTreeError

    alignment = None
    if data_path is None:
        data, splits = load_for_spec(spec)
        tests = splits.tests
    else:
        data, alignment = align(load_faces(data_path, skip_bad=spec.data["skip_bad"]), clf.spec_.classes,
                                label_map or {})
        tests = {split: np.flatnonzero(data.splits == split)} if split in set(data.splits.tolist()) else None
    if tests is None:
        split, index = "all", np.arange(len(data.labels))
    elif split not in tests:
        raise CnnTreeError(f"--split: no test split \"{split}\"; test splits: {', '.join(tests)}")
    else:
        index = tests[split]
    images, labels = data.images[index], data.labels[index]
    outputs = clf.network_outputs(images)
    result = evaluate(clf, outputs, labels)
    if alignment is not None:
        result["alignment"] = alignment.as_dict()
    out = {"data": data.source, "split": split, "faces": int(len(index)), "result": result}
    proba = clf.combiner().combine(outputs)  # what the classifier answers, for the answers and the mistakes
    if coverage is not None:
        from ..compose.answers import evaluate_answers

        out["hierarchical"] = evaluate_answers(clf, proba, labels, coverage, hierarchy)
    if explain:
        from .explain import confident_mistakes
        from .explain import explain as explain_faces

        picked = confident_mistakes(proba, labels, explain)
        out["mistakes"] = {clf.spec_.classes[c]: explain_faces(clf, images[rows]) if len(rows) else []
                           for c, rows in picked.items()}
    return out
