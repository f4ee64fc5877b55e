"""The transfer workflow: a trained model cross-validated on another data set, K stratified folds
(subject-independent when a group regex names each image's subject), retrained per fold, logged
as one MLflow parent run with a child per fold; optionally retrained on every face and saved."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np

from ..data import FaceData
from ..data.splits import stratified_folds
from ..estimator.storage import check_model_folder, load, save
from ..estimator.transfer import problem, transferred
from ..evaluation.metrics import flat_metrics
from ..plots import draw_confusion
from ..tracking import runs, store


def cross_validate(model_dir, data: FaceData, label_map: dict, mode: str, k: int, epochs: int,
                   group_regex: str | None = None, seed: int = 0, printer=print, fold_run=None) -> dict:
    """K folds of (retrain on K-1, test on 1); per-fold and mean +- std accuracy and macro-F1.

    ``fold_run(i)`` may return a context manager around a fold (the MLflow child run) that
    receives the fold's metrics through its ``log`` method.
    """
    source = load(model_dir)
    train_data, classes, labels = problem(source, data, label_map)
    folds, groups = stratified_folds(labels, k, train_data.names, group_regex, seed)
    confusion = np.zeros((len(classes), len(classes)), int)
    rows = []
    for i, (train, test) in enumerate(folds):
        printer(f"[fold {i + 1}/{k}] retraining ({mode}) on {len(train)} faces, testing on {len(test)}"
                + (f" ({len(set(groups[test]))} subjects)" if groups is not None else ""))
        with (fold_run(i) if fold_run else contextlib.nullcontext()) as run:
            clf = transferred(model_dir, train_data, train, {} if source.spec_.kind == "tree" else label_map, mode,
                              epochs, seed)
            predicted = clf.predict_proba(train_data.images[test]).argmax(axis=1)
            metrics = flat_metrics(labels[test], predicted, classes)
            confusion += np.asarray(metrics["confusion"])
            row = {"fold": i + 1, "train": int(len(train)), "test": int(len(test)), "accuracy": metrics["accuracy"],
                   "macro_f1": metrics["macro_f1"]}
            if groups is not None:
                row["subjects"] = sorted(set(groups[test].tolist()))
            if run is not None:
                run.log(row)
        printer(f"[fold {i + 1}/{k}] accuracy {row['accuracy']:.4f}  macro-F1 {row['macro_f1']:.4f}")
        rows.append(row)
    accuracy = np.array([r["accuracy"] for r in rows])
    f1 = np.array([r["macro_f1"] for r in rows])
    return {"classes": classes, "mode": mode, "folds": rows, "accuracy_mean": float(accuracy.mean()),
            "accuracy_std": float(accuracy.std()), "macro_f1_mean": float(f1.mean()), "macro_f1_std": float(f1.std()),
            "confusion": confusion.tolist(), "grouped": groups is not None}



def run_transfer(model_dir, data, label_map: dict, mode: str, folds: int, epochs: int, group_regex=None, seed=0,
                 experiment="transfer", out=None, printer=print) -> dict:
    """Cross-validate a transfer of the model in ``model_dir`` to ``data`` under one MLflow parent run
    with a child per fold; ``out`` keeps the classifier retrained on every face."""
    clf = load(model_dir)
    target, _, labels = problem(clf, data, label_map)  # bad classes, folds or groups fail before any run starts
    stratified_folds(labels, folds, target.names, group_regex, seed)
    if out:
        check_model_folder(out, reads=[model_dir])
    store.use_experiment(experiment)
    with mlflow.start_run(run_name=f"transfer {Path(model_dir).name} -> {Path(data.source).name}") as parent, \
            runs.killed_on_interrupt():
        mlflow.set_tags({"cnntree.kind": "transfer", "cnntree.spec": clf.spec_.name, "cnntree.source_kind": clf.spec_.kind})
        mlflow.log_params({"model_dir": str(Path(model_dir).resolve()), "data": data.source, "mode": mode,
                           "folds": folds, "epochs": epochs, "group_regex": group_regex,
                           "label_map": json.dumps(label_map), "seed": seed})
        result = cross_validate(model_dir, data, label_map, mode, folds, epochs, group_regex, seed, printer,
                                fold_run=runs.fold_run)
        mlflow.log_metrics({k: result[k] for k in ("accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std")})
        mlflow.log_dict(result, "transfer.json")
        with tempfile.TemporaryDirectory(prefix="cnntree-artifact-") as folder:  # logged, needed nowhere else
            picture = draw_confusion(result["confusion"], result["classes"], Path(folder) / "confusion.png",
                                     f"{folds} folds, summed: share of each true class, and count")
            mlflow.log_artifact(str(picture), "evaluation")
        if out:
            printer(f"[final] retraining ({mode}) on all {len(data.labels)} faces")
            final = transferred(model_dir, target, np.arange(len(labels)),
                                {} if clf.spec_.kind == "tree" else label_map, mode, epochs, seed)
            result["out"] = str(save(final, out))
            mlflow.log_artifacts(result["out"], "classifier")
        result["run_id"] = parent.info.run_id
        result["experiment_id"] = parent.info.experiment_id
        result["experiment"], result["tracking_uri"] = experiment, store.tracking_uri()
    return result
